/**
 * The analyst's desk: one alert with its transitions, notes and triage history; acknowledge, assign, note and
 * disposition (analyst or admin); rule precision from the dispositions; the audit trail.
 *
 * Each write runs in one transaction with the alert row locked and its audit record (alerting/risk-store/triage.ts), then the
 * alert's new state is published on the alert channel as `alert_update`, which every API instance relays to its
 * WebSocket clients.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  applyTriage, notesOf, publishAlertUpdate, ruleQuality, triageHistory, type AlertUpdateMessage, type Disposition, type TriageAction,
} from '../../alerting/index.ts';
import { actorOf, listAudit, recordAudit } from '../audit.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, badRequest } from '../errors.ts';
import { parseInstant } from '../range.ts';
import { ALERT_COLUMNS, alertBody, type AlertRow } from '../rows.ts';
import {
  AckBody, AlertDetailSchema, AssignBody, AuditBody, AuditQuery, DispositionBody, errorResponses, IdParams, NoteBody, QualityBody, QualityQuery,
  type AlertBody, type AlertDetailBody,
} from '../schemas.ts';

const DAY_MS = 86_400_000;

async function alertRow(deps: ApiDeps, id: string): Promise<AlertRow | null> {
  const { rows } = await deps.riskPg.query<AlertRow>(`SELECT ${ALERT_COLUMNS} FROM alerts a WHERE a.id = $1`, [id]);
  return rows[0] ?? null;
}

/** The alert with its transitions, notes and triage history; 404 when there is none. */
export async function alertDetail(deps: ApiDeps, id: string): Promise<AlertDetailBody> {
  const row = await alertRow(deps, id);
  if (!row) throw new ApiError('not_found', `alert ${id} does not exist`);
  const [t, history] = await Promise.all([
    deps.riskPg.query<{ id: string; kind: string; minute: Date; created_at: Date; rule_version: string; evidence: unknown }>(
      'SELECT t.id::text, t.kind, t.minute, t.created_at, t.rule_version, t.evidence FROM alert_transitions t WHERE t.alert_id = $1 ORDER BY t.id', [id]),
    triageHistory(deps.riskPg, id),
  ]);
  return {
    ...alertBody(row),
    transitions: t.rows.map((r) => ({ id: r.id, kind: r.kind, minute: r.minute.toISOString(), at: r.created_at.toISOString(), ruleVersion: r.rule_version || row.rule_version, evidence: r.evidence })),
    notes: notesOf(history),
    history,
  };
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
  const msg: AlertUpdateMessage = { type: 'alert_update', alert: { ...(alert as AlertBody & { evidence: Record<string, unknown> }), notes: notes.length } as AlertUpdateMessage['alert'] };
  await publishAlertUpdate(deps.redis, deps.cfg.redisPrefix, msg).catch((err) => req.log.warn({ err, alertId: id }, 'publishing alert_update failed'));
  return detail;
}

function range(q: { from?: string; to?: string }, defaultDays: number): { from: number; to: number } {
  const to = q.to ? parseInstant('to', q.to) : Date.now();
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
    const r = range(req.query, 30);
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
