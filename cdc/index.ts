/**
 * `riskmon cdc`: validates its configuration, runs the preflight (publication, slot, topics — each failure
 * names its fix), then streams. Services: the replication pipeline, the heartbeat writer, the slot watcher.
 */
import { Kafka, logLevel } from 'kafkajs';
import { readConfig } from '../lib/config.ts';
import { componentLogger } from '../lib/logger.ts';
import { serveMetrics } from '../lib/metrics.ts';
import type { Service } from '../lib/service.ts';
import { cdcSpec } from './config.ts';
import { HeartbeatService } from './heartbeat.ts';
import { CdcService, type CdcConfig } from './pipeline.ts';
import { setupSource, setupTopics } from './setup.ts';
import { SlotHealthService } from './slot-health.ts';

export { cdcStatus } from './slot-health.ts';
export { locateLsn, LsnInFutureError, LsnTooOldError } from './replay.ts';

export function cdcConfig(env: NodeJS.ProcessEnv = process.env): CdcConfig {
  const c = readConfig(cdcSpec, env);
  return Object.freeze({ ...c, hotsetTopic: c.hotsetTopic || `${c.topic}.hotset` });
}

export async function start(env: NodeJS.ProcessEnv = process.env): Promise<Service[]> {
  const cfg = cdcConfig(env);
  const log = componentLogger('cdc', { slot: cfg.slot, topic: cfg.topic });
  const kafka = new Kafka({ clientId: 'riskmon-cdc', brokers: cfg.kafkaBrokers, logLevel: logLevel.NOTHING });
  await setupSource(cfg, log);
  await setupTopics(kafka, cfg, log);
  if (cfg.metricsPort) await serveMetrics(cfg.metricsPort, cfg.metricsHost);
  return [
    new CdcService(cfg, kafka, log),
    new HeartbeatService(cfg.pgUrl, cfg.heartbeatMs, log),
    new SlotHealthService(cfg.pgUrl, cfg.slot, cfg.slotWarnBytes, log),
  ];
}
