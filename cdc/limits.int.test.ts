/**
 * What the cdc publishes of a row, against real PostgreSQL and Kafka: only the mapped columns (an 800 KB unmapped
 * column never reaches Kafka); a row whose merchant id riskmon does not accept, and a change whose event is still
 * over the topic's message limit (an 800 KB mapped row id, with the topic taking 600 KB), go to the dead-letter
 * topic with their reason and position and no row data, and the stream goes on.
 */
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowChange } from '../lib/events.ts';
import { createTopics, TopicReader } from '../lib/kafka/index.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { dropSlot, streaming, waitExit, waitFor } from '../test/harness/index.ts';
import { kafkaOf, readAll, spawnCdc } from './testing.ts';

const mapping = {
  approvals: { table: 'shop.orders', id: 'order_ref', merchant: 'shop', amount: 'total', time: 'paid_at' },
  cancels: { table: 'shop.orders', id: 'order_ref', merchant: 'shop', amount: 'refund_total', time: 'refunded_at' },
};

describe('cdc: events carry the mapped columns; bad ids and oversized changes are dead-lettered and the stream goes on', () => {
  let db: pg.Client;
  let env: Record<string, string>;
  let child: ChildProcess;
  const logs: string[] = [];
  const kafka = kafkaOf(services().KAFKA_BROKERS);

  beforeAll(async () => {
    const url = await freshDatabase('cdclimits');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(`CREATE SCHEMA shop;
      CREATE TABLE shop.orders (pk bigserial PRIMARY KEY, order_ref text NOT NULL, shop text, total bigint NOT NULL, paid_at timestamptz NOT NULL,
        refund_total bigint, refunded_at timestamptz, card_number text, blob text);
      ALTER TABLE shop.orders REPLICA IDENTITY FULL;`);
    env = {
      PG_URL: url, KAFKA_BROKERS: services().KAFKA_BROKERS, RISKMON_TOPIC: uniqueName('limits'), RISKMON_SLOT: uniqueName('slot'),
      RISKMON_DLQ_TOPIC: uniqueName('limitsdlq'), RISKMON_PUBLICATION: uniqueName('pub'), RISKMON_MAPPING: JSON.stringify(mapping),
      RISKMON_PARTITIONS: '2', RISKMON_HEARTBEAT_MS: '500',
    };
    // the topic exists already, with a message limit under the 800 KB change
    const admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, [{ topic: env.RISKMON_TOPIC, numPartitions: 2, configEntries: [{ name: 'max.message.bytes', value: '600000' }] }], { replication: 0 });
    await admin.disconnect();
    child = spawnCdc(env, logs);
    await waitFor(() => streaming(db, env.RISKMON_SLOT), { timeoutMs: 60_000, message: `cdc did not start streaming:\n${logs.join('').slice(-2000)}` });
  });

  afterAll(async () => {
    child?.kill('SIGTERM');
    if (child) await waitExit(child);
    await dropSlot(db, env.RISKMON_SLOT);
    await db?.end();
  });

  it('trims, dead-letters with the position, and goes on', async () => {
    const big = 'x'.repeat(800_000);
    await db.query(`INSERT INTO shop.orders (order_ref, shop, total, paid_at, card_number) VALUES ('A-1', 'S-1', 100, now(), '4111111111111111')`);
    await db.query(`INSERT INTO shop.orders (order_ref, shop, total, paid_at) VALUES ('A-2', 'bad id!', 100, now())`);
    await db.query(`INSERT INTO shop.orders (order_ref, shop, total, paid_at, blob) VALUES ('A-3', 'S-1', 300, now(), $1)`, [big]);
    await db.query(`INSERT INTO shop.orders (order_ref, shop, total, paid_at) VALUES ($1, 'S-1', 400, now())`, [`A-4${big}`]);
    await db.query(`UPDATE shop.orders SET refunded_at = now(), refund_total = 50, card_number = '5500' WHERE order_ref = 'A-1'`);
    // a 10 KB merchant id from the source: dead-lettered like any id riskmon does not accept, and the stream goes on
    await db.query(`INSERT INTO shop.orders (order_ref, shop, total, paid_at) VALUES ('A-6', $1, 600, now())`, ['S'.repeat(10_000)]);
    await db.query(`INSERT INTO shop.orders (order_ref, shop, total, paid_at) VALUES ('A-5', 'S-2', 500, now())`);

    const rows = await waitFor(async () => {
      const r = (await readAll(kafka, env.RISKMON_TOPIC)).filter((x) => x.event.op !== 'heartbeat').map((x) => x.event as RowChange);
      return r.length >= 4 ? r : null;
    }, { timeoutMs: 30_000, message: `changes did not arrive:\n${logs.join('').slice(-2000)}` });
    expect(rows.map((e) => `${e.op}:${e.row!.order_ref}`).sort()).toEqual(['insert:A-1', 'insert:A-3', 'insert:A-5', 'update:A-1']);
    for (const e of rows) {
      expect(Object.keys(e.row!).sort()).toEqual(['order_ref', 'paid_at', 'refund_total', 'refunded_at', 'shop', 'total']);
      expect(JSON.stringify(e).length).toBeLessThan(1000);
    }

    const reader = await TopicReader.open(kafka, env.RISKMON_DLQ_TOPIC);
    const dead = await waitFor(async () => {
      const { high } = (await reader.watermarks()).get(0)!;
      if (high < 3n) return null;
      return (await reader.fetch(0, 0n)).map((m) => JSON.parse(String(m.value)));
    }, { timeoutMs: 30_000, message: 'dead letters' });
    await reader.close();
    expect(dead).toHaveLength(3);
    expect(dead[0].reason).toMatch(/shop\.orders\.shop="bad id!" is not a merchant id riskmon accepts/);
    expect(dead[1].reason).toMatch(/change event of \d+ bytes is over RISKMON_MAX_MESSAGE_BYTES=\d+ \(the topic's message limit\)/);
    for (const d of dead) { // the 10 KB id is not copied whole into the dead letter
      expect(d.event).toMatchObject({ table: 'shop.orders', op: 'insert', row: null, old: null });
      expect(d.event.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(JSON.stringify(d).length).toBeLessThan(1000);
    }
    expect(dead[1].event.id).toBe(`A-4${'x'.repeat(197)}`);
    expect(dead[2].reason).toMatch(/shop\.orders\.shop="S{10,200}.*is not a merchant id riskmon accepts/);
    expect(dead[2].event).toMatchObject({ table: 'shop.orders', op: 'insert' });
    const lsnOf = (e: { lsn: string }) => BigInt(`0x${e.lsn.split('/')[0]}`) << 32n | BigInt(`0x${e.lsn.split('/')[1]}`);
    expect(lsnOf(dead[0].event)).toBeLessThan(lsnOf(dead[1].event));
  });
});
