/**
 * `riskmon backfill` on a running system: the cdc started with a 1-day first-start backfill on a database holding 4
 * days, and some buckets were damaged afterwards (as rows dead-lettered or a lost slot would leave them). While the
 * application goes on inserting, updating and deleting rows of the range, `riskmon backfill --from X --to Y` rebuilds
 * the days in between and `riskmon backfill --days 4` everything: afterwards every bucket equals the SQL GROUP BY,
 * and a damaged bucket outside a bounded range stays as it was (the range is all that is rewritten).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBucketReader, readBackfill } from '../aggregator/store/index.ts';
import { migrate } from '../lib/migrate.ts';
import { candidatePartitions } from '../lib/partition.ts';
import { DAY, dayStart, HOUR, minuteStart } from '../lib/time.ts';
import { backfill, ensureMerchants } from '../scripts/generate/index.ts';
import { freshDatabase, services, uniqueName } from './harness/services.ts';
import { diffAgainstReader, sqlTruth } from './harness/truth.ts';
import { runEnv, runRiskmon, sleep, spawnRiskmon, streaming, waitFor } from './harness/index.ts';

const ROOT = join(import.meta.dirname, '..');
const TZ = 'UTC';
const MERCHANTS = 500;
const children: ChildProcess[] = [];

describe('riskmon backfill on a running system', () => {
  let env: NodeJS.ProcessEnv;
  let pgUrl: string;
  let redis: Redis;
  let db: pg.Client;
  const now = Date.now();

  beforeAll(async () => {
    const s = services();
    pgUrl = await freshDatabase('bfr');
    await migrate(pgUrl, 'source');
    await ensureMerchants(pgUrl, MERCHANTS);
    await backfill(pgUrl, { days: 4, end: now, seed: 5, merchants: MERCHANTS, txPerDay: 20_000, tz: TZ });
    env = { ...process.env, ...s, PG_URL: pgUrl, ...runEnv(uniqueName('bfr')), RISKMON_TZ: TZ, RISKMON_LOG_LEVEL: 'info', RISKMON_BACKFILL_DAYS: '1' };
    redis = new Redis(s.REDIS_URL);
    db = new pg.Client({ connectionString: pgUrl });
    await db.connect();
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    for (const cmd of ['aggregate', 'cdc']) children.push(spawnRiskmon([cmd], { env, logFile: join(ROOT, 'test-artifacts', `backfill-range-${cmd}.log`) }));
    await waitFor(() => streaming(db, env.RISKMON_SLOT!), { timeoutMs: 120_000, message: 'cdc streaming' });
  }, 300_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await db?.end();
    await redis?.quit();
  });

  it('rebuilds a bounded range and then every day exactly while rows change', async () => {
    const prefix = env.RISKMON_REDIS_PREFIX!;
    const reader = createBucketReader(redis, { prefix, partitions: 12, hotShards: 8, tz: TZ });
    const { min, max } = (await db.query('SELECT min(payment_id)::float8 AS min, max(payment_id)::float8 AS max FROM payments')).rows[0];
    // damage: merchant 1's day bucket two days back, and merchant 2's three days back (outside the bounded range)
    const today = dayStart(now, TZ);
    const damage = async (merchant: string, day: number) => {
      const p = candidatePartitions(merchant, 12, 8)[0];
      const localDay = Math.round(day / DAY);
      await redis.hincrby(`${prefix}:{p${p}}:d:${merchant}:${Math.floor(localDay / 100)}`, String((localDay % 100) * 4), 1000);
    };
    await damage('1', today - 2 * DAY);
    await damage('2', today - 3 * DAY);

    let stop = false, writes = 0, next = 20_000_000_000;
    const app = (async () => {
      while (!stop) {
        const id = min + Math.floor(Math.random() * (max - min));
        const k = writes++ % 4;
        if (k === 0) await db.query(`INSERT INTO payments VALUES ($1, $2, 5000, now() - $3 * interval '1 second')`, [next++, 1 + (writes % MERCHANTS), Math.floor(Math.random() * 3 * 86_400)]);
        else if (k === 1) await db.query(`UPDATE payments SET amount = amount + 3, approved_at = approved_at - interval '1 hour' WHERE payment_id = $1`, [id]);
        else if (k === 2) await db.query(`DELETE FROM payment_cancels WHERE cancel_id = (SELECT min(cancel_id) FROM payment_cancels WHERE cancel_id >= $1)`, [id % 2000]);
        else await db.query(`DELETE FROM payments p WHERE payment_id = $1 AND NOT EXISTS (SELECT 1 FROM payment_cancels c WHERE c.payment_id = p.payment_id)`, [id]);
        await sleep(5);
      }
    })();

    // bounded in time: a stuck command (its snapshot waiting on another test's transaction) shows its log and why
    const bounded = await runRiskmon(['backfill', '--from', new Date(today - 2 * DAY).toISOString(), '--to', new Date(today - DAY).toISOString()], env, { timeoutMs: 150_000 });
    if (bounded.code !== 0) { stop = true; await app; } // the writers end before the test does
    expect(bounded.code, bounded.stderr).toBe(0);
    expect(JSON.parse(bounded.stdout.trim().split('\n').pop()!)).toMatchObject({ from: new Date(today - 2 * DAY).toISOString(), to: new Date(today - DAY).toISOString() });
    const dayTruth = async () => sqlTruth(pgUrl, '1d', TZ);
    // inside the range: repaired; outside: still damaged (and the days the first start skipped still empty)
    const series = async (m: string, day: number) => (await reader.series(m, day, day + DAY, '1d'))[0]?.approvals ?? 0;
    const truthOf = (t: Awaited<ReturnType<typeof dayTruth>>, m: string, day: number) => t.get(m)?.get(day)?.approvals ?? 0;
    await sleep(2000);
    stop = true;
    await app;
    await waitFor(async () => (await series('1', today - 2 * DAY)) === truthOf(await dayTruth(), '1', today - 2 * DAY) || null, { timeoutMs: 60_000, message: 'merchant 1 repaired' });
    expect(await series('2', today - 3 * DAY)).not.toBe(truthOf(await dayTruth(), '2', today - 3 * DAY));

    stop = false;
    const app2 = (async () => {
      while (!stop) {
        const id = min + Math.floor(Math.random() * (max - min));
        await db.query(`UPDATE payments SET amount = amount + 1 WHERE payment_id = $1`, [id]);
        await db.query(`INSERT INTO payments VALUES ($1, $2, 7000, now() - interval '50 hours')`, [next++, 1 + (writes++ % MERCHANTS)]);
        await sleep(5);
      }
    })();
    // small sums per partition: written several times behind the parallel reads, later writes adding to earlier ones
    const all = await runRiskmon(['backfill', '--days', '4'], { ...env, RISKMON_BACKFILL_MAX_CELLS: '1000', RISKMON_BACKFILL_READERS: '4', RISKMON_BACKFILL_CHUNK_HOURS: '6' }, { timeoutMs: 150_000 });
    if (all.code !== 0) { stop = true; await app2; }
    expect(all.code, all.stderr).toBe(0);
    await sleep(2000);
    stop = true;
    await app2;
    expect(writes).toBeGreaterThan(50);
    expect(await readBackfill(redis, prefix)).toMatchObject({ state: 'done', kind: 'range' });

    const from = now - 6 * DAY, to = Date.now() + DAY;
    const day = await dayTruth();
    await waitFor(async () => (await diffAgainstReader(reader, day, '1d', from, to)).length === 0,
      { timeoutMs: 60_000, intervalMs: 1000, message: 'day buckets to equal the SQL truth' });
    expect(await diffAgainstReader(reader, await sqlTruth(pgUrl, '1h', TZ), '1h', from, to)).toEqual([]);
    expect(await diffAgainstReader(reader, await sqlTruth(pgUrl, '1m', TZ), '1m', minuteStart(Date.now() - 36 * HOUR), to)).toEqual([]);
  }, 400_000);
});
