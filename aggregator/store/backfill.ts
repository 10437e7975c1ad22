/**
 * The history backfill's record in the store (`<P>:backfill`, one JSON string per prefix): whether a backfill runs
 * or ran, over which range, how far it got. The cdc's first start and `riskmon backfill` write it
 * (aggregator/backfill.ts); the evaluator, `riskmon status` and `GET /api/status` read it. A record left `running`
 * by a killed process stays so until a backfill of that range finishes: nothing judges on the half-written range
 * meanwhile.
 */
import type { RedisClient } from '../../lib/redis.ts';
import { HOUR, MINUTE } from '../../lib/time.ts';
import { DayClock, keys } from './layout.ts';

export interface BackfillRecord {
  state: 'running' | 'done';
  /** `initial`: the cdc's first start, consistent with its new slot; `range`: `riskmon backfill` on a running system */
  kind: 'initial' | 'range';
  /** unique per run; the partitions' locks hold it while the run writes */
  id: string;
  /** the slot the initial backfill belongs to */
  slot: string | null;
  /** the range rebuilt: [from, to), local midnights (to null: no end) */
  from: string;
  to: string | null;
  /** the source position the snapshot equals: rows committed before it come from the backfill, later ones from the stream */
  consistentPoint: string | null;
  startedAt: string;
  finishedAt: string | null;
  /** source rows taken in so far, and the time chunks of the range done / in all */
  rows: number;
  chunksDone: number;
  chunks: number;
  /** changes from the topic applied on top of the snapshot (range backfills) */
  topicChanges: number;
  rowsPerSecond: number | null;
  /**
   * range backfills: the range is rebuilt aside (swap.ts) while the live buckets go on being applied and judged;
   * `swapping` while it is being swapped in, partition by partition (the evaluator waits meanwhile)
   */
  aside?: boolean;
  swapping?: boolean;
}

/** Whether the live buckets are incomplete or being rewritten: the evaluator judges nobody meanwhile. */
export function backfillBlocksJudging(r: BackfillRecord | null): boolean {
  return r?.state === 'running' && !(r.aside === true && r.swapping !== true);
}

/** What `riskmon status` and `/api/status` show. */
export type BackfillStatus = { state: 'none' } | (BackfillRecord & { progress: number });

export async function readBackfill(redis: RedisClient, prefix: string): Promise<BackfillRecord | null> {
  const raw = await redis.get(keys.backfill(prefix));
  if (!raw) return null;
  try {
    const r = JSON.parse(raw) as BackfillRecord;
    return r && (r.state === 'running' || r.state === 'done') ? r : null;
  } catch {
    return null;
  }
}

export async function writeBackfill(redis: RedisClient, prefix: string, r: BackfillRecord): Promise<void> {
  await redis.set(keys.backfill(prefix), JSON.stringify(r));
}

/**
 * A known gap in the stream: the slot was lost and created anew (`riskmon cdc --accept-gap`, or a slot gone after the
 * first start's backfill), so what the source committed between the stream's last commit and the new slot is in no
 * bucket. Recorded by the cdc when it creates the slot; shown by `riskmon status` and `/api/status`; deleted when a
 * range backfill covering it finishes (aggregator/backfill.ts).
 */
export interface GapRecord {
  slot: string;
  /** the newest commit time the stream had carried (the partitions' newest watermark); null when none was stored */
  from: string | null;
  /** when the new slot was created: changes after it are streamed */
  to: string;
  /** the backfill that closes it */
  fix: string;
}

export async function recordGap(redis: RedisClient, prefix: string, partitions: number, slot: string, now: number): Promise<GapRecord> {
  // one GET per partition: their keys lie in different slots of a Redis Cluster (an MGET across them is refused)
  const wms = await Promise.all(Array.from({ length: partitions }, (_, p) => redis.get(keys.watermark(prefix, p))));
  const newest = wms.reduce<number | null>((m, w) => (w === null ? m : Math.max(m ?? 0, Number(w))), null);
  const earlier = await readGap(redis, prefix); // a gap not yet backfilled stays open from its start
  const fromMs = earlier?.from ? Date.parse(earlier.from) : newest;
  const from = fromMs === null ? null : new Date(fromMs).toISOString();
  const to = new Date(now).toISOString();
  const gap: GapRecord = { slot, from, to, fix: `riskmon backfill --from ${from ?? '<when the slot was lost>'} --to ${to}` };
  await redis.set(keys.gap(prefix), JSON.stringify(gap));
  return gap;
}

export async function readGap(redis: RedisClient, prefix: string): Promise<GapRecord | null> {
  const raw = await redis.get(keys.gap(prefix));
  if (!raw) return null;
  try {
    const g = JSON.parse(raw) as GapRecord;
    return g && typeof g.to === 'string' ? g : null;
  } catch {
    return null;
  }
}

/** Whether a finished backfill rebuilt the whole gap (its range starts at or before the gap and ends after it). */
export function coversGap(r: BackfillRecord, g: GapRecord): boolean {
  if (r.state !== 'done' || g.from === null) return false;
  return Date.parse(r.from) <= Date.parse(g.from) && (r.to === null || Date.parse(r.to) >= Date.parse(g.to));
}

/** Deletes the gap record when the finished backfill `r` covers it; true when it did. */
export async function closeGapCoveredBy(redis: RedisClient, prefix: string, r: BackfillRecord): Promise<boolean> {
  const g = await readGap(redis, prefix);
  if (!g || !coversGap(r, g)) return false;
  await redis.del(keys.gap(prefix));
  return true;
}

export function backfillStatus(r: BackfillRecord | null): BackfillStatus {
  if (!r) return { state: 'none' };
  return { ...r, progress: r.state === 'done' ? 1 : r.chunks ? Math.min(1, r.chunksDone / r.chunks) : 0 };
}

export interface TierRange { minute: number; hour: number; day: number }

/**
 * The tiers' bounds of a backfill of [fromMs, toMs): both move out to local midnights (a day bucket is rebuilt
 * whole or not at all); hours are UTC, so their bounds are the whole hours around the midnights (zones whose
 * midnight is not on a UTC hour rebuild that hour whole too). The source is read over [from.hour, to.hour).
 */
export function rangeOf(fromMs: number, toMs: number | null, clock: DayClock): { from: TierRange; to: TierRange | null } {
  const day = clock.dayStart(fromMs);
  const from = { minute: day, hour: Math.floor(day / HOUR) * HOUR, day };
  if (toMs === null) return { from, to: null };
  let end = clock.dayStart(toMs);
  if (end < toMs) end = clock.dayStart(end + 26 * HOUR);
  return { from, to: { minute: end, hour: Math.ceil(end / HOUR) * HOUR, day: end } };
}

/**
 * The time chunks a backfill reads the source in: [a, b) pairs of `chunkMs` (whole hours), newest first. Without an
 * end the newest chunk has none either (b = Infinity): rows dated after now (a skewed clock) are taken in too.
 */
export function chunksOf(from: TierRange, to: TierRange | null, now: number, chunkMs: number): [number, number][] {
  const end = to ? to.hour : Math.ceil((now + MINUTE) / HOUR) * HOUR;
  const out: [number, number][] = [];
  for (let b = end; b > from.hour; b -= chunkMs) out.push([Math.max(from.hour, b - chunkMs), b]);
  if (!to) {
    if (out.length) out[0][1] = Infinity;
    else out.push([from.hour, Infinity]);
  }
  return out;
}
