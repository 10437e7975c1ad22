/**
 * The analyst's desk: one alert with its transitions, notes and triage history; acknowledge, assign, note and
 * disposition (analyst or admin); rule precision from the dispositions; the audit trail.
 *
 * Each write runs in one transaction with the alert row locked and its audit record (alerting/risk-store/triage.ts),
 * then the alert's new state is published on the alert channel as `alert_update`, which every API instance relays to its
 * WebSocket clients.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { publishAlertUpdate, type AlertUpdateMessage } from '../../alerting/index.ts';
import {
  alertTransitions, applyTriage, getAlert, listAudit, notesOf, recordAudit, ruleQuality, triageHistory, type Disposition, type TriageAction,
} from '../../alerting/risk-store/index.ts';
import { actorOf } from '../audit.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, badRequest } from '../errors.ts';
import { parseInstant } from '../range.ts';
import {
  AckBody, AlertDetailSchema, AssignBody, AuditBody, AuditQuery, DispositionBody, errorResponses, IdParams, NoteBody, QualityBody, QualityQuery,
  type AlertDetailBody,
} from '../schemas.ts';

const DAY_MS = 86_400_000;

/** The alert with its transitions, notes and triage history; 404 when there is none. */
export async function alertDetail(deps: ApiDeps, id: string): Promise<AlertDetailBody> {
  const alert = await getAlert(deps.riskPg, id);
  if (!alert) throw new ApiError('not_found', `alert ${id} does not exist`);
  const [transitions, history] = await Promise.all([alertTransitions(deps.riskPg, alert), triageHistory(deps.riskPg, id)]);
  return { ...alert, transitions, notes: notesOf(history), history };
}

const auditEntry = (id: string, a: TriageAction) => ({
  action: `alert.${a.action}`,
  target: `alert:${id}`,
  detail: a.action === 'assign' ? { assignee: a.assignee }
    : a.action === 'note' ? { text: a.text }
    : a.action === 'disposition' ? { disposition: a.disposition, note: a.note } : {},
});

async function triage(deps: ApiDeps, req: FastifyRequest, id: string, action: TriageAction): Promise<AlertDetailBody> {
  const actor = actorOf(req);
  const found = await applyTriage(deps.riskPg, id, actor, action, (c) => recordAudit(c, actor, auditEntry(id, action)));
  if (!found) throw new ApiError('not_found', `alert ${id} does not exist`);
  const detail = await alertDetail(deps, id);
  // Live update for every dashboard on every instance. Pub/sub is best effort: the write is already committed,
  // and a dashboard that misses it reloads the alert on its next view.
  const { transitions: _t, notes, history: _h, ...alert } = detail;
  const msg: AlertUpdateMessage = { type: 'alert_update', alert: { ...alert, notes: notes.length } };
  await publishAlertUpdate(deps.redis, deps.cfg.redisPrefix, msg).catch((err) => req.log.warn({ err, alertId: id }, 'publishing alert_update failed'));
  return detail;
}

function range(q: { from?: string; to?: string }, defaultDays: number, now: number): { from: number; to: number } {
  const to = q.to ? parseInstant('to', q.to) : now;
  const from = q.from ? parseInstant('from', q.from) : to - defaultDays * DAY_MS;
  if (to <= from) throw badRequest('to', 'to must be after from');
  return { from, to };
}

export function triageRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const detail = { 200: AlertDetailSchema, ...errorResponses };
  const writeSchema = (summary: string, body: unknown) => ({ summary: `${summary} (analyst)`, tags: ['triage'], params: IdParams, body, response: detail });

  app.get<{ Params: { id: string } }>('/api/alerts/:id', {
    schema: { summary: 'One alert with its transitions, notes, acknowledgement, assignee, disposition and triage history', tags: ['alerts'], params: IdParams, response: detail },
  }, async (req) => alertDetail(deps, req.params.id));

  app.post<{ Params: { id: string } }>('/api/alerts/:id/ack', {
    config: { role: 'analyst' }, schema: writeSchema('Acknowledge an alert: the first acknowledgement stands, later ones are kept in the history', AckBody),
    // A body-less POST is an acknowledgement too.
    preValidation: async (req) => { req.body ??= {}; },
  }, async (req) => triage(deps, req, req.params.id, { action: 'ack' }));

  app.post<{ Params: { id: string }; Body: { assignee: string | null } }>('/api/alerts/:id/assign', {
    config: { role: 'analyst' }, schema: writeSchema('Assign an alert to a named analyst, or unassign it with null', AssignBody),
  }, async (req) => {
    const a = req.body.assignee === null ? null : req.body.assignee.trim();
    if (a === '') throw badRequest('assignee', 'assignee must be a name, or null to unassign');
    return triage(deps, req, req.params.id, { action: 'assign', assignee: a });
  });

  app.post<{ Params: { id: string }; Body: { text: string } }>('/api/alerts/:id/notes', {
    config: { role: 'analyst' }, schema: writeSchema('Add a note (at most 4,000 characters)', NoteBody),
  }, async (req) => {
    if (!req.body.text.trim()) throw badRequest('text', 'text must not be blank');
    return triage(deps, req, req.params.id, { action: 'note', text: req.body.text });
  });

  app.post<{ Params: { id: string }; Body: { disposition: Disposition; note: string } }>('/api/alerts/:id/disposition', {
    config: { role: 'analyst' },
    schema: writeSchema('Close an alert as confirmed, false_positive or benign, with a note; a later call changes it and the history keeps both', DispositionBody),
  }, async (req) => triage(deps, req, req.params.id, { action: 'disposition', disposition: req.body.disposition, note: req.body.note }));

  app.get<{ Querystring: { from?: string; to?: string } }>('/api/rules/quality', {
    schema: {
      summary: 'Precision per rule and rule version, from the dispositions of the alerts fired in [from, to) (default: the last 30 days)',
      description: 'precision = confirmed / (confirmed + falsePositive); null when both are 0. Benign alerts count in neither.',
      tags: ['rules'], querystring: QualityQuery, response: { 200: QualityBody, ...errorResponses },
    },
  }, async (req) => {
    const r = range(req.query, 30, deps.now());
    return { from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), items: await ruleQuality(deps.riskPg, new Date(r.from), new Date(r.to)) };
  });

  app.get<{ Querystring: AuditQuery }>('/api/audit', {
    schema: {
      summary: 'The audit trail of every write made through the API, newest first',
      description: 'Filter by time, actor (a key name, or "key <id>" for unnamed keys), action and target. Pass nextCursor as cursor for the next page.',
      tags: ['audit'], querystring: AuditQuery, response: { 200: AuditBody, ...errorResponses },
    },
  }, async (req) => {
    const q = req.query;
    const from = q.from ? parseInstant('from', q.from) : undefined;
    const to = q.to ? parseInstant('to', q.to) : undefined;
    if (from !== undefined && to !== undefined && to <= from) throw badRequest('to', 'to must be after from');
    return listAudit(deps.riskPg, {
      from: from === undefined ? undefined : new Date(from), to: to === undefined ? undefined : new Date(to),
      actor: q.actor, action: q.action, target: q.target, before: q.cursor, limit: q.limit,
    });
  });
}
