/** The alerting component's options (docs/configuration.md), composed with the shared ones. */
import { commonSpec, connections, connectionSpec, int, json, mappingOption, metricsSpec, secret, str, url, type ConfigOf } from '../lib/config.ts';
import { defaultRules, parseRules } from './rules/config.ts';

export const alertingSpec = {
  ...connections('riskPgUrl', 'redisUrl'),
  ...commonSpec,
  // Optional here: backtests rebuild minutes older than the minute tier from the retained topic.
  kafkaBrokers: { ...connectionSpec.kafkaBrokers, default: [] as string[], description: 'Kafka bootstrap brokers: backtests rebuild minutes the minute tier no longer holds from the retained topic (unset: backtests cover only what the minute tier holds)' },
  mapping: mappingOption,
  pgUrl: secret(url('PG_URL', 'the source PostgreSQL, read once a day for merchant categories (new merchants are judged against their category\'s cohort); unset: one cohort per size band', ['postgres', 'postgresql'], '')),
  rules: json('RISKMON_RULES', 'rule thresholds, per-merchant overrides and version (see docs/contracts.md "Rules")', defaultRules(), parseRules),
  slackWebhookUrl: secret(url('RISKMON_SLACK_WEBHOOK_URL', 'Slack incoming webhook; no Slack messages when unset', ['http', 'https'], '')),
  publicUrl: str('RISKMON_PUBLIC_URL', 'base URL of the dashboard, for links in Slack messages', 'http://localhost:8080'),
  maxIngestLagMs: int('RISKMON_MAX_INGEST_LAG_MS', 'volume_drop is not evaluated while the watermark is further than this behind the wall clock', 120_000, 1000, 86_400_000),
  replayAfterMs: int('RISKMON_ALERT_REPLAY_AFTER_MS', 'a minute whose end is further than this behind the wall clock is history: its transitions are stored, never sent to Slack', 600_000, 0, 86_400_000 * 30),
  baselineRefreshMs: int('RISKMON_BASELINE_REFRESH_MS', 'the 7-day baselines are reloaded (in the background) this often, so late history reaches them', 900_000, 10_000, 86_400_000),
  evalPollMs: int('RISKMON_EVAL_POLL_MS', 'how often the evaluator reads the watermark', 100, 10, 60_000),
  maxCatchUpMinutes: int('RISKMON_EVAL_MAX_CATCHUP_MINUTES', 'at most this many closed minutes are caught up after downtime; older ones are skipped', 1440, 1, 20_160),
  evaluatorName: str('RISKMON_EVALUATOR_NAME', 'name of the progress row (one evaluator per name)', 'default'),
  slackMinIntervalMs: int('RISKMON_SLACK_MIN_INTERVAL_MS', 'at most one Slack message per this interval (Slack allows 1/s per webhook)', 1000, 0, 600_000),
  slackDigestOver: int('RISKMON_SLACK_DIGEST_OVER', 'more than this many pending notifications at once are sent as one digest', 3, 1, 1000),
  slackMaxAttempts: int('RISKMON_SLACK_MAX_ATTEMPTS', 'a notification failing with 5xx or a network error this many times is marked failed', 20, 1, 1000),
  slackTimeoutMs: int('RISKMON_SLACK_TIMEOUT_MS', 'timeout of one Slack request', 10_000, 100, 120_000),
  backtestHeapMb: int('RISKMON_BACKTEST_HEAP_MB', 'heap limit (MiB) of the thread backtests run in: a backtest that needs more is failed saying so, and live alerting goes on', 256, 32, 16_384),
  ...metricsSpec,
};

export type AlertingConfig = ConfigOf<typeof alertingSpec>;
