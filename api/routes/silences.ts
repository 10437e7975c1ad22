import type { FastifyInstance } from 'fastify';
import { createSilence, deleteSilence, listSilences, type SilenceJson } from '../../alerting/risk-store/index.ts';
import { actorOf, audited } from '../audit.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, badRequest } from '../errors.ts';
import { parseInstant } from '../range.ts';
import { errorResponses, IdParams, SilenceCreate, SilenceSchema, SilencesBody, SilencesQuery } from '../schemas.ts';

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
    return { items: await listSilences(deps.riskPg, req.query.all) };
  });

  app.post<{ Body: SilenceCreate }>('/api/silences', {
    config: { role: 'admin' },
    schema: {
      summary: 'Silence Slack notifications for a merchant, a rule, or a rule on a merchant (admin)',
      description: 'Alerts still fire and show on the dashboard; only their Slack messages are suppressed.',
      tags: ['silences'], body: SilenceCreate, response: { 201: SilenceSchema, ...errorResponses },
    },
  }, async (req, reply) => {
    const w = silenceWindow(req.body, deps.now());
    const created = await audited(deps.riskPg, req, (s: SilenceJson) => ({ action: 'silence.create', target: `silence:${s.id}`, detail: { merchantId: s.merchantId, rule: s.rule, startsAt: s.startsAt, endsAt: s.endsAt, reason: s.reason } }),
      (c) => createSilence(c, {
        merchantId: req.body.merchantId ?? null, rule: req.body.rule ?? null, startsAt: w.startsAt, endsAt: w.endsAt, reason: req.body.reason, createdBy: actorOf(req),
      }));
    return reply.code(201).send(created);
  });

  app.delete<{ Params: { id: string } }>('/api/silences/:id', {
    config: { role: 'admin' },
    schema: { summary: 'Remove a silence (admin)', tags: ['silences'], params: IdParams, response: { 204: { type: 'null' }, ...errorResponses } },
  }, async (req, reply) => {
    await audited(deps.riskPg, req, (s: SilenceJson) => ({ action: 'silence.delete', target: `silence:${s.id}`, detail: { merchantId: s.merchantId, rule: s.rule, endsAt: s.endsAt, reason: s.reason } }),
      async (c) => {
        const removed = await deleteSilence(c, req.params.id);
        if (!removed) throw new ApiError('not_found', `silence ${req.params.id} does not exist`);
        return removed;
      });
    return reply.code(204).send();
  });
}
