/** The alerting component's options (docs/configuration.md), composed with the shared ones. */
import { commonSpec, ConfigError, connections, connectionSpec, int, json, mappingOption, metricsSpec, secret, settlementDaysOption, str, url, type ConfigOf, type Option } from '../lib/config.ts';
import { defaultRules, parseRules } from './rules/config.ts';

/** A webhook signing secret: 16 to 512 characters ('' when unset). */
function signingSecret(env: string, description: string): Option<string> {
  return secret({
    env, description, default: '', expects: 'a random string of 16 to 512 characters (e.g. `openssl rand -hex 32`)',
    parse: (s) => {
      if (s.length < 16) throw new Error('too short to be a secret');
      if (s.length > 512) throw new Error('too long');
      return s;
    },
  });
}

export const alertingSpec = {
  ...connections('riskPgUrl', 'redisUrl'),
  ...commonSpec,
  // Optional here: backtests rebuild minutes older than the minute tier from the retained topic.
  kafkaBrokers: { ...connectionSpec.kafkaBrokers, default: [] as string[], description: 'Kafka bootstrap brokers: backtests rebuild minutes the minute tier no longer holds from the retained topic (unset: backtests cover only what the minute tier holds)' },
  mapping: mappingOption,
  settlementDays: settlementDaysOption,
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
  actionWebhookUrl: secret(url('RISKMON_ACTION_WEBHOOK_URL', 'the settlement system\'s endpoint for payout holds and releases (signed webhooks, docs/contracts.md "Webhooks"); unset: actions wait in the outbox until it is set', ['http', 'https'], '')),
  actionWebhookSecret: signingSecret('RISKMON_ACTION_WEBHOOK_SECRET', 'the key of the action webhook\'s HMAC-SHA256 signature (required with RISKMON_ACTION_WEBHOOK_URL)'),
  actionWebhookSecretPrevious: signingSecret('RISKMON_ACTION_WEBHOOK_SECRET_PREVIOUS', 'during a rotation, the previous action webhook secret: requests carry a signature under each (docs/security.md)'),
  alertWebhookUrl: secret(url('RISKMON_ALERT_WEBHOOK_URL', 'an endpoint that receives every alert transition (fired, renotified, resolved) as a signed webhook, besides or instead of Slack; unset: none', ['http', 'https'], '')),
  alertWebhookSecret: signingSecret('RISKMON_ALERT_WEBHOOK_SECRET', 'the key of the alert webhook\'s signature (required with RISKMON_ALERT_WEBHOOK_URL; its own, so an alert receiver cannot sign payout actions)'),
  alertWebhookSecretPrevious: signingSecret('RISKMON_ALERT_WEBHOOK_SECRET_PREVIOUS', 'during a rotation, the previous alert webhook secret'),
  webhookTimeoutMs: int('RISKMON_WEBHOOK_TIMEOUT_MS', 'timeout of one webhook request (connect to the end of the answer)', 10_000, 100, 120_000),
  webhookRetryBaseMs: int('RISKMON_WEBHOOK_RETRY_BASE_MS', 'first retry delay of a webhook (408, 429, 5xx, no answer); it doubles with each attempt', 1000, 10, 600_000),
  webhookRetryMaxMs: int('RISKMON_WEBHOOK_RETRY_MAX_MS', 'longest delay between two attempts of a webhook', 300_000, 100, 3_600_000),
  webhookRetryForMs: int('RISKMON_WEBHOOK_RETRY_FOR_MS', 'a webhook not delivered this long after its first attempt is failed (dead-lettered)', 86_400_000, 1000, 30 * 86_400_000),
  webhookBatch: int('RISKMON_WEBHOOK_BATCH', 'webhook events in flight at once per endpoint (each from a different merchant or alert: one key\'s events go one at a time, in order)', 8, 1, 100),
  ...metricsSpec,
};

/** The checks across options: a webhook URL needs its secret, and a previous secret a current one. */
export function checkWebhookConfig(cfg: Pick<AlertingConfig, 'actionWebhookUrl' | 'actionWebhookSecret' | 'actionWebhookSecretPrevious' | 'alertWebhookUrl' | 'alertWebhookSecret' | 'alertWebhookSecretPrevious'>): void {
  const problems: string[] = [];
  for (const [name, u, s, p] of [
    ['ACTION', cfg.actionWebhookUrl, cfg.actionWebhookSecret, cfg.actionWebhookSecretPrevious],
    ['ALERT', cfg.alertWebhookUrl, cfg.alertWebhookSecret, cfg.alertWebhookSecretPrevious],
  ] as const) {
    if (u && !s) problems.push(`RISKMON_${name}_WEBHOOK_URL is set without RISKMON_${name}_WEBHOOK_SECRET: every request is signed; set a secret of 16+ characters and give it to the receiver`);
    if (p && !s) problems.push(`RISKMON_${name}_WEBHOOK_SECRET_PREVIOUS is set without RISKMON_${name}_WEBHOOK_SECRET: during a rotation the new secret goes in RISKMON_${name}_WEBHOOK_SECRET`);
    if (p && p === s) problems.push(`RISKMON_${name}_WEBHOOK_SECRET_PREVIOUS equals RISKMON_${name}_WEBHOOK_SECRET: unset the previous one once the rotation is done`);
  }
  if (problems.length) throw new ConfigError(problems);
}

export type AlertingConfig = ConfigOf<typeof alertingSpec>;
