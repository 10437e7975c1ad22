/**
 * The SQL truth the aggregator's buckets must equal: a GROUP BY over the source tables (the reference schema's, or a
 * mapping's) per (merchant, minute | UTC hour | local day in `tz`), and a comparer against a BucketReader.
 */
import pg from 'pg';
import { emptyTotals, isEmpty, type BucketReader, type Step, type Totals } from '../../aggregator/store/index.ts';
import { referenceMapping, type FactTable, type Mapping } from '../../lib/mapping.ts';

/** merchant → bucket start (ms) → totals */
export type Truth = Map<string, Map<number, Totals>>;

function bucketExpr(col: string, step: Step): string {
  if (step === '1m') return `(floor(extract(epoch FROM ${col}) / 60) * 60000)::bigint`;
  if (step === '1h') return `(floor(extract(epoch FROM ${col}) / 3600) * 3600000)::bigint`;
  return `(extract(epoch FROM (date_trunc('day', ${col} AT TIME ZONE $1) AT TIME ZONE $1)) * 1000)::bigint`;
}

/** The SQL truth of `mapping`'s tables (the reference schema by default): each side's rows while its time is not NULL. */
export async function sqlTruth(pgUrl: string, step: Step, tz: string, mapping: Mapping = referenceMapping): Promise<Truth> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    const params = step === '1d' ? [tz] : [];
    const id = (s: string) => `"${s}"`;
    const q = (t: FactTable) => {
      const time = id(t.time);
      return `SELECT ${id(t.merchant)}::text AS m, ${bucketExpr(time, step)}::text AS t, count(*)::int AS n, sum(${id(t.amount)})::text AS amt
         FROM ${t.table.split('.').map(id).join('.')} WHERE ${time} IS NOT NULL GROUP BY 1, 2`;
    };
    const truth: Truth = new Map();
    const at = (m: string, t: number) => {
      let byT = truth.get(m);
      if (!byT) truth.set(m, (byT = new Map()));
      let x = byT.get(t);
      if (!x) byT.set(t, (x = emptyTotals()));
      return x;
    };
    for (const r of (await client.query(q(mapping.approvals), params)).rows) {
      const x = at(r.m, Number(r.t));
      x.approvals += r.n;
      x.approvedAmount += BigInt(r.amt);
    }
    for (const r of (await client.query(q(mapping.cancels), params)).rows) {
      const x = at(r.m, Number(r.t));
      x.cancels += r.n;
      x.canceledAmount += BigInt(r.amt);
    }
    return truth;
  } finally {
    await client.end();
  }
}

function fmt(t: Totals): string {
  return `${t.approvals}/${t.approvedAmount}/${t.cancels}/${t.canceledAmount}`;
}

/**
 * Every bucket of `truth` within [from, to) equals the reader's series for that merchant, and the reader has no
 * bucket the truth lacks (for `merchants`, default: every merchant of the truth). Returns the differences (empty
 * when equal), each as "merchant@iso: expected … got …".
 */
export async function diffAgainstReader(reader: BucketReader, truth: Truth, step: Step, from: number, to: number,
  merchants: string[] = [...truth.keys()]): Promise<string[]> {
  const diffs: string[] = [];
  for (const m of merchants) {
    const want = new Map<number, Totals>();
    for (const [t, x] of truth.get(m) ?? []) if (t >= from && t < to && !isEmpty(x)) want.set(t, x);
    const got = new Map((await reader.series(m, from, to, step)).map((p) => [p.t, p]));
    for (const t of new Set([...want.keys(), ...got.keys()])) {
      const w = want.get(t) ?? emptyTotals();
      const g = got.get(t) ?? emptyTotals();
      if (fmt(w) !== fmt(g)) diffs.push(`${m}@${new Date(t).toISOString()} ${step}: expected ${fmt(w)} got ${fmt(g)}`);
    }
  }
  return diffs;
}

/** Sum of the truth per merchant over [from, to). */
export function truthTotals(truth: Truth, from: number, to: number): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const [m, byT] of truth) {
    const s = emptyTotals();
    for (const [t, x] of byT) {
      if (t < from || t >= to) continue;
      s.approvals += x.approvals; s.approvedAmount += x.approvedAmount; s.cancels += x.cancels; s.canceledAmount += x.canceledAmount;
    }
    if (!isEmpty(s)) out.set(m, s);
  }
  return out;
}

export function diffTotals(want: Map<string, Totals>, got: Map<string, Totals>): string[] {
  const diffs: string[] = [];
  for (const m of new Set([...want.keys(), ...got.keys()])) {
    const w = want.get(m) ?? emptyTotals();
    const g = got.get(m) ?? emptyTotals();
    if (fmt(w) !== fmt(g)) diffs.push(`${m}: expected ${fmt(w)} got ${fmt(g)}`);
  }
  return diffs;
}
