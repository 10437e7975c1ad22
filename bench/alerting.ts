/**
 * Alerting benchmark, through the real pipeline from Kafka on: change events (the cdc's format and keys, built by
 * the aggregator's FakeCdc) → the aggregator in process → Redis buckets → the evaluator over the aggregator's
 * BucketReader → PostgreSQL risk store → Slack (a local HTTP server) and Redis pub/sub.
 *
 * - evaluation_ms_per_minute_100k: median time to evaluate one closed minute when 100,000 merchants are active
 *   in the 60-minute window (after the first minute, which loads the day's baselines and writes every merchant's
 *   evaluation row: reported as evaluation_ms_first_minute_100k).
 * - services_first_minute_ms: the running services' first minute (its state, the day's baselines and every
 *   merchant's money at risk read), from the minute's close to its evaluation stored.
 * - alert_latency_p99_ms: a cancel surge per closed minute; from the moment the watermark in Redis closes the minute
 *   (seen by a 5 ms poller) to the Slack request arriving and to the pub/sub message arriving (the larger of the
 *   two per sample), with the default evaluator poll interval; also reported separately.
 *
 * `npm run bench -- --only alerting` runs it alone.
 */
import { Redis } from 'ioredis';
import { readConfig } from '../lib/config.ts';
import { logger } from '../lib/logger.ts';
import { AlertArrivals, quantile, scratchDatabase, waitWatermark } from './util.ts';
import { dayStart, HOUR, MINUTE, minuteStart } from '../lib/time.ts';
import { aggregatorSpec, AggregatorService } from '../aggregator/index.ts';
import { createBucketReader } from '../aggregator/store/index.ts';
import { createTopic, FakeCdc, testKafka, testProducer } from '../aggregator/testing.ts';
import { alertingSpec, baselineDayStarts, buildAlerting, Evaluator } from '../alerting/index.ts';
import { lastEvaluatedMinute } from '../alerting/risk-store/index.ts';
import { riskStore } from '../alerting/testing/fixtures.ts';
import { dropKeys, FakeSlack } from '../test/harness/index.ts';

interface StackEnv { PG_URL: string; RISK_PG_URL: string; KAFKA_BROKERS: string; REDIS_URL: string }

const MERCHANTS_1X = Number(process.env.BENCH_ALERT_MERCHANTS ?? 100_000);
const BIG = 1000;
const SAMPLES = Number(process.env.BENCH_ALERT_SAMPLES ?? 20);
const TIMED_MINUTES = 5;
const TZ = 'Asia/Seoul';
const PARTITIONS = 12;
const log = logger.child({ component: 'bench-alerting' });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const iso = (ms: number) => new Date(ms).toISOString();


export async function benchAlerting(env: StackEnv, scale: { merchants?: number } = {}): Promise<Record<string, number>> {
  const MERCHANTS = scale.merchants ?? MERCHANTS_1X;
  const stamp = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const scratch = await scratchDatabase(env.RISK_PG_URL, `bench_alerting_${stamp}`);
  const prefix = `bench_al_${stamp}`;
  const topic = `bench_alerting_${stamp}`;
  const aggEnv = {
    KAFKA_BROKERS: env.KAFKA_BROKERS, REDIS_URL: env.REDIS_URL, RISKMON_TOPIC: topic, RISKMON_DLQ_TOPIC: `${topic}_dlq`,
    RISKMON_GROUP: `${topic}_g`, RISKMON_REDIS_PREFIX: prefix, RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_TZ: TZ,
  };
  const kafka = testKafka(env.KAFKA_BROKERS);
  await createTopic(kafka, topic, PARTITIONS);
  const producer = testProducer(kafka);
  await producer.connect();
  const aggregator = new AggregatorService(readConfig(aggregatorSpec, aggEnv), logger.child({ component: 'aggregator' }));
  const aggDone = aggregator.run();
  const redis = new Redis(env.REDIS_URL);
  const sub = new Redis(env.REDIS_URL);
  const reader = createBucketReader(redis, { prefix, partitions: PARTITIONS, hotShards: 8, tz: TZ });
  const slack = await new FakeSlack().start();
  const db = await riskStore(scratch.url);
  const cdc = new FakeCdc(PARTITIONS, 8);
  let ids = 0;
  const pay = (m: string, at: number, amount: bigint, commit = at) =>
    cdc.change('public.payments', 'insert', { payment_id: String(++ids), merchant_id: m, amount: amount.toString(), approved_at: iso(at) }, null, iso(commit));
  const cancel = (m: string, at: number, commit = at) =>
    cdc.change('public.payment_cancels', 'insert', { cancel_id: String(++ids), payment_id: '1', merchant_id: m, amount: '1000', canceled_at: iso(at) }, null, iso(commit));
  const closeMinute = async (M: number) => {
    cdc.heartbeats(iso(M + MINUTE + 5000));
    await cdc.flush(producer, topic);
  };

  try {
    // ---- data: 7 days of history, 100,000 merchants active in the window, 1,000 big (volume_drop) merchants ----
    const Mb = minuteStart(Date.now()) - 5 * MINUTE;
    // Window activity spans Mb-50 … Mb-1: the timed minutes (Mb-1 … Mb+4) each see every merchant in their window.
    const today = dayStart(Mb, TZ);
    const days = baselineDayStarts(today, 7, TZ);
    const t0 = Date.now();
    for (let i = 0; i < MERCHANTS; i++) {
      const m = `m${i}`;
      pay(m, days[i % 7] + (i % 24) * HOUR, 10_000n);
      pay(m, Mb - (1 + (i % 50)) * MINUTE, 10_000n); // in the window of Mb-1 … Mb+8
    }
    for (let i = 0; i < BIG; i++) {
      for (const d of days) pay(`m${i}`, d, 2_000_000_000n);
      pay(`m${i}`, today, 2_000_000_000n); // on track today: same-time baseline ≤ 2e9
    }
    for (let j = 0; j < SAMPLES; j++) {
      for (const d of days) { for (let k = 0; k < 20; k++) pay(`s${j}`, d + k * HOUR, 10_000n); }
      cancel(`s${j}`, days[0]); cancel(`s${j}`, days[1]); cancel(`s${j}`, days[2]);
    }
    await closeMinute(Mb - MINUTE);
    const events = ids;
    await waitWatermark(reader, Mb + 5000);
    log.info({ events, ms: Date.now() - t0 }, 'buckets written through the aggregator');

    // ---- evaluation time per minute (a directly driven evaluator) ----
    const cfg = readConfig(alertingSpec, {
      RISK_PG_URL: scratch.url, REDIS_URL: env.REDIS_URL, RISKMON_REDIS_PREFIX: prefix, RISKMON_TZ: TZ,
      RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_SLACK_WEBHOOK_URL: slack.url, RISKMON_PUBLIC_URL: 'http://localhost:8080',
    });
    const ev = new Evaluator({
      rules: cfg.rules, tz: TZ, allowedLatenessMs: cfg.allowedLatenessMs, maxIngestLagMs: cfg.maxIngestLagMs, replayAfterMs: cfg.replayAfterMs,
      evalPollMs: cfg.evalPollMs, maxCatchUpMinutes: cfg.maxCatchUpMinutes, evaluatorName: cfg.evaluatorName, redisPrefix: prefix, slackEnabled: true,
    }, { reader, db, redis, log });
    const first = await ev.evaluateNext();
    if (!first || first.minute !== Mb - MINUTE) throw new Error(`expected to evaluate ${iso(Mb - MINUTE)} first, got ${first && iso(first.minute)}`);
    const timed: number[] = [];
    let evaluated = first.evaluations;
    for (let i = 0; i < TIMED_MINUTES; i++) {
      await closeMinute(Mb + i * MINUTE);
      await waitWatermark(reader, Mb + i * MINUTE + MINUTE + 5000);
      const r = await ev.evaluateNext();
      if (!r) throw new Error('minute not evaluated');
      timed.push(r.ms);
      evaluated = Math.min(evaluated, r.evaluations);
      log.info({ minute: iso(r.minute), ms: Math.round(r.ms), readMs: Math.round(r.readMs), ruleMs: Math.round(r.ruleMs), commitMs: Math.round(r.commitMs), evaluations: r.evaluations, rows: r.rowsWritten }, 'evaluated');
    }

    // ---- alert latency: a surge per minute through the running services ----
    const arrivals = new AlertArrivals();
    await arrivals.attach(slack, sub, prefix);
    const services = buildAlerting(cfg, { reader, redis, sharedRedis: true });
    const running = Promise.all(services.map((s) => s.run()));
    const toSlack: number[] = [];
    const toPubSub: number[] = [];
    let warmMs = 0;
    try {
      // Warm-up: the new evaluator loads its state and the day's baselines on its first minute.
      const warm = Mb + TIMED_MINUTES * MINUTE;
      const warmFrom = Date.now();
      await closeMinute(warm);
      for (;;) {
        const p = (await lastEvaluatedMinute(db))?.getTime();
        if (p === warm) break;
        await sleep(20);
      }
      warmMs = Date.now() - warmFrom;
      for (let j = 0; j < SAMPLES; j++) {
        const M = Mb + (TIMED_MINUTES + 1 + j) * MINUTE;
        for (let k = 0; k < 30; k++) pay(`s${j}`, M + k * 1000, 10_000n, M + 40_000);
        for (let k = 0; k < 10; k++) cancel(`s${j}`, M + k * 1000, M + 40_000);
        await cdc.flush(producer, topic);
        await sleep(1100); // Slack pacing (1/s) is for bursts: keep it out of the single-alert latency
        await closeMinute(M);
        const closedAt = await waitWatermark(reader, M + MINUTE + 5000);
        const at = await arrivals.both(`s${j}`);
        toSlack.push(at.slack - closedAt);
        toPubSub.push(at.pubsub - closedAt);
      }
    } finally {
      await Promise.all(services.map((s) => s.stop()));
      await running;
    }
    const both = toSlack.map((x, i) => Math.max(x, toPubSub[i]));
    return {
      evaluation_ms_per_minute_100k: Math.round(quantile(timed, 0.5)),
      evaluation_ms_first_minute_100k: Math.round(first.ms),
      evaluation_merchants_per_minute: evaluated,
      services_first_minute_ms: warmMs,
      alert_latency_p99_ms: Math.round(quantile(both, 0.99)),
      alert_latency_p50_ms: Math.round(quantile(both, 0.5)),
      alert_latency_slack_p99_ms: Math.round(quantile(toSlack, 0.99)),
      alert_latency_pubsub_p99_ms: Math.round(quantile(toPubSub, 0.99)),
      alert_latency_samples: both.length,
    };
  } finally {
    await aggregator.stop();
    await aggDone.catch(() => {});
    await producer.disconnect();
    await dropKeys(redis, `${prefix}:*`).catch(() => {});
    const kadmin = kafka.admin();
    await kadmin.connect().then(() => kadmin.deleteTopics({ topics: [topic, `${topic}_dlq`] })).catch(() => {}).finally(() => kadmin.disconnect());
    sub.disconnect();
    redis.disconnect();
    await slack.stop();
    await db.end().catch(() => {});
    await scratch.drop();
  }
}
