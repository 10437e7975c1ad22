import type { FastifyInstance } from 'fastify';
import { decodeCursor, encodeCursor } from '../cursor.ts';
import type { ApiDeps } from '../deps.ts';
import { badRequest } from '../errors.ts';
import { parseInstant } from '../range.ts';
import { listAlerts } from '../../alerting/risk-store/index.ts';
import { AlertsBody, AlertsQuery, errorResponses } from '../schemas.ts';

export function alertRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Querystring: AlertsQuery }>('/api/alerts', {
    schema: {
      summary: 'Alerts, newest first (by fired time), with keyset pagination',
      description: '`from`/`to` bound the fired time; `assignee`, `acked` and `disposition` (`none`: open) filter on the triage state. Pass `nextCursor` as `cursor` for the next page; null means the last page. `sort=receivable` orders by the merchant\'s receivable now (one page).',
      tags: ['alerts'], querystring: AlertsQuery, response: { 200: AlertsBody, ...errorResponses },
    },
  }, async (req) => {
    const q = req.query;
    const from = q.from ? parseInstant('from', q.from) : null;
    const to = q.to ? parseInstant('to', q.to) : null;
    if (from !== null && to !== null && to <= from) throw badRequest('to', 'to must be after from');
    const page = await listAlerts(deps.riskPg, {
      merchantId: q.merchantId, rule: q.rule, state: q.state, assignee: q.assignee, acked: q.acked, disposition: q.disposition,
      from: from === null ? undefined : new Date(from), to: to === null ? undefined : new Date(to),
      after: q.cursor ? decodeCursor(q.cursor) : undefined, limit: q.limit, sort: q.sort as 'fired' | 'receivable' | undefined,
    });
    return { items: page.items, nextCursor: page.next ? encodeCursor(page.next) : null };
  });
}
