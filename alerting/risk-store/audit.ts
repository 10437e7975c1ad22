/**
 * The audit trail (`audit_log`): one row per write made through the API — actor, time, action, target, detail —
 * recorded in the transaction of the write itself. Append-only (the database refuses UPDATE and DELETE).
 */
import type pg from 'pg';

export interface AuditEntry {
  /** dotted `<thing>.<verb>`: alert.ack, alert.assign, alert.note, alert.disposition, silence.create, silence.delete, … */
  action: string;
  /** `<kind>:<id>`, e.g. alert:42 */
  target: string;
  detail?: Record<string, unknown>;
}

type Queryable = Pick<pg.PoolClient, 'query'>;

export async function recordAudit(db: Queryable, actor: string, e: AuditEntry): Promise<void> {
  await db.query('INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4)', [actor, e.action, e.target, e.detail ?? {}]);
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
