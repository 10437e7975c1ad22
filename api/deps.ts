/**
 * What the API reads from: the risk store, the source database (merchant names), Redis (buckets through the
 * aggregator's BucketReader; the alert channel) and Kafka (consumer lag). Built once per process; tests build
 * their own against their own databases and key prefix.
 */
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { BucketReader } from '../lib/buckets.ts';
import type { ConfigOf } from '../lib/config.ts';
import type { apiSpec } from './config.ts';

export type ApiConfig = ConfigOf<typeof apiSpec>;

export interface ApiDeps {
  cfg: ApiConfig;
  riskPg: pg.Pool;
  sourcePg: pg.Pool;
  redis: Redis;
  reader: BucketReader;
  /** Kafka admin for consumer lag, connected on first use. */
  kafkaAdmin: () => Promise<Admin>;
  /** Folder of the built dashboard; null serves a note that it is not built. */
  webDist: string | null;
  close(): Promise<void>;
}

/** Loads the aggregator's reader; a clear message when the aggregator is not part of this build. */
export async function loadReader(redis: Redis, cfg: Pick<ApiConfig, 'redisPrefix' | 'partitions' | 'hotShards' | 'tz'>): Promise<BucketReader> {
  let mod: { createBucketReader: (r: Redis, o: { prefix: string; partitions: number; hotShards: number; tz: string }) => BucketReader };
  try {
    // A literal specifier, so tsc rewrites it to read.js in the compiled build.
    mod = await import('../aggregator/read.ts');
  } catch (err) {
    throw new Error(`the api needs aggregator/read.ts (createBucketReader) to read buckets: ${(err as Error).message}`, { cause: err });
  }
  return mod.createBucketReader(redis, { prefix: cfg.redisPrefix, partitions: cfg.partitions, hotShards: cfg.hotShards, tz: cfg.tz });
}

export async function createDeps(cfg: ApiConfig, webDist: string | null, reader?: BucketReader): Promise<ApiDeps> {
  const riskPg = new pg.Pool({ connectionString: cfg.riskPgUrl, max: 10, application_name: 'riskmon-api' });
  const sourcePg = new pg.Pool({ connectionString: cfg.pgUrl, max: 4, application_name: 'riskmon-api' });
  const redis = new Redis(cfg.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: false });
  let admin: Promise<Admin> | null = null;
  const kafkaAdmin = () => {
    admin ??= (async () => {
      const a = new Kafka({ brokers: cfg.kafkaBrokers, clientId: 'riskmon-api', logLevel: logLevel.NOTHING, retry: { retries: 1 } }).admin();
      try { await a.connect(); } catch (err) { admin = null; throw err; }
      return a;
    })();
    return admin;
  };
  return {
    cfg, riskPg, sourcePg, redis, webDist, kafkaAdmin,
    reader: reader ?? (await loadReader(redis, cfg)),
    async close() {
      const a = admin;
      await Promise.allSettled([riskPg.end(), sourcePg.end(), redis.quit(), a?.then((x) => x.disconnect())]);
    },
  };
}
