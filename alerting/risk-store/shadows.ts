/**
 * The shadow version's rows (sql/risk/004_rules.sql): `rule_shadows` (which draft runs as the shadow, and how far it
 * got) and `shadow_alerts` (its would-be alerts). Never `alerts`, the outbox or the alert channel.
 */
import type pg from 'pg';
import { inTransaction } from '../../lib/pg.ts';
import type { RulesConfig } from '../rules/config.ts';
import { keyOf, type FiringAlert, type TransitionWrite } from './minutes.ts';
import { configOf, type Queryable } from './rules.ts';

export interface ShadowInfo { id: string; version: string; startedAt: Date; startedBy: string; firstMinute: Date | null; lastMinute: Date | null }

/** Starts evaluating `version` as the shadow (stopping the previous one); false when the version is unknown. */
export async function startShadow(db: Queryable, version: string, actor: string): Promise<boolean> {
  if (!(await db.query('SELECT 1 FROM rule_versions WHERE version = $1', [version])).rowCount) return false;
  await db.query('UPDATE rule_shadows SET stopped_at = clock_timestamp(), stopped_by = $1 WHERE stopped_at IS NULL', [actor]);
  await db.query('INSERT INTO rule_shadows (version, started_by) VALUES ($1, $2)', [version, actor]);
  return true;
}

export async function stopShadow(db: Queryable, actor: string): Promise<boolean> {
  const r = await db.query('UPDATE rule_shadows SET stopped_at = clock_timestamp(), stopped_by = $1 WHERE stopped_at IS NULL', [actor]);
  return Boolean(r.rowCount);
}

export async function currentShadow(db: pg.Pool): Promise<ShadowInfo | null> {
  const r = await db.query('SELECT id::text, version, started_at, started_by, first_minute, last_minute FROM rule_shadows WHERE stopped_at IS NULL');
  const x = r.rows[0];
  return x ? { id: x.id, version: x.version, startedAt: x.started_at, startedBy: x.started_by, firstMinute: x.first_minute, lastMinute: x.last_minute } : null;
}

export interface ShadowAlert { rule: string; merchantId: string; firedAt: string; resolvedAt: string | null; carried: boolean; evidence: unknown }

export async function shadowAlerts(db: pg.Pool, shadowId: string): Promise<ShadowAlert[]> {
  const r = await db.query('SELECT rule, merchant_id, fired_at, resolved_at, carried, evidence FROM shadow_alerts WHERE shadow_id = $1 ORDER BY fired_at, id', [shadowId]);
  return r.rows.map((x) => ({ rule: x.rule, merchantId: x.merchant_id, firedAt: x.fired_at.toISOString(), resolvedAt: x.resolved_at?.toISOString() ?? null, carried: x.carried, evidence: x.evidence }));
}

export interface ShadowMinuteWrite {
  shadowId: string;
  minute: number;
  /** The shadow's previous minute (null: its first). */
  previous: number | null;
  transitions: Pick<TransitionWrite, 'kind' | 'rule' | 'merchantId' | 'alertId' | 'life' | 'evidence'>[];
  clearCounts: { alertId: string; clearMinutes: number }[];
}

/**
 * The shadow's transitions of one minute, in one transaction with its progress (compare-and-set on
 * `rule_shadows.last_minute`). Returns the ids of the alerts fired, by (rule, merchant) key.
 */
export async function commitShadowMinute(db: pg.Pool, w: ShadowMinuteWrite): Promise<Map<string, string>> {
  const M = w.minute;
  const fired = new Map<string, string>();
  await inTransaction(db, async (c) => {
    const cas = await c.query(`UPDATE rule_shadows SET last_minute = $2, first_minute = coalesce(first_minute, $2)
      WHERE id = $1 AND stopped_at IS NULL AND last_minute IS NOT DISTINCT FROM $3`, [w.shadowId, new Date(M), w.previous === null ? null : new Date(w.previous)]);
    if (cas.rowCount !== 1) throw new Error('shadow progress moved under us (stopped, or another evaluator runs it)');
    for (const t of w.transitions) {
      if (t.kind === 'fired') {
        const r = await c.query(`INSERT INTO shadow_alerts (shadow_id, rule, merchant_id, fired_at, last_notified_at, clear_minutes, evidence)
          VALUES ($1, $2, $3, $4, $4, 0, $5) RETURNING id::text`, [w.shadowId, t.rule, t.merchantId, new Date(M), t.evidence]);
        fired.set(keyOf(t.rule, t.merchantId), r.rows[0].id);
      } else {
        await c.query('UPDATE shadow_alerts SET resolved_at = $2, last_notified_at = $3, clear_minutes = $4 WHERE id = $1',
          [t.alertId, t.kind === 'resolved' ? new Date(M) : null, new Date(t.life.lastNotifiedAt), t.life.clearMinutes]);
      }
    }
    for (const x of w.clearCounts) await c.query('UPDATE shadow_alerts SET clear_minutes = $2 WHERE id = $1', [x.alertId, x.clearMinutes]);
  });
  return fired;
}

/**
 * A shadow seen for the first time: its version's config, and its firing alerts — from the store, or (a shadow that
 * has not decided a minute yet) the live ones copied in.
 */
export async function loadShadow(db: pg.Pool, s: ShadowInfo, liveFiring: ReadonlyMap<string, FiringAlert>): Promise<{ rules: RulesConfig; firing: FiringAlert[] }> {
    const v = await db.query('SELECT config FROM rule_versions WHERE version = $1', [s.version]);
  const rules = configOf(s.version, v.rows[0].config);
  if (s.lastMinute === null) {
    await db.query('DELETE FROM shadow_alerts WHERE shadow_id = $1', [s.id]);
    for (const a of liveFiring.values()) {
      const ev = await db.query(`SELECT t.evidence FROM alert_transitions t WHERE t.alert_id = $1 AND t.kind = 'fired' ORDER BY t.id LIMIT 1`, [a.id]);
      await db.query(`INSERT INTO shadow_alerts (shadow_id, rule, merchant_id, fired_at, last_notified_at, clear_minutes, carried, evidence)
        VALUES ($1, $2, $3, $4, $5, $6, true, $7)`, [s.id, a.rule, a.merchantId, new Date(a.life.firedAt), new Date(a.life.lastNotifiedAt), a.life.clearMinutes, ev.rows[0]?.evidence ?? {}]);
    }
  }
  const r = await db.query(`SELECT id::text, rule, merchant_id, fired_at, last_notified_at, clear_minutes FROM shadow_alerts
    WHERE shadow_id = $1 AND resolved_at IS NULL`, [s.id]);
  const firing: FiringAlert[] = r.rows.map((x) => ({
    id: x.id, rule: x.rule, merchantId: x.merchant_id,
    life: { firedAt: x.fired_at.getTime(), lastNotifiedAt: x.last_notified_at.getTime(), clearMinutes: x.clear_minutes },
  }));
  return { rules, firing };
}
