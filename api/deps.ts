/**
 * What the API reads from: the risk store, the source database (merchant names), Redis (buckets through the
 * bucket store's reader; the alert channel) and Kafka (consumer lag). Built once per process; tests build
 * their own against their own databases and key prefix.
 */
import type { Admin } from 'kafkajs';
import { createRedis, verifyRedis, whenReady, type RedisClient } from '../lib/redis.ts';
import type pg from 'pg';
import { createPool } from '../lib/pg.ts';
import { componentLogger } from '../lib/logger.ts';
import { createBucketReader, hasMoney, readExposure, settlementOf, type BucketReader } from '../aggregator/store/index.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import type { ConfigOf } from '../lib/config.ts';
import type { apiSpec } from './config.ts';
import { createKafka, verifyKafka } from '../lib/kafka/index.ts';
import { MerchantDirectory } from './merchant-directory.ts';

export type ApiConfig = ConfigOf<typeof apiSpec>;

export interface ApiDeps {
  cfg: ApiConfig;
  riskPg: pg.Pool;
  sourcePg: pg.Pool;
  /** names and categories of merchants (RISKMON_MAPPING "merchants") */
  merchants: MerchantDirectory;
  redis: RedisClient;
  reader: BucketReader;
  /** Kafka admin for consumer lag, connected on first use. */
  kafkaAdmin: () => Promise<Admin>;
  /** Folder of the built dashboard; null serves a note that it is not built. */
  webDist: string | null;
  /** "Now" for every route (lib/clock.ts): the system clock unless a test chose an instant. */
  now: Clock;
  /**
   * A merchant's exposure (the JSON of GET /api/merchants/:id/exposure), captured in the webhook event of each payout
   * hold and release; null when it cannot be told. The money at risk is computed from the buckets elsewhere: this is
   * where it is wired in.
   */
  exposureOf: (merchantId: string) => Promise<Record<string, unknown> | null>;
  close(): Promise<void>;
}


export async function createDeps(
  cfg: ApiConfig, webDist: string | null, o: { reader?: BucketReader; now?: Clock; exposureOf?: ApiDeps['exposureOf'] } = {},
): Promise<ApiDeps> {
  const log = componentLogger('api');
  const bounds = { statement_timeout: cfg.pgStatementTimeoutMs, connectionTimeoutMillis: 5000 };
  const riskPg = createPool({ connectionString: cfg.riskPgUrl, max: 10, application_name: 'riskmon-api', ...bounds }, log);
  const sourcePg = createPool({ connectionString: cfg.pgUrl, max: 4, application_name: 'riskmon-api', ...bounds }, log);
  await verifyRedis(cfg);
  await verifyKafka(cfg);
  // No offline queue: while Redis is down a request or a live poll fails at once (503) instead of queueing
  const redis = createRedis(cfg, { maxRetriesPerRequest: 2, connectionName: 'riskmon-api', offlineQueue: false });
  await whenReady(redis);
  let admin: Promise<Admin> | null = null;
  const kafkaAdmin = () => {
    admin ??= (async () => {
      const a = createKafka(cfg, { clientId: 'riskmon-api', retries: 1 }).admin();
      // a failed connect lets go of its client (sockets, retry timers): Kafka being down costs nothing per request
      try { await a.connect(); } catch (err) { admin = null; await a.disconnect().catch(() => {}); throw err; }
      return a;
    })();
    return admin;
  };
  const now = o.now ?? systemClock;
  const reader = o.reader ?? createBucketReader(redis, { prefix: cfg.redisPrefix, partitions: cfg.partitions, hotShards: cfg.hotShards, tz: cfg.tz, now });
  return {
    cfg, riskPg, sourcePg, redis, webDist, kafkaAdmin, now, merchants: new MerchantDirectory(sourcePg, cfg.mapping, log), reader,
    // a payout action carries the merchant's exposure at the moment it was taken (docs/contracts.md)
    exposureOf: o.exposureOf ?? (async (id) => (hasMoney(reader) ? { ...(await readExposure(reader, id, now(), settlementOf(cfg))) } : null)),
    async close() {
      const a = admin;
      await Promise.allSettled([riskPg.end(), sourcePg.end(), redis.quit(), a?.then((x) => x.disconnect())]);
    },
  };
}
