/**
 * Versioned, idempotent migrations: the files of sql/source and sql/risk, applied in name order, each once,
 * recorded in `riskmon_migrations`. An advisory lock makes concurrent runs safe (the second waits, then finds
 * nothing to do).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from './pg.ts';
import type { Logger } from './logger.ts';

export type Schema = 'source' | 'risk';
const SQL_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'sql');
const LOCK_KEY = 0x5249534b; // "RISK"

export function migrationFiles(schema: Schema): { version: string; sql: string }[] {
  const dir = join(SQL_DIR, schema);
  return readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()
    .map((f) => ({ version: f.replace(/\.sql$/, ''), sql: readFileSync(join(dir, f), 'utf8') }));
}

/** Applies what is missing; returns the versions applied now. */
export async function migrate(url: string, schema: Schema, log?: Logger): Promise<string[]> {
  const client = createClient({ connectionString: url });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    // Created only when missing: a service's own login role (riskmon_risk_rw, no CREATE on the schema) finds every
    // migration applied and must not need CREATE for an IF NOT EXISTS that would do nothing.
    const known = (await client.query(`SELECT to_regclass('riskmon_migrations') IS NOT NULL AS known`)).rows[0].known;
    if (!known) await client.query(`CREATE TABLE IF NOT EXISTS riskmon_migrations (
      schema text NOT NULL, version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (schema, version))`);
    const done = new Set((await client.query('SELECT version FROM riskmon_migrations WHERE schema = $1', [schema])).rows.map((r) => r.version));
    for (const m of migrationFiles(schema)) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO riskmon_migrations (schema, version) VALUES ($1, $2)', [schema, m.version]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${schema}/${m.version} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(m.version);
      log?.info({ schema, version: m.version }, 'migration applied');
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    await client.end();
  }
  return applied;
}
