/**
 * Rules as versioned data in the risk store (sql/risk/004_rules.sql). A version is an effective rules config (the
 * defaults merged, per-merchant overrides included) with who created it and when; it is a draft until activated.
 * The active version is the latest activation; every activation is kept with who made it. When the store holds no
 * version, RISKMON_RULES (or the defaults) becomes the first one, active.
 */
import type pg from 'pg';
import { inTransaction } from '../../lib/pg.ts';
import { parseRules, RulesError, type RulesConfig } from '../rules/config.ts';

export interface ActiveRules { version: string; config: RulesConfig; activationId: number; activatedAt: Date; activatedBy: string }
export interface VersionInfo { version: string; note: string; createdAt: Date; createdBy: string; activatedAt: Date | null; activatedBy: string | null; active: boolean }

const SEED_LOCK = 0x52554c45; // "RULE"

/** The stored config of a version: the effective config without its version name. */
export function storedConfig(c: RulesConfig): Omit<RulesConfig, 'version'> {
  const { version: _v, ...rest } = c;
  return rest;
}

/** The config as the API shows it (the RISKMON_RULES shape, version included). */
export function configOf(version: string, stored: unknown): RulesConfig {
  return parseRules({ ...(stored as object), version });
}

/** Makes `seed` the first version, active, when the store holds none (idempotent, safe to race). */
export async function seedRules(db: pg.Pool, seed: RulesConfig, actor = 'RISKMON_RULES'): Promise<boolean> {
  return inTransaction(db, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [SEED_LOCK]);
    const any = await c.query('SELECT 1 FROM rule_versions LIMIT 1');
    if (any.rowCount) return false;
    await c.query('INSERT INTO rule_versions (version, config, note, created_by) VALUES ($1, $2, $3, $4)',
      [seed.version, storedConfig(seed), 'seeded from RISKMON_RULES (or the defaults)', actor]);
    await c.query('INSERT INTO rule_activations (version, activated_by) VALUES ($1, $2)', [seed.version, actor]);
    return true;
  });
}

/** The id of the latest activation (cheap: the evaluator asks before every minute); null when none. */
export async function activationId(db: pg.Pool | pg.PoolClient): Promise<number | null> {
  const r = await db.query('SELECT max(id) AS id FROM rule_activations');
  return r.rows[0].id === null ? null : Number(r.rows[0].id);
}

export async function activeRules(db: pg.Pool | pg.PoolClient): Promise<ActiveRules | null> {
  const r = await db.query(`SELECT a.id, a.version, a.activated_at, a.activated_by, v.config
    FROM rule_activations a JOIN rule_versions v USING (version) ORDER BY a.id DESC LIMIT 1`);
  const row = r.rows[0];
  if (!row) return null;
  return { version: row.version, config: configOf(row.version, row.config), activationId: Number(row.id), activatedAt: row.activated_at, activatedBy: row.activated_by };
}

export async function getVersion(db: Queryable, version: string): Promise<RulesConfig | null> {
  const r = await db.query('SELECT config FROM rule_versions WHERE version = $1', [version]);
  return r.rows[0] ? configOf(version, r.rows[0].config) : null;
}

/** Every version, newest first, with its latest activation. */
export async function listVersions(db: pg.Pool): Promise<VersionInfo[]> {
  const r = await db.query(`SELECT v.version, v.note, v.created_at, v.created_by, a.activated_at, a.activated_by,
      a.id = (SELECT max(id) FROM rule_activations) AS active
    FROM rule_versions v
    LEFT JOIN LATERAL (SELECT id, activated_at, activated_by FROM rule_activations x WHERE x.version = v.version ORDER BY id DESC LIMIT 1) a ON true
    ORDER BY v.seq DESC`);
  return r.rows.map((x) => ({
    version: x.version, note: x.note, createdAt: x.created_at, createdBy: x.created_by,
    activatedAt: x.activated_at, activatedBy: x.activated_by, active: Boolean(x.active),
  }));
}

/** A pool, or a client inside the caller's transaction (the API records its audit entry in the same one). */
export type Queryable = Pick<pg.Pool, 'query'>;

/**
 * Stores a draft. `raw` has the RISKMON_RULES shape; a wrong value throws RulesError naming its path. The version is
 * the config's own `version` when given (it must be new), else `v<n>`.
 */
export async function createDraft(db: Queryable, raw: unknown, note: string, actor: string): Promise<{ version: string; config: RulesConfig }> {
  const named = typeof raw === 'object' && raw !== null && typeof (raw as { version?: unknown }).version === 'string';
  const parsed = parseRules(raw);
  if (named && !/^[A-Za-z0-9_.:-]{1,64}$/.test(parsed.version)) throw new RulesError([`version must be 1-64 letters, digits or . _ : - (got ${JSON.stringify(parsed.version.slice(0, 70))})`]);
  const seq = Number((await db.query(`SELECT nextval(pg_get_serial_sequence('rule_versions', 'seq')) AS n`)).rows[0].n);
  let version = named ? parsed.version : `v${seq}`;
  const exists = async (v: string) => Boolean((await db.query('SELECT 1 FROM rule_versions WHERE version = $1', [v])).rowCount);
  if (named && await exists(version)) throw new RulesError([`version "${version}" exists already: name the draft differently, or leave version out for v<n>`]);
  for (let i = 2; !named && await exists(version); i++) version = `v${seq}.${i}`;
  await db.query('INSERT INTO rule_versions (version, seq, config, note, created_by) VALUES ($1, $2, $3, $4, $5)',
    [version, seq, storedConfig(parsed), note, actor]);
  return { version, config: configOf(version, storedConfig(parsed)) };
}

/** Makes `version` the active one (the evaluator takes it from its next closed minute); false when unknown. */
export async function activate(db: Queryable, version: string, actor: string): Promise<{ activatedAt: Date } | null> {
  const r = await db.query(`INSERT INTO rule_activations (version, activated_by)
    SELECT version, $2 FROM rule_versions WHERE version = $1 RETURNING activated_at`, [version, actor]);
  return r.rows[0] ? { activatedAt: r.rows[0].activated_at } : null;
}
