/**
 * `riskmon backfill` on a running system, with live alerting going on: riskmon runs (cdc, aggregate, alerting) on a
 * database with 8 days of history, some buckets were damaged (as dead-lettered rows leave them), and the application
 * keeps inserting, updating and deleting rows of the range (and writing late rows into it). `riskmon backfill --days
 * 4`, paced so it takes minutes, is killed with SIGKILL while it rebuilds aside and run again. While the rerun
 * rebuilds, a merchant's cancels surge: the aggregators keep applying and the evaluator keeps judging, so it alerts
 * before the backfill is done. Afterwards every 1m/1h/1d bucket equals the SQL GROUP BY and nothing is left aside.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBucketReader, readBackfill, type BackfillRecord } from '../aggregator/store/index.ts';
import { migrate } from '../lib/migrate.ts';
import { candidatePartitions } from '../lib/partition.ts';
import { DAY, dayStart, HOUR, minuteStart } from '../lib/time.ts';
import { backfill, ensureMerchants, pickMerchants } from '../scripts/generate/index.ts';
import { freshDatabase, services, uniqueName } from './harness/services.ts';
import { diffAgainstReader, sqlTruth } from './harness/truth.ts';
import { sleep, spawnRiskmon, streaming, waitExit, waitFor } from './harness/index.ts';
import { runEnv } from './harness/names.ts';

const ROOT = join(import.meta.dirname, '..');
const TZ = 'UTC';
const MERCHANTS = 1000;
const TX_PER_DAY = 30_000;
const SEED = 33;
const children: ChildProcess[] = [];

function riskmon(args: string[], env: NodeJS.ProcessEnv, tag: string): ChildProcess {
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  const child = spawnRiskmon(args, { env, logFile: join(ROOT, 'test-artifacts', `backfill-live-${tag}.log`) });
  children.push(child);
  return child;
}

describe('riskmon backfill while the system runs and alerts', () => {
  let env: NodeJS.ProcessEnv;
  let pgUrl: string;
  let riskUrl: string;
  let redis: Redis;
  let db: pg.Client;
  let risk: pg.Client;
  const now = Date.now();
  const who = pickMerchants(SEED, MERCHANTS, TX_PER_DAY);

  beforeAll(async () => {
    const s = services();
    pgUrl = await freshDatabase('bfl');
    riskUrl = await freshDatabase('bflrisk');
    await migrate(pgUrl, 'source');
    await ensureMerchants(pgUrl, MERCHANTS);
    await backfill(pgUrl, { days: 8, end: now, seed: SEED, merchants: MERCHANTS, txPerDay: TX_PER_DAY, tz: TZ });
    env = {
      ...process.env, ...s, PG_URL: pgUrl, RISK_PG_URL: riskUrl, ...runEnv(uniqueName('bfl')), RISKMON_TZ: TZ, RISKMON_LOG_LEVEL: 'info',
      RISKMON_BACKFILL_DAYS: '8',
      RISKMON_RULES: JSON.stringify({ version: 'bfl-1', cancel_rate_spike: { maxPValue: 1e-5 } }),
    };
    redis = new Redis(s.REDIS_URL);
    db = new pg.Client({ connectionString: pgUrl });
    await db.connect();
    riskmon(['aggregate'], env, 'aggregate');
    riskmon(['cdc'], env, 'cdc');
    // the slot is briefly active while it is created: the first start's backfill done first, then the stream
    await waitFor(async () => (await readBackfill(redis, env.RISKMON_REDIS_PREFIX!))?.state === 'done' || null,
      { timeoutMs: 300_000, intervalMs: 500, message: 'the first start\'s backfill' });
    await waitFor(() => streaming(db, env.RISKMON_SLOT!), { timeoutMs: 120_000, message: 'cdc streaming after its first start' });
    riskmon(['alerting'], env, 'alerting');
    risk = new pg.Client({ connectionString: riskUrl });
    await risk.connect();
  }, 600_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await db?.end();
    await risk?.end();
    await redis?.quit();
  });

  it('rebuilds aside while live changes are applied and judged, survives a kill -9, and ends exact', async () => {
    const prefix = env.RISKMON_REDIS_PREFIX!;
    const record = () => readBackfill(redis, prefix);
    const { min, max } = (await db.query('SELECT min(payment_id)::float8 AS min, max(payment_id)::float8 AS max FROM payments')).rows[0];
    // damage, as dead-lettered rows or a lost slot leave buckets: two merchants' day buckets, one's hour bucket
    const today = dayStart(now, TZ);
    for (const [m, day] of [['1', today - 2 * DAY], ['2', today - DAY]] as const) {
      const p = candidatePartitions(m, 12, 8)[0];
      const localDay = Math.round(day / DAY);
      await redis.hincrby(`${prefix}:{p${p}}:d:${m}:${Math.floor(localDay / 100)}`, String((localDay % 100) * 4), 1000);
      const hour = Math.floor((day + 5 * HOUR) / HOUR);
      await redis.hincrby(`${prefix}:{p${p}}:h:${m}:${Math.floor(hour / 120)}`, String((hour % 120) * 4), 77);
    }

    // the application: payments now and late ones, UPDATEs and DELETEs of backfilled rows, all through the range
    let stop = false, writes = 0, next = 30_000_000_000;
    const app = (async () => {
      while (!stop) {
        const id = min + Math.floor(Math.random() * (max - min));
        const k = writes++ % 5;
        const m = 1 + (writes % MERCHANTS);
        if (k === 0) await db.query('INSERT INTO payments VALUES ($1, $2, 5000, now())', [next++, m]);
        else if (k === 1) await db.query(`INSERT INTO payments VALUES ($1, $2, 6000, now() - $3 * interval '1 second')`, [next++, m, Math.floor(Math.random() * 3 * 86_400)]);
        else if (k === 2) await db.query(`UPDATE payments SET amount = amount + 3, approved_at = approved_at - interval '1 hour' WHERE payment_id = $1`, [id]);
        else if (k === 3) await db.query('DELETE FROM payment_cancels WHERE cancel_id = (SELECT min(cancel_id) FROM payment_cancels WHERE cancel_id >= $1)', [id % 5000]);
        else await db.query('DELETE FROM payments p WHERE payment_id = $1 AND NOT EXISTS (SELECT 1 FROM payment_cancels c WHERE c.payment_id = p.payment_id)', [id]);
        await sleep(10);
      }
    })();

    // paced: about 120,000 rows at 700 rows/s, so the backfill runs for minutes
    const bfEnv = { ...env, RISKMON_BACKFILL_MAX_ROWS_PER_S: '700', RISKMON_BACKFILL_CHUNK_HOURS: '6', RISKMON_BACKFILL_MAX_CELLS: '2000' };
    const first = riskmon(['backfill', '--days', '4'], bfEnv, 'backfill-1');
    const before: BackfillRecord = await waitFor(async () => { const r = await record(); return r?.kind === 'range' && r.state === 'running' && r.chunksDone >= 2 ? r : null; },
      { timeoutMs: 300_000, intervalMs: 100, message: 'the range backfill to be rebuilding' });
    expect(before.aside).toBe(true);
    first.kill('SIGKILL');
    await waitExit(first);

    const second = riskmon(['backfill', '--days', '4'], bfEnv, 'backfill-2');
    const exited = waitExit(second);
    const running: BackfillRecord = await waitFor(async () => { const r = await record(); return r?.state === 'running' && r.id !== before.id && r.chunksDone >= 1 ? r : null; },
      { timeoutMs: 300_000, intervalMs: 100, message: 'the rerun to be rebuilding (after the killed run\'s lock expired)' });
    expect(running).toMatchObject({ kind: 'range', aside: true, swapping: false });

    // while it rebuilds: the hot merchant's cancels surge — 400 payments canceled in the last minutes
    await db.query(`INSERT INTO payments SELECT 40000000000 + g, $1, 9000, now() - g * interval '100 ms' FROM generate_series(1, 400) g`, [who.hot]);
    await db.query(`INSERT INTO payment_cancels SELECT 40000000000 + g, 40000000000 + g, $1, 9000, now() FROM generate_series(1, 400) g`, [who.hot]);
    const alerts = async () => (await risk.query(`SELECT rule || ':' || merchant_id::text AS a FROM alerts ORDER BY 1`).catch(() => ({ rows: [] }))).rows.map((r) => r.a as string);
    await waitFor(async () => (await alerts()).includes(`cancel_rate_spike:${who.hot}`) || null,
      { timeoutMs: 240_000, intervalMs: 1000, message: 'the surging merchant to alert during the backfill' });
    // the alert came while the backfill was still rebuilding: judging went on
    expect(await record()).toMatchObject({ id: running.id, state: 'running' });

    expect(await exited).toBe(0);
    await sleep(2000);
    stop = true;
    await app;
    expect(writes).toBeGreaterThan(100);
    const done = await record();
    expect(done).toMatchObject({ id: running.id, state: 'done', kind: 'range', swapping: false });
    // nothing left aside
    expect(await redis.keys(`${prefix}:bf:*`)).toEqual([]);
    // the payout hashes, rebuilt whole and swapped in: every payout row counted once
    let payoutRows = 0;
    for (const k of await redis.keys(`${prefix}:{p*}:po:*`)) for (const v of await redis.hvals(k)) payoutRows += Number(v);
    const sqlPayouts = Number((await db.query('SELECT count(*)::int AS n FROM payouts')).rows[0].n);
    expect(sqlPayouts).toBeGreaterThan(0);
    expect(payoutRows).toBe(sqlPayouts);

    const reader = createBucketReader(redis, { prefix, partitions: 12, hotShards: 8, tz: TZ });
    const from = now - 10 * DAY, to = Date.now() + DAY;
    await waitFor(async () => (await diffAgainstReader(reader, await sqlTruth(pgUrl, '1d', TZ), '1d', from, to)).length === 0,
      { timeoutMs: 60_000, intervalMs: 1000, message: 'day buckets to equal the SQL truth' });
    expect(await diffAgainstReader(reader, await sqlTruth(pgUrl, '1h', TZ), '1h', from, to)).toEqual([]);
    expect(await diffAgainstReader(reader, await sqlTruth(pgUrl, '1m', TZ), '1m', minuteStart(Date.now() - 36 * HOUR), to)).toEqual([]);
  }, 1_200_000);
});
