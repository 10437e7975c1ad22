/**
 * The analyst's side of the risk store (sql/risk/003_triage.sql): acknowledge, assign, notes and a disposition on
 * an alert, and how they read back.
 *
 * The current state sits on the alert row (ack_by/ack_at, assignee, disposition…); every action is also a row of
 * `alert_triage`, so a changed disposition or assignee keeps its history. A write locks the alert row
 * (`SELECT … FOR UPDATE`) and does its insert and update in one transaction: two analysts acting on one alert at
 * once are serialised, and neither write is lost. The evaluator's own updates of the row touch other columns and
 * take the same lock, so they never undo a triage write either.
 */
import type pg from 'pg';
import { inTransaction } from '../../lib/pg.ts';

import { type Disposition, type Triage } from '../../lib/alert-message.ts';

export { DISPOSITIONS, type Disposition, type Triage } from '../../lib/alert-message.ts';
export const NOTE_MAX = 4000;
export const NAME_MAX = 100;

export type TriageAction =
  | { action: 'ack' }
  | { action: 'assign'; assignee: string | null }
  | { action: 'note'; text: string }
  | { action: 'disposition'; disposition: Disposition; note: string };


/** Columns of `alerts a` that `triageOf` reads. */
export const TRIAGE_COLUMNS = 'a.ack_by, a.ack_at, a.assignee, a.disposition, a.disposition_by, a.disposition_at, a.disposition_note';

export interface TriageRow {
  ack_by: string | null; ack_at: Date | null; assignee: string | null;
  disposition: Disposition | null; disposition_by: string | null; disposition_at: Date | null; disposition_note: string | null;
}

export function triageOf(r: TriageRow): Triage {
  return {
    ack: r.ack_by && r.ack_at ? { by: r.ack_by, at: r.ack_at.toISOString() } : null,
    assignee: r.assignee,
    disposition: r.disposition && r.disposition_by && r.disposition_at
      ? { value: r.disposition, by: r.disposition_by, at: r.disposition_at.toISOString(), note: r.disposition_note ?? '' }
      : null,
  };
}

export interface TriageEvent { id: string; action: TriageAction['action']; by: string; at: string; value: string | null; note: string | null }
export interface Note { id: string; by: string; at: string; text: string }

/** Every triage action of an alert, oldest first: the notes are the `note` events, the rest is the history. */
export async function triageHistory(db: pg.Pool | pg.PoolClient, alertId: string): Promise<TriageEvent[]> {
  const { rows } = await db.query<{ id: string; action: TriageAction['action']; actor: string; at: Date; value: string | null; note: string | null }>(
    'SELECT t.id::text, t.action, t.actor, t.at, t.value, t.note FROM alert_triage t WHERE t.alert_id = $1 ORDER BY t.id', [alertId]);
  return rows.map((r) => ({ id: r.id, action: r.action, by: r.actor, at: r.at.toISOString(), value: r.value, note: r.note }));
}

export const notesOf = (h: TriageEvent[]): Note[] =>
  h.filter((e) => e.action === 'note').map((e) => ({ id: e.id, by: e.by, at: e.at, text: e.note ?? '' }));

/**
 * Applies one action as `actor`, in one transaction with `also` (the caller's audit record, so a write never
 * exists without it). Returns false when the alert does not exist (nothing written).
 *
 * - ack: the first acknowledgement stands; a later one is kept in the history only.
 * - assign: sets or clears the assignee.
 * - disposition: sets (or changes) it; the alert counts as acknowledged from then on if nobody had acknowledged it.
 */
export async function applyTriage(
  db: pg.Pool, alertId: string, actor: string, a: TriageAction, also?: (c: pg.PoolClient) => Promise<void>,
): Promise<boolean> {
  return inTransaction(db, async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE', [alertId]);
    if (!rowCount) return false; // nothing written
    const event = (value: string | null, note: string | null) => client.query(
      'INSERT INTO alert_triage (alert_id, action, actor, value, note) VALUES ($1, $2, $3, $4, $5)', [alertId, a.action, actor, value, note]);
    switch (a.action) {
      case 'ack':
        await event(null, null);
        await client.query('UPDATE alerts SET ack_by = COALESCE(ack_by, $2), ack_at = COALESCE(ack_at, clock_timestamp()) WHERE id = $1', [alertId, actor]);
        break;
      case 'assign':
        await event(a.assignee, null);
        await client.query('UPDATE alerts SET assignee = $2 WHERE id = $1', [alertId, a.assignee]);
        break;
      case 'note':
        await event(null, a.text);
        break;
      case 'disposition':
        await event(a.disposition, a.note);
        await client.query(
          `UPDATE alerts SET disposition = $2, disposition_by = $3, disposition_at = clock_timestamp(), disposition_note = $4,
                  ack_by = COALESCE(ack_by, $3), ack_at = COALESCE(ack_at, clock_timestamp()) WHERE id = $1`,
          [alertId, a.disposition, actor, a.note]);
        break;
    }
    await also?.(client);
    return true;
  });
}

export interface RuleQuality {
  rule: string; ruleVersion: string; fired: number; dispositioned: number;
  confirmed: number; falsePositive: number; benign: number; precision: number | null;
}

/** precision = confirmed / (confirmed + false positives); null when neither was recorded. Pure. */
export function precisionOf(confirmed: number, falsePositive: number): number | null {
  return confirmed + falsePositive === 0 ? null : confirmed / (confirmed + falsePositive);
}

/** Per rule and rule version, over alerts fired in [from, to): how many fired and how they were closed. */
export async function ruleQuality(db: pg.Pool, from: Date, to: Date): Promise<RuleQuality[]> {
  const { rows } = await db.query<{ rule: string; rule_version: string; fired: number; dispositioned: number; confirmed: number; false_positive: number; benign: number }>(
    `SELECT rule, rule_version, count(*)::int AS fired, count(disposition)::int AS dispositioned,
            count(*) FILTER (WHERE disposition = 'confirmed')::int AS confirmed,
            count(*) FILTER (WHERE disposition = 'false_positive')::int AS false_positive,
            count(*) FILTER (WHERE disposition = 'benign')::int AS benign
       FROM alerts WHERE fired_at >= $1 AND fired_at < $2
      GROUP BY rule, rule_version ORDER BY rule, max(fired_at) DESC`, [from, to]);
  return rows.map((r) => ({
    rule: r.rule, ruleVersion: r.rule_version, fired: r.fired, dispositioned: r.dispositioned,
    confirmed: r.confirmed, falsePositive: r.false_positive, benign: r.benign, precision: precisionOf(r.confirmed, r.false_positive),
  }));
}
