/**
 * Stand-in until the triage branch's audit recorder (api/audit.ts there: the append-only audit_log) is merged:
 * same face — `audited(db, req, entry, write)` runs the write in one transaction — without a record yet.
 */
import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { Principal } from './auth.ts';

export interface AuditEntry { action: string; target: string; detail?: Record<string, unknown> }

export function actorOf(req: FastifyRequest): string {
  const p = (req as FastifyRequest & { principal?: Principal }).principal;
  if (!p) throw new Error('actorOf needs an authenticated request');
  return `key ${p.keyId}`;
}

export async function audited<T>(
  db: pg.Pool, _req: FastifyRequest, _entry: AuditEntry | ((result: T) => AuditEntry), write: (c: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await write(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
