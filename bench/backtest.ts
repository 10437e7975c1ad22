/**
 * Backtest benchmark (`npm run bench -- --only backtest`), over real Redis buckets written through the aggregator's
 * apply path (the bucket store's test writer) and a real risk store:
 *
 * - backtest_minutes_per_s: closed minutes a backtest evaluates per second over the last day of the reference
 *   workload (100,000 merchants, the top 1% carrying half of 3,000,000 transactions a day, 3% cancels; 7 baseline
 *   days); backtest_day_s: how long one day takes; backtest_window_evaluations_per_minute: verdicts per minute
 *   (merchants judged, the quiet ones by the fast path included).
 * - backtest_live_alert_latency_p99_ms: the live alert latency (minute closed → Slack request and pub/sub message,
 *   the later of the two) on 20 samples while the alerting process runs queued backtests worth 7 days (the
 *   reference day, 7 times) beside the evaluator; backtest_live_minutes_per_s: the backtests' pace meanwhile.
 *
 * BENCH_BACKTEST_TX_PER_DAY and BENCH_BACKTEST_MERCHANTS scale the workload.
 */
import { Redis } from 'ioredis';
import { BucketWriter, createBucketReader } from '../aggregator/store/index.ts';
import { alertingSpec, baselineDayStarts, buildAlerting, defaultRules, queueBacktest, runBacktest } from '../alerting/index.ts';
import { backtestQueue, cancelAllBacktests, lastEvaluatedMinute } from '../alerting/risk-store/index.ts';
import { riskStore } from '../alerting/testing/fixtures.ts';
import { readConfig } from '../lib/config.ts';
import { logger } from '../lib/logger.ts';
import { dayStart, HOUR, iso, MINUTE, minuteStart } from '../lib/time.ts';
import { dropKeys, FakeSlack } from '../test/harness/index.ts';
import { AlertArrivals, quantile, scratchDatabase, waitWatermark } from './util.ts';

interface StackEnv { PG_URL: string; RISK_PG_URL: string; KAFKA_BROKERS: string; REDIS_URL: string }

const TX_PER_DAY_1X = Number(process.env.BENCH_BACKTEST_TX_PER_DAY ?? 3_000_000);
const MERCHANTS_1X = Number(process.env.BENCH_BACKTEST_MERCHANTS ?? 100_000);
const SAMPLES = 20;
const TZ = 'Asia/Seoul';
const PARTITIONS = 12;
const HOT_SHARDS = 8;
const log = logger.child({ component: 'bench-backtest' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Scale (defaults: the reference workload, a 23-hour backtest, with the live-latency phase); bench/growth-10x.ts asks 10×. */
export interface BacktestScale { txPerDay: number; merchants: number; hours: number; live: boolean }

export async function benchBacktest(env: StackEnv, scale: Partial<BacktestScale> = {}): Promise<Record<string, number>> {
  const TX_PER_DAY = scale.txPerDay ?? TX_PER_DAY_1X;
  const MERCHANTS = scale.merchants ?? MERCHANTS_1X;
  const HOURS = scale.hours ?? 24;
  const stamp = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const scratch = await scratchDatabase(env.RISK_PG_URL, `bench_backtest_${stamp}`);
  const prefix = `bench_bt_${stamp}`;
  const redis = new Redis(env.REDIS_URL);
  const sub = new Redis(env.REDIS_URL);
  const top = Math.max(1, Math.floor(MERCHANTS / 100));
  const hot = new Set(Array.from({ length: top }, (_, i) => `m${i}`));
  const w = new BucketWriter(redis, { prefix, partitions: PARTITIONS, hotShards: HOT_SHARDS, tz: TZ, hot });
  const reader = createBucketReader(redis, { prefix, partitions: PARTITIONS, hotShards: HOT_SHARDS, tz: TZ });
  const db = await riskStore(scratch.url);
  db.on('error', (err) => log.warn({ err }, 'risk store connection error'));
  const slack = await new FakeSlack().start();
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const flushEvery = async () => { if (w.cdc.queue.length >= 50_000) await w.flush(); };

  try {
    // ---- data: 7 baseline days (coarse: hour and day tiers are what baselines read), then the last 24 hours ----
    const end = minuteStart(Date.now()) - 2 * MINUTE;
    const D0 = end - HOURS * HOUR;
    const t0 = Date.now();
    for (const d of baselineDayStarts(dayStart(D0, TZ), 7, TZ)) {
      for (let i = 0; i < MERCHANTS; i++) {
        const big = i < top;
        for (let h = 0; h < (big ? 24 : 1); h++) {
          const at = d + (big ? h : i % 24) * HOUR + (i % 3600) * 1000;
          for (let k = 0; k < (big ? 6 : 1); k++) w.approval(`m${i}`, i < top / 10 ? 15_000_000 : 30_000, at + k);
          if (big && h % 4 === 0) w.cancel(`m${i}`, 30_000, at + 10);
        }
        await flushEvery();
      }
    }
    // The last 24 hours at the reference rate: half the transactions on the top 1%.
    const perMinute = TX_PER_DAY / 1440;
    let events = 0;
    for (let t = D0; t < end; t += MINUTE) {
      const n = Math.round(perMinute * (0.5 + rnd()));
      for (let k = 0; k < n; k++) {
        const i = rnd() < 0.5 ? Math.floor(rnd() * top) : top + Math.floor(rnd() * (MERCHANTS - top));
        const at = t + Math.floor(rnd() * 60_000);
        w.approval(`m${i}`, i < top / 10 ? 2_500_000 : 30_000, at);
        if (rnd() < 0.03) w.cancel(`m${i}`, 20_000, at);
        events++;
      }
      await flushEvery();
    }
    // Surge samples for the latency part: quiet merchants with history.
    for (let j = 0; j < SAMPLES; j++) {
      for (const d of baselineDayStarts(dayStart(end, TZ), 7, TZ)) for (let k = 0; k < 20; k++) w.approval(`s${j}`, 10_000, d + k * HOUR);
      for (const d of baselineDayStarts(dayStart(end, TZ), 3, TZ)) w.cancel(`s${j}`, 1000, d);
    }
    w.cdc.heartbeats(iso(end + 5000));
    await w.flush();
    log.info({ events, ms: Date.now() - t0 }, 'buckets written');

    // ---- throughput: one backtest of the day, alone ----
    const b0 = performance.now();
    const out = await runBacktest({
      rules: defaultRules(), from: D0 + HOUR, to: end, tz: TZ, maxIngestLagMs: 120_000, reader, log, initial: [], ingestLags: new Map(),
      onMinute: () => new Promise((r) => setImmediate(r)),
    });
    const seconds = (performance.now() - b0) / 1000;
    const minutesPerS = out.minutes / seconds;
    log.info({ minutes: out.minutes, seconds, alerts: out.alerts.length, evaluations: out.evaluations }, 'backtest of the day');
    if (scale.live === false) {
      return {
        backtest_minutes_per_s: Math.round(minutesPerS * 10) / 10,
        backtest_day_s: Math.round((1440 / minutesPerS) * 10) / 10,
        backtest_window_evaluations_per_minute: Math.round(out.evaluations / out.minutes),
        backtest_events: events,
      };
    }
    // The same day with money at risk (receivable judged, alerts' money): the D+N schedule, every merchant read once.
    const m0 = performance.now();
    const withMoney = await runBacktest({
      rules: defaultRules(), from: D0 + HOUR, to: end, tz: TZ, maxIngestLagMs: 120_000, reader, log, initial: [], ingestLags: new Map(),
      settlement: { kind: 'days', days: 2, tz: TZ }, onMinute: () => new Promise((r) => setImmediate(r)),
    });
    const moneySeconds = (performance.now() - m0) / 1000;
    log.info({ minutes: withMoney.minutes, seconds: moneySeconds, alerts: withMoney.alerts.length }, 'backtest of the day with money at risk');

    // ---- live alert latency while 7 days' worth of backtests run in the alerting process ----
    const alertingEnv = {
      RISK_PG_URL: scratch.url, REDIS_URL: env.REDIS_URL, RISKMON_REDIS_PREFIX: prefix, RISKMON_TZ: TZ,
      RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_HOT_SHARDS: String(HOT_SHARDS), RISKMON_SLACK_WEBHOOK_URL: slack.url, RISKMON_PUBLIC_URL: 'http://localhost:8080',
    };
    const cfg = readConfig(alertingSpec, alertingEnv);
    const arrivals = new AlertArrivals();
    await arrivals.attach(slack, sub, prefix);
    // The backtests in their own thread, as `riskmon alerting` runs them.
    const services = buildAlerting(cfg, { reader, redis, sharedRedis: true, backtestEnv: alertingEnv });
    const running = Promise.all(services.map((s) => s.run()));
    const latencies: number[] = [];
    let btMinutes = 0;
    let btSeconds = 0;
    try {
      // Warm-up: the evaluator's first minute loads the baselines and writes every merchant's evaluation row; then
      // it catches up to the wall clock (the samples must be live minutes, not history, to be sent to Slack).
      const base = minuteStart(Date.now()) + MINUTE;
      w.cdc.heartbeats(iso(base + 5000));
      await w.flush();
      for (;;) {
        const p = await lastEvaluatedMinute(db);
        if (p && p.getTime() >= base - MINUTE) break;
        await sleep(50);
      }
      for (let i = 0; i < 7; i++) await queueBacktest(db, { config: defaultRules(), version: null, from: D0 + HOUR, to: end, actor: 'bench' });
      const startedAt = Date.now();
      for (;;) {
        if ((await backtestQueue(db)).started) break;
        await sleep(50);
      }
      for (let j = 0; j < SAMPLES; j++) {
        const M = base + j * MINUTE;
        for (let k = 0; k < 30; k++) w.approval(`s${j}`, 10_000, M + k * 1000, iso(M + 40_000));
        for (let k = 0; k < 10; k++) w.cancel(`s${j}`, 1000, M + k * 1000, iso(M + 40_000));
        await w.flush();
        await sleep(1100);
        w.cdc.heartbeats(iso(M + MINUTE + 5000));
        await w.flush();
        const closedAt = await waitWatermark(reader, M + MINUTE + 5000);
        const at = await arrivals.both(`s${j}`);
        latencies.push(Math.max(at.slack, at.pubsub) - closedAt);
      }
      const prog = await backtestQueue(db);
      btMinutes = prog.progress * out.minutes;
      btSeconds = (Date.now() - startedAt) / 1000;
      if (!prog.running) log.warn('the backtests finished before the last latency sample');
    } finally {
      await cancelAllBacktests(db, 'bench');
      await Promise.all(services.map((s) => s.stop()));
      await running;
    }
    const figures = {
      backtest_minutes_per_s: Math.round(minutesPerS),
      backtest_day_s: Math.round((1440 / minutesPerS) * 10) / 10,
      backtest_money_vs_plain: Math.round((moneySeconds / seconds) * 100) / 100,
      backtest_window_evaluations_per_minute: Math.round(out.evaluations / out.minutes),
      backtest_live_alert_latency_p99_ms: Math.round(quantile(latencies, 0.99)),
      backtest_live_alert_latency_p50_ms: Math.round(quantile(latencies, 0.5)),
      backtest_live_alert_latency_samples: latencies.length,
      backtest_live_minutes_per_s: Math.round(btMinutes / Math.max(1e-9, btSeconds)),
    };
    log.info({ figures, latencies }, 'backtest figures');
    return figures;
  } finally {
    await dropKeys(redis, `${prefix}:*`).catch(() => {});
    sub.disconnect();
    redis.disconnect();
    await slack.stop();
    await db.end().catch(() => {});
    await scratch.drop();
  }
}
