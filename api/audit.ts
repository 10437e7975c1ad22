/**
 * The audit trail: every write made through the API (silences, triage; rule changes and backtests when they come)
 * is one row of `audit_log` — actor, time, action, target, detail — written in the same transaction as the write
 * itself, so neither exists without the other. The table is append-only (the database refuses UPDATE and DELETE)
 * and the API only lists it.
 *
 * A route that writes calls `audited(db, req, {action, target, detail}, (client) => …)`, or records inside a
 * transaction it already has with `recordAudit(client, …)`.
 */
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import { inTransaction } from '../lib/pg.ts';
import type { Principal } from './auth.ts';

export interface AuditEntry {
  /** dotted `<thing>.<verb>`: alert.ack, alert.assign, alert.note, alert.disposition, silence.create, silence.delete, … */
  action: string;
  /** `<kind>:<id>`, e.g. alert:42 */
  target: string;
  detail?: Record<string, unknown>;
}

type Queryable = Pick<pg.PoolClient, 'query'>;

/** The actor of a request: its key's name (`key:role:name`), else `key <id>`. */
export function actorOf(req: FastifyRequest): string {
  const p = (req as FastifyRequest & { principal?: Principal }).principal;
  if (!p) throw new Error('actorOf needs an authenticated request');
  return p.name;
}

export async function recordAudit(db: Queryable, actor: string, e: AuditEntry): Promise<void> {
  await db.query('INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4)', [actor, e.action, e.target, e.detail ?? {}]);
}

/** Runs `write` and records `entry` (or what `write` returns as the entry) in one transaction. */
export async function audited<T>(
  db: pg.Pool, req: FastifyRequest, entry: AuditEntry | ((result: T) => AuditEntry), write: (c: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const actor = actorOf(req);
  return inTransaction(db, async (client) => {
    const result = await write(client);
    await recordAudit(client, actor, typeof entry === 'function' ? entry(result) : entry);
    return result;
  });
}

export interface AuditFilter { from?: Date; to?: Date; actor?: string; action?: string; target?: string; before?: string; limit: number }
export interface AuditItem { id: string; at: string; actor: string; action: string; target: string; detail: unknown }

/** Newest first; `before` is the id of the last item of the previous page. */
export async function listAudit(db: pg.Pool, f: AuditFilter): Promise<{ items: AuditItem[]; nextCursor: string | null }> {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, v: unknown) => { args.push(v); where.push(sql.replace('?', `$${args.length}`)); };
  if (f.from) add('at >= ?', f.from);
  if (f.to) add('at < ?', f.to);
  if (f.actor) add('actor = ?', f.actor);
  if (f.action) add('action = ?', f.action);
  if (f.target) add('target = ?', f.target);
  if (f.before) add('id < ?::bigint', f.before);
  args.push(f.limit + 1);
  const { rows } = await db.query<{ id: string; at: Date; actor: string; action: string; target: string; detail: unknown }>(
    `SELECT l.id::text, l.at, l.actor, l.action, l.target, l.detail FROM audit_log l ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY l.id DESC LIMIT $${args.length}`, args);
  const page = rows.slice(0, f.limit);
  return {
    items: page.map((r) => ({ id: r.id, at: r.at.toISOString(), actor: r.actor, action: r.action, target: r.target, detail: r.detail })),
    nextCursor: rows.length > f.limit ? page[page.length - 1].id : null,
  };
}
