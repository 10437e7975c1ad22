/**
 * The Slack outbox (`notifications`): the evaluator's minute commit adds its rows (minutes.ts) and NOTIFYs
 * `riskmon_notifications`; the sender claims the due ones and records each outcome in the same transaction.
 */
import type pg from 'pg';
import type { Alert, AlertTransition } from '../../lib/alert-message.ts';
import type { NotificationView } from '../slack/message.ts';
import { ALERT_COLUMNS, alertJson, type AlertRow } from './alerts.ts';

/** The channel the minute commit NOTIFYs when it adds a pending row; the sender LISTENs on it. */
export const NOTIFICATIONS_CHANNEL = 'riskmon_notifications';

export interface DueNotification extends NotificationView { attempts: number }

/**
 * Claims up to `limit` due pending rows, oldest first, with FOR UPDATE SKIP LOCKED (two senders never take the same
 * row), with the alert's triage state as it is now. Call it inside a transaction (inTransaction).
 */
export async function claimDueNotifications(client: pg.PoolClient, limit: number): Promise<DueNotification[]> {
  const { rows } = await client.query<AlertRow & { n_id: string; attempts: number; kind: AlertTransition; minute: Date; t_evidence: unknown }>(
    `SELECT n.id::text AS n_id, n.attempts, t.kind, t.minute, t.evidence AS t_evidence, ${ALERT_COLUMNS}
       FROM notifications n JOIN alert_transitions t ON t.id = n.transition_id JOIN alerts a ON a.id = t.alert_id
      WHERE n.status = 'pending' AND n.channel = 'slack' AND n.next_attempt_at <= now()
      ORDER BY n.id LIMIT $1 FOR UPDATE OF n SKIP LOCKED`,
    [limit],
  );
  return rows.map((r) => {
    const alert = alertJson(r);
    return {
      id: r.n_id, attempts: r.attempts, kind: r.kind, minute: r.minute.toISOString(), evidence: r.t_evidence as Alert['evidence'],
      alertId: alert.id, rule: alert.rule, merchantId: alert.merchantId, ack: alert.ack, assignee: alert.assignee,
      exposureAtFiring: alert.exposureAtFiring, receivableNow: alert.receivableNow,
    };
  });
}

/** Slack notifications not yet sent nor given up (waiting, or being sent): 0 once the outbox has settled. */
export async function pendingNotifications(db: pg.Pool | pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM notifications WHERE status = 'pending' AND channel = 'slack'`);
  return rows[0].n;
}

export interface NotificationOutcome {
  status: 'sent' | 'failed' | 'pending';
  /** The HTTP status of the attempt (null: no response). */
  httpStatus: number | null;
  /** 1 for an attempt, 0 for a pause that is not one (a 429). */
  counted: number;
  /** How long a row kept pending waits before its next attempt. */
  delayMs: number;
  reason: string | null;
}

/** Records the outcome of one message on its claimed rows, in the claiming transaction. */
export async function recordNotificationOutcome(client: pg.PoolClient, ids: string[], o: NotificationOutcome): Promise<void> {
  await client.query(
    `UPDATE notifications SET attempts = attempts + $5::int, last_status = $2, status = $6::text, reason = $4::text,
            sent_at = CASE WHEN $6::text = 'sent' THEN now() ELSE sent_at END,
            next_attempt_at = CASE WHEN $6::text = 'pending' THEN now() + make_interval(secs => $3::float8 / 1000) ELSE next_attempt_at END
      WHERE id = ANY($1::bigint[])`,
    [ids, o.httpStatus, o.delayMs, o.reason, o.counted, o.status],
  );
}
