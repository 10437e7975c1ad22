/**
 * The whole system as an operator runs it, in separate processes: `riskmon cdc`, `riskmon aggregate`, then —
 * once 8 days of history have passed through WAL → Kafka → Redis — `riskmon alerting` and `riskmon api`, with a
 * local HTTP server receiving the Slack webhook. Checks that every bucket of all three tiers equals the SQL
 * GROUP BY over the source tables, that the two injected anomalies (a hot merchant's cancel surge, a big merchant's
 * full stop) alert, that nothing else alerts, that Slack gets each alert once, and that the REST API lists them.
 *
 * Scaled down (2,000 merchants, 60,000 transactions a day: the reference's transactions per merchant), with the
 * rule thresholds a team would set for that scale: volume_drop watches merchants from 50M KRW a day, and the
 * cancel-rate rule's significance guard is set to 1e-5 so small-count noise among ~100 busy merchants cannot fire
 * it during the few minutes the test watches.
 *
 * It runs at chosen instants, not at whatever hour CI runs it: every process gets RISKMON_CLOCK_START (lib/clock.ts),
 * and a local midnight passes while the evaluator runs — by default Seoul's at the end of 2026-11-30, a month's
 * last day — so day buckets, "today", the 7-day baselines and the month turn over under it. RISKMON_PIPELINE_TZ and
 * RISKMON_PIPELINE_MIDNIGHT choose another, e.g. America/New_York and 2026-11-04T00:00:00-05:00 (8 days of history
 * holding the end of daylight saving time).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBucketReader } from '../aggregator/store/index.ts';
import { migrate } from '../lib/migrate.ts';
import { freePort } from '../lib/net.ts';
import { clockOf, clockStartEnv, parseClockStart } from '../lib/clock.ts';
import { DAY, dayStart, HOUR, MINUTE, minuteStart } from '../lib/time.ts';
import { backfill, ensureMerchants, parseScenario, pickMerchants } from '../scripts/generate/index.ts';
import { freshDatabase, services, uniqueName } from './harness/services.ts';
import { diffAgainstReader, sqlTruth } from './harness/truth.ts';
import { FakeSlack, runEnv, spawnRiskmon, stopChild, waitFor } from './harness/index.ts';

const ROOT = join(import.meta.dirname, '..');
const TZ = process.env.RISKMON_PIPELINE_TZ || 'Asia/Seoul';
const MIDNIGHT = Date.parse(process.env.RISKMON_PIPELINE_MIDNIGHT || '2026-12-01T00:00:00+09:00');
if (dayStart(MIDNIGHT, TZ) !== MIDNIGHT) throw new Error(`RISKMON_PIPELINE_MIDNIGHT=${process.env.RISKMON_PIPELINE_MIDNIGHT} is not a local midnight in ${TZ}`);
/**
 * The history ends 5 minutes before the midnight, where the clock the alerting starts on reads: volume_drop leaves a
 * day's first 30 minutes unjudged, so the stopped merchant is judged in the minutes before midnight, and then the
 * midnight passes. The cdc and the aggregator take the history in on an earlier setting of the same timeline,
 * since how long that takes depends on the machine (5–15 minutes); once it is in the buckets both restart on the
 * alerting's clock (a jump forward, like any restart after a pause; never back).
 */
const LIVE_AT = MIDNIGHT - 5 * MINUTE;
const HISTORY_CLOCK = clockStartEnv(MIDNIGHT - 40 * MINUTE);
const clock = clockOf(parseClockStart(HISTORY_CLOCK));
const MERCHANTS = 2000;
const TX_PER_DAY = 60_000;
const SEED = 11;
const API_KEY = 'e2e-admin-key-0123456789abcdef';

const children: ChildProcess[] = [];
/** Runs a component; its log (pino, stdout) goes to test-artifacts/pipeline-<zone>-<cmd>.log for when a check fails. */
function riskmon(cmd: string, env: NodeJS.ProcessEnv, tag = cmd): ChildProcess {
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  const child = spawnRiskmon([cmd], {
    env, logFile: join(ROOT, 'test-artifacts', `pipeline-${TZ.replace(/\W+/g, '_')}-${tag}.log`),
    onFailure: (code, tail) => console.error(`riskmon ${cmd} exited ${code}: ${tail}`),
  });
  children.push(child);
  return child;
}

describe('the whole pipeline on generated history', () => {
  const slack = new FakeSlack();
  let env: NodeJS.ProcessEnv;
  let pgUrl: string;
  let redis: Redis;
  let apiPort: number;
  let name: string;
  const history: ChildProcess[] = [];
  const now = LIVE_AT; // the history's end
  const who = pickMerchants(SEED, MERCHANTS, TX_PER_DAY);

  beforeAll(async () => {
    const s = services();
    pgUrl = await freshDatabase('e2e');
    const riskUrl = await freshDatabase('e2erisk');
    await migrate(pgUrl, 'source');
    await ensureMerchants(pgUrl, MERCHANTS);
    await slack.start();
    apiPort = await freePort();
    name = uniqueName('e2e');
    env = {
      ...process.env, ...s, PG_URL: pgUrl, RISK_PG_URL: riskUrl,
      ...runEnv(name), RISKMON_TZ: TZ, RISKMON_CLOCK_START: HISTORY_CLOCK, RISKMON_HTTP_PORT: String(apiPort), RISKMON_API_KEYS: `${API_KEY}:admin`,
      RISKMON_SLACK_WEBHOOK_URL: slack.url,
      RISKMON_SLACK_MIN_INTERVAL_MS: '100', RISKMON_LOG_LEVEL: 'info',
      RISKMON_RULES: JSON.stringify({
        version: 'e2e-1',
        cancel_rate_spike: { maxPValue: 1e-5 },
        // a new day's first 30 minutes are not judged (the default): right after midnight "today so far" is nothing yet
        volume_drop: { minDailyAmount: 50_000_000 },
      }),
    };
    redis = new Redis(s.REDIS_URL);

    history.push(riskmon('cdc', env, 'cdc-history'), riskmon('aggregate', env, 'aggregate-history'));
    await cdcStreaming();

    const ctx = { now, merchants: MERCHANTS, resolveAlias: (a: 'normal' | 'hot' | 'big' | 'big2') => ({ normal: who.normal, hot: who.hot, big: who.bigVolume, big2: who.bigVolumeStop })[a] };
    await backfill(pgUrl, {
      days: 8, end: now, seed: SEED, merchants: MERCHANTS, txPerDay: TX_PER_DAY, tz: TZ,
      scenarios: [parseScenario('cancel_surge:hot:-2h:15', ctx), parseScenario('full_stop:big2:-24h', ctx)],
    });
  }, 900_000);

  /** Capture starts when the walsender streams, not when the slot exists (cdc/). */
  async function cdcStreaming(): Promise<void> {
    const db = new pg.Client({ connectionString: pgUrl });
    await db.connect();
    try {
      await waitFor(async () => (await db.query(`SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
        WHERE s.slot_name = $1 AND r.state = 'streaming'`, [name])).rowCount === 1, { timeoutMs: 300_000, message: 'cdc streaming' });
    } finally {
      await db.end();
    }
  }

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await slack.stop();
    await redis?.quit();
  });

  it('counts every row exactly: all merchants, minute, hour and day tiers equal the SQL GROUP BY', async () => {
    const reader = createBucketReader(redis, { prefix: env.RISKMON_REDIS_PREFIX!, partitions: 12, hotShards: 8, tz: TZ, now: clock });
    const day = await sqlTruth(pgUrl, '1d', TZ);
    const from = now - 10 * DAY;
    const to = now + DAY;
    await waitFor(async () => (await diffAgainstReader(reader, day, '1d', from, to)).length === 0,
      { timeoutMs: 300_000, intervalMs: 2000, message: 'day buckets to equal the SQL truth' });
    expect(await diffAgainstReader(reader, await sqlTruth(pgUrl, '1h', TZ), '1h', from, to)).toEqual([]);
    // Minute buckets are kept for 2 days: compare the last 36 hours.
    expect(await diffAgainstReader(reader, await sqlTruth(pgUrl, '1m', TZ), '1m', minuteStart(now - 36 * HOUR), to)).toEqual([]);
  }, 900_000); // the history through the pipeline: minutes, on a loaded machine many

  it('alerts on the two injected anomalies and nothing else, once each on Slack, listed by the API', async () => {
    // The clock the rest runs on: 5 minutes before midnight now, where the history ends. The cdc and aggregator restart on it.
    if (clock() > LIVE_AT) throw new Error(`the history took until ${new Date(clock()).toISOString()} to pass through: later than 5 minutes before ${new Date(MIDNIGHT).toISOString()}`);
    const live = { ...env, RISKMON_CLOCK_START: clockStartEnv(LIVE_AT) };
    const now = clockOf(parseClockStart(live.RISKMON_CLOCK_START));
    await Promise.all(history.map((c) => stopChild(c)));
    riskmon('cdc', live);
    riskmon('aggregate', live);
    await cdcStreaming();
    riskmon('alerting', live);
    riskmon('api', live);
    const base = `http://127.0.0.1:${apiPort}`;
    const get = async <T>(path: string): Promise<T | null> => {
      const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
      return r.ok ? ((await r.json()) as T) : null;
    };
    const alerts = async () => (await get<{ items: { rule: string; merchantId: string; state: string; firedAt: string }[] }>('/api/alerts?limit=100'))?.items ?? [];
    const fired = await waitFor(async () => {
      const items = await alerts();
      const spike = items.some((a) => a.rule === 'cancel_rate_spike' && a.merchantId === String(who.hot));
      const drop = items.some((a) => a.rule === 'volume_drop' && a.merchantId === String(who.bigVolumeStop));
      return spike && drop ? items : null;
    }, { timeoutMs: 240_000, intervalMs: 1000, message: 'both alerts' });
    // The day before midnight was judged: both fired in it.
    expect(fired.map((a) => Date.parse(a.firedAt)).every((t) => t <= MIDNIGHT)).toBe(true);
    // Then the local midnight passes under the evaluator, and a false alert gets the chance to show up in the new
    // day's first closed minutes before "nothing else" is judged.
    const closedPast = async (t: number) => {
      const m = (await get<{ evaluator: { lastClosedMinute: string | null } }>('/api/status'))?.evaluator.lastClosedMinute;
      return m !== null && m !== undefined && Date.parse(m) >= t;
    };
    await waitFor(() => closedPast(MIDNIGHT + 2 * MINUTE), {
      timeoutMs: Math.max(0, MIDNIGHT - now()) + 240_000, intervalMs: 2000, message: `the evaluator to close ${new Date(MIDNIGHT + 2 * MINUTE).toISOString()}, past the midnight of ${TZ}`,
    });
    const all = await alerts();
    expect(all.map((a) => `${a.rule}:${a.merchantId}`).sort()).toEqual(
      [`cancel_rate_spike:${who.hot}`, `volume_drop:${who.bigVolumeStop}`].sort());
    expect(fired.every((a) => a.state === 'firing')).toBe(true);
    await waitFor(() => slack.received.length >= 2 || null, { timeoutMs: 30_000, message: 'two Slack messages' });
    const mentions = (id: number) => slack.received.filter((m) => m.text.includes(`merchants/${id}`)).length;
    expect(mentions(who.hot)).toBe(1);
    expect(mentions(who.bigVolumeStop)).toBe(1);
  }, 1_080_000);
});

