/**
 * Merchant ids from the source are input too: on a schema whose merchant column is text, a row with a 10 KB id, or
 * one with characters outside [A-Za-z0-9_.:-], goes to the dead-letter topic with a short reason (not the id whole)
 * and is published nowhere else, while the other rows of the same transaction and minute are published as usual.
 */
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowChange } from '../lib/events.ts';
import { TopicReader } from '../lib/kafka/index.ts';
import { freshDatabase, services, uniqueName } from '../test/helpers/services.ts';
import { dropSlot, streaming, waitExit, waitFor } from '../test/harness/index.ts';
import { kafkaOf, readAll, spawnCdc } from './testing.ts';

const mapping = {
  approvals: { table: 'shop.orders', id: 'order_id', merchant: 'shop_id', amount: 'total', time: 'paid_at' },
  cancels: { table: 'shop.refunds', id: 'refund_id', merchant: 'shop_id', amount: 'total', time: 'refunded_at' },
};

describe('merchant ids from the source', () => {
  let db: pg.Client;
  let env: Record<string, string>;
  let child: ChildProcess;
  const logs: string[] = [];
  const kafka = kafkaOf(services().KAFKA_BROKERS);
  async function readRaw(topic: string): Promise<{ reason: string; event: RowChange }[]> {
    const reader = await TopicReader.open(kafka, topic);
    try {
      const out = [];
      for (const [p, { low, high }] of await reader.watermarks()) {
        for (let off = low; off < high;) {
          const msgs = (await reader.fetch(p, off, 8 << 20)).filter((m) => m.offset < high);
          if (!msgs.length) break;
          for (const m of msgs) out.push(JSON.parse(String(m.value)));
          off = msgs[msgs.length - 1].offset + 1n;
        }
      }
      return out;
    } finally {
      await reader.close();
    }
  }

  beforeAll(async () => {
    const url = await freshDatabase('cdcmid');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(`CREATE SCHEMA shop;
      CREATE TABLE shop.orders (order_id bigint PRIMARY KEY, shop_id text NOT NULL, total bigint NOT NULL, paid_at timestamptz NOT NULL);
      CREATE TABLE shop.refunds (refund_id bigint PRIMARY KEY, shop_id text NOT NULL, total bigint NOT NULL, refunded_at timestamptz NOT NULL);
      ALTER TABLE shop.orders REPLICA IDENTITY FULL; ALTER TABLE shop.refunds REPLICA IDENTITY FULL;
      CREATE PUBLICATION mid_pub FOR TABLE shop.orders, shop.refunds;`);
    env = {
      PG_URL: url, KAFKA_BROKERS: services().KAFKA_BROKERS, RISKMON_TOPIC: uniqueName('mid'), RISKMON_SLOT: uniqueName('slot'),
      RISKMON_DLQ_TOPIC: uniqueName('middlq'), RISKMON_PUBLICATION: 'mid_pub', RISKMON_MAPPING: JSON.stringify(mapping),
      RISKMON_PARTITIONS: '2', RISKMON_HEARTBEAT_MS: '500', RISKMON_CDC_STATUS_MS: '300',
    };
    child = spawnCdc(env, logs);
    await waitFor(() => streaming(db, env.RISKMON_SLOT), { timeoutMs: 60_000, message: `cdc did not start streaming:\n${logs.join('').slice(-2000)}` });
  });

  afterAll(async () => {
    child?.kill('SIGTERM');
    if (child) await waitExit(child);
    await dropSlot(db, env.RISKMON_SLOT);
    await db?.end();
  });

  it('dead-letters a 10 KB id and one with other characters, with a short reason; the rest of the minute is published', async () => {
    const huge = 'm'.repeat(10 * 1024);
    await db.query(`BEGIN;
      INSERT INTO shop.orders VALUES (1, 'shop-1', 500, '2026-11-21T08:00:10Z');
      INSERT INTO shop.orders VALUES (2, $$${huge}$$, 700, '2026-11-21T08:00:20Z');
      INSERT INTO shop.orders VALUES (3, '<!channel> & co', 900, '2026-11-21T08:00:30Z');
      INSERT INTO shop.refunds VALUES (1, 'shop:1.a_b-c', 100, '2026-11-21T08:00:40Z');
      COMMIT`);
    const dead = await waitFor(async () => { const d = await readRaw(env.RISKMON_DLQ_TOPIC); return d.length >= 2 ? d : null; },
      { timeoutMs: 30_000, message: 'dead letters did not arrive' });
    expect(dead).toHaveLength(2);
    const byId = new Map(dead.map((d) => [d.event.row!.order_id, d]));
    expect(byId.get('2')!.reason).toBe(`shop.orders.shop_id is not a merchant id (up to 64 characters of A-Z a-z 0-9 _ . : -): 10240 characters starting "${'m'.repeat(24)}"`);
    expect(byId.get('3')!.reason).toMatch(/^shop\.orders\.shop_id is not a merchant id .*: 15 characters starting "<!channel> & co"$/);
    expect(logs.join('')).not.toContain('m'.repeat(200));
    const rows = await waitFor(async () => { const r = (await readAll(kafka, env.RISKMON_TOPIC)).filter((x) => x.event.op !== 'heartbeat'); return r.length >= 2 ? r : null; },
      { timeoutMs: 30_000, message: 'good rows missing' });
    expect(rows.map((r) => r.key).sort()).toEqual(['shop-1', 'shop:1.a_b-c']);
  });
});
