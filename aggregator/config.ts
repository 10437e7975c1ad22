/** Options of `riskmon aggregate` and `riskmon replay` (docs/configuration.md). */
import { commonSpec, connections, metricsSpec, int, json, mappingOption, num } from '../lib/config.ts';
import { referenceMapping, validateMapping } from '../lib/mapping.ts';

export const aggregatorSpec = {
  ...connections('kafkaBrokers', 'redisUrl'),
  ...commonSpec,
  mapping: mappingOption,
  minuteTtlDays: num('RISKMON_MINUTE_TTL_DAYS', 'days the minute buckets are kept after their 6-hour block ends', 2, 0.05, 30),
  hourTtlDays: num('RISKMON_HOUR_TTL_DAYS', 'days the hour rollups are kept (the rules need ≥ 35)', 36, 1, 3650),
  dayTtlDays: num('RISKMON_DAY_TTL_DAYS', 'days the day rollups are kept (the trend screen needs ≥ 400)', 400, 1, 36500),
  windowMinutes: int('RISKMON_WINDOW_INDEX_MINUTES', 'event-time minutes of the all-merchants minute index (rules windows) behind the watermark', 240, 61, 7 * 1440),
  chunk: int('RISKMON_AGG_CHUNK', 'messages per atomic Redis apply (a fetched batch of 1 MiB holds ~3,500)', 4000, 1, 20_000),
  concurrency: int('RISKMON_AGG_CONCURRENCY', 'partitions applied concurrently by one aggregator (0 = all: RISKMON_PARTITIONS)', 0, 0, 1024),
  ...metricsSpec,
};


/** The history backfill's pace (the cdc's first start and `riskmon backfill`). */
export const backfillSpec = {
  backfillMaxRowsPerS: int('RISKMON_BACKFILL_MAX_ROWS_PER_S', 'source rows per second a history backfill reads at most (0 = no limit)', 0, 0, 100_000_000),
  backfillChunkHours: int('RISKMON_BACKFILL_CHUNK_HOURS', 'hours of transaction time per source query of a history backfill (one query per chunk and table)', 24, 1, 24 * 31),
  backfillMaxCells: int('RISKMON_BACKFILL_MAX_CELLS', "cells (one merchant's minute or hour) a history backfill sums in memory per partition before it writes them (about 60 bytes each; a partition holds two sets while one is written)", 300_000, 1000, 1 << 21),
  backfillSnapshotTimeoutS: int('RISKMON_BACKFILL_SNAPSHOT_TIMEOUT_S', "seconds a history backfill waits for its snapshot: creating a slot waits for every transaction running on the source to end (the blocking ones are logged every 10 s; then it gives up naming them)", 600, 10, 86_400),
  backfillReaders: int('RISKMON_BACKFILL_READERS', 'source connections a history backfill reads with at once (each a transaction on the same snapshot, one chunk and table at a time)', 3, 1, 16),
};
