/**
 * riskmon on a payment company's own schema, in separate processes (`riskmon cdc`, `aggregate`, `api`): a
 * monthly-partitioned `pay.payments` whose cancels are UPDATEs of the payment row (`canceled_at`,
 * `canceled_amount`), text merchant ids (`S-0001`, four of them hot, so keyed by shard), and the company's own
 * merchant directory `pay.stores`. The publication exists already, without publish_via_partition_root; the
 * current month's partition is created after the cdc started, a row moves between partitions, cancels are set and
 * revoked, a column is added, an unmapped column retyped and another dropped. Every hour and day bucket (and the
 * minutes of the last 36 hours) equals the SQL GROUP BY, names come from the directory, nothing is dead-lettered.
 * Then a mapped column is retyped: the cdc stops once, naming table, column and fix.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBucketReader } from '../aggregator/store/index.ts';
import { TopicReader, createKafka, kafkaConfigOf } from '../lib/kafka/index.ts';
import { validateMapping } from '../lib/mapping.ts';
import { freePort } from '../lib/net.ts';
import { DAY, HOUR, minuteStart } from '../lib/time.ts';
import { freshDatabase, services, uniqueName } from './harness/services.ts';
import { diffAgainstReader, sqlTruth } from './harness/truth.ts';
import { dropSlot, runEnv, spawnRiskmon, streaming, waitExit, waitFor } from './harness/index.ts';

const ROOT = join(import.meta.dirname, '..');
const TZ = 'Asia/Seoul';
const API_KEY = 'own-schema-admin-key-0123';
const STORES = 40;
const mapping = validateMapping({
  approvals: { table: 'pay.payments', id: 'payment_id', merchant: 'store_code', amount: 'amount', time: 'approved_at' },
  cancels: { table: 'pay.payments', id: 'payment_id', merchant: 'store_code', amount: 'canceled_amount', time: 'canceled_at' },
  merchants: { table: 'pay.stores', id: 'store_code', name: 'display_name', category: 'segment' },
});

const children = new Map<string, ChildProcess>();
const logOf = (cmd: string) => join(ROOT, 'test-artifacts', `own-schema-${cmd}.log`);
function riskmon(cmd: string, env: NodeJS.ProcessEnv): ChildProcess {
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  const child = spawnRiskmon([cmd], { env, logFile: logOf(cmd) });
  children.set(cmd, child);
  return child;
}

async function topicCount(brokers: string, topic: string): Promise<number> {
  const reader = await TopicReader.open(createKafka(kafkaConfigOf(brokers), { clientId: 'own-schema-test' }), topic).catch(() => null);
  if (!reader) return 0;
  try {
    let n = 0;
    for (const { low, high } of (await reader.watermarks()).values()) n += Number(high - low);
    return n;
  } finally {
    await reader.close();
  }
}

describe('own schema: partitioned payments, same-row cancels, text merchant ids, a source that changes underneath', () => {
  const now = Date.now();
  const d = new Date(now);
  const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const prevMonth = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1);
  const nextMonth = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  const iso = (ms: number) => new Date(ms).toISOString();
  const part = (ms: number) => `pay.payments_${new Date(ms).toISOString().slice(0, 7).replace('-', '')}`;
  let env: NodeJS.ProcessEnv;
  let db: pg.Client;
  let redis: Redis;
  let apiPort: number;

  beforeAll(async () => {
    const s = services();
    const pgUrl = await freshDatabase('own');
    db = new pg.Client({ connectionString: pgUrl });
    await db.connect();
    await db.query(`CREATE SCHEMA pay;
      CREATE TABLE pay.stores (store_code varchar(32) PRIMARY KEY, display_name text NOT NULL, segment text);
      INSERT INTO pay.stores SELECT 'S-' || lpad(g::text, 4, '0'), 'Store ' || g || ' Seoul', CASE WHEN g % 2 = 0 THEN 'food' END FROM generate_series(1, ${STORES}) g;
      CREATE TABLE pay.payments (
        payment_id bigint NOT NULL, store_code varchar(32) NOT NULL, amount bigint NOT NULL, approved_at timestamptz NOT NULL,
        status text NOT NULL DEFAULT 'approved', canceled_amount bigint, canceled_at timestamptz,
        card_number text, memo text, PRIMARY KEY (payment_id, approved_at)
      ) PARTITION BY RANGE (approved_at);
      ALTER TABLE pay.payments REPLICA IDENTITY FULL;
      CREATE TABLE ${part(prevMonth)} PARTITION OF pay.payments FOR VALUES FROM ('${iso(prevMonth)}') TO ('${iso(monthStart)}');
      CREATE TABLE pay.audit (id bigint PRIMARY KEY, note text);
      CREATE PUBLICATION own_pub FOR TABLE pay.audit;`);
    apiPort = await freePort();
    env = {
      ...process.env, ...s, PG_URL: pgUrl, RISK_PG_URL: await freshDatabase('ownrisk'), ...runEnv(uniqueName('own')),
      RISKMON_PUBLICATION: 'own_pub', RISKMON_MAPPING: JSON.stringify(mapping), RISKMON_TZ: TZ,
      RISKMON_HOT_FRACTION: '0.1', RISKMON_HOT_REFRESH_MS: '1000', RISKMON_PARTITION_CHECK_MS: '500',
      RISKMON_HTTP_PORT: String(apiPort), RISKMON_API_KEYS: `${API_KEY}:admin`, RISKMON_LOG_LEVEL: 'info',
    };
    redis = new Redis(s.REDIS_URL);
    riskmon('cdc', env);
    riskmon('aggregate', env);
    riskmon('api', env);
    await waitFor(() => streaming(db, env.RISKMON_SLOT!), { timeoutMs: 90_000, message: 'cdc streaming' });
  }, 120_000);

  afterAll(async () => {
    for (const c of children.values()) c.kill('SIGKILL');
    if (db) await dropSlot(db, env.RISKMON_SLOT!, { terminate: true }).catch(() => {});
    await db?.end();
    await redis?.quit();
  });

  it('counts every fact exactly through partitions, same-row cancels and schema changes, with nothing dead-lettered', async () => {
    // the publication was altered to publish via the root, the parent added, the existing partition given FULL
    const pub = (await db.query(`SELECT pubviaroot FROM pg_publication WHERE pubname = 'own_pub'`)).rows[0];
    expect(pub.pubviaroot).toBe(true);
    expect((await db.query(`SELECT relreplident FROM pg_class WHERE oid = '${part(prevMonth)}'::regclass`)).rows[0].relreplident).toBe('f');

    const store = (g: string) => `'S-' || lpad((1 + ${g} % ${STORES})::text, 4, '0')`;
    // last month: 600 payments over its last 2 days (hot stores: 1..4 take half)
    await db.query(`INSERT INTO pay.payments (payment_id, store_code, amount, approved_at, card_number, memo)
      SELECT g, CASE WHEN g % 2 = 0 THEN 'S-000' || (1 + g % 4) ELSE ${store('g')} END, 1000 + g * 7,
             '${iso(monthStart)}'::timestamptz - g * interval '4 minutes 11 seconds', '4111-1111-1111-' || lpad(g::text, 4, '0'), 'order ' || g
        FROM generate_series(1, 600) g`);
    // cancels as UPDATEs of the payment row, a few revoked again, one amount corrected
    await db.query(`UPDATE pay.payments SET status = 'canceled', canceled_at = approved_at + interval '7 minutes', canceled_amount = amount / 2 WHERE payment_id % 10 = 0`);
    await db.query(`UPDATE pay.payments SET status = 'approved', canceled_at = NULL, canceled_amount = NULL WHERE payment_id % 30 = 0`);
    await db.query(`UPDATE pay.payments SET canceled_amount = canceled_amount + 1 WHERE payment_id = 20`);
    await db.query(`UPDATE pay.payments SET memo = 'reviewed' WHERE payment_id % 7 = 0`);

    // this month's partition, created while the cdc streams; its rows are covered at once
    await db.query(`CREATE TABLE ${part(monthStart)} PARTITION OF pay.payments FOR VALUES FROM ('${iso(monthStart)}') TO ('${iso(nextMonth)}')`);
    const recent = (g: string) => `greatest('${iso(monthStart)}'::timestamptz, now() - ${g} * interval '17 seconds')`;
    await db.query(`INSERT INTO pay.payments (payment_id, store_code, amount, approved_at, card_number)
      SELECT g, CASE WHEN g % 2 = 0 THEN 'S-000' || (1 + g % 4) ELSE ${store('g')} END, 500 + g, ${recent('(g - 1000)')}, '5500-0000-0000-0000'
        FROM generate_series(1001, 1400) g`);
    await waitFor(async () => (await db.query(`SELECT relreplident FROM pg_class WHERE oid = '${part(monthStart)}'::regclass`)).rows[0].relreplident === 'f',
      { timeoutMs: 30_000, message: 'the new partition given REPLICA IDENTITY FULL' });
    await db.query(`UPDATE pay.payments SET status = 'canceled', canceled_at = now(), canceled_amount = amount WHERE payment_id BETWEEN 1001 AND 1400 AND payment_id % 8 = 0`);
    await db.query(`UPDATE pay.payments SET canceled_at = NULL, canceled_amount = NULL WHERE payment_id = 1016`);
    // rows moved between partitions (an UPDATE of the partition key): counted once, in their new minute
    await db.query(`UPDATE pay.payments SET approved_at = now() - interval '3 minutes', store_code = 'S-0039' WHERE payment_id IN (7, 8, 10)`);

    // unmapped columns come, change type and go: nothing changes for riskmon
    await db.query(`ALTER TABLE pay.payments ADD COLUMN channel text NOT NULL DEFAULT 'web'`);
    await db.query(`INSERT INTO pay.payments (payment_id, store_code, amount, approved_at, channel) SELECT g, ${store('g')}, 777, ${recent('(g - 2000)')}, 'app' FROM generate_series(2001, 2100) g`);
    await db.query(`ALTER TABLE pay.payments ALTER COLUMN memo TYPE varchar(500)`);
    await db.query(`UPDATE pay.payments SET canceled_at = approved_at + interval '1 minute', canceled_amount = 100 WHERE payment_id BETWEEN 2001 AND 2100 AND payment_id % 5 = 0`);
    await db.query(`ALTER TABLE pay.payments DROP COLUMN card_number`);
    await db.query(`DELETE FROM pay.payments WHERE payment_id IN (40, 80, 1008, 2005)`);
    await db.query(`INSERT INTO pay.payments (payment_id, store_code, amount, approved_at, canceled_amount, canceled_at) VALUES (3001, 'S-0005', 9000, now(), 9000, now())`);

    const reader = createBucketReader(redis, { prefix: env.RISKMON_REDIS_PREFIX!, partitions: 12, hotShards: 8, tz: TZ });
    const from = prevMonth - DAY, to = now + DAY;
    const day = await sqlTruth(env.PG_URL!, '1d', TZ, mapping);
    await waitFor(async () => (await diffAgainstReader(reader, day, '1d', from, to)).length === 0,
      { timeoutMs: 120_000, intervalMs: 1000, message: 'day buckets to equal the SQL truth' });
    expect(await diffAgainstReader(reader, await sqlTruth(env.PG_URL!, '1h', TZ, mapping), '1h', from, to)).toEqual([]);
    expect(await diffAgainstReader(reader, await sqlTruth(env.PG_URL!, '1m', TZ, mapping), '1m', minuteStart(now - 36 * HOUR), to)).toEqual([]);
    expect([...day.keys()].sort()).toContain('S-0039');

    // hot stores were keyed by shard (text ids in keys), and no change was dead-lettered by the cdc or the aggregator
    expect(readFileSync(logOf('cdc'), 'utf8')).toMatch(/hot-merchant set in force/);
    expect(await topicCount(env.KAFKA_BROKERS!, env.RISKMON_DLQ_TOPIC!)).toBe(0);

    // names from the mapped directory, for a text id (the api may still be building the dashboard on a fresh clone)
    await waitFor(async () => (await fetch(`http://127.0.0.1:${apiPort}/health`).catch(() => null))?.ok, { timeoutMs: 90_000, message: 'api answering' });
    const r = await fetch(`http://127.0.0.1:${apiPort}/api/merchants/S-0003`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(await r.json()).toEqual({ merchantId: 'S-0003', name: 'Store 3 Seoul', category: 'general' });
    const series = await fetch(`http://127.0.0.1:${apiPort}/api/merchants/S-0005/series?step=1d&from=${iso(now - 2 * DAY)}&to=${iso(to)}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(series.status).toBe(200);
  }, 240_000);

  it('stops the cdc once, naming table, column and fix, when a mapped column is retyped beyond reading', async () => {
    const cdc = children.get('cdc')!;
    await db.query(`ALTER TABLE pay.payments ALTER COLUMN amount TYPE numeric`);
    await db.query(`INSERT INTO pay.payments (payment_id, store_code, amount, approved_at) VALUES (4001, 'S-0001', 1500, now())`);
    const code = await waitExit(cdc);
    expect(code).not.toBe(0);
    const log = readFileSync(logOf('cdc'), 'utf8');
    const stops = log.split('\n').filter((l) => l.includes('mapped column pay.payments.amount (RISKMON_MAPPING \\"approvals.amount\\") now has type numeric'));
    expect(stops.length).toBeGreaterThan(0);
    expect(stops[0]).toMatch(/Fix: ALTER TABLE \\"pay\\".\\"payments\\" ALTER COLUMN \\"amount\\" TYPE bigint, or set RISKMON_MAPPING/);
    expect(log).not.toMatch(/replication session ended; resuming/);
    expect(await topicCount(env.KAFKA_BROKERS!, env.RISKMON_DLQ_TOPIC!)).toBe(0);
  }, 60_000);
});
