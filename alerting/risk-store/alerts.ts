/**
 * Alerts as the API and the WebSocket read them: the one alert row → JSON (`alertJson`, the shape of
 * lib/alert-message.ts), the list with its filters and keyset page, one alert with its transitions, the transitions
 * a reconnecting client missed, and the counts `riskmon status` shows.
 */
import type pg from 'pg';
import type { Alert, AlertMessage, AlertTransition } from '../../lib/alert-message.ts';
import type { Exposure } from '../../lib/exposure.ts';
import { TRIAGE_COLUMNS, triageOf, type TriageRow } from './triage.ts';

export interface AlertRow extends TriageRow {
  id: string; rule: string; merchant_id: string; state: string; fired_at: Date; resolved_at: Date | null; evidence: unknown; rule_version: string;
  /** the merchant's exposure when the alert fired (null: fired before exposure was recorded) */
  exposure_at_fire?: Exposure | null;
  /** the merchant's receivable now (merchant_exposure; '0' when it owes nothing) */
  receivable_now?: string | null;
}

/** Columns of `alerts a` that alertJson reads: the alert and its triage state. */
export const ALERT_COLUMNS = `a.id, a.rule, a.merchant_id, a.state, a.fired_at, a.resolved_at, a.evidence, a.rule_version, a.exposure_at_fire,
  coalesce((SELECT e.receivable FROM merchant_exposure e WHERE e.merchant_id = a.merchant_id), 0)::text AS receivable_now, ${TRIAGE_COLUMNS}`;

/** The alert row as JSON: the only place an alert is shaped. */
export function alertJson(r: AlertRow): Alert {
  return {
    id: String(r.id), rule: r.rule, merchantId: r.merchant_id, state: r.state,
    firedAt: r.fired_at.toISOString(), resolvedAt: r.resolved_at ? r.resolved_at.toISOString() : null, evidence: r.evidence as Alert['evidence'],
    ruleVersion: r.rule_version, ...triageOf(r),
    exposureAtFiring: r.exposure_at_fire ?? null, receivableNow: r.receivable_now ?? '0',
  };
}

export interface AlertFilter {
  merchantId?: string;
  rule?: string;
  state?: string;
  assignee?: string;
  acked?: boolean;
  /** 'none': alerts without a disposition. */
  disposition?: string;
  /** Bounds of the fired time, [from, to). */
  from?: Date;
  to?: Date;
  /** Keyset: the page starts after this (fired_at as text, id) of the previous page's last alert. */
  after?: { firedAt: string; id: string };
  limit: number;
  /** 'receivable': the merchants' receivable now, largest first (one page: no `next`) */
  sort?: 'fired' | 'receivable';
}

/** Alerts, newest first (fired time, then id); `next` is the key to pass as `after` for the next page, null on the last. */
export async function listAlerts(db: pg.Pool, f: AlertFilter): Promise<{ items: Alert[]; next: { firedAt: string; id: string } | null }> {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, v: unknown) => { args.push(v); where.push(sql.replace('?', `$${args.length}`)); };
  if (f.merchantId) add('a.merchant_id = ?', f.merchantId);
  if (f.rule) add('a.rule = ?', f.rule);
  if (f.state) add('a.state = ?', f.state);
  if (f.assignee) add('a.assignee = ?', f.assignee);
  if (f.acked !== undefined) where.push(f.acked ? 'a.ack_at IS NOT NULL' : 'a.ack_at IS NULL');
  if (f.disposition === 'none') where.push('a.disposition IS NULL');
  else if (f.disposition) add('a.disposition = ?', f.disposition);
  if (f.from) add('a.fired_at >= ?', f.from);
  if (f.to) add('a.fired_at < ?', f.to);
  if (f.after) {
    args.push(f.after.firedAt, f.after.id);
    where.push(`(a.fired_at, a.id) < ($${args.length - 1}::timestamptz, $${args.length}::bigint)`);
  }
  args.push(f.limit + 1);
  if (f.sort === 'receivable') {
    // one bounded page: the receivable moves every minute, so a keyset over it would skip or repeat alerts
    args[args.length - 1] = f.limit;
    const { rows } = await db.query<AlertRow>(
      `SELECT * FROM (SELECT ${ALERT_COLUMNS} FROM alerts a ${where.length ? `WHERE ${where.join(' AND ')}` : ''}) x
        ORDER BY x.receivable_now::bigint DESC, x.fired_at DESC, x.id DESC LIMIT $${args.length}`, args);
    return { items: rows.map(alertJson), next: null };
  }
  const { rows } = await db.query<AlertRow & { fired_key: string }>(
    `SELECT ${ALERT_COLUMNS}, a.fired_at::text AS fired_key FROM alerts a ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY a.fired_at DESC, a.id DESC LIMIT $${args.length}`, args);
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  return { items: page.map(alertJson), next: more && last ? { firedAt: last.fired_key, id: String(last.id) } : null };
}

export async function getAlert(db: pg.Pool, id: string): Promise<Alert | null> {
  const { rows } = await db.query<AlertRow>(`SELECT ${ALERT_COLUMNS} FROM alerts a WHERE a.id = $1`, [id]);
  return rows[0] ? alertJson(rows[0]) : null;
}

export interface TransitionJson { id: string; kind: string; minute: string; at: string; ruleVersion: string; evidence: Alert['evidence'] }

/** An alert's transitions, oldest first (a transition written before rule versions existed shows the alert's). */
export async function alertTransitions(db: pg.Pool, alert: Pick<Alert, 'id' | 'ruleVersion'>): Promise<TransitionJson[]> {
  const { rows } = await db.query<{ id: string; kind: string; minute: Date; created_at: Date; rule_version: string; evidence: Alert['evidence'] }>(
    'SELECT t.id::text, t.kind, t.minute, t.created_at, t.rule_version, t.evidence FROM alert_transitions t WHERE t.alert_id = $1 ORDER BY t.id', [alert.id]);
  return rows.map((r) => ({ id: r.id, kind: r.kind, minute: r.minute.toISOString(), at: r.created_at.toISOString(), ruleVersion: r.rule_version || alert.ruleVersion, evidence: r.evidence }));
}

/** Transitions with id > after, oldest first, at most `limit`, in the shape of the live channel. */
export async function transitionsSince(db: pg.Pool, after: number, limit: number): Promise<AlertMessage[]> {
  const { rows } = await db.query<AlertRow & { event_id: string; kind: string; t_evidence: unknown }>(
    `SELECT t.id AS event_id, t.kind, t.evidence AS t_evidence, ${ALERT_COLUMNS}
       FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id
      WHERE t.id > $1 ORDER BY t.id LIMIT ${Number(limit)}`, [after]);
  return rows.map((r) => ({
    type: 'alert', eventId: Number(r.event_id), transition: r.kind as AlertTransition,
    alert: { ...alertJson(r), evidence: (r.t_evidence ?? r.evidence) as Alert['evidence'] },
  }));
}

/** Firing alerts and pending Slack notifications, for `riskmon status`. */
export async function alertCounts(db: Pick<pg.Pool, 'query'>): Promise<{ firing: number; pendingNotifications: number }> {
  const { rows } = await db.query(
    `SELECT (SELECT count(*) FROM alerts WHERE state = 'firing')::int AS firing,
            (SELECT count(*) FROM notifications WHERE status = 'pending')::int AS pending`);
  return { firing: rows[0].firing as number, pendingNotifications: rows[0].pending as number };
}
