/** Silences: an operator mutes a merchant, a rule, or a rule for a merchant, for a period (rows in `silences`). */
import type pg from 'pg';

export interface Silence { id: string; merchantId: string | null; rule: string | null; reason: string }

export function silenceFor(silences: Silence[], rule: string, merchantId: string): Silence | undefined {
  return silences.find((s) => (s.rule === null || s.rule === rule) && (s.merchantId === null || s.merchantId === merchantId));
}

/** Silences in force at the database's now() (operators set them in wall-clock time). */
export async function activeSilences(db: pg.Pool | pg.PoolClient): Promise<Silence[]> {
  const { rows } = await db.query(`SELECT id::text, merchant_id, rule, reason FROM silences WHERE starts_at <= now() AND ends_at > now()`);
  return rows.map((r) => ({ id: r.id, merchantId: r.merchant_id, rule: r.rule, reason: r.reason }));
}
