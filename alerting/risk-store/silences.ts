/**
 * Silences: an operator mutes a merchant, a rule, or a rule for a merchant, for a period (rows in `silences`). The API
 * lists, creates and removes them; the evaluator reads the ones in force.
 */
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

/** A silence as the API shows it. */
export interface SilenceJson {
  id: string; merchantId: string | null; rule: string | null; startsAt: string; endsAt: string; reason: string; createdBy: string; active: boolean;
}

interface SilenceRow { id: string; merchant_id: string | null; rule: string | null; starts_at: Date; ends_at: Date; reason: string; created_by: string; active: boolean }
const COLUMNS = 'id, merchant_id, rule, starts_at, ends_at, reason, created_by, (starts_at <= now() AND ends_at > now()) AS active';
const silenceJson = (r: SilenceRow): SilenceJson => ({
  id: String(r.id), merchantId: r.merchant_id, rule: r.rule, startsAt: r.starts_at.toISOString(), endsAt: r.ends_at.toISOString(),
  reason: r.reason, createdBy: r.created_by, active: r.active,
});

/** Active and upcoming silences (`all`: expired ones too), latest end first, at most 500. */
export async function listSilences(db: pg.Pool, all: boolean): Promise<SilenceJson[]> {
  const { rows } = await db.query<SilenceRow>(
    `SELECT ${COLUMNS} FROM silences ${all ? '' : 'WHERE ends_at > now()'} ORDER BY ends_at DESC, id DESC LIMIT 500`);
  return rows.map(silenceJson);
}

export interface NewSilence { merchantId: string | null; rule: string | null; startsAt: number; endsAt: number; reason: string; createdBy: string }

/** `db`: a pool, or a client inside the caller's transaction (the API records its audit entry in the same one). */
export async function createSilence(db: Pick<pg.Pool, 'query'>, s: NewSilence): Promise<SilenceJson> {
  const { rows } = await db.query<SilenceRow>(
    `INSERT INTO silences (merchant_id, rule, starts_at, ends_at, reason, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
    [s.merchantId, s.rule, new Date(s.startsAt), new Date(s.endsAt), s.reason, s.createdBy]);
  return silenceJson(rows[0]);
}

/** Removes a silence; null when there is none with this id. */
export async function deleteSilence(db: Pick<pg.Pool, 'query'>, id: string): Promise<SilenceJson | null> {
  const { rows } = await db.query<SilenceRow>(`DELETE FROM silences WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
  return rows[0] ? silenceJson(rows[0]) : null;
}
