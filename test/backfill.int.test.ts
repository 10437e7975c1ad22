/**
 * Installing riskmon on a database that already holds history: 8 days of the reference workload (scaled down: 2,000
 * merchants, 60,000 transactions a day) are written before riskmon exists, with a hot merchant's cancels surging
 * in the last hour. Then riskmon's first start (`riskmon aggregate`, `riskmon cdc`): the cdc creates its slot with a
 * snapshot and backfills the history under it (paced, in 6-hour chunks) while the application goes on writing —
 * new payments, late rows hours and days back, UPDATEs (amount, time, merchant) and DELETEs of backfilled payments
 * and cancels. The cdc is killed with SIGKILL in the middle of the backfill and started again: it starts the
 * backfill over. Afterwards every 1m/1h/1d bucket equals the SQL GROUP BY over the tables, `riskmon status` shows
 * the backfill done, and the evaluator alerts on the surging merchant and on nobody else.
 *
 * At a chosen instant (RISKMON_CLOCK_START, lib/clock.ts: a Wednesday afternoon in Seoul, hours from either
 * midnight), whatever the hour CI runs it: the history, the application's rows and every process follow that clock.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBucketReader, readBackfill, type BackfillRecord } from '../aggregator/store/index.ts';
import { migrate } from '../lib/migrate.ts';
import { clockOf, clockStartEnv, parseClockStart } from '../lib/clock.ts';
import { DAY, HOUR, MINUTE, minuteStart } from '../lib/time.ts';
import { backfill, ensureMerchants, parseScenario, pickMerchants } from '../scripts/generate/index.ts';
import { freshDatabase, services, uniqueName } from './harness/services.ts';
import { diffAgainstReader, sqlTruth } from './harness/truth.ts';
import { runEnv, runRiskmon, sleep, spawnRiskmon, streaming, waitExit, waitFor } from './harness/index.ts';

const ROOT = join(import.meta.dirname, '..');
const TZ = 'Asia/Seoul';
/** volume_drop judges "today so far" (here from a day's first minute): a day hours old, ending hours later. */
const CLOCK_START = clockStartEnv(Date.parse('2026-11-25T15:00:00+09:00'));
const clock = clockOf(parseClockStart(CLOCK_START));
const MERCHANTS = 2000;
const TX_PER_DAY = 60_000;
const SEED = 21;

const children: ChildProcess[] = [];
function riskmon(cmd: string, env: NodeJS.ProcessEnv, tag = cmd): ChildProcess {
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  const child = spawnRiskmon([cmd], { env, logFile: join(ROOT, 'test-artifacts', `backfill-${tag}.log`) });
  children.push(child);
  return child;
}

/**
 * The application meanwhile: one small transaction every few milliseconds — a payment now, a late payment (an hour
 * to three days back), an UPDATE of a backfilled payment (amount, time and merchant), a DELETE of a backfilled
 * cancel or of a payment without cancels.
 */
class Application {
  #stop = false;
  #done: Promise<void> | null = null;
  writes = 0;
  constructor(private readonly db: pg.Client, private readonly ids: { min: number; max: number }) {}

  start(): void {
    let next = 10_000_000_000;
    const id = () => this.ids.min + Math.floor(Math.random() * (this.ids.max - this.ids.min));
    const merchant = () => 1 + Math.floor(Math.random() * MERCHANTS);
    this.#done = (async () => {
      while (!this.#stop) {
        const k = this.writes++ % 6;
        const now = new Date(clock()).toISOString();
        if (k === 0) await this.db.query('INSERT INTO payments VALUES ($1, $2, $3, $4)', [next++, merchant(), 1000 + this.writes, now]);
        else if (k === 1) await this.db.query(`INSERT INTO payments VALUES ($1, $2, $3, $5::timestamptz - $4 * interval '1 second')`, [next++, merchant(), 2000 + this.writes, 3600 + Math.floor(Math.random() * 3 * 86_400), now]);
        else if (k === 2) await this.db.query(`UPDATE payments SET amount = amount + 7, approved_at = approved_at + interval '90 seconds' WHERE payment_id = $1`, [id()]);
        else if (k === 3) await this.db.query(`UPDATE payments SET merchant_id = $2 WHERE payment_id = $1`, [id(), merchant()]);
        else if (k === 4) await this.db.query(`DELETE FROM payment_cancels WHERE cancel_id = (SELECT min(cancel_id) FROM payment_cancels WHERE cancel_id >= $1)`, [id() % 20_000]);
        else await this.db.query(`DELETE FROM payments p WHERE payment_id = $1 AND NOT EXISTS (SELECT 1 FROM payment_cancels c WHERE c.payment_id = p.payment_id)`, [id()]);
        await sleep(5);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }
}

describe('first start on a database with history', () => {
  let env: NodeJS.ProcessEnv;
  let pgUrl: string;
  let riskUrl: string;
  let redis: Redis;
  let db: pg.Client;
  const now = clock();
  const who = pickMerchants(SEED, MERCHANTS, TX_PER_DAY);

  beforeAll(async () => {
    const s = services();
    pgUrl = await freshDatabase('bf');
    riskUrl = await freshDatabase('bfrisk');
    await migrate(pgUrl, 'source');
    await ensureMerchants(pgUrl, MERCHANTS);
    const ctx = { now, merchants: MERCHANTS, resolveAlias: (a: 'normal' | 'hot' | 'big' | 'big2') => ({ normal: who.normal, hot: who.hot, big: who.bigVolume, big2: who.bigVolumeStop })[a] };
    // the history, before riskmon exists (COPY)
    await backfill(pgUrl, { days: 8, end: now, seed: SEED, merchants: MERCHANTS, txPerDay: TX_PER_DAY, tz: TZ, scenarios: [parseScenario('cancel_surge:hot:-50m:15', ctx)] });
    const name = uniqueName('bf');
    env = {
      ...process.env, ...s, PG_URL: pgUrl, RISK_PG_URL: riskUrl, ...runEnv(name), RISKMON_TZ: TZ, RISKMON_CLOCK_START: CLOCK_START, RISKMON_LOG_LEVEL: 'info',
      RISKMON_BACKFILL_DAYS: '8', RISKMON_BACKFILL_CHUNK_HOURS: '6', RISKMON_BACKFILL_MAX_ROWS_PER_S: '80000',
      RISKMON_RULES: JSON.stringify({ version: 'bf-1', cancel_rate_spike: { maxPValue: 1e-5 }, volume_drop: { minDailyAmount: 50_000_000, minElapsedMinutes: 0 } }),
    };
    redis = new Redis(s.REDIS_URL);
    db = new pg.Client({ connectionString: pgUrl });
    await db.connect();
  }, 300_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await db?.end();
    await redis?.quit();
  });

  it('backfills exactly across a kill -9 and concurrent writes, then alerts on the surging merchant only', async () => {
    const prefix = env.RISKMON_REDIS_PREFIX!;
    const ids = (await db.query('SELECT min(payment_id)::float8 AS min, max(payment_id)::float8 AS max FROM payments')).rows[0] as { min: number; max: number };
    const app = new Application(db, ids);
    riskmon('aggregate', env);
    app.start();
    const first = riskmon('cdc', env, 'cdc-1');
    const record = () => readBackfill(redis, prefix);
    // kill -9 in the middle of the backfill
    const before = await waitFor(async () => { const r = await record(); return r?.state === 'running' && r.chunksDone >= 3 ? r : null; },
      { timeoutMs: 120_000, intervalMs: 50, message: 'the first start to be backfilling' });
    first.kill('SIGKILL');
    expect(before.chunksDone).toBeLessThan(before.chunks);
    await waitExit(first); // gone: nothing of it can change the record any more
    expect((await record())?.state).toBe('running');
    riskmon('cdc', env, 'cdc-2');
    const done: BackfillRecord = await waitFor(async () => { const r = await record(); return r?.state === 'done' ? r : null; },
      { timeoutMs: 180_000, intervalMs: 200, message: 'the restarted backfill to finish' });
    expect(done.id).not.toBe(before.id);
    expect(done.rows).toBeGreaterThan(400_000);
    await waitFor(() => streaming(db, env.RISKMON_SLOT!), { timeoutMs: 60_000, message: 'cdc streaming after the backfill' });
    const streamed = app.writes + 200; // more changes of backfilled rows, now through the stream
    await waitFor(() => app.writes >= streamed, { timeoutMs: 60_000, message: 'the application writing on while the cdc streams' });
    await app.stop();
    expect(app.writes).toBeGreaterThan(100);

    const reader = createBucketReader(redis, { prefix, partitions: 12, hotShards: 8, tz: TZ, now: clock });
    const from = now - 10 * DAY;
    const to = clock() + DAY;
    const day = await sqlTruth(pgUrl, '1d', TZ);
    await waitFor(async () => (await diffAgainstReader(reader, day, '1d', from, to)).length === 0,
      { timeoutMs: 120_000, intervalMs: 2000, message: 'day buckets to equal the SQL truth' });
    expect(await diffAgainstReader(reader, await sqlTruth(pgUrl, '1h', TZ), '1h', from, to)).toEqual([]);
    expect(await diffAgainstReader(reader, await sqlTruth(pgUrl, '1m', TZ), '1m', minuteStart(clock() - 36 * HOUR), to)).toEqual([]);

    const status = await runRiskmon(['status', '--json'], env);
    expect(JSON.parse(status.stdout).backfill).toMatchObject({ state: 'done', kind: 'initial', progress: 1 });

    riskmon('alerting', env);
    const risk = new pg.Client({ connectionString: riskUrl });
    await risk.connect();
    try {
      const alerts = async () => (await risk.query(`SELECT rule || ':' || merchant_id::text AS a FROM alerts ORDER BY 1`).catch(() => ({ rows: [] }))).rows.map((r) => r.a as string);
      await waitFor(async () => (await alerts()).includes(`cancel_rate_spike:${who.hot}`) || null,
        { timeoutMs: 180_000, intervalMs: 1000, message: 'the surging merchant to alert' });
      // a false alert gets the next closed minutes to show up
      const seen = minuteStart(clock());
      await waitFor(async () => {
        const m = JSON.parse((await runRiskmon(['status', '--json'], env)).stdout).evaluator.lastClosedMinute as string | null;
        return m !== null && Date.parse(m) >= seen + 2 * MINUTE;
      }, { timeoutMs: 240_000, intervalMs: 3000, message: 'the evaluator to close two more minutes' });
      expect(await alerts()).toEqual([`cancel_rate_spike:${who.hot}`]);
    } finally {
      await risk.end();
    }
  }, 600_000);
});
