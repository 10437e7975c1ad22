/**
 * Kafka leader changes on three real KRaft brokers (RF 3, min.insync.replicas 2; scripts/stack/replicated.ts):
 * under live load, the broker leading partition 0 of the change topic is killed with SIGKILL and later started
 * again (taking its leaderships back). The cdc's own partition writer meets NOT_LEADER_OR_FOLLOWER and a broker
 * gone; its session restarts from the slot and the topic tails. Afterwards every committed change is in the topic
 * exactly once, in commit order within its partition, and an aggregator that rode through it all holds buckets
 * equal to SQL at 1m, 1h and 1d.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { ChildProcess } from 'node:child_process';
import { comparePosition } from '../lib/lsn.ts';
import type { RowChange } from '../lib/events.ts';
import { migrate } from '../lib/migrate.ts';
import { createRedis } from '../lib/redis.ts';
import { connections, readConfig } from '../lib/config.ts';
import { createBucketReader, keys } from '../aggregator/store/index.ts';
import { tail } from '../scripts/stack/host.ts';
import { startNode, stopNode } from '../scripts/stack/replicated.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { replicatedForTest, type ReplicatedForTest } from '../test/harness/replicated.ts';
import { diffAgainstReader, sqlTruth } from '../test/harness/truth.ts';
import { dropSlot, sleep, spawnRiskmon, streaming, waitExit, waitFor } from '../test/harness/index.ts';
import { kafkaOf, readAll, spawnCdc } from './testing.ts';

const PARTITIONS = 6;
const MERCHANTS = 300;
const TZ = 'Asia/Seoul';
/** Twice the longest recovery after a leader kill the faults bench measured (docs/faults.md: recovery_s_kafka_leader_max). */
const RECOVERY_ALLOWANCE_MS = 29_000;

describe('Kafka leader failover', () => {
  let rep: ReplicatedForTest;
  let url: string;
  let db: pg.Client;
  let env: Record<string, string>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    rep = await replicatedForTest('kafka', ['kafka']);
    url = await freshDatabase('leader');
    await migrate(url, 'source');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'm' || g FROM generate_series(1, ${MERCHANTS}) g`);
    const topic = uniqueName('leader');
    env = {
      PG_URL: url, KAFKA_BROKERS: rep.env.KAFKA_BROKERS!, REDIS_URL: services().REDIS_URL, RISKMON_TOPIC: topic, RISKMON_SLOT: uniqueName('slot'),
      RISKMON_DLQ_TOPIC: `${topic}_dlq`, RISKMON_HOTSET_TOPIC: `${topic}_hot`, RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_TOPIC_REPLICATION: '3',
      RISKMON_HEARTBEAT_MS: '300', RISKMON_CDC_STATUS_MS: '300', RISKMON_GROUP: uniqueName('group'), RISKMON_REDIS_PREFIX: uniqueName('lp'),
      RISKMON_TZ: TZ, RISKMON_AGG_CHUNK: '500',
    };
  });

  afterAll(async () => {
    for (const c of children) { c.kill('SIGKILL'); await waitExit(c); }
    if (db) { await dropSlot(db, env.RISKMON_SLOT).catch(() => {}); await db.end(); }
    await rep?.down();
  });

  it('kill -9 of the leader of a partition mid-load, then its restart: every change once and in commit order, buckets equal SQL', async () => {
    const logs: string[] = [];
    children.push(spawnCdc(env, logs));
    await waitFor(() => streaming(db, env.RISKMON_SLOT), { timeoutMs: 90_000, intervalMs: 100, message: 'cdc did not start streaming' })
      .catch((err) => { throw new Error(`${err.message}\n${logs.slice(-20).join('\n')}`); });
    const aggLogs: string[] = [];
    children.push(spawnRiskmon(['aggregate'], { env: { ...process.env, ...env, RISKMON_LOG_LEVEL: 'info' }, logs: aggLogs }));

    let stop = false;
    let killed = -1;
    let nextId = 1;
    const writers = Array.from({ length: 3 }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      for (let i = 0; !stop; i++) {
        const id = nextId++;
        const m = 1 + ((id * 7919) % MERCHANTS);
        if (i % 8 === 7) {
          await c.query('BEGIN');
          await c.query('INSERT INTO payments VALUES ($1, $2, $3, now())', [id, m, 100 + (id % 1000)]);
          await c.query('UPDATE payments SET amount = amount + 1 WHERE payment_id = $1', [id]);
          await c.query('INSERT INTO payment_cancels VALUES ($1, $1, $2, 50, now())', [id, m]);
          await c.query('COMMIT');
        } else {
          await c.query('INSERT INTO payments VALUES ($1, $2, $3, now())', [id, m, 100 + (id % 1000)]);
        }
        if (i % 20 === 0) await sleep(2);
      }
      await c.end();
    });

    const kafka = kafkaOf(env.KAFKA_BROKERS);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await sleep(3_000);
      const md = await admin.fetchTopicMetadata({ topics: [env.RISKMON_TOPIC] });
      const leader = md.topics[0].partitions.find((p) => p.partitionId === 0)!.leader;
      const node = leader - 1; // node.id = index + 1
      killed = node;
      const at = () => new Date().toISOString();
      console.log(`[leader] ${at()} killing node ${node} (id ${leader}, leader of partition 0)`);
      await stopNode(rep.dir, 'kafka', node, { hard: true });
      await sleep(6_000); // writes go on: the cdc's writer meets the dead leader, then the new one
      console.log(`[leader] ${at()} starting node ${node}`);
      await startNode(rep.dir, 'kafka', node);
      console.log(`[leader] ${at()} node ${node} answers`);
      await sleep(15_000); // the node catches up and (auto leader rebalance) takes its leaderships back
    } finally {
      stop = true;
      await Promise.all(writers);
    }

    const t0 = Date.now();
    console.log(`[leader] ${new Date().toISOString()} writes stopped`);
    const phase = (what: string) => console.log(`[leader] ${what} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const truth = (await db.query(`SELECT (SELECT count(*) FROM payments)::int AS payments, (SELECT count(*) FROM payment_cancels)::int AS cancels`)).rows[0];
    const all = await waitFor(async () => {
      const rows = (await readAll(kafka, env.RISKMON_TOPIC)).filter((r) => r.event.op !== 'heartbeat');
      return rows.filter((r) => r.event.op === 'insert' && r.event.table === 'public.payments').length >= truth.payments ? rows : null;
    }, { timeoutMs: RECOVERY_ALLOWANCE_MS, intervalMs: 1000, message: 'not every insert arrived' });
    phase('every insert in the topic');
    const events = all.map((r) => r.event as RowChange);
    const count = (t: string, op: string) => events.filter((e) => e.table === t && e.op === op).length;
    expect(new Set(events.map((e) => `${e.lsn}/${e.seq}`)).size).toBe(events.length); // nothing twice
    expect(count('public.payments', 'insert')).toBe(truth.payments); // nothing lost
    expect(count('public.payment_cancels', 'insert')).toBe(truth.cancels);
    expect(count('public.payments', 'update')).toBe(truth.cancels);
    const everything = await readAll(kafka, env.RISKMON_TOPIC);
    for (let p = 0; p < PARTITIONS; p++) {
      const ev = everything.filter((r) => r.partition === p).map((r) => r.event);
      for (let i = 1; i < ev.length; i++) expect(comparePosition(ev[i - 1], ev[i])).toBeLessThan(0);
    }
    // the idempotent writer re-sent the partition's unacknowledged batches to the new leader (the path this test
    // is about) instead of ending the replication session
    expect(logs.join('\n')).toMatch(/produce retried/);
    console.log(`[leader] produce retries: ${logs.filter((l) => /produce retried/.test(l)).length} log lines; session restarts: ${logs.filter((l) => /replication session ended/.test(l)).length}`);
    if (process.env.RISKMON_TEST_TIMING) console.log(logs.filter((l) => /"level":(40|50)/.test(l)).map((l) => l.slice(0, 400)).join('\n'));

    // the aggregator rode through: its stored offsets reach the end, every bucket equals SQL. The end moves (the cdc's
    // heartbeats): an aggregator reading from a follower (stale leaders) stays one record behind and never gets there.
    const redis = createRedis(readConfig(connections('redisUrl'), env), { maxRetriesPerRequest: null });
    try {
      await waitFor(async () => {
        const offs = await admin.fetchTopicOffsets(env.RISKMON_TOPIC);
        const stored = await Promise.all(offs.map((o) => redis.get(keys.offset(env.RISKMON_REDIS_PREFIX, o.partition))));
        if (process.env.RISKMON_TEST_TIMING) console.log(`[leader] ${new Date().toISOString()} high/stored ${offs.map((o, i) => `${o.partition}:${o.high}/${stored[i]}`).join(' ')}`);
        return offs.every((o, i) => o.high === '0' || stored[i] === o.high);
      }, { timeoutMs: RECOVERY_ALLOWANCE_MS, intervalMs: 500, message: 'aggregator catching up' }).catch((err) => {
        // what the aggregator did meanwhile (its warnings and group changes) is the diagnosis
        // and what the killed and restarted broker said (its directory goes with the cluster)
        const brokerLog = killed < 0 ? '' : `\n--- kafka-${killed} (killed and restarted) ---\n${tail(`${rep.dir}/kafka-${killed}/kafka.log`, 60)}`;
        throw new Error(`${err.message}\n${aggLogs.filter((l) => !/"msg":"applied/.test(l) && !/ECONNREFUSED/.test(l)).slice(-30).map((l) => l.slice(0, 300)).join('\n')}\n${aggLogs.filter((l) => /ECONNREFUSED/.test(l)).length} aggregator lines of ECONNREFUSED${brokerLog}`);
      }).finally(() => {
        if (process.env.RISKMON_TEST_TIMING) console.log(aggLogs.map((l) => l.slice(0, 400)).join('\n'));
      });
      phase('aggregator caught up');
      const reader = createBucketReader(redis, { prefix: env.RISKMON_REDIS_PREFIX, partitions: PARTITIONS, hotShards: 8, tz: TZ });
      const from = Date.now() - 2 * 86_400_000, to = Date.now() + 86_400_000;
      for (const step of ['1m', '1h', '1d'] as const) expect(await diffAgainstReader(reader, await sqlTruth(url, step, TZ), step, from, to)).toEqual([]);
    } finally {
      redis.disconnect();
      await admin.disconnect();
    }
  }, 400_000);
});
