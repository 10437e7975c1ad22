/**
 * `riskmon cdc`: validates its configuration, runs the preflight (publication, slot, topics — each failure
 * names its fix), then streams. Services: the replication pipeline, the heartbeat writer, the slot watcher, the
 * partitions' replica identity keeper.
 */
import { createKafka, verifyKafka } from '../lib/kafka/index.ts';
import { processClock, type Clock } from '../lib/clock.ts';
import { ConfigError, readConfig } from '../lib/config.ts';
import { componentLogger } from '../lib/logger.ts';
import { serveMetrics } from '../lib/metrics.ts';
import type { Service } from '../lib/service.ts';
import { cdcSpec } from './config.ts';
import { HeartbeatService } from './heartbeat.ts';
import { CdcService, type CdcConfig } from './pipeline.ts';
import { checkSlotGap } from './gap.ts';
import { recordGap, type GapRecord } from '../aggregator/store/index.ts';
import { createRedis } from '../lib/redis.ts';
import { setupSource, setupTopics } from './setup.ts';
import { slotWithBackfill } from './backfill.ts';
import { PartitionIdentityService } from './partitions.ts';
import { SlotHealthService } from './slot-health.ts';

export { cdcSpec } from './config.ts';

export function cdcConfig(env: NodeJS.ProcessEnv = process.env): CdcConfig {
  const c = readConfig(cdcSpec, env);
  if (c.backfillDays > 0 && !c.redisUrl.length) {
    throw new ConfigError([`REDIS_URL is required while RISKMON_BACKFILL_DAYS=${c.backfillDays}: the first start writes the history it takes in into the buckets (set REDIS_URL, or RISKMON_BACKFILL_DAYS=0 to start without history)`]);
  }
  return Object.freeze({ ...c, hotsetTopic: c.hotsetTopic || `${c.topic}.hotset` });
}

/** Records a known gap in the stream in the store, when the cdc has one (REDIS_URL); null otherwise. */
async function recordGapOf(cfg: CdcConfig, slot: string, now: Clock): Promise<GapRecord | null> {
  if (!cfg.redisUrl.length) return null;
  const redis = createRedis(cfg, { connectionName: 'riskmon-cdc-gap' });
  try {
    return await recordGap(redis, cfg.redisPrefix, cfg.partitions, slot, now());
  } finally {
    redis.disconnect();
  }
}

export async function start(env: NodeJS.ProcessEnv = process.env): Promise<Service[]> {
  const configured = cdcConfig(env);
  const log = componentLogger('cdc', { slot: configured.slot, topic: configured.topic });
  const now = processClock(configured.clock, log);
  const kafka = createKafka(configured, { clientId: 'riskmon-cdc' });
  // where a (re)start spends its time, in the 'preflight done' log line (the restart after a kill -9 is blind time)
  const ms: Record<string, number> = { loadedAt: Math.round(process.uptime() * 1000) };
  let t = performance.now();
  const step = (name: string) => { const n = performance.now(); ms[name] = Math.round(n - t); t = n; };
  // before setupSource would create a new slot over the gap; an accepted gap is recorded where status shows it
  await checkSlotGap(kafka, configured, log, (slot) => recordGapOf(configured, slot, now));
  step('slotGap');
  // with a backfill, the slot is created with the history's snapshot, after the topics (slotWithBackfill)
  await setupSource(configured, log, { createSlot: configured.backfillDays === 0 });
  step('source');
  await verifyKafka(configured); // wrong SASL credentials or an untrusted certificate stop here, naming the setting
  step('verifyKafka');
  // the topic's own message limit caps the events the cdc writes (a larger one is dead-lettered)
  const cfg: CdcConfig = Object.freeze({ ...configured, ...(await setupTopics(kafka, configured, log)) });
  step('topics');
  if (cfg.metricsPort) await serveMetrics(cfg.metricsPort, cfg.metricsHost);
  if (cfg.backfillDays > 0) await slotWithBackfill(cfg, log, now);
  step('backfillCheck');
  log.info({ ms }, 'preflight done');
  return [
    new CdcService(cfg, kafka, log, now),
    new HeartbeatService(cfg.pgUrl, cfg.heartbeatMs, log),
    new SlotHealthService(cfg.pgUrl, cfg.slot, cfg.slotWarnBytes, log, undefined, now),
    new PartitionIdentityService(cfg.pgUrl, cfg.mapping, cfg.partitionCheckMs, log),
  ];
}
