/**
 * `kill -9` of the cdc at random moments during live load, several times, while the hot-merchant set changes:
 * every committed change is in the topic exactly once, in commit order within its partition. Then a 200,000-row
 * transaction arrives whole, once, with seq 0..199999.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { ChildProcess } from 'node:child_process';
import { comparePosition } from '../lib/lsn.ts';
import type { RowChange } from '../lib/events.ts';
import { migrate } from '../lib/migrate.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { kafkaOf, readAll, spawnCdc } from './testing.ts';
import { dropSlot, streaming, waitExit, waitFor } from '../test/harness/index.ts';

const PARTITIONS = 6;
const MERCHANTS = 500;

describe('cdc crash safety', () => {
  let url: string;
  let db: pg.Client;
  let env: Record<string, string>;
  let child: ChildProcess | null = null;
  const kafka = kafkaOf(services().KAFKA_BROKERS);

  beforeAll(async () => {
    url = await freshDatabase('cdccrash');
    await migrate(url, 'source');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'm' || g FROM generate_series(1, ${MERCHANTS}) g`);
    // history so the learner starts with hot merchants (1..5 are hot)
    await db.query(`INSERT INTO payments SELECT -g, CASE WHEN g % 2 = 0 THEN 1 + g % 5 ELSE 1 + g % ${MERCHANTS} END, 100, now() - interval '1 hour' FROM generate_series(1, 20000) g`);
    env = {
      PG_URL: url, KAFKA_BROKERS: services().KAFKA_BROKERS, RISKMON_TOPIC: uniqueName('crash'), RISKMON_SLOT: uniqueName('slot'),
      RISKMON_DLQ_TOPIC: uniqueName('dlq'), RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_HEARTBEAT_MS: '300',
      RISKMON_HOT_REFRESH_MS: '1500', RISKMON_HOT_FRACTION: '0.02', RISKMON_HOT_HALF_LIFE_MS: '60000', RISKMON_CDC_STATUS_MS: '300',
    };
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    if (child) await waitExit(child);
    await dropSlot(db, env.RISKMON_SLOT);
    await db?.end();
  });

  async function startCdc(): Promise<void> {
    child = spawnCdc(env);
    await waitFor(() => streaming(db, env.RISKMON_SLOT), { timeoutMs: 60_000, intervalMs: 50, message: 'cdc did not start streaming' });
  }

  it('publishes every change exactly once across kill -9 during live load', async () => {
    await startCdc();
    let stop = false;
    let nextId = 1;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      let i = 0;
      while (!stop) {
        const id = nextId++;
        // the hot merchants shift over time: from 1..5 to 400..404 halfway
        const m = i % 3 === 0 ? (id < 3000 ? 1 + (id % 5) : 400 + (id % 5)) : 1 + ((id * 7919) % MERCHANTS);
        if (i % 10 === 9) {
          await c.query('BEGIN');
          await c.query('INSERT INTO payments VALUES ($1, $2, 100, now())', [id, m]);
          await c.query('UPDATE payments SET amount = amount + 1 WHERE payment_id = $1', [id]);
          await c.query('INSERT INTO payment_cancels VALUES ($1, $1, $2, 50, now())', [id, m]);
          await c.query('COMMIT');
        } else if (i % 10 === 5 && id > 10) {
          await c.query('DELETE FROM payment_cancels WHERE cancel_id = (SELECT max(cancel_id) FROM payment_cancels WHERE cancel_id < $1)', [id]);
          await c.query('INSERT INTO payments VALUES ($1, $2, 100, now())', [id, m]);
        } else {
          await c.query('INSERT INTO payments VALUES ($1, $2, 100, now())', [id, m]);
        }
        i++;
        if (w === 0 && i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await c.end();
    });

    for (let k = 0; k < 5; k++) {
      await new Promise((r) => setTimeout(r, 500 + Math.random() * 2500));
      child!.kill('SIGKILL');
      await waitExit(child!);
      await new Promise((r) => setTimeout(r, Math.random() * 500));
      await startCdc();
    }
    stop = true;
    await Promise.all(writers);

    // The truth: every change committed since the slot was created, from the tables' own counts.
    const truth = (await db.query(`SELECT
      (SELECT count(*) FROM payments WHERE payment_id > 0)::int AS payments,
      (SELECT count(*) FROM payment_cancels)::int AS cancels_now`)).rows[0];
    const all = await waitFor(async () => {
      const rows = (await readAll(kafka, env.RISKMON_TOPIC)).filter((r) => r.event.op !== 'heartbeat');
      const inserts = rows.filter((r) => r.event.op === 'insert' && r.event.table === 'public.payments').length;
      return inserts >= truth.payments ? rows : null;
    }, { timeoutMs: 90_000, intervalMs: 1000, message: 'not every insert arrived' });

    const byTable = (t: string, op: string) => all.filter((r) => r.event.table === t && r.event.op === op);
    const events = all.map((r) => r.event as RowChange);
    // exactly once: (lsn, seq) unique, payment inserts = rows, cancels: inserted - deleted = rows now
    expect(new Set(events.map((e) => `${e.lsn}/${e.seq}`)).size).toBe(events.length);
    expect(byTable('public.payments', 'insert').length).toBe(truth.payments);
    expect(new Set(byTable('public.payments', 'insert').map((r) => (r.event as RowChange).row!.payment_id)).size).toBe(truth.payments);
    const cancelIns = byTable('public.payment_cancels', 'insert').length;
    const cancelDel = byTable('public.payment_cancels', 'delete').length;
    expect(cancelIns - cancelDel).toBe(truth.cancels_now);
    expect(byTable('public.payments', 'update').length).toBe(cancelIns);
    // in commit order within each partition (heartbeats included)
    const everything = await readAll(kafka, env.RISKMON_TOPIC);
    for (let p = 0; p < PARTITIONS; p++) {
      const ev = everything.filter((r) => r.partition === p).map((r) => r.event);
      for (let i = 1; i < ev.length; i++) expect(comparePosition(ev[i - 1], ev[i])).toBeLessThan(0);
    }
    // hot merchants were sharded (keys merchant#shard) at some point
    expect(all.some((r) => r.key?.includes('#'))).toBe(true);
  });

  it('streams a 200,000-row transaction whole and once', async () => {
    const before = (await readAll(kafka, env.RISKMON_TOPIC)).length;
    await db.query(`INSERT INTO payments SELECT 10000000 + g, 1 + g % ${MERCHANTS}, 100, now() FROM generate_series(1, 200000) g`);
    const big = await waitFor(async () => {
      const rows = (await readAll(kafka, env.RISKMON_TOPIC)).slice(0).filter((r) => r.event.op === 'insert' && Number((r.event as RowChange).row!.payment_id) > 10000000);
      return rows.length >= 200_000 ? rows : null;
    }, { timeoutMs: 120_000, intervalMs: 2000, message: 'the big transaction did not arrive' });
    expect(big.length).toBe(200_000);
    expect(new Set(big.map((r) => r.event.lsn)).size).toBe(1);
    const seqs = big.map((r) => r.event.seq).sort((a, b) => a - b);
    expect(seqs[0]).toBe(0);
    expect(seqs[seqs.length - 1]).toBe(199_999);
    expect(new Set(seqs).size).toBe(200_000);
    expect(before).toBeGreaterThan(0);
  });
});
