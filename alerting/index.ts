/**
 * `riskmon alerting`: the rule evaluator and the Slack sender (the latter only when RISKMON_SLACK_WEBHOOK_URL is
 * set). Migrates the risk store first. The bucket reader is the bucket store's (aggregator/store); tests and
 * benchmarks may pass their own through `buildAlerting`.
 */
import { createRedis, verifyRedis, type RedisClient } from '../lib/redis.ts';
import { createPool, whenPgAnswers } from '../lib/pg.ts';
import { sourceDirectory } from './directory.ts';
import { settlementOf, createBucketReader, type BucketReader } from '../aggregator/store/index.ts';
import { TopicMinutes } from '../aggregator/index.ts';
import { createKafka } from '../lib/kafka/index.ts';
import { envWithClock, processClock, type Clock } from '../lib/clock.ts';
import { readConfig } from '../lib/config.ts';
import { componentLogger } from '../lib/logger.ts';
import { serveMetrics } from '../lib/metrics.ts';
import { migrate } from '../lib/migrate.ts';
import type { Service } from '../lib/service.ts';
import { alertingSpec, checkWebhookConfig, type AlertingConfig } from './config.ts';
import { Evaluator } from './evaluator.ts';
import { SlackSender } from './slack/sender.ts';
import { WebhookDeliverer } from './webhooks/deliverer.ts';
import { BacktestRunner } from './backtest/jobs.ts';
import { BacktestThread } from './backtest/thread.ts';
import { seedRules } from './risk-store/index.ts';

export { alertingSpec, checkWebhookConfig, type AlertingConfig } from './config.ts';
// For the benchmarks: the evaluator driven minute by minute, and the baseline days it reads.
export { baselineDayStarts } from './baseline.ts';
export { Evaluator } from './evaluator.ts';
export { WindowSums } from './window.ts';
export { ExposureTracker, exposureInstant, PREPARE_BUDGET_MS } from './exposure.ts';
export { publishAlertUpdate } from './fanout.ts';
export type { AlertUpdateMessage } from '../lib/alert-message.ts';
// For the API: the rules config, and what a backtest request may cover. The risk store's reads and writes (alerts,
// triage, silences, rule versions, shadows, backtest jobs, audit) are alerting/risk-store/index.ts.
export { defaultRules, parseRules, RulesError, type RulesConfig } from './rules/config.ts';
export { runBacktest } from './backtest/engine.ts';
export { evaluateCancelRateSpike } from './rules/cancel-rate-spike.ts';
export { BACKTEST_DAYS, BacktestRequestError, BacktestRunner, backtestablePeriod, checkPeriod } from './backtest/jobs.ts';
// Kept for callers that seed or queue through the component's face (tests, benchmarks).
export { queueBacktest, seedRules } from './risk-store/index.ts';
// For test fixtures that play the settlement system (test/harness/settlement.ts).
export { WebhookDeliverer } from './webhooks/deliverer.ts';

export async function start(env: NodeJS.ProcessEnv = process.env): Promise<Service[]> {
  const cfg = readConfig(alertingSpec, env);
  const log = componentLogger('alerting');
  // started while PostgreSQL restarts: wait for it rather than exit (a supervisor would start it again and again)
  await whenPgAnswers(() => migrate(cfg.riskPgUrl, 'risk', log), log, 'risk store migrations');
  // The first rules version, when the store holds none: RISKMON_RULES (or the defaults).
  await whenPgAnswers(async () => {
    const seedDb = createPool({ connectionString: cfg.riskPgUrl, max: 1, application_name: 'riskmon-alerting' }, log);
    try { await seedRules(seedDb, cfg.rules); } finally { await seedDb.end(); }
  }, log, 'rules');
  await verifyRedis(cfg);
  const redis = createRedis(cfg, { maxRetriesPerRequest: null, connectionName: 'riskmon-alerting' });
  const now = processClock(cfg.clock, log);
  const reader: BucketReader = createBucketReader(redis, { prefix: cfg.redisPrefix, partitions: cfg.partitions, hotShards: cfg.hotShards, tz: cfg.tz, now });
  if (cfg.metricsPort) await serveMetrics(cfg.metricsPort, cfg.metricsHost);
  return buildAlerting(cfg, { reader, redis, backtestEnv: envWithClock(env, now), now });
}

/**
 * The services over given connections. They own `redis` and the pool they create: stopping the last of them
 * closes both. With `backtestEnv` (the environment `cfg` was read from) backtests run in a worker thread of their
 * own, as `riskmon alerting` runs them; without it (tests and benchmarks that pass a bucket reader of their own) in
 * this thread, yielding to the evaluator.
 */
export function buildAlerting(
  cfg: AlertingConfig, deps: { reader: BucketReader; redis: RedisClient; now?: Clock; sharedRedis?: boolean; backtestEnv?: NodeJS.ProcessEnv },
): Service[] {
  checkWebhookConfig(cfg);
  const log = componentLogger('alerting');
  // evaluator, backtests, and one transaction per outbox sender (each held across its HTTP request)
  const db = createPool({ connectionString: cfg.riskPgUrl, max: 6, application_name: 'riskmon-alerting' }, log);
  // Merchant categories for new merchants' cohorts: the source's merchants table, read once a day (directory.ts).
  const sourceDb = cfg.pgUrl ? createPool({ connectionString: cfg.pgUrl, max: 1, application_name: 'riskmon-alerting-directory' }, log) : null;
  const directory = sourceDb ? sourceDirectory(sourceDb, cfg.mapping) : undefined;
  const thread = deps.backtestEnv
    ? new BacktestThread({ env: deps.backtestEnv, heapMb: cfg.backtestHeapMb, pollMs: 500 }, { db, log: log.child({ service: 'backtests' }) })
    : null;
  const evaluator = new Evaluator({
    rules: cfg.rules, tz: cfg.tz, allowedLatenessMs: cfg.allowedLatenessMs, maxIngestLagMs: cfg.maxIngestLagMs,
    replayAfterMs: cfg.replayAfterMs, evalPollMs: cfg.evalPollMs, baselineRefreshMs: cfg.baselineRefreshMs, maxCatchUpMinutes: cfg.maxCatchUpMinutes,
    evaluatorName: cfg.evaluatorName, redisPrefix: cfg.redisPrefix, slackEnabled: Boolean(cfg.slackWebhookUrl),
    alertWebhook: Boolean(cfg.alertWebhookUrl),
  }, {
    reader: deps.reader, db, redis: deps.redis, log: log.child({ service: 'evaluator' }), now: deps.now, directory, settlement: settlementOf(cfg),
    onBusy: thread ? (b) => thread.setLiveBusy(b) : undefined,
  });
  // Backtests run in their own thread (backtest/thread.ts), or here, beside the evaluator and yielding to it.
  const backtests = thread ?? new BacktestRunner(
    { tz: cfg.tz, maxIngestLagMs: cfg.maxIngestLagMs, evaluatorName: cfg.evaluatorName, pollMs: 500, settlement: settlementOf(cfg) },
    {
      reader: deps.reader, directory, db, log: log.child({ service: 'backtests' }), liveBusy: () => evaluator.busy,
      topicMinutes: cfg.kafkaBrokers.length
        ? (lo, hi) => TopicMinutes.open({ kafka: createKafka(cfg, { clientId: 'riskmon-backtest' }), topic: cfg.topic, mapping: cfg.mapping }, lo, hi)
        : undefined,
    },
  );
  const services: Service[] = [evaluator, backtests];
  if (cfg.slackWebhookUrl) {
    services.push(new SlackSender({
      webhookUrl: cfg.slackWebhookUrl, publicUrl: cfg.publicUrl, minIntervalMs: cfg.slackMinIntervalMs,
      digestOver: cfg.slackDigestOver, maxAttempts: cfg.slackMaxAttempts, timeoutMs: cfg.slackTimeoutMs,
    }, { db, riskPgUrl: cfg.riskPgUrl, log: log.child({ service: 'slack' }) }));
  } else {
    log.info('RISKMON_SLACK_WEBHOOK_URL is not set: alerts are stored and pushed to the dashboard, not sent to Slack');
  }
  // Signed webhooks (webhooks/deliverer.ts): payout actions to the settlement system, alert transitions to whoever asked.
  const schedule = { baseMs: cfg.webhookRetryBaseMs, maxMs: cfg.webhookRetryMaxMs, retryForMs: cfg.webhookRetryForMs };
  for (const [channel, url, secrets] of [
    ['action', cfg.actionWebhookUrl, [cfg.actionWebhookSecret, cfg.actionWebhookSecretPrevious]],
    ['alert', cfg.alertWebhookUrl, [cfg.alertWebhookSecret, cfg.alertWebhookSecretPrevious]],
  ] as const) {
    if (!url) continue;
    services.push(new WebhookDeliverer(
      { channel, url, secrets: [...secrets], timeoutMs: cfg.webhookTimeoutMs, schedule, batch: cfg.webhookBatch },
      { db, riskPgUrl: cfg.riskPgUrl, log: log.child({ service: `webhooks-${channel}` }), now: deps.now },
    ));
  }
  if (!cfg.actionWebhookUrl) log.info('RISKMON_ACTION_WEBHOOK_URL is not set: payout holds and releases are stored and wait in the outbox until it is');
  // Close the shared connections once every service has stopped.
  let running = services.length;
  const closeOne = async () => {
    if (--running > 0) return;
    await db.end().catch(() => {});
    await sourceDb?.end().catch(() => {});
    if (!deps.sharedRedis) deps.redis.disconnect();
  };
  return services.map((s) => ({
    name: s.name,
    run: async () => { try { await s.run(); } finally { await closeOne(); } },
    stop: () => s.stop(),
    drain: s.drain ? () => s.drain!() : undefined,
  }));
}
