/** The alerting component's Prometheus metrics (registered once per process on the shared registry). */
import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../lib/metrics.ts';

function once<T>(name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export const evaluationsTotal = once('riskmon_evaluations_total', () => new Counter({
  name: 'riskmon_evaluations_total', help: 'rule evaluations by rule and status', labelNames: ['rule', 'status'], registers: [registry],
}));
export const minutesEvaluated = once('riskmon_evaluator_runs_total', () => new Counter({
  name: 'riskmon_evaluator_runs_total', help: 'evaluation runs, one per closed minute (replay: a minute older than the replay bound)', labelNames: ['replay'], registers: [registry],
}));
export const alertsFiring = once('riskmon_alerts', () => new Gauge({
  name: 'riskmon_alerts', help: 'alerts currently in a state, by rule (firing)', labelNames: ['rule', 'state'], registers: [registry],
}));
export const transitionsTotal = once('riskmon_alert_transitions_total', () => new Counter({
  name: 'riskmon_alert_transitions_total', help: 'alert transitions by rule and kind', labelNames: ['rule', 'kind'], registers: [registry],
}));
export const evaluationDuration = once('riskmon_evaluation_duration_seconds', () => new Histogram({
  name: 'riskmon_evaluation_duration_seconds', help: 'time to evaluate one closed minute (reads, rules, commit)',
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
}));
export const transitionLatency = once('riskmon_alert_transition_latency_seconds', () => new Histogram({
  name: 'riskmon_alert_transition_latency_seconds', help: 'minute closing (end + allowed lateness) to the committed transition, live minutes only',
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers: [registry],
}));
export const evaluationStage = once('riskmon_evaluation_stage_seconds', () => new Histogram({
  name: 'riskmon_evaluation_stage_seconds',
  help: 'one live minute\'s path from its close to the pub/sub message, by stage: detect (how far past the close the watermark was when the evaluator read it: the poll\'s delay), ingest (wall clock − watermark then: not on the path from the close, shown for context), read (active rules, window, baselines, silences), decide (rules and lifecycle), check (Redis not rolled back), commit (risk-store transaction with the outbox), publish (pub/sub)',
  labelNames: ['stage'], buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5], registers: [registry],
}));
export const evaluatorLagSeconds = once('riskmon_evaluator_lag_seconds', () => new Gauge({
  name: 'riskmon_evaluator_lag_seconds', help: 'closed minutes not yet evaluated, in seconds (60 per minute)', registers: [registry],
}));
export const exposureUnread = once('riskmon_exposure_unread_merchants', () => new Gauge({
  name: 'riskmon_exposure_unread_merchants', help: 'merchants money at risk has not read since the evaluator started over (their receivable is not judged yet; read within minutes)', registers: [registry],
}));
export const slackMessages = once('riskmon_slack_messages_total', () => new Counter({
  name: 'riskmon_slack_messages_total', help: 'Slack webhook requests by result (sent, failed, rate_limited, retry)', labelNames: ['result'], registers: [registry],
}));
export const waitingForBackfill = once('riskmon_evaluator_waiting_for_backfill', () => new Gauge({
  name: 'riskmon_evaluator_waiting_for_backfill', help: '1 while a history backfill runs and no merchant is judged', registers: [registry],
}));
export const webhookAttempts = once('riskmon_webhook_attempts_total', () => new Counter({
  name: 'riskmon_webhook_attempts_total', help: 'outgoing webhook requests by channel (action, alert) and result (delivered, retry, failed)', labelNames: ['channel', 'result'], registers: [registry],
}));
