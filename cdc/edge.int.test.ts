/**
 * The cdc on a user's own schema (RISKMON_MAPPING) and on the edges of the stream, against real PostgreSQL and
 * Kafka: a change in a published table outside the mapping and a row whose (nullable) merchant column is NULL
 * go to the dead-letter topic with their reason while the pipeline continues; ALTER TABLE ADD COLUMN on a mapped
 * table during streaming loses nothing and events carry the mapped columns only; a source idle for over a minute keeps
 * the slot moving (confirmed and restart positions) and heartbeats flowing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import type { RowChange } from '../lib/events.ts';
import { compareLsn, comparePosition } from '../lib/lsn.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { TopicReader } from '../lib/kafka/index.ts';
import { kafkaOf, readAll, spawnCdc } from './testing.ts';
import { dropSlot, streaming, waitExit, waitFor } from '../test/harness/index.ts';

const PARTITIONS = 3;
const mapping = {
  approvals: { table: 'shop.orders', id: 'order_id', merchant: 'shop_id', amount: 'total', time: 'paid_at' },
  cancels: { table: 'shop.refunds', id: 'refund_id', merchant: 'shop_id', amount: 'total', time: 'refunded_at' },
};

async function readRaw(kafka: ReturnType<typeof kafkaOf>, topic: string): Promise<any[]> {
  const reader = await TopicReader.open(kafka, topic);
  try {
    const out: any[] = [];
    for (const [p, { low, high }] of await reader.watermarks()) {
      for (let off = low; off < high;) {
        const msgs = (await reader.fetch(p, off)).filter((m) => m.offset < high);
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

describe('cdc edges (own schema)', () => {
  let db: pg.Client;
  let env: Record<string, string>;
  let child: ChildProcess;
  const logs: string[] = [];
  const kafka = kafkaOf(services().KAFKA_BROKERS);
  const rowChanges = async () => (await readAll(kafka, env.RISKMON_TOPIC)).filter((r) => r.event.op !== 'heartbeat');

  beforeAll(async () => {
    const url = await freshDatabase('cdcedge');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(`CREATE SCHEMA shop;
      CREATE TABLE shop.orders (order_id bigint PRIMARY KEY, shop_id bigint NULL, total bigint NOT NULL, paid_at timestamptz NOT NULL);
      CREATE TABLE shop.refunds (refund_id bigint PRIMARY KEY, shop_id bigint NULL, total bigint NOT NULL, refunded_at timestamptz NOT NULL);
      CREATE TABLE shop.audit (id bigint PRIMARY KEY, note text);
      ALTER TABLE shop.orders REPLICA IDENTITY FULL; ALTER TABLE shop.refunds REPLICA IDENTITY FULL;
      CREATE PUBLICATION edge_pub FOR TABLE shop.orders, shop.refunds, shop.audit;`);
    env = {
      PG_URL: url, KAFKA_BROKERS: services().KAFKA_BROKERS, RISKMON_TOPIC: uniqueName('edge'), RISKMON_SLOT: uniqueName('slot'),
      RISKMON_DLQ_TOPIC: uniqueName('edgedlq'), RISKMON_PUBLICATION: 'edge_pub', RISKMON_MAPPING: JSON.stringify(mapping),
      RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_HEARTBEAT_MS: '500', RISKMON_CDC_STATUS_MS: '300',
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

  it('sends an unmapped table\'s change and a NULL merchant to the dead-letter topic with the reason, and continues', async () => {
    await db.query(`INSERT INTO shop.orders VALUES (1, 10, 500, '2026-11-21T08:00:00Z')`);
    await db.query(`BEGIN; INSERT INTO shop.audit VALUES (1, 'x'); INSERT INTO shop.orders VALUES (2, NULL, 700, now()); INSERT INTO shop.orders VALUES (3, 11, 900, now()); COMMIT`);
    await db.query(`INSERT INTO shop.refunds VALUES (1, 10, 100, '2026-11-21T08:05:00Z')`);

    const dead = await waitFor(async () => { const d = await readRaw(kafka, env.RISKMON_DLQ_TOPIC); return d.length >= 2 ? d : null; },
      { timeoutMs: 30_000, message: 'dead letters did not arrive' });
    expect(dead).toHaveLength(2);
    const audit = dead.find((d) => d.event.table === 'shop.audit');
    expect(audit.reason).toMatch(/shop\.audit is not in the mapping/);
    const nul = dead.find((d) => d.event.table === 'shop.orders');
    expect(nul.reason).toMatch(/without shop_id/);
    expect(nul.event.row).toEqual(expect.objectContaining({ order_id: '2', shop_id: null, total: '700' }));
    // same transaction: audit is seq 0, the NULL order seq 1, the good order seq 2
    expect([audit.event.seq, nul.event.seq]).toEqual([0, 1]);

    const rows = await waitFor(async () => { const r = await rowChanges(); return r.length >= 3 ? r : null; }, { timeoutMs: 30_000, message: 'good rows missing' });
    expect(rows.map((r) => `${r.event.table}:${(r.event as RowChange).row!.order_id ?? (r.event as RowChange).row!.refund_id}`).sort())
      .toEqual(['shop.orders:1', 'shop.orders:3', 'shop.refunds:1']);
    const o3 = rows.find((r) => (r.event as RowChange).row!.order_id === '3')!;
    expect(o3.event.seq).toBe(2);
    expect(o3.key).toBe('11');
  });

  it('handles ALTER TABLE ADD COLUMN on a mapped table while streaming, losing nothing', async () => {
    const before = (await rowChanges()).length;
    let stop = false;
    let id = 100;
    const writer = (async () => {
      const c = new pg.Client({ connectionString: env.PG_URL });
      await c.connect();
      while (!stop) await c.query('INSERT INTO shop.orders (order_id, shop_id, total, paid_at) VALUES ($1, $2, 100, now())', [id++, 1 + (id % 20)]);
      await c.end();
    })();
    await new Promise((r) => setTimeout(r, 500));
    await db.query(`ALTER TABLE shop.orders ADD COLUMN channel text NOT NULL DEFAULT 'web'`);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await writer;
    const written = id - 100;
    await db.query(`UPDATE shop.orders SET channel = 'app' WHERE order_id = 100`);

    const rows = await waitFor(async () => { const r = await rowChanges(); return r.length >= before + written + 1 ? r : null; },
      { timeoutMs: 30_000, message: 'changes after ALTER TABLE missing' });
    expect(rows.length).toBe(before + written + 1);
    const inserts = rows.map((r) => r.event as RowChange).filter((e) => e.op === 'insert' && Number(e.row!.order_id) >= 100)
      .sort((a, b) => comparePosition(a, b));
    expect(inserts.map((e) => Number(e.row!.order_id))).toEqual([...Array(written).keys()].map((k) => 100 + k));
    // events carry the mapped columns only, before and after the ALTER
    for (const e of inserts) expect(Object.keys(e.row!).sort()).toEqual(['order_id', 'paid_at', 'shop_id', 'total']);
    const upd = rows.map((r) => r.event as RowChange).find((e) => e.op === 'update')!;
    expect(upd.row).toEqual(upd.old);
    expect(upd.old!.order_id).toBe('100');
    expect(logs.join('')).toContain('changed columns');
  });

  it('keeps the slot moving and heartbeats flowing while the source is idle for over a minute', async () => {
    const slot = async () => (await db.query(
      'SELECT confirmed_flush_lsn::text AS c, restart_lsn::text AS r FROM pg_replication_slots WHERE slot_name = $1', [env.RISKMON_SLOT])).rows[0] as { c: string; r: string };
    const s0 = await slot();
    const start = Date.now();
    const seen: { c: string; r: string }[] = [];
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 18_000));
      seen.push(await slot());
    }
    // confirmed position advances in every 18 s window, and the WAL kept by the slot is released
    for (let i = 0; i < seen.length; i++) expect(compareLsn(seen[i].c, (i ? seen[i - 1] : s0).c)).toBeGreaterThan(0);
    expect(compareLsn(seen[seen.length - 1].r, s0.r)).toBeGreaterThan(0);
    const hb = (await readAll(kafka, env.RISKMON_TOPIC)).filter((r) => r.event.op === 'heartbeat' && Date.parse(r.event.commitTs) >= start);
    // every partition got heartbeats in every window (the aggregator's watermark keeps moving everywhere)
    const bounds = [start, ...seen.map((_, i) => start + (i + 1) * 18_000)];
    for (let p = 0; p < PARTITIONS; p++) {
      const mine = hb.filter((h) => h.partition === p).map((h) => Date.parse(h.event.commitTs));
      for (let i = 0; i + 1 < bounds.length - 1; i++) expect(mine.some((t) => t >= bounds[i] && t < bounds[i + 1])).toBe(true);
    }
  }, 110_000);
});
