/**
 * The risk store: riskmon's own PostgreSQL tables (sql/risk/*.sql) and every read and write of them. Nothing else
 * runs SQL on these tables (test/boundaries.test.ts checks it by table name); the evaluator, the backtests, the
 * Slack sender and the API call the functions here.
 *
 * | file | tables |
 * |---|---|
 * | minutes.ts | the evaluator's minute commit: alerts, alert_transitions, notifications (the outbox), evaluations, evaluator_progress, evaluated_minutes, alert_clear_log |
 * | triage.ts | alert_triage and the triage columns of alerts |
 * | silences.ts | silences |
 * | rules.ts | rule_versions, rule_activations |
 * | holds.ts | holds (each action with its webhook outbox row) |
 * | webhooks.ts | webhook_outbox (payout actions and alert transitions to other systems) |
 */
export { inTransaction } from '../../lib/pg.ts';
export {
  commitMinute, firingAt, isQuietSignature, keyOf, lastEvaluatedMinute, liveAlerts, liveIngestLags, loadState, ProgressConflict, signatureOf,
  type Committed, type EvaluationRow, type FiringAlert, type MinuteWrite, type PeriodAlert, type StoredState, type TransitionWrite,
} from './minutes.ts';
export {
  applyTriage, DISPOSITIONS, NAME_MAX, NOTE_MAX, notesOf, precisionOf, ruleQuality, TRIAGE_COLUMNS, triageHistory, triageOf,
  type Disposition, type Note, type RuleQuality, type Triage, type TriageAction, type TriageEvent, type TriageRow,
} from './triage.ts';
export { activeSilences, silenceFor, type Silence } from './silences.ts';
export {
  activate, activationId, activeRules, configOf, createDraft, getVersion, listVersions, seedRules, storedConfig,
  type ActiveRules, type Queryable, type VersionInfo,
} from './rules.ts';
export {
  claimDueNotifications, NOTIFICATIONS_CHANNEL, pendingNotifications, recordNotificationOutcome, type DueNotification, type NotificationOutcome,
} from './outbox.ts';
export {
  commitShadowMinute, currentShadow, loadShadow, shadowAlerts, startShadow, stopShadow,
  type ShadowAlert, type ShadowInfo, type ShadowMinuteWrite,
} from './shadows.ts';
export {
  alertsHaveDispositions, backtestQueue, cancelAllBacktests, cancelBacktest, claimNextBacktest, failBacktest, finishBacktest, getBacktest, listBacktests, queueBacktest,
  openBacktestsOf, reportBacktestProgress, requeueBacktest, requeueRunningBacktests, type BacktestJob,
} from './backtests.ts';
export { clearExposures, storedReceivables, topExposures, writeExposures } from './exposure.ts';
export { alertCounts, alertJson, alertTransitions, getAlert, listAlerts, transitionsSince, type AlertFilter, type TransitionJson } from './alerts.ts';
export { createSilence, deleteSilence, listSilences, type NewSilence, type SilenceJson } from './silences.ts';
export { listAudit, recordAudit, type AuditEntry, type AuditFilter, type AuditItem } from './audit.ts';
export { merchantEvaluations, topEvaluations, type EvaluationJson, type RankedEvaluation } from './evaluations.ts';
export {
  createHold, getHold, HOLD_REASON_MAX, HoldAlertMismatch, HoldConflict, HoldReleased, holdsOf, listHolds, releaseHold,
  type HoldFilter, type HoldJson, type HoldState, type NewHold,
} from './holds.ts';
export {
  claimDueWebhooks, enqueueWebhooks, listWebhookDeliveries, NotFailed, recordWebhookOutcome, resolveFailedWebhook, webhookCounts, WEBHOOKS_CHANNEL,
  type DeliveryFilter, type DeliveryStatus, type DueWebhook, type NewWebhookRow, type WebhookChannel, type WebhookDelivery, type WebhookOutcome,
} from './webhooks.ts';
