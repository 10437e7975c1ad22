import type { FastifyInstance } from 'fastify';
import { actorOf, audited } from '../audit.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, badRequest } from '../errors.ts';
import { parseInstant } from '../range.ts';
import { errorResponses, IdParams, SilenceCreate, SilenceSchema, SilencesBody, SilencesQuery } from '../schemas.ts';

interface SilenceRow { id: string; merchant_id: string | null; rule: string | null; starts_at: Date; ends_at: Date; reason: string; created_by: string; active: boolean }
const COLUMNS = 'id, merchant_id, rule, starts_at, ends_at, reason, created_by, (starts_at <= now() AND ends_at > now()) AS active';
const body = (r: SilenceRow) => ({
  id: String(r.id), merchantId: r.merchant_id, rule: r.rule, startsAt: r.starts_at.toISOString(), endsAt: r.ends_at.toISOString(),
  reason: r.reason, createdBy: r.created_by, active: r.active,
});

/** Pure: the window of a new silence. */
export function silenceWindow(b: SilenceCreate, now: number): { startsAt: number; endsAt: number } {
  if (!b.merchantId && !b.rule) throw badRequest('merchantId', 'a silence needs a merchantId, a rule, or both');
  if (b.endsAt && b.minutes) throw badRequest('minutes', 'give endsAt or minutes, not both');
  const startsAt = b.startsAt ? parseInstant('startsAt', b.startsAt) : now;
  const endsAt = b.endsAt ? parseInstant('endsAt', b.endsAt) : b.minutes ? startsAt + b.minutes * 60_000 : null;
  if (endsAt === null) throw badRequest('endsAt', 'give endsAt or minutes');
  if (endsAt <= startsAt) throw badRequest('endsAt', 'endsAt must be after startsAt');
  if (endsAt <= now) throw badRequest('endsAt', 'endsAt is in the past');
  return { startsAt, endsAt };
}

export function silenceRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Querystring: { all: boolean } }>('/api/silences', {
    schema: { summary: 'Silences (active and upcoming; all=true adds expired ones)', tags: ['silences'], querystring: SilencesQuery, response: { 200: SilencesBody, ...errorResponses } },
  }, async (req) => {
    const { rows } = await deps.riskPg.query<SilenceRow>(
      `SELECT ${COLUMNS} FROM silences ${req.query.all ? '' : 'WHERE ends_at > now()'} ORDER BY ends_at DESC, id DESC LIMIT 500`);
    return { items: rows.map(body) };
  });

  app.post<{ Body: SilenceCreate }>('/api/silences', {
    config: { role: 'admin' },
    schema: {
      summary: 'Silence Slack notifications for a merchant, a rule, or a rule on a merchant (admin)',
      description: 'Alerts still fire and show on the dashboard; only their Slack messages are suppressed.',
      tags: ['silences'], body: SilenceCreate, response: { 201: SilenceSchema, ...errorResponses },
    },
  }, async (req, reply) => {
    const w = silenceWindow(req.body, Date.now());
    const created = await audited(deps.riskPg, req, (s: ReturnType<typeof body>) => ({ action: 'silence.create', target: `silence:${s.id}`, detail: { merchantId: s.merchantId, rule: s.rule, startsAt: s.startsAt, endsAt: s.endsAt, reason: s.reason } }),
      async (c) => body((await c.query<SilenceRow>(
        `INSERT INTO silences (merchant_id, rule, starts_at, ends_at, reason, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
        [req.body.merchantId ?? null, req.body.rule ?? null, new Date(w.startsAt), new Date(w.endsAt), req.body.reason, actorOf(req)])).rows[0]));
    return reply.code(201).send(created);
  });

  app.delete<{ Params: { id: string } }>('/api/silences/:id', {
    config: { role: 'admin' },
    schema: { summary: 'Remove a silence (admin)', tags: ['silences'], params: IdParams, response: { 204: { type: 'null' }, ...errorResponses } },
  }, async (req, reply) => {
    await audited(deps.riskPg, req, (s: ReturnType<typeof body>) => ({ action: 'silence.delete', target: `silence:${s.id}`, detail: { merchantId: s.merchantId, rule: s.rule, endsAt: s.endsAt, reason: s.reason } }),
      async (c) => {
        const { rows } = await c.query<SilenceRow>(`DELETE FROM silences WHERE id = $1 RETURNING ${COLUMNS}`, [req.params.id]);
        if (!rows.length) throw new ApiError('not_found', `silence ${req.params.id} does not exist`);
        return body(rows[0]);
      });
    return reply.code(204).send();
  });
}
