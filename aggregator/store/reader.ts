/** What the bucket store's reads return, and the interface the rules, the API and the tools read through. */
import type { BackfillRecord, GapRecord } from './backfill.ts';
import type { Totals } from './counters.ts';
import type { Payout } from '../../lib/mapping.ts';

export type Step = '1m' | '1h' | '1d';
export const STEP_MS: Record<Step, number> = { '1m': 60_000, '1h': 3_600_000, '1d': 86_400_000 };

export interface Point extends Totals {
  /** bucket start, epoch ms (for 1d: local midnight in RISKMON_TZ) */
  t: number;
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
  /**
   * The last history backfill's record (store/backfill.ts), null when none ran: while one is `running`, buckets of
   * its range are incomplete and nobody is judged on them. Readers without backfills leave it out.
   */
  backfill?(): Promise<BackfillRecord | null>;
  /** A known gap in the stream (store/backfill.ts), null when there is none. */
  gap?(): Promise<GapRecord | null>;
}

/** One (minute, partition) of the all-merchants minute index. */
export interface WindowSlice {
  minute: number;
  partition: number;
  /**
   * Changes whenever the hash changes (the replay generation and the hash's version, or the length and CRC-64 of its
   * DUMP for a hash without a version); '' when the key does not exist.
   */
  fingerprint: string;
  /**
   * The hash as the read scripts return it, for `forEachWindowCounter` (counters.ts) to decode; null when the
   * fingerprint equals the one the caller already knows.
   */
  content: string | null;
  /**
   * True when `content` holds only the merchants written since the caller's read (each with all four counters as they
   * stand now, '0' for an absent one): the caller's copy with those merchants' counters replaced is the hash now.
   * Only for a caller whose known fingerprint was taken after the minute ended (the hash's late log covers it).
   */
  delta?: boolean;
}

export interface WindowSliceReader {
  /**
   * The index slices of `minutes` in every partition. `known` gives the fingerprint the caller holds for a slice;
   * unchanged slices come back without totals. Null when the index no longer holds the oldest minute asked for
   * (a catch-up far behind): read with totalsByMerchant then.
   */
  windowSlices(minutes: number[], known: (minute: number, partition: number) => string | undefined): Promise<WindowSlice[] | null>;
}

export function hasWindowSlices(r: BucketReader): r is BucketReader & WindowSliceReader {
  return typeof (r as Partial<WindowSliceReader>).windowSlices === 'function';
}

export interface MinuteTotalsReader {
  /**
   * Every merchant's totals per minute of [fromMs, toMs) (minute-aligned), minute → merchant → totals, merchants
   * without activity in a minute omitted: from the all-merchants minute index where it still holds `fromMs`, else
   * from the minute tier (one pass over every merchant for the whole range). Null for minutes before the minute
   * tier's horizon (`minuteHorizon`).
   */
  minuteTotals(fromMs: number, toMs: number): Promise<Map<number, Map<string, Totals>>>;
  /** The earliest minute the minute tier is sure to hold now (epoch ms). */
  minuteHorizon(): number;
}

export function hasMinuteTotals(r: BucketReader): r is BucketReader & MinuteTotalsReader {
  return typeof (r as Partial<MinuteTotalsReader>).minuteTotals === 'function';
}

/** What money at risk reads (lib/exposure.ts, store/exposure.ts): exact range sums since a settled-through time, payouts. */
export interface MoneyReader {
  /**
   * Totals of the given merchants over [fromMs, toMs) (fromMs null: everything the day tier holds): whole local days
   * from the day tier, the partial days at the ends from the finest tier that holds them (store/ranges.ts
   * `tierSegments`: exact when fromMs is within the minute tier, on a whole hour within the hour tier, or a local
   * midnight).
   */
  sinceTotals(merchantIds: string[], fromMs: number | null, toMs: number): Promise<Map<string, Totals>>;
  /** The payout rows standing for each merchant (paid within the day tier's retention or up to 100 days ahead). */
  payouts(merchantIds: string[]): Promise<Map<string, Payout[]>>;
  /**
   * Merchants a live apply after position `since[p]` of each partition (the partition's offsets) wrote a late fact
   * of (into a minute the watermark had closed) or changed the payouts of, the positions to pass next time, and the
   * partitions' replay generations (a changed one means everything may have changed). `names: false`: only the
   * positions and generations (the merchants set is empty), for a caller that reads every merchant anyway.
   */
  changedMerchants(since: number[], o?: { names?: boolean }): Promise<{ merchants: Set<string>; next: number[]; generation: string }>;
  /** Every merchant with state in the store (shard suffixes removed). */
  allMerchants(): Promise<Set<string>>;
}

export function hasMoney(r: BucketReader): r is BucketReader & MoneyReader {
  return typeof (r as Partial<MoneyReader>).sinceTotals === 'function';
}
