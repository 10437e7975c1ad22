/**
 * The bucket store, the public face: everything outside the aggregator (alerting, api, bench, tests, tools) that
 * reads or writes buckets imports from here, and only from here.
 *
 * The store owns the Redis layout (layout.ts), the four counters (counters.ts), planning a chunk of change events
 * into deltas (plan.ts), the atomic Lua apply (apply.ts, apply.lua), the reads (read.ts over ranges.ts and
 * scripts.ts) and the test writer (writer.ts). The aggregator's consumer and replay drive the writing side.
 */

// Reading: what the rules, the API and the tools use.
export {
  addTotals, emptyTotals, forEachWindowCounter, isEmpty, type Totals,
} from './counters.ts';
export {
  hasMinuteTotals, hasMoney, hasWindowSlices, STEP_MS, type BucketReader, type MinuteTotalsReader, type MoneyReader, type Point, type Step, type WindowSlice, type WindowSliceReader,
} from './reader.ts';

// Money at risk: exposure per merchant (lib/exposure.ts decides; these read payouts and sums from the store).
export { readExposure, readExposures, readExposuresWith, readSchedules, settlementOf, type Settlement } from './exposure.ts';
export { type Exposure } from '../../lib/exposure.ts';
export { createBucketReader, type ReaderOptions } from './read.ts';

// Writing: the test writer, and the pieces the apply benchmark drives directly.
export { BucketWriter, seedTrendingMerchant } from './writer.ts';
export { Applier } from './apply.ts';
export { DayClock, keys, REREAD_LATENESS_MS, retentionOf } from './layout.ts';
export { addFacts, candidateCache, emptyPlan, type Plan } from './plan.ts';

// Replay: resetting a range and rebuilding it with final values (aggregator/replay.ts drives it).
export { PartitionRebuild, ReplayLostLockError, resetFrom, type RebuildOptions } from './rebuild.ts';

// History backfill: its record (state, range, progress), its range arithmetic, and resetting a bounded range.
export {
  backfillBlocksJudging, backfillStatus, chunksOf, closeGapCoveredBy, coversGap, rangeOf, readBackfill, readGap, recordGap, writeBackfill,
  type BackfillRecord, type BackfillStatus, type GapRecord, type TierRange,
} from './backfill.ts';
export { resetRange } from './rebuild.ts';
export { PayoutRebuild } from './payout-rebuild.ts';
// A range backfill's new generation, rebuilt aside and swapped in partition by partition.
export { clearAside, LOCK_TTL_MS, LockKeeper, rangeKeys, SwapLostLockError, swapPartition, type SwapRange } from './swap.ts';

// Which aggregator consumes which partition (no Kafka consumer group): registrations in Redis.
export { assign, deadOnThisHost, memberId, Membership } from './members.ts';
