/** Options of `riskmon cdc` (docs/configuration.md). */
import { bool, commonSpec, connections, connectionSpec, metricsSpec, int, json, num, optStr } from '../lib/config.ts';
import { referenceMapping, validateMapping } from '../lib/mapping.ts';
import { aggregatorSpec, backfillSpec } from '../aggregator/index.ts';

export const cdcSpec = {
  ...connections('pgUrl', 'kafkaBrokers'),
  ...commonSpec,
  mapping: json('RISKMON_MAPPING', 'approval/cancel tables and columns (docs/configuration.md "Your own schema")', referenceMapping, validateMapping),
  hotFraction: num('RISKMON_HOT_FRACTION', 'fraction of merchants (by recent volume) keyed merchant#shard', 0.01, 0, 1),
  hotHalfLifeMs: int('RISKMON_HOT_HALF_LIFE_MS', 'half-life of the recent-volume counts that pick hot merchants', 3_600_000, 60_000, 7 * 86_400_000),
  hotRefreshMs: int('RISKMON_HOT_REFRESH_MS', 'how often the hot-merchant set is recomputed', 60_000, 1000, 3_600_000),
  hotsetTopic: optStr('RISKMON_HOTSET_TOPIC', 'topic recording which merchants were hot from which LSN (default <topic>.hotset)'),
  heartbeatMs: int('RISKMON_HEARTBEAT_MS', 'interval of pg_logical_emit_message heartbeats (idle source keeps the watermark moving)', 1000, 100, 600_000),
  statusIntervalMs: int('RISKMON_CDC_STATUS_MS', 'interval of standby status updates (must stay well below wal_sender_timeout)', 1000, 100, 30_000),
  maxBufferedBytes: int('RISKMON_CDC_MAX_BUFFERED_BYTES', 'bytes of change events in flight to Kafka before replication is paused', 16 << 20, 1 << 20, 1 << 30),
  produceInFlight: int('RISKMON_CDC_PRODUCE_IN_FLIGHT', 'batches per partition sent to Kafka and not yet acknowledged (idempotent producer: order kept by sequence numbers; Kafka remembers 5)', 5, 1, 5),
  produceLanes: int('RISKMON_CDC_PRODUCE_LANES', 'connections per broker for produce requests; partition p uses lane p mod lanes (a broker serves one request per connection at a time)', 1, 1, 16),
  maxMessageBytes: int('RISKMON_MAX_MESSAGE_BYTES', "largest change event the cdc writes to the topic (keep it below the topic's max.message.bytes); a larger one goes to the dead-letter topic with its position", 1_000_000, 1024, 100 << 20),
  acceptGap: bool('RISKMON_ACCEPT_GAP', 'start even though the slot is gone while the topic holds changes (riskmon cdc --accept-gap): the gap must then be backfilled', false),
  partitionCheckMs: int('RISKMON_PARTITION_CHECK_MS', 'how often new partitions of a mapped partitioned table are given REPLICA IDENTITY FULL like their parent', 10_000, 100, 3_600_000),
  retentionMs: int('RISKMON_RETENTION_MS', 'retention.ms of a topic the cdc creates (at least 8 days: replay reads it)', 8 * 86_400_000 + 3_600_000, 8 * 86_400_000, Number.MAX_SAFE_INTEGER),
  slotWarnBytes: int('RISKMON_SLOT_WARN_BYTES', 'warn when the slot keeps more WAL than this, or safe_wal_size drops below it', 1 << 30, 1 << 20, Number.MAX_SAFE_INTEGER),
  // The history backfill of the first start (README "Onboarding"): written into the bucket store directly.
  backfillDays: int('RISKMON_BACKFILL_DAYS', 'days of history taken in when the cdc creates its slot (its first start), consistently with the slot (0 = none)', 8, 0, 400),
  ...backfillSpec,
  ...connections('redisUrl'),
  redisUrl: { ...connectionSpec.redisUrl, default: [] as string[], description: 'Redis of the buckets: where the first start\'s history backfill writes (needed while RISKMON_BACKFILL_DAYS > 0)' },
  minuteTtlDays: aggregatorSpec.minuteTtlDays,
  hourTtlDays: aggregatorSpec.hourTtlDays,
  dayTtlDays: aggregatorSpec.dayTtlDays,
  windowMinutes: aggregatorSpec.windowMinutes,
  ...metricsSpec,
};
