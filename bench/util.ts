/** Small helpers the benchmark parts share. */

/** The q-quantile of samples (nearest rank); NaN when there are none. */
export function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** The cdc's cumulative publish-latency histogram (commit → Kafka ack, seconds: le → count) from its /metrics. */
export async function cdcPublishHistogram(port: number): Promise<Map<number, number>> {
  return metricHistogram(port, 'riskmon_cdc_publish_latency_seconds');
}

/** A cumulative histogram without labels (le → count) from a component's /metrics. */
export async function metricHistogram(port: number, name: string): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(new RegExp(`${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'g'))) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return out;
}

/** Quantile from cumulative bucket counts, linear inside a bucket. */
export function histogramQuantile(h: Map<number, number>, q: number): number {
  const entries = [...h].sort((a, b) => a[0] - b[0]);
  const total = entries[entries.length - 1]?.[1] ?? 0;
  if (!total) return NaN;
  const rank = q * total;
  let prevLe = 0, prevC = 0;
  for (const [le, c] of entries) {
    if (c >= rank) return le === Infinity ? prevLe : prevLe + ((le - prevLe) * (rank - prevC)) / Math.max(1, c - prevC);
    prevLe = le; prevC = c;
  }
  return prevLe;
}
