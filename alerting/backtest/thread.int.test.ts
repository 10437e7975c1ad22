/**
 * Backtests run in a thread of their own (thread.ts), so the heaviest backtest the validation allows cannot stall or
 * crash live alerting. A real `riskmon alerting` process over real Redis buckets, a Kafka topic holding the same
 * change events (the 5 days older than the minute tier are rebuilt from it) and a real risk store:
 *
 * - a 7-day backtest with every threshold at the lowest the validation allows (every merchant fires whenever it can)
 *   runs, queued again and again, for at least three closed minutes beside the live evaluator: the evaluator commits
 *   every one of those minutes and is never more than one minute behind the closed minute; the process never exits;
 * - a backtest thread that outgrows its heap limit (a worker that only allocates: the heaviest job above stays far
 *   inside the default limit) ends alone: its job is failed saying it ran out of memory, a new thread starts.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketWriter } from '../../aggregator/store/index.ts';
import { createTopic, testKafka, testProducer } from '../../aggregator/testing.ts';
import { logger } from '../../lib/logger.ts';
import { iso, MINUTE, minuteStart } from '../../lib/time.ts';
import { dropKeys, ROOT, runEnv, spawnRiskmon, stopChild, waitFor } from '../../test/harness/index.ts';
import { freshDatabase, services, uniqueName } from '../../test/harness/services.ts';
import { lastClosedMinute } from '../closed.ts';
import { parseRules } from '../rules/config.ts';
import { getBacktest, lastEvaluatedMinute, liveIngestLags, queueBacktest } from '../risk-store/index.ts';
import { riskStore } from '../testing/fixtures.ts';
import { BacktestThread } from './thread.ts';

const TZ = 'UTC';
const PARTITIONS = 4;
const HOT_SHARDS = 2;
const LATENESS = 5000;
const MERCHANTS = 120;
const DAY = 86_400_000;

/** Every threshold at the lowest the validation (parseRules) accepts: the heaviest backtest an analyst can ask for. */
const ALL_ZERO = {
  version: 'all-zero', windowMinutes: 1, baselineDays: 1, sameWeekdayWeeks: 1, minSameWeekdays: 1,
  cancel_rate_spike: { multiplier: 1, minApprovals: 1, minCancels: 1, minBaselineApprovals: 1, maxPValue: 1, minCohortMerchants: 0 },
  volume_drop: { minDailyAmount: 1_000_000, ratio: 0.9, minElapsedMinutes: 0, minBaselineAmount: 1 },
  volume_spike: { multiplier: 1, minWindowAmount: 1_000_000 },
  lifecycle: { resolveAfterMinutes: 1, renotifyMinutes: 1 },
};

describe('backtests beside live alerting', () => {
  const children: ChildProcess[] = [];
  let redis: Redis;
  let writer: BucketWriter;
  let db: pg.Pool;
  let env: NodeJS.ProcessEnv;
  let name: string;
  let stopBeats = false;
  let beats: Promise<void>;
  let now = 0;

  beforeAll(async () => {
    const s = services();
    name = uniqueName('btthread');
    redis = new Redis(s.REDIS_URL);
    writer = new BucketWriter(redis, { prefix: name, partitions: PARTITIONS, hotShards: HOT_SHARDS, tz: TZ });
    // 7 days and an hour of history: every merchant a sale every 10 minutes (1–5M KRW), a cancel every 40.
    now = Date.now();
    const start = minuteStart(now - 7 * DAY - 60 * MINUTE);
    for (let t = start, i = 0; t < now - MINUTE; t += 10 * MINUTE, i++) {
      for (let m = 0; m < MERCHANTS; m++) {
        writer.approval(`m${m}`, 1_000_000 * (1 + ((i + m) % 5)), t + m * 100);
        if ((i + m) % 4 === 0) writer.cancel(`m${m}`, 1_000_000, t + 30_000 + m * 100);
      }
    }
    // The same change events on a topic, as the cdc would have published them: the backtest rebuilds the days
    // the minute tier no longer holds from it.
    const kafka = testKafka(s.KAFKA_BROKERS);
    await createTopic(kafka, name, PARTITIONS);
    const producer = testProducer(kafka);
    await producer.connect();
    const events = [...writer.cdc.queue];
    for (let i = 0; i < events.length; i += 5000) {
      await producer.send({ topic: name, acks: -1, messages: events.slice(i, i + 5000).map((k) => ({ key: k.key, value: k.value, partition: k.partition })) });
    }
    await producer.disconnect();
    await writer.flush();
    // The watermark follows the wall clock (heartbeats), so a minute closes every minute.
    beats = (async () => {
      while (!stopBeats) {
        writer.cdc.heartbeats(iso(Date.now()));
        await writer.flush();
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();

    const riskUrl = await freshDatabase('btthread');
    db = await riskStore(riskUrl);
    env = {
      ...process.env, ...s, ...runEnv(name), RISK_PG_URL: riskUrl, PG_URL: '', RISKMON_TZ: TZ, RISKMON_LOG_LEVEL: 'info',
      RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_HOT_SHARDS: String(HOT_SHARDS), RISKMON_ALLOWED_LATENESS_MS: String(LATENESS),
      RISKMON_SLACK_WEBHOOK_URL: '', RISKMON_METRICS_PORT: '0',
    };
  }, 600_000);

  afterAll(async () => {
    stopBeats = true;
    await beats;
    for (const c of children) await stopChild(c);
    await db?.end();
    await dropKeys(redis, `${name}:*`).catch(() => {});
    redis?.disconnect();
  });

  function alerting(extra: NodeJS.ProcessEnv, log: string): ChildProcess {
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    const child = spawnRiskmon(['alerting'], {
      env: { ...env, ...extra }, logFile: join(ROOT, 'test-artifacts', `backtest-thread-${log}.log`),
      onFailure: (code, tail) => console.error(`riskmon alerting exited ${code}: ${tail}`),
    });
    children.push(child);
    return child;
  }

  /** The last closed minute as the live evaluator sees it (the heartbeats keep the watermark at the wall clock). */
  const closed = () => lastClosedMinute(Date.now() - 1000, LATENESS);
  const progress = async () => (await lastEvaluatedMinute(db))?.getTime() ?? null;
  const period = () => ({ from: minuteStart(Date.now() - 7 * DAY) + MINUTE, to: closed() });

  it('the validation accepts the all-zero thresholds and nothing lower', () => {
    expect(() => parseRules(ALL_ZERO)).not.toThrow();
    expect(() => parseRules({ ...ALL_ZERO, cancel_rate_spike: { ...ALL_ZERO.cancel_rate_spike, multiplier: 0.99 } })).toThrow(/multiplier/);
    expect(() => parseRules({ ...ALL_ZERO, volume_drop: { ...ALL_ZERO.volume_drop, ratio: 0.95 } })).toThrow(/ratio/);
  });

  it('the heaviest 7-day backtest runs beside the evaluator, which commits every closed minute meanwhile; the process never exits', async () => {
    const child = alerting({}, 'heavy');
    await waitFor(async () => (await progress()) !== null, { timeoutMs: 120_000, message: 'the evaluator to commit its first minute' });
    const jobs: string[] = [];
    const samples: { closed: number; progress: number }[] = [];
    let runningSince: number | null = null;
    let minutesClosedWhileRunning = 0;
    let lastClosed = closed();
    // Keep one heavy backtest queued behind the running one until three minutes have closed while one ran.
    while (minutesClosedWhileRunning < 3) {
      const open = await Promise.all(jobs.map((id) => getBacktest(db, id)));
      if (open.filter((j) => j && (j.status === 'queued' || j.status === 'running')).length < 2) {
        const { from, to } = period();
        jobs.push(await queueBacktest(db, { config: parseRules(ALL_ZERO), version: null, from, to, actor: 'test' }));
      }
      const running = open.some((j) => j?.status === 'running');
      if (running && runningSince === null) runningSince = Date.now();
      const c = closed();
      if (running && c > lastClosed) minutesClosedWhileRunning += (c - lastClosed) / MINUTE;
      lastClosed = c;
      if (running) {
        const p = await progress();
        samples.push({ closed: c, progress: p ?? 0 });
      }
      expect(child.exitCode, 'the alerting process exited').toBeNull();
      expect(Date.now() - (runningSince ?? Date.now()), 'three minutes to close while backtests run').toBeLessThan(15 * MINUTE);
      await new Promise((r) => setTimeout(r, 2000));
    }
    // Every sample: the evaluator at most one minute behind the last closed minute (it is evaluating the next one).
    for (const s of samples) expect(s.closed - s.progress, `evaluator at ${iso(s.progress)} while ${iso(s.closed)} had closed`).toBeLessThanOrEqual(MINUTE);
    // Every minute that closed meanwhile was evaluated live (its ingest lag recorded).
    const first = samples[0].closed;
    const last = samples.at(-1)!.closed;
    await waitFor(async () => ((await progress()) ?? 0) >= last, { timeoutMs: 60_000, message: 'the evaluator to reach the last sampled minute' });
    const lags = await liveIngestLags(db, 'default', first, last + MINUTE);
    for (let M = first; M <= last; M += MINUTE) expect(lags.has(M), `minute ${iso(M)} evaluated live`).toBe(true);
    // The backtests themselves ran (and ended within their bounds, not by a crash).
    const ended = (await Promise.all(jobs.map((id) => getBacktest(db, id)))).filter((j) => j && (j.status === 'done' || j.status === 'failed'));
    for (const j of ended) {
      if (j!.status === 'failed') expect(j!.error).toMatch(/more than 20000 alerts|result is/);
      else expect(j!.progress).toBe(1);
    }
    expect(child.exitCode).toBeNull();
    await stopChild(child);
  }, 1_200_000);

  it('a backtest that outgrows its thread\'s heap is failed saying so, a new thread starts, and this process lives on', async () => {
    // A worker that takes the job and then needs more memory than its limit: the heaviest allowed job above stays
    // well inside the default limit, so the limit itself is exercised with a worker that only allocates.
    const { from, to } = period();
    const id = await queueBacktest(db, { config: parseRules(ALL_ZERO), version: null, from, to, actor: 'test' });
    const dir = mkdtempSync(join(tmpdir(), 'riskmon-hungry-'));
    const hungry = join(dir, 'hungry.mjs');
    writeFileSync(hungry, `import { parentPort, workerData } from 'node:worker_threads';
      parentPort.postMessage({ started: true });
      if (!workerData.env.SECOND) {
        parentPort.postMessage({ job: ${JSON.stringify(id)} });
        const keep = [];
        for (;;) keep.push(new Array(100_000).fill({ x: keep.length }));
      }
      parentPort.on('message', (m) => { if (m === 'stop') parentPort.close(); });`);
    const log = logger.child({ component: 'backtest-thread-test' });
    const thread = new BacktestThread({ env: {}, heapMb: 32, pollMs: 100, workerUrl: pathToFileURL(hungry) }, { db, log });
    const running = thread.run();
    try {
      const job = await waitFor(async () => {
        const j = await getBacktest(db, id);
        return j?.status === 'failed' ? j : null;
      }, { timeoutMs: 60_000, intervalMs: 200, message: 'the job to be failed' });
      expect(job.error).toMatch(/needed more than its 32 MiB of memory \(RISKMON_BACKTEST_HEAP_MB\)/);
      await waitFor(() => thread.starts >= 2, { timeoutMs: 30_000, message: 'a new thread to start' });
    } finally {
      await thread.stop();
      await running;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
