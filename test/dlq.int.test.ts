/**
 * Bad input end to end, with `riskmon cdc`, `riskmon aggregate` and `riskmon api` as separate processes on a
 * user's own schema (RISKMON_MAPPING): rows the mapping cannot read (a NULL merchant, a NULL amount), a table in
 * the publication that the mapping does not know, and a malformed event written straight onto the change topic all
 * go to the dead-letter topic with their reason, are counted in riskmon_cdc_dlq_total and
 * riskmon_aggregator_dead_letters_total, are listed by GET /api/deadletters — and never stop the pipeline: good rows
 * written before, between and after them (and after the cdc restarts over a topic whose tail is garbage) are
 * counted exactly.
 */
import os from 'node:os';
import path from 'node:path';
import { createKafka, kafkaConfigOf, type Kafka } from '../lib/kafka/index.ts';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBucketReader, emptyTotals, type Totals } from '../aggregator/store/index.ts';
import { freePort } from '../lib/net.ts';
import { DAY } from '../lib/time.ts';
import { freshDatabase, services, uniqueName } from './harness/services.ts';
import { diffTotals } from './harness/truth.ts';
import { Fleet } from './soak/fleet.ts';
import { waitFor } from './harness/index.ts';

const API_KEY = 'dlq-admin-key-0123456789abcdef';
const TZ = 'Asia/Seoul';



/** Prometheus text → value of `name{labels}` (0 when absent). */
async function metric(port: number, name: string, label: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('bad input goes to the dead-letter topic and never stops the pipeline', () => {
  const fleet = new Fleet(path.join(os.tmpdir(), uniqueName('riskmon_dlq_logs')), (l) => console.error(`[dlq] ${l}`));
  let db: pg.Client;
  let redis: Redis;
  let kafka: Kafka;
  let env: NodeJS.ProcessEnv;
  let name: string;
  let ports: { api: number; cdc: number; agg: number };
  let nextId = 1;
  const t = Date.now() - 10 * 60_000;

  const sale = (shop: number | null, total: number | null) =>
    db.query('INSERT INTO shop.sales VALUES ($1, $2, $3, $4)', [nextId++, shop, total, new Date(t + nextId * 1000)]);
  const refund = (shop: number, total: number) =>
    db.query('INSERT INTO shop.refunds VALUES ($1, $2, $3, $4)', [nextId++, shop, total, new Date(t + nextId * 1000)]);
  const goodRows = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await sale(1 + (i % 3), 1000 + i);
      if (i % 4 === 0) await refund(1 + (i % 3), 500);
    }
  };

  /** The buckets of every shop equal the sum of its readable rows. */
  const countedExactly = async () => {
    const reader = createBucketReader(redis, { prefix: name, partitions: 12, hotShards: 8, tz: TZ });
    const want = new Map<string, Totals>();
    const at = (m: string) => { let x = want.get(m); if (!x) want.set(m, (x = emptyTotals())); return x; };
    for (const r of (await db.query(`SELECT shop_id::text m, count(*)::int n, sum(total)::text a FROM shop.sales WHERE shop_id IS NOT NULL AND total IS NOT NULL GROUP BY 1`)).rows) {
      Object.assign(at(r.m), { approvals: r.n, approvedAmount: BigInt(r.a) });
    }
    for (const r of (await db.query(`SELECT shop_id::text m, count(*)::int n, sum(total)::text a FROM shop.refunds GROUP BY 1`)).rows) {
      Object.assign(at(r.m), { cancels: r.n, canceledAmount: BigInt(r.a) });
    }
    const got = new Map<string, Totals>();
    for (const m of ['1', '2', '3']) {
      const s = emptyTotals();
      for (const p of await reader.series(m, t - DAY, Date.now() + DAY, '1d')) {
        s.approvals += p.approvals; s.approvedAmount += p.approvedAmount; s.cancels += p.cancels; s.canceledAmount += p.canceledAmount;
      }
      got.set(m, s);
    }
    return diffTotals(want, got);
  };

  beforeAll(async () => {
    const s = services();
    const pgUrl = await freshDatabase('dlq');
    const riskUrl = await freshDatabase('dlqrisk');
    db = new pg.Client({ connectionString: pgUrl });
    await db.connect();
    name = uniqueName('dlq');
    // A user's own schema: nullable columns the mapping needs, and a table the mapping does not know.
    await db.query(`CREATE SCHEMA shop;
      CREATE TABLE shop.sales (id bigint PRIMARY KEY, shop_id bigint, total bigint, sold_at timestamptz);
      CREATE TABLE shop.refunds (id bigint PRIMARY KEY, shop_id bigint, total bigint, refunded_at timestamptz);
      CREATE TABLE shop.audit (id bigint PRIMARY KEY, note text);
      ALTER TABLE shop.sales REPLICA IDENTITY FULL; ALTER TABLE shop.refunds REPLICA IDENTITY FULL;
      CREATE PUBLICATION ${name} FOR TABLE shop.sales, shop.refunds, shop.audit;`);
    ports = { api: await freePort(), cdc: await freePort(), agg: await freePort() };
    env = {
      ...process.env, ...s, PG_URL: pgUrl, RISK_PG_URL: riskUrl,
      RISKMON_TOPIC: name, RISKMON_DLQ_TOPIC: `${name}.dlq`, RISKMON_GROUP: name, RISKMON_SLOT: name, RISKMON_PUBLICATION: name,
      RISKMON_REDIS_PREFIX: name, RISKMON_TZ: TZ, RISKMON_HTTP_PORT: String(ports.api), RISKMON_API_KEYS: `${API_KEY}:viewer`,
      RISKMON_LOG_LEVEL: 'info',
      RISKMON_MAPPING: JSON.stringify({
        approvals: { table: 'shop.sales', id: 'id', merchant: 'shop_id', amount: 'total', time: 'sold_at' },
        cancels: { table: 'shop.refunds', id: 'id', merchant: 'shop_id', amount: 'total', time: 'refunded_at' },
      }),
    };
    redis = new Redis(s.REDIS_URL);
    kafka = createKafka(kafkaConfigOf(s.KAFKA_BROKERS), { clientId: 'dlq-test' });
    fleet.start('cdc', { ...env, RISKMON_METRICS_PORT: String(ports.cdc) });
    fleet.start('aggregate', { ...env, RISKMON_METRICS_PORT: String(ports.agg) });
    fleet.start('api', env);
    await waitFor(async () => (await db.query(`SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.slot_name = $1 AND r.state = 'streaming'`, [name])).rowCount === 1, { timeoutMs: 90_000, message: 'cdc streaming' });
  }, 180_000);

  afterAll(async () => {
    await fleet.stopAll();
    await db?.end();
    redis?.disconnect();
  });

  it('dead-letters unreadable rows and events with their reason, counts them, shows them, keeps counting good rows', async () => {
    await goodRows(12);
    await waitFor(async () => (await countedExactly()).length === 0, { timeoutMs: 60_000, message: 'first good rows counted' });

    // The cdc cannot key a row without its merchant; the aggregator cannot count a row without its amount.
    await sale(null, 5000);
    await sale(2, null);
    await db.query(`INSERT INTO shop.audit VALUES (1, 'not a payment')`);
    await goodRows(12);
    await waitFor(async () => (await countedExactly()).length === 0, { timeoutMs: 60_000, message: 'good rows after the bad ones counted' });
    await waitFor(async () => await metric(ports.cdc, 'riskmon_cdc_dlq_total', 'reason="no_merchant"') === 1
      && await metric(ports.cdc, 'riskmon_cdc_dlq_total', 'reason="unmapped_table"') === 1
      && await metric(ports.agg, 'riskmon_aggregator_dead_letters_total', 'kind="bad_row"') === 1, { timeoutMs: 30_000, message: 'dead-letter metrics of rows' });

    // Garbage straight onto the change topic (a foreign producer, a broken tool) while the cdc is down: when it
    // starts again, partition 0 of the change topic ends in garbage and the dead-letter topic in the aggregator's
    // dead letter of it — neither may keep the cdc from resuming.
    await fleet.stop('cdc');
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: name, messages: [{ partition: 0, key: 'x', value: 'this is not a change event' }] });
    await producer.disconnect();
    await waitFor(async () => await metric(ports.agg, 'riskmon_aggregator_dead_letters_total', 'kind="bad_event"') === 1,
      { timeoutMs: 30_000, message: 'the malformed event dead-lettered' });
    fleet.start('cdc', { ...env, RISKMON_METRICS_PORT: String(ports.cdc) });
    await goodRows(12);
    await waitFor(async () => (await countedExactly()).length === 0, { timeoutMs: 90_000, message: 'good rows after the cdc restart counted' });
    expect(await countedExactly()).toEqual([]);
    expect(fleet.unexpectedExits.size).toBe(0);

    type Dl = { count: number; latest: { from: string; reason: string; where: string; at: string | null }[] };
    const dl = await waitFor(async () => {
      const r = await fetch(`http://127.0.0.1:${ports.api}/api/deadletters?limit=10`, { headers: { authorization: `Bearer ${API_KEY}` } });
      const body = (await r.json()) as Dl;
      return body.count === 4 ? body : null;
    }, { timeoutMs: 30_000, intervalMs: 500, message: 'GET /api/deadletters lists four' });
    const reasons = dl.latest.map((d) => `${d.from}: ${d.reason}`);
    expect(reasons).toHaveLength(4);
    for (const want of [/^aggregator: .*shop\.sales\.total is missing or NULL/, /^aggregator: malformed/,
      /^cdc: insert on shop\.sales without shop_id/, /^cdc: table shop\.audit is not in the mapping/]) {
      expect(reasons.filter((r) => want.test(r)), `${want} in ${reasons.join(' | ')}`).toHaveLength(1);
    }
    expect(dl.latest.every((d) => d.at !== null && d.where !== '')).toBe(true);
  }, 300_000);
});
