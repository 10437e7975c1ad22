/** Small helpers the benchmark parts share. */
import type { Redis } from 'ioredis';
import pg from 'pg';
import type { BucketReader } from '../aggregator/store/index.ts';
import { alertsChannel, decodeAlertMessage } from '../lib/alert-message.ts';
import type { FakeSlack } from '../test/harness/index.ts';

/** The q-quantile of samples (nearest rank); NaN when there are none. */
export function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** The cdc's cumulative publish-latency histogram (commit → Kafka ack, seconds: le → count) from its /metrics. */
export async function cdcPublishHistogram(port: number, stage: 'publish' | 'receive' = 'publish'): Promise<Map<number, number>> {
  return metricHistogram(port, `riskmon_cdc_${stage}_latency_seconds`);
}

/** A cumulative histogram without labels (le → count) from a component's /metrics. */
export async function metricHistogram(port: number, name: string): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(new RegExp(`${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'g'))) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return out;
}

/** What a cumulative histogram (le → count) counted since an earlier reading of it. */
export function histogramSince(now: Map<number, number>, before: Map<number, number>): Map<number, number> {
  return new Map([...now].map(([le, c]) => [le, c - (before.get(le) ?? 0)]));
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

/** A database of its own on the risk server for one benchmark run; `drop` removes it (connections included). */
export async function scratchDatabase(riskPgUrl: string, name: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: riskPgUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(riskPgUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await admin.end();
    },
  };
}

/** When the first Slack request and the first pub/sub "fired" message of each surge merchant (`s<n>`) arrived. */
export class AlertArrivals {
  readonly slackAt = new Map<string, number>();
  readonly pubAt = new Map<string, number>();

  async attach(slack: FakeSlack, sub: Redis, prefix: string): Promise<void> {
    slack.onRequest = (r) => { const m = /merchant (s\d+)/.exec(r.body?.text ?? ''); if (m && !this.slackAt.has(m[1])) this.slackAt.set(m[1], r.at); };
    await sub.subscribe(alertsChannel(prefix));
    sub.on('message', (_c, raw) => {
      const msg = decodeAlertMessage(raw);
      if (msg.transition === 'fired' && !this.pubAt.has(msg.alert.merchantId)) this.pubAt.set(msg.alert.merchantId, Date.now());
    });
  }

  /** Waits (up to 30 s) until both arrived for `id`; returns both arrival times. */
  async both(id: string): Promise<{ slack: number; pubsub: number }> {
    const deadline = Date.now() + 30_000;
    while ((!this.slackAt.has(id) || !this.pubAt.has(id)) && Date.now() < deadline) await sleep(2);
    if (!this.slackAt.has(id) || !this.pubAt.has(id)) throw new Error(`no alert for ${id} within 30 s`);
    return { slack: this.slackAt.get(id)!, pubsub: this.pubAt.get(id)! };
  }
}

/** Polls the watermark every 5 ms until it reaches `ms`; returns when it did (wall clock). */
export async function waitWatermark(reader: Pick<BucketReader, 'watermark'>, ms: number): Promise<number> {
  for (;;) { const w = await reader.watermark(); if (w !== null && w >= ms) return Date.now(); await sleep(5); }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
