/**
 * What the aggregator's read module returns, and the interface the rules and the API read through.
 * Implemented by aggregator/read.ts over Redis; merged across hot-merchant shards.
 */
export type Step = '1m' | '1h' | '1d';
export const STEP_MS: Record<Step, number> = { '1m': 60_000, '1h': 3_600_000, '1d': 86_400_000 };

export interface Totals {
  approvals: number;
  approvedAmount: bigint;
  cancels: number;
  canceledAmount: bigint;
}

export interface Point extends Totals {
  /** bucket start, epoch ms (for 1d: local midnight in RISKMON_TZ) */
  t: number;
}

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

export interface BucketReader {
  /** Points of one merchant in [fromMs, toMs) at `step`, empty buckets omitted, sorted by t. */
  series(merchantId: string, fromMs: number, toMs: number, step: Step): Promise<Point[]>;
  /** Totals of every merchant with any activity in [fromMs, toMs), both aligned to `step`. */
  totalsByMerchant(fromMs: number, toMs: number, step: Step): Promise<Map<string, Totals>>;
  /** Totals of the given merchants over [fromMs, toMs), using the finest tier that still holds the range. */
  totals(merchantIds: string[], fromMs: number, toMs: number): Promise<Map<string, Totals>>;
  /** Event-time watermark (epoch ms): the minimum over all partitions of what each has seen; null before any. */
  watermark(): Promise<number | null>;
  /**
   * Identifies the Redis history the buckets come from (the replication ids of the masters). It changes when a
   * replica is promoted — possibly one that missed the last writes, so buckets and watermark rolled back — and
   * stays the same otherwise. Readers whose state cannot roll back leave it out.
   */
  stateEpoch?(): Promise<string>;
}
