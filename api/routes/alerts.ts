import type { FastifyInstance } from 'fastify';
import { decodeCursor, encodeCursor } from '../cursor.ts';
import type { ApiDeps } from '../deps.ts';
import { badRequest } from '../errors.ts';
import { parseInstant } from '../range.ts';
import { ALERT_COLUMNS, alertBody, type AlertRow } from '../rows.ts';
import { AlertsBody, AlertsQuery, errorResponses } from '../schemas.ts';

export function alertRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Querystring: AlertsQuery }>('/api/alerts', {
    schema: {
      summary: 'Alerts, newest first (by fired time), with keyset pagination',
      description: '`from`/`to` bound the fired time; `assignee`, `acked` and `disposition` (`none`: open) filter on the triage state. Pass `nextCursor` as `cursor` for the next page; null means the last page.',
      tags: ['alerts'], querystring: AlertsQuery, response: { 200: AlertsBody, ...errorResponses },
    },
  }, async (req) => {
    const q = req.query;
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown) => { args.push(v); where.push(sql.replace('?', `$${args.length}`)); };
    if (q.merchantId) add('a.merchant_id = ?', q.merchantId);
    if (q.rule) add('a.rule = ?', q.rule);
    if (q.state) add('a.state = ?', q.state);
    if (q.assignee) add('a.assignee = ?', q.assignee);
    if (q.acked !== undefined) where.push(q.acked ? 'a.ack_at IS NOT NULL' : 'a.ack_at IS NULL');
    if (q.disposition === 'none') where.push('a.disposition IS NULL');
    else if (q.disposition) add('a.disposition = ?', q.disposition);
    const from = q.from ? parseInstant('from', q.from) : null;
    const to = q.to ? parseInstant('to', q.to) : null;
    if (from !== null && to !== null && to <= from) throw badRequest('to', 'to must be after from');
    if (from !== null) add('a.fired_at >= ?', new Date(from));
    if (to !== null) add('a.fired_at < ?', new Date(to));
    if (q.cursor) {
      const c = decodeCursor(q.cursor);
      args.push(c.firedAt, c.id);
      where.push(`(a.fired_at, a.id) < ($${args.length - 1}::timestamptz, $${args.length}::bigint)`);
    }
    args.push(q.limit + 1);
    const { rows } = await deps.riskPg.query<AlertRow & { fired_key: string }>(
      `SELECT ${ALERT_COLUMNS}, a.fired_at::text AS fired_key FROM alerts a ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY a.fired_at DESC, a.id DESC LIMIT $${args.length}`, args);
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map(alertBody),
      nextCursor: more && last ? encodeCursor({ firedAt: last.fired_key, id: String(last.id) }) : null,
    };
  });
}
