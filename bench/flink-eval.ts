/**
 * riskmon's evaluation of a range of closed minutes over its bucket store, as its own process so the Flink
 * side-by-side (bench/flink.ts) can read its CPU and peak RSS from /proc: the backtest engine (the live evaluator's
 * decideMinute over the store's reads) with cancel_rate_spike alone (the other rules off, no cohorts).
 * Env: REDIS_URL, BENCH_PREFIX, BENCH_FROM, BENCH_TO (epoch ms, minute-aligned), BENCH_TZ. Prints one JSON line:
 * { minutes, evaluations, seconds, alerts: [[merchant, firedAt], …] }.
 */
import { Redis } from 'ioredis';
import { createBucketReader } from '../aggregator/store/index.ts';
import { parseRules, runBacktest } from '../alerting/index.ts';
import { logger } from '../lib/logger.ts';

const e = process.env;
const redis = new Redis(e.REDIS_URL!);
const reader = createBucketReader(redis, { prefix: e.BENCH_PREFIX!, partitions: 12, hotShards: 8, tz: e.BENCH_TZ! });
const rules = parseRules({ volume_drop: { enabled: false }, volume_spike: { enabled: false } });
const t0 = performance.now();
const out = await runBacktest({
  rules, from: Number(e.BENCH_FROM), to: Number(e.BENCH_TO), tz: e.BENCH_TZ!, maxIngestLagMs: 120_000, reader,
  log: logger.child({ component: 'bench-flink-eval' }), initial: [], ingestLags: new Map(), maxAlerts: 1_000_000,
});
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({
  minutes: out.minutes, evaluations: out.evaluations, seconds,
  alerts: out.alerts.filter((a) => a.rule === 'cancel_rate_spike').map((a) => [a.merchantId, a.firedAt]),
}));
redis.disconnect();
