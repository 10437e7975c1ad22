/**
 * The evaluator's side of the risk store. Everything one closed minute causes — new and changed alerts, their
 * transitions, the Slack outbox rows, changed evaluation rows, and the progress marker — is written in one
 * transaction, so a crash re-evaluates the minute from scratch and nothing is lost or doubled.
 */
import type { Evidence } from '../../lib/evidence.ts';
import type pg from 'pg';
import type { AlertMessage } from '../../lib/alert-message.ts';
import type { AlertLife, TransitionKind } from '../lifecycle.ts';
import type { RuleName } from '../rules/config.ts';
import type { Evaluation } from '../rules/types.ts';
import { inTransaction } from '../../lib/pg.ts';
import { ALERT_COLUMNS, alertJson, type AlertRow } from './alerts.ts';
import { NOTIFICATIONS_CHANNEL } from './outbox.ts';
import { writeExposures } from './exposure.ts';
import type { Exposure } from '../../lib/exposure.ts';
import { enqueueWebhooks } from './webhooks.ts';

export interface FiringAlert { id: string; rule: RuleName; merchantId: string; life: AlertLife }

export interface StoredState {
  progress: number | null;
  firing: FiringAlert[];
  /** (rule, merchant) → "status|reason" of the stored evaluation row. */
  evaluations: Map<string, string>;
}

export const keyOf = (rule: string, merchantId: string) => `${rule}\u0000${merchantId}`;
export const signatureOf = (e: Pick<Evaluation, 'status' | 'reason'>) => `${e.status}|${e.reason ?? ''}`;

/**
 * Verdicts an absent merchant would get anyway ("too little activity", "not eligible"): such merchants are not
 * re-evaluated every minute once absent, and their rows carry no evidence (it would go stale while the verdict
 * stays the same; the row is rewritten only when the verdict changes).
 */
export function isQuietSignature(sig: string): boolean {
  return sig.startsWith('not_evaluated|too little activity') || sig.startsWith('not_evaluated|not eligible');
}

/** An evaluation row to upsert, with its (rule, merchant) key and signature. */
export interface EvaluationRow { e: Evaluation; key: string; sig: string; quiet: boolean }

export async function loadState(db: pg.Pool, name: string): Promise<StoredState> {
  const p = await db.query('SELECT last_minute FROM evaluator_progress WHERE name = $1', [name]);
  const a = await db.query(`SELECT id::text, rule, merchant_id, fired_at, last_notified_at, clear_minutes FROM alerts WHERE state = 'firing'`);
  const e = await db.query('SELECT rule, merchant_id, status, reason FROM evaluations');
  return {
    progress: p.rows[0] ? p.rows[0].last_minute.getTime() : null,
    firing: a.rows.map((r) => ({
      id: r.id, rule: r.rule, merchantId: r.merchant_id,
      life: { firedAt: r.fired_at.getTime(), lastNotifiedAt: (r.last_notified_at ?? r.fired_at).getTime(), clearMinutes: r.clear_minutes },
    })),
    evaluations: new Map(e.rows.map((r) => [keyOf(r.rule, r.merchant_id), signatureOf(r)])),
  };
}

export interface TransitionWrite {
  kind: TransitionKind;
  rule: RuleName;
  merchantId: string;
  /** Existing alert id; undefined for 'fired'. */
  alertId?: string;
  life: AlertLife;
  evidence: Evidence;
  ruleVersion: string;
  replay: boolean;
  notification: { status: 'pending' | 'suppressed'; reason: string | null; silenceId: string | null };
  /** 'fired': the merchant's exposure at the minute's end (recorded on the alert) */
  exposure?: Exposure | null;
}

export interface MinuteWrite {
  name: string;
  previous: number | null;
  minute: number;
  transitions: TransitionWrite[];
  /** Firing alerts whose clear-minute count changed without a transition. */
  clearCounts: { alertId: string; clearMinutes: number }[];
  evaluations: EvaluationRow[];
  /** The rules version that decided the minute, and the ingestion lag then (evaluated_minutes). */
  ruleVersion: string;
  ingestLagMs: number;
  /** merchant_exposure changes of the minute: merchants that owe now (upserted) and those that no longer do (deleted) */
  exposures?: { upsert: Exposure[]; remove: string[] };
  /** Add an alert webhook outbox row for each transition that is live (not replay) and not silenced. */
  alertWebhook?: boolean;
}

export class ProgressConflict extends Error {
  constructor(name: string) {
    super(`evaluator progress "${name}" moved under us: another evaluator runs with the same RISKMON_EVALUATOR_NAME`);
    this.name = 'ProgressConflict';
  }
}

export interface Committed { messages: AlertMessage[]; fired: Map<string, string> }

export async function commitMinute(db: pg.Pool, w: MinuteWrite): Promise<Committed> {
  return inTransaction(db, async (client) => {
    // Compare-and-set on the progress row: two evaluators of one name cannot both commit the same minute.
    const cas = w.previous === null
      ? await client.query('INSERT INTO evaluator_progress (name, last_minute) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [w.name, new Date(w.minute)])
      : await client.query('UPDATE evaluator_progress SET last_minute = $2 WHERE name = $1 AND last_minute = $3', [w.name, new Date(w.minute), new Date(w.previous)]);
    if (cas.rowCount !== 1) throw new ProgressConflict(w.name);

    await client.query('INSERT INTO evaluated_minutes (evaluator, minute, rule_version, ingest_lag_ms) VALUES ($1, $2, $3, $4)',
      [w.name, new Date(w.minute), w.ruleVersion, Math.round(w.ingestLagMs)]);

    const { messages, fired, counted } = await writeTransitions(client, w);
    // Clear-minute counts of firing alerts as of this minute (fired: 0; renotified and counted: the new count).
    const clearLog: { alertId: string; clearMinutes: number }[] = [...w.clearCounts, ...counted];
    const pending = w.transitions.filter((t) => t.notification.status === 'pending').length;
    if (w.clearCounts.length) {
      await client.query(
        `UPDATE alerts a SET clear_minutes = c.n, updated_at = now() FROM unnest($1::bigint[], $2::int[]) AS c(id, n) WHERE a.id = c.id`,
        [w.clearCounts.map((c) => c.alertId), w.clearCounts.map((c) => c.clearMinutes)],
      );
    }
    if (clearLog.length) {
      await client.query(
        `INSERT INTO alert_clear_log (alert_id, minute, clear_minutes) SELECT c.id, $3, c.n FROM unnest($1::bigint[], $2::int[]) AS c(id, n)`,
        [clearLog.map((c) => c.alertId), clearLog.map((c) => c.clearMinutes), new Date(w.minute)],
      );
    }
    for (let i = 0; i < w.evaluations.length; i += 5000) await upsertEvaluations(client, w.evaluations.slice(i, i + 5000));
    if (w.exposures) await writeExposures(client, w.exposures, w.minute + 60_000);
    // Wakes the Slack sender (delivered on commit).
    if (pending) await client.query(`SELECT pg_notify('${NOTIFICATIONS_CHANNEL}', '')`);
    return { messages, fired };
  });
}

/**
 * The minute's transitions with their alerts and outbox rows, in four statements whatever their number (a round trip
 * per row cost most of a minute's commit on a loaded machine): new alerts, changed alerts, the transitions (ids in
 * the order of `w.transitions`), the notifications. Each alert has at most one transition per minute.
 */
async function writeTransitions(client: pg.PoolClient, w: MinuteWrite): Promise<{ messages: AlertMessage[]; fired: Map<string, string>; counted: { alertId: string; clearMinutes: number }[] }> {
  const ts = w.transitions;
  const fired = new Map<string, string>();
  if (!ts.length) return { messages: [], fired, counted: [] };
  const news = ts.filter((t) => t.kind === 'fired');
  const changed = ts.filter((t) => t.kind !== 'fired');
  const byKey = new Map<string, AlertRow>();
  const byId = new Map<string, AlertRow>();
  if (news.length) {
    const r = await client.query(
      `INSERT INTO alerts AS a (rule, merchant_id, state, fired_at, last_notified_at, clear_minutes, rule_version, evidence, replay, exposure_at_fire)
       SELECT u.rule, u.merchant_id, 'firing', u.fired_at, u.notified_at, u.clear_minutes, u.rule_version, u.evidence, u.replay, u.exposure
         FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::text[], $7::jsonb[], $8::bool[], $9::jsonb[])
              WITH ORDINALITY AS u(rule, merchant_id, fired_at, notified_at, clear_minutes, rule_version, evidence, replay, exposure, n)
        ORDER BY u.n
       RETURNING ${ALERT_COLUMNS}`,
      [news.map((t) => t.rule), news.map((t) => t.merchantId), news.map((t) => new Date(t.life.firedAt)), news.map((t) => new Date(t.life.lastNotifiedAt)),
        news.map((t) => t.life.clearMinutes), news.map((t) => t.ruleVersion), news.map((t) => JSON.stringify(t.evidence)), news.map((t) => t.replay),
        news.map((t) => (t.exposure ? JSON.stringify(t.exposure) : null))],
    );
    for (const a of r.rows) { byKey.set(keyOf(a.rule, a.merchant_id), a); fired.set(keyOf(a.rule, a.merchant_id), a.id); }
  }
  if (changed.length) {
    const r = await client.query(
      `UPDATE alerts a SET state = u.state, resolved_at = u.resolved_at, last_notified_at = u.notified_at, clear_minutes = u.clear_minutes,
              evidence = u.evidence, rule_version = u.rule_version, updated_at = now()
         FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::jsonb[], $7::text[])
              AS u(id, state, resolved_at, notified_at, clear_minutes, evidence, rule_version)
        WHERE a.id = u.id
       RETURNING ${ALERT_COLUMNS}`,
      [changed.map((t) => t.alertId), changed.map((t) => (t.kind === 'resolved' ? 'resolved' : 'firing')),
        changed.map((t) => (t.kind === 'resolved' ? new Date(w.minute) : null)), changed.map((t) => new Date(t.life.lastNotifiedAt)),
        changed.map((t) => t.life.clearMinutes), changed.map((t) => JSON.stringify(t.evidence)), changed.map((t) => t.ruleVersion)],
    );
    for (const a of r.rows) byId.set(a.id, a);
  }
  const alerts = ts.map((t) => {
    const a = t.kind === 'fired' ? byKey.get(keyOf(t.rule, t.merchantId)) : byId.get(t.alertId!);
    if (!a) throw new Error(`alert ${t.alertId ?? keyOf(t.rule, t.merchantId)} of a ${t.kind} transition was not written (minute ${new Date(w.minute).toISOString()})`);
    return a;
  });
  const tr = await client.query(
    `INSERT INTO alert_transitions (alert_id, kind, minute, evidence, replay, rule_version)
     SELECT u.alert_id, u.kind, $3, u.evidence, u.replay, u.rule_version
       FROM unnest($1::bigint[], $2::text[], $4::jsonb[], $5::bool[], $6::text[]) WITH ORDINALITY AS u(alert_id, kind, evidence, replay, rule_version, n)
      ORDER BY u.n
     RETURNING id::text, alert_id::text`,
    [alerts.map((a) => a.id), ts.map((t) => t.kind), new Date(w.minute), ts.map((t) => JSON.stringify(t.evidence)), ts.map((t) => t.replay), ts.map((t) => t.ruleVersion)],
  );
  const transitionOf = new Map<string, string>(tr.rows.map((x) => [x.alert_id, x.id]));
  if (transitionOf.size !== ts.length) throw new Error(`minute ${new Date(w.minute).toISOString()}: more than one transition for one alert`);
  const trIds = alerts.map((a) => transitionOf.get(a.id)!);
  await client.query(
    'INSERT INTO notifications (transition_id, status, reason, silence_id) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])',
    [trIds, ts.map((t) => t.notification.status), ts.map((t) => t.notification.reason), ts.map((t) => t.notification.silenceId)],
  );
  const messages: AlertMessage[] = ts.map((t, i) => ({
    type: 'alert', eventId: Number(trIds[i]), transition: t.kind,
    alert: { ...alertJson(alerts[i]), evidence: t.evidence },
  }));
  if (w.alertWebhook) {
    // The same transitions Slack would get, silences and replay included: in the minute's transaction, in order per alert.
    const hooked = messages.flatMap((m, i) => (ts[i].replay || ts[i].notification.silenceId !== null ? [] : [{ m, trId: trIds[i] }]));
    await enqueueWebhooks(client, hooked.map(({ m, trId }) => ({
      channel: 'alert' as const, type: `alert.${m.transition}`, orderKey: `alert:${m.alert.id}`, merchantId: m.alert.merchantId, transitionId: trId,
      event: { type: `alert.${m.transition}`, alertId: m.alert.id, merchantId: m.alert.merchantId, at: new Date(w.minute).toISOString(), alert: m.alert },
    })));
  }
  const counted = ts.flatMap((t, i) => (t.kind === 'resolved' ? [] : [{ alertId: alerts[i].id, clearMinutes: t.life.clearMinutes }]));
  return { messages, fired, counted };
}

async function upsertEvaluations(client: pg.PoolClient, rows: EvaluationRow[]): Promise<void> {
  await client.query(
    `INSERT INTO evaluations (rule, merchant_id, minute, status, reason, evidence)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::jsonb[])
     ON CONFLICT (rule, merchant_id) DO UPDATE SET minute = excluded.minute, status = excluded.status, reason = excluded.reason, evidence = excluded.evidence`,
    [rows.map((r) => r.e.rule), rows.map((r) => r.e.merchantId), rows.map((r) => new Date(r.e.minute)), rows.map((r) => r.e.status),
      rows.map((r) => r.e.reason), rows.map((r) => (r.quiet ? null : JSON.stringify(r.e.evidence)))],
  );
}

/**
 * The live lifecycle state at the start of minute `from`: the alerts firing then, with the minute of their latest
 * fired/renotified transition before `from` and their clear-minute count then (alert_clear_log). Where a backtest
 * starting at `from` picks up, as an activation at `from` would.
 */
export async function firingAt(db: pg.Pool, from: number): Promise<(FiringAlert & { evidence: Evidence })[]> {
  const r = await db.query(`SELECT a.id::text, a.rule, a.merchant_id, a.fired_at,
      (SELECT max(t.minute) FROM alert_transitions t WHERE t.alert_id = a.id AND t.kind <> 'resolved' AND t.minute < $1) AS notified,
      (SELECT c.clear_minutes FROM alert_clear_log c WHERE c.alert_id = a.id AND c.minute < $1 ORDER BY c.minute DESC LIMIT 1) AS clear,
      (SELECT t.evidence FROM alert_transitions t WHERE t.alert_id = a.id AND t.kind = 'fired' ORDER BY t.id LIMIT 1) AS evidence
    FROM alerts a WHERE a.fired_at < $1 AND (a.resolved_at IS NULL OR a.resolved_at >= $1)`, [new Date(from)]);
  return r.rows.map((x) => ({
    id: x.id, rule: x.rule, merchantId: x.merchant_id, evidence: x.evidence,
    life: { firedAt: x.fired_at.getTime(), lastNotifiedAt: (x.notified ?? x.fired_at).getTime(), clearMinutes: x.clear ?? 0 },
  }));
}

/** The ingestion lag the live evaluator saw for each minute of [from, to) it evaluated. */
export async function liveIngestLags(db: pg.Pool, evaluator: string, from: number, to: number): Promise<Map<number, number>> {
  const r = await db.query('SELECT minute, ingest_lag_ms FROM evaluated_minutes WHERE evaluator = $1 AND minute >= $2 AND minute < $3',
    [evaluator, new Date(from), new Date(to)]);
  return new Map(r.rows.map((x) => [x.minute.getTime(), Number(x.ingest_lag_ms)]));
}

export interface PeriodAlert { id: string; rule: RuleName; merchantId: string; firedAt: number; resolvedAt: number | null; disposition: string | null }

/**
 * The live alerts of the period [from, to): firing at some closed minute in it (fired before `to`, not resolved
 * before `from`). `resolvedAt` is null when it resolved at `to` or later, as a backtest ending at `to` sees it.
 */
export async function liveAlerts(db: pg.Pool, from: number, to: number, withDisposition: boolean): Promise<PeriodAlert[]> {
  const r = await db.query(`SELECT id::text, rule, merchant_id, fired_at, resolved_at${withDisposition ? ', disposition' : ', NULL AS disposition'}
    FROM alerts WHERE fired_at < $2 AND (resolved_at IS NULL OR resolved_at >= $1) ORDER BY fired_at, id`, [new Date(from), new Date(to)]);
  return r.rows.map((x) => ({
    id: x.id, rule: x.rule, merchantId: x.merchant_id, firedAt: x.fired_at.getTime(),
    resolvedAt: x.resolved_at && x.resolved_at.getTime() < to ? x.resolved_at.getTime() : null, disposition: x.disposition,
  }));
}

/** The last minute any evaluator closed (`evaluator_progress`), for `riskmon status`; null before the first. */
export async function lastEvaluatedMinute(db: Pick<pg.Pool, 'query'>): Promise<Date | null> {
  const { rows } = await db.query(`SELECT max(last_minute) AS m FROM evaluator_progress`);
  return rows[0]?.m ?? null;
}
