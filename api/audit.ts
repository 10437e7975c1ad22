/**
 * The audit trail: every write made through the API (silences, triage; rule changes and backtests when they come)
 * is one row of `audit_log` — actor, time, action, target, detail — written in the same transaction as the write
 * itself, so neither exists without the other. The table is append-only (the database refuses UPDATE and DELETE)
 * and the API only lists it.
 *
 * The rows are the risk store's (alerting/risk-store/audit.ts). A route that writes calls
 * `audited(db, req, {action, target, detail}, (client) => …)`, or records inside a transaction it already has with
 * the store's `recordAudit(client, …)`.
 */
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import { inTransaction, recordAudit, type AuditEntry } from '../alerting/risk-store/index.ts';
import type { Principal } from './auth.ts';

/** The actor of a request: its key's name (`key:role:name`), else `key <id>`. */
export function actorOf(req: FastifyRequest): string {
  const p = (req as FastifyRequest & { principal?: Principal }).principal;
  if (!p) throw new Error('actorOf needs an authenticated request');
  return p.name;
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
