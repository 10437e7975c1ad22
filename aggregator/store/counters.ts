/**
 * The four counters of a bucket, named once. In TypeScript a bucket is `Totals`; in Redis a tier hash stores
 * counter k of slot s in field `s × FIELD_KINDS + k` and the all-merchants window index stores it in field
 * `<letter>:<merchant>`. Counts are numbers, amounts bigint (exact: Redis HINCRBY is 64-bit). Everything that
 * writes or reads a counter goes through the encoders and decoders below.
 *
 *   k  counter          window letter
 *   0  approvals        n
 *   1  approvedAmount   a
 *   2  cancels          c
 *   3  canceledAmount   x
 */

export interface Totals {
  approvals: number;
  approvedAmount: bigint;
  cancels: number;
  canceledAmount: bigint;
}

/** Counters per bucket slot: field = slot × FIELD_KINDS + k. */
export const FIELD_KINDS = 4;
/** Window-index field letter of counter k. */
export const WINDOW_LETTERS = ['n', 'a', 'c', 'x'] as const;
const WINDOW_KIND: Readonly<Record<string, number>> = { n: 0, a: 1, c: 2, x: 3 };

export function emptyTotals(): Totals {
  return { approvals: 0, approvedAmount: 0n, cancels: 0, canceledAmount: 0n };
}

export function addTotals(into: Totals, x: Totals): Totals {
  into.approvals += x.approvals;
  into.approvedAmount += x.approvedAmount;
  into.cancels += x.cancels;
  into.canceledAmount += x.canceledAmount;
  return into;
}

export function isEmpty(t: Totals): boolean {
  return t.approvals === 0 && t.cancels === 0 && t.approvedAmount === 0n && t.canceledAmount === 0n;
}

// ---- encode (the writer: HINCRBY arguments) ---------------------------------------------------------------------

/** Appends (field, value) of every non-zero counter of `d` in bucket slot `slot`; returns how many. */
export function encodeBucketFields(out: string[], slot: number, d: Totals): number {
  const f = slot * FIELD_KINDS;
  let n = 0;
  if (d.approvals !== 0) { out.push(String(f), String(d.approvals)); n++; }
  if (d.approvedAmount !== 0n) { out.push(String(f + 1), d.approvedAmount.toString()); n++; }
  if (d.cancels !== 0) { out.push(String(f + 2), String(d.cancels)); n++; }
  if (d.canceledAmount !== 0n) { out.push(String(f + 3), d.canceledAmount.toString()); n++; }
  return n;
}

/** Appends (field, value) of every non-zero counter of merchant `m` in a window-index hash; returns how many. */
export function encodeWindowFields(out: string[], m: string, d: Totals): number {
  let n = 0;
  if (d.approvals !== 0) { out.push('n:' + m, String(d.approvals)); n++; }
  if (d.approvedAmount !== 0n) { out.push('a:' + m, d.approvedAmount.toString()); n++; }
  if (d.cancels !== 0) { out.push('c:' + m, String(d.cancels)); n++; }
  if (d.canceledAmount !== 0n) { out.push('x:' + m, d.canceledAmount.toString()); n++; }
  return n;
}

/** Where the replay writes encoded fields (lib/redis.ts RespWriter: no string per field or value). */
export interface FieldWriter {
  string(s: string, prefix?: string): unknown;
  integer(v: number | bigint): unknown;
}

type N = number | bigint;

/** encodeBucketFields into a FieldWriter, the four counters given one by one (integers). */
export function writeBucketCounters(w: FieldWriter, slot: number, approvals: N, approvedAmount: N, cancels: N, canceledAmount: N): void {
  const f = slot * FIELD_KINDS;
  if (approvals != 0) { w.integer(f); w.integer(approvals); }
  if (approvedAmount != 0) { w.integer(f + 1); w.integer(approvedAmount); }
  if (cancels != 0) { w.integer(f + 2); w.integer(cancels); }
  if (canceledAmount != 0) { w.integer(f + 3); w.integer(canceledAmount); }
}

/** encodeWindowFields into a FieldWriter. */
export function writeWindowCounters(w: FieldWriter, m: string, approvals: N, approvedAmount: N, cancels: N, canceledAmount: N): void {
  if (approvals != 0) { w.string(m, 'n:'); w.integer(approvals); }
  if (approvedAmount != 0) { w.string(m, 'a:'); w.integer(approvedAmount); }
  if (cancels != 0) { w.string(m, 'c:'); w.integer(cancels); }
  if (canceledAmount != 0) { w.string(m, 'x:'); w.integer(canceledAmount); }
}

// ---- decode (the reader) ----------------------------------------------------------------------------------------

/** Adds counter `k` (0..3) with value `v` (a Redis integer string) into `into`. */
export function addField(into: Totals, k: number, v: string): void {
  if (k === 0) into.approvals += Number(v);
  else if (k === 1) into.approvedAmount += BigInt(v);
  else if (k === 2) into.cancels += Number(v);
  else into.canceledAmount += BigInt(v);
}

/**
 * Visits every counter of a window-index hash as the read scripts return it (fields and values joined by NUL,
 * scripts.ts): merchant, counter k, value (a Redis integer string). Fields that are not counters (the hash's version)
 * are skipped. Scans the string in place: no array of its parts.
 */
export function forEachWindowCounter(s: string, visit: (merchant: string, k: number, value: string) => void): void {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const j = s.indexOf('\0', i);
    let end = s.indexOf('\0', j + 1);
    if (end < 0) end = n;
    const k = WINDOW_KIND[s[i]];
    if (k !== undefined && s.charCodeAt(i + 1) === 58 /* ':' */) visit(s.slice(i + 2, j), k, s.slice(j + 1, end));
    i = end + 1;
  }
}
