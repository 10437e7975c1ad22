/**
 * The cdc against real PostgreSQL and Kafka, as a child process (`riskmon cdc`): every committed change appears
 * exactly once, in commit order within its partition; updates and deletes carry the old row; an idle source
 * still moves the slot and sends heartbeats to every partition; locateLsn finds replay starts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { ChildProcess } from 'node:child_process';
import { comparePosition, compareLsn, LsnError } from '../lib/lsn.ts';
import type { RowChange } from '../lib/events.ts';
import { migrate } from '../lib/migrate.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { kafkaOf, readAll, spawnCdc, type Read } from './testing.ts';
import { locateLsn, LsnInFutureError, LsnTooOldError } from '../lib/kafka/index.ts';
import { dropSlot, streaming, waitExit, waitFor } from '../test/harness/index.ts';

const PARTITIONS = 4;

describe('cdc', () => {
  let db: pg.Client;
  let url: string;
  let env: Record<string, string>;
  let child: ChildProcess;
  const logs: string[] = [];
  const kafka = kafkaOf(services().KAFKA_BROKERS);

  beforeAll(async () => {
    url = await freshDatabase('cdc');
    await migrate(url, 'source');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'm' || g FROM generate_series(1, 200) g`);
    env = {
      PG_URL: url, KAFKA_BROKERS: services().KAFKA_BROKERS, RISKMON_TOPIC: uniqueName('cdc'), RISKMON_SLOT: uniqueName('slot'),
      RISKMON_DLQ_TOPIC: uniqueName('dlq'), RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_HEARTBEAT_MS: '200',
      RISKMON_CDC_STATUS_MS: '200', RISKMON_LOG_LEVEL: process.env.CDC_TEST_LOGS ? 'debug' : 'info',
    };
    child = spawnCdc(env, logs);
    await waitFor(() => streaming(db, env.RISKMON_SLOT), { timeoutMs: 60_000, message: 'cdc did not start streaming' });
  });

  afterAll(async () => {
    if (process.env.CDC_TEST_LOGS) console.log(logs.join('').split('\n').filter((l) => !l.includes('cdc-heartbeat')).join('\n'));
    child?.kill('SIGTERM');
    if (child) await waitExit(child);
    await dropSlot(db, env.RISKMON_SLOT);
    await db?.end();
  });

  const rowChanges = (all: Read[]) => all.filter((r) => r.event.op !== 'heartbeat') as (Read & { event: RowChange })[];

  it('publishes inserts, updates and deletes exactly once, ordered per partition, with old rows', async () => {
    await db.query(`INSERT INTO payments SELECT g, 1 + g % 200, 1000 + g, '2026-11-21T08:00:00Z'::timestamptz + g * interval '1 second' FROM generate_series(1, 500) g`);
    for (let i = 501; i <= 600; i++) await db.query('INSERT INTO payments VALUES ($1, $2, $3, now())', [i, 1 + (i % 200), 5000]);
    await db.query(`UPDATE payments SET amount = amount + 1 WHERE payment_id <= 10`);
    await db.query(`DELETE FROM payments WHERE payment_id BETWEEN 11 AND 15`);
    await db.query(`INSERT INTO payment_cancels VALUES (1, 1, 2, 500, '2026-11-21T08:01:00.123456Z')`);

    const expected = 600 + 10 + 5 + 1;
    const all = await waitFor(async () => {
      const a = rowChanges(await readAll(kafka, env.RISKMON_TOPIC));
      return a.length >= expected ? a : null;
    }, { timeoutMs: 60_000, message: `changes did not all arrive (topic ${env.RISKMON_TOPIC})` });
    expect(all.length).toBe(expected);
    const ids = new Set(all.map((r) => `${r.event.lsn}:${r.event.seq}`));
    expect(ids.size).toBe(expected);

    // bulk insert: one transaction, seq 0..499, values as strings / ISO UTC
    const bulk = all.filter((r) => r.event.op === 'insert' && r.event.table === 'public.payments' && Number(r.event.row!.payment_id) <= 500);
    expect(new Set(bulk.map((r) => r.event.lsn)).size).toBe(1);
    expect(bulk.map((r) => r.event.seq).sort((a, b) => a - b)).toEqual([...Array(500).keys()]);
    const p7 = bulk.find((r) => r.event.row!.payment_id === '7')!.event;
    expect(p7.row).toEqual({ payment_id: '7', merchant_id: '8', amount: '1007', approved_at: '2026-11-21T08:00:07.000Z' });
    expect(p7.table).toBe('public.payments');

    const upd = all.filter((r) => r.event.op === 'update');
    expect(upd).toHaveLength(10);
    for (const u of upd) expect(Number(u.event.row!.amount)).toBe(Number(u.event.old!.amount) + 1);
    const del = all.filter((r) => r.event.op === 'delete');
    expect(del.map((d) => d.event.old!.payment_id).sort()).toEqual(['11', '12', '13', '14', '15']);
    expect(del.every((d) => d.event.row === null)).toBe(true);
    const cancel = all.find((r) => r.event.table === 'public.payment_cancels')!;
    expect(cancel.event.row!.canceled_at).toBe('2026-11-21T08:01:00.123Z');

    // key = merchant, partition = the key's
    for (const r of all) expect(r.key?.split('#')[0]).toBe(String(r.event.row?.merchant_id ?? r.event.old!.merchant_id));
    // (lsn, seq) strictly increasing inside each partition, heartbeats included
    const everything = await readAll(kafka, env.RISKMON_TOPIC);
    for (let p = 0; p < PARTITIONS; p++) {
      const ev = everything.filter((r) => r.partition === p).map((r) => r.event);
      for (let i = 1; i < ev.length; i++) expect(comparePosition(ev[i - 1], ev[i])).toBeLessThan(0);
    }
  });

  it('keeps an idle source moving: heartbeats on every partition and the slot advances', async () => {
    const slotPos = async () => (await db.query('SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [env.RISKMON_SLOT])).rows[0].l as string;
    const before = await slotPos();
    const start = Date.now();
    await waitFor(async () => compareLsn(await slotPos(), before) > 0, { timeoutMs: 20_000, message: 'slot did not advance' });
    const hb = await waitFor(async () => {
      const recent = (await readAll(kafka, env.RISKMON_TOPIC)).filter((r) => r.event.op === 'heartbeat' && Date.parse(r.event.commitTs) >= start);
      return new Set(recent.map((r) => r.partition)).size === PARTITIONS ? recent : null;
    }, { timeoutMs: 20_000, message: 'heartbeats missing on some partition' });
    expect(hb.every((h) => h.event.table === null && h.key === null)).toBe(true);
  });

  it('locates replay starts by LSN, and rejects too old, future and malformed LSNs', async () => {
    const all = await readAll(kafka, env.RISKMON_TOPIC);
    const upd = all.find((r) => r.event.op === 'update')!.event;
    const loc = await locateLsn(kafka, env.RISKMON_TOPIC, upd.lsn);
    expect([...loc.offsets.keys()]).toEqual([...Array(PARTITIONS).keys()]);
    for (let p = 0; p < PARTITIONS; p++) {
      const mine = all.filter((r) => r.partition === p);
      const first = mine.find((r) => compareLsn(r.event.lsn, upd.lsn) >= 0);
      expect(loc.offsets.get(p)).toBe(String(first ? first.offset : mine[mine.length - 1].offset + 1n));
    }
    expect(loc.oldestRetainedLsn).not.toBeNull();
    await expect(locateLsn(kafka, env.RISKMON_TOPIC, '0/10')).rejects.toBeInstanceOf(LsnTooOldError);
    await expect(locateLsn(kafka, env.RISKMON_TOPIC, 'FFFFFFFF/0')).rejects.toBeInstanceOf(LsnInFutureError);
    await expect(locateLsn(kafka, env.RISKMON_TOPIC, 'nope')).rejects.toBeInstanceOf(LsnError);
  });
});
