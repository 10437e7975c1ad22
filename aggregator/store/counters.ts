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
  return encodeBucketCounters(out, slot, d.approvals, d.approvedAmount, d.cancels, d.canceledAmount);
}

/** Appends (field, value) of every non-zero counter of merchant `m` in a window-index hash; returns how many. */
export function encodeWindowFields(out: string[], m: string, d: Totals): number {
  return encodeWindowCounters(out, m, d.approvals, d.approvedAmount, d.cancels, d.canceledAmount);
}

type N = number | bigint;

/** encodeBucketFields of the four counters given one by one (integers: numbers or bigints). */
export function encodeBucketCounters(out: string[], slot: number, a: N, aa: N, c: N, ca: N): number {
  const f = slot * FIELD_KINDS;
  return put(out, a, fieldName(f)) + put(out, aa, fieldName(f + 1)) + put(out, c, fieldName(f + 2)) + put(out, ca, fieldName(f + 3));
}

/** encodeWindowFields of the four counters given one by one. */
export function encodeWindowCounters(out: string[], m: string, a: N, aa: N, c: N, ca: N): number {
  return (a != 0 ? put(out, a, 'n:' + m) : 0) + (aa != 0 ? put(out, aa, 'a:' + m) : 0) + (c != 0 ? put(out, c, 'c:' + m) : 0) + (ca != 0 ? put(out, ca, 'x:' + m) : 0);
}

function put(out: string[], v: N, field: string): number {
  if (v == 0) return 0;
  out.push(field, String(v));
  return 1;
}

/** Field names of the tier hashes, made once (slots × kinds stay below a few thousand). */
const FIELD_NAMES: string[] = [];
function fieldName(f: number): string {
  return FIELD_NAMES[f] ??= String(f);
}

// ---- decode (the reader) ----------------------------------------------------------------------------------------

/** Adds counter `k` (0..3) with value `v` (a Redis integer string) into `into`. */
export function addField(into: Totals, k: number, v: string): void {
  if (k === 0) into.approvals += Number(v);
  else if (k === 1) into.approvedAmount += BigInt(v);
  else if (k === 2) into.cancels += Number(v);
  else into.canceledAmount += BigInt(v);
}

/** Splits a window-index field into (merchant, counter k). */
export function windowField(f: string): [string, number] {
  return [f.slice(2), WINDOW_KIND[f[0]]];
}
