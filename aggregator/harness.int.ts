/**
 * Shared set-up of the aggregator's integration tests: a fresh source database with the reference schema, a topic,
 * a consumer group and a Redis key prefix of their own, a FakeCdc to publish change events, and helpers to run
 * aggregators (in process or as `node scripts/riskmon.mjs aggregate` children) and compare with the SQL truth.
 */
import type { ChildProcess } from 'node:child_process';
import { createRedis, type RedisClient } from '../lib/redis.ts';
import pg from 'pg';
import type { Producer } from 'kafkajs';
import { connections, readConfig } from '../lib/config.ts';
import { logger } from '../lib/logger.ts';
import { DAY, MINUTE, dayStart } from '../lib/time.ts';
import { migrate } from '../lib/migrate.ts';
import type { Step } from './store/index.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { diffAgainstReader, sqlTruth } from '../test/harness/truth.ts';
import { aggregatorSpec } from './config.ts';
import { AggregatorService } from './consumer.ts';
import { keys } from './store/layout.ts';
import { createBucketReader } from './store/read.ts';
import { createTopic, FakeCdc, testKafka, testProducer } from './testing.ts';
import { spawnCdc } from '../cdc/testing.ts';
import { spawnRiskmon, streaming, waitFor } from '../test/harness/index.ts';

export interface Harness {
  pgUrl: string;
  db: pg.Client;
  env: NodeJS.ProcessEnv;
  redis: RedisClient;
  producer: Producer;
  cdc: FakeCdc;
  topic: string;
  prefix: string;
  partitions: number;
  tz: string;
  reader: ReturnType<typeof createBucketReader>;
  publish(): Promise<void>;
  startInProcess(): { service: AggregatorService; done: Promise<void> };
  spawnAggregator(): ChildProcess;
  /**
   * The real pipeline on this harness' source database: `riskmon cdc` on a slot of its own (`env` added to the
   * harness' own; stopped with SIGTERM by close()), `first` awaited (e.g. its first start's backfill), then, once the
   * cdc streams, `riskmon aggregate`. `logs` holds the cdc's output for failure messages.
   */
  startPipeline(env?: NodeJS.ProcessEnv, first?: (logs: string[]) => Promise<unknown>): Promise<{ slot: string; logs: string[]; cdc: ChildProcess }>;
  caughtUp(timeoutMs?: number): Promise<void>;
  diff(steps?: Step[], from?: number, to?: number): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * `redisEnv` points the aggregators and the test's own client elsewhere than the test stack's Redis (e.g.
 * RISKMON_REDIS_MODE=cluster and the replicated stack's nodes).
 */
export async function harness(opts: { partitions?: number; hotShards?: number; hot?: string[]; tz?: string; createTopic?: boolean; redisEnv?: NodeJS.ProcessEnv } = {}): Promise<Harness> {
  const s = services();
  const partitions = opts.partitions ?? 6;
  const hotShards = opts.hotShards ?? 4;
  const tz = opts.tz ?? 'Asia/Seoul';
  const pgUrl = await freshDatabase('agg');
  await migrate(pgUrl, 'source');
  const db = new pg.Client({ connectionString: pgUrl });
  await db.connect();
  await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'm' || g FROM generate_series(1, 200) g`);
  const topic = uniqueName('agg_topic');
  const prefix = uniqueName('agg');
  const env: NodeJS.ProcessEnv = {
    ...process.env, KAFKA_BROKERS: s.KAFKA_BROKERS, REDIS_URL: s.REDIS_URL, RISKMON_TOPIC: topic,
    RISKMON_DLQ_TOPIC: `${topic}_dlq`, RISKMON_GROUP: uniqueName('agg_group'), RISKMON_REDIS_PREFIX: prefix,
    RISKMON_PARTITIONS: String(partitions), RISKMON_HOT_SHARDS: String(hotShards), RISKMON_TZ: tz,
    RISKMON_LOG_LEVEL: process.env.RISKMON_LOG_LEVEL ?? 'warn', RISKMON_AGG_CHUNK: '500',
    ...opts.redisEnv,
  };
  const kafka = testKafka(s.KAFKA_BROKERS);
  if (opts.createTopic !== false) await createTopic(kafka, topic, partitions);
  const producer = testProducer(kafka);
  await producer.connect();
  const redis = createRedis(readConfig(connections('redisUrl'), env), { maxRetriesPerRequest: null });
  redis.on('error', () => {}); // failover tests kill nodes on purpose; commands wait
  const cdc = new FakeCdc(partitions, hotShards, new Set(opts.hot ?? []));
  const reader = createBucketReader(redis, { prefix, partitions, hotShards, tz });
  const children: ChildProcess[] = [];
  const cdcs: ChildProcess[] = [];
  const services_: { service: AggregatorService; done: Promise<void> }[] = [];
  const admin = kafka.admin();
  await admin.connect();

  const h: Harness = {
    pgUrl, db, env, redis, producer, cdc, topic, prefix, partitions, tz, reader,
    async publish() { await cdc.flush(producer, topic); },
    startInProcess() {
      const cfg = readConfig(aggregatorSpec, env);
      const service = new AggregatorService(cfg, logger.child({ component: 'aggregator', test: prefix }));
      const done = service.run();
      done.catch(() => {});
      const r = { service, done };
      services_.push(r);
      return r;
    },
    spawnAggregator() {
      const child = spawnRiskmon(['aggregate'], { env, stdout: 'inherit', stderr: 'inherit' });
      children.push(child);
      return child;
    },
    async startPipeline(extra = {}, first) {
      const slot = uniqueName('agg_slot');
      const logs: string[] = [];
      const cdc = spawnCdc({ ...env, PG_URL: pgUrl, RISKMON_SLOT: slot, ...extra } as Record<string, string>, logs);
      cdcs.push(cdc);
      await first?.(logs);
      await waitFor(() => streaming(db, slot), { timeoutMs: 60_000, message: `cdc streaming\n${logs.join('')}` });
      h.spawnAggregator();
      return { slot, logs, cdc };
    },
    async caughtUp(timeoutMs = 60_000) {
      await waitFor(async () => {
        const offs = await admin.fetchTopicOffsets(topic);
        const stored = await Promise.all(offs.map((o) => redis.get(keys.offset(prefix, o.partition))));
        return offs.every((o, i) => o.high === '0' || stored[i] === o.high);
      }, { timeoutMs, intervalMs: 200, message: 'aggregator catching up with the topic' });
    },
    async diff(steps: Step[] = ['1m', '1h', '1d'], from = Date.now() - 3 * 86_400_000, to = Date.now() + 86_400_000) {
      const out: string[] = [];
      for (const step of steps) out.push(...(await diffAgainstReader(reader, await sqlTruth(pgUrl, step, tz), step, from, to)));
      return out;
    },
    async close() {
      for (const c of cdcs) c.kill('SIGTERM');
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      for (const x of services_) { await x.service.stop(); await x.done.catch(() => {}); }
      await producer.disconnect();
      await admin.disconnect();
      await db.end();
      redis.disconnect();
    },
  };
  return h;
}

/** `n` payments (and a cancel for every 10th) in one transaction each, times spread over the last day. */
export async function loadPayments(h: Harness, firstId: number, n: number): Promise<void> {
  const base = dayStart(Date.now() - DAY, h.tz) - 60 * MINUTE;
  await h.cdc.bulkInsert(h.db, 'payments',
    `INSERT INTO payments (payment_id, merchant_id, amount, approved_at)
       SELECT g, 1 + (g * 7919) % 150, 100 + (g * 104729) % 2000000, to_timestamp($2::double precision / 1000 + (g * 7907) % 100000)
         FROM generate_series($1::bigint, $1::bigint + $3 - 1) g RETURNING *`, [firstId, base, n]);
  await h.cdc.bulkInsert(h.db, 'payment_cancels',
    `INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at)
       SELECT payment_id, payment_id, merchant_id, amount / 2 + 1, approved_at + interval '7 minutes'
         FROM payments WHERE payment_id BETWEEN $1 AND $1 + $2 - 1 AND payment_id % 10 = 0 RETURNING *`, [firstId, n]);
  h.cdc.heartbeats();
  await h.publish();
}
