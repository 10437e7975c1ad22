/**
 * Payout holds: an analyst holds a merchant's payouts (from an alert or the merchant page) and releases them; every
 * action goes to the settlement system as a signed webhook through the durable outbox (alerting/risk-store/holds.ts
 * writes the hold, its outbox row and — through `recordAudit` — its audit record in one transaction; the alerting
 * process delivers it). And the outbox as operators see it: what is pending or dead-lettered, retry or discard.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  createHold, getHold, HoldAlertMismatch, HoldConflict, HoldReleased, inTransaction, listHolds, listWebhookDeliveries, NotFailed, recordAudit,
  releaseHold, resolveFailedWebhook, type HoldJson,
} from '../../alerting/risk-store/index.ts';
import { actorOf, audited } from '../audit.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, badRequest } from '../errors.ts';
import {
  DeliverySchema, ErrorBody, errorResponses, EventParams, HoldConflictBody, HoldCreate, HoldRelease, HoldSchema, HoldsBody, HoldsQuery, IdParams,
  MerchantParams, WebhooksBody, WebhooksQuery, type HoldsQuery as HoldsQ, type WebhooksQuery as WebhooksQ,
} from '../schemas.ts';

/** A reason as stored: trimmed, and not blank. */
function reasonOf(raw: string): string {
  const r = raw.trim();
  if (!r) throw badRequest('reason', 'reason must not be blank: say why (it is sent to the settlement system and kept in the audit trail)');
  return r;
}

/**
 * The merchant's exposure for the webhook event, never failing the action: an analyst holding payouts must not be
 * stopped by the money-at-risk reader (the event then says null).
 */
async function exposureNow(deps: ApiDeps, req: FastifyRequest, merchantId: string): Promise<Record<string, unknown> | null> {
  try {
    return await deps.exposureOf(merchantId);
  } catch (err) {
    req.log.warn({ err, merchantId }, 'exposure could not be read for a payout action: the webhook event carries null');
    return null;
  }
}

const conflict = (reply: FastifyReply, err: HoldConflict | HoldReleased) =>
  reply.code(409).send({ error: 'conflict', message: err.message, hold: err.hold });

export function holdRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const writeErrors = { ...errorResponses, 409: HoldConflictBody };

  app.post<{ Params: { id: string }; Body: HoldCreate }>('/api/merchants/:id/holds', {
    config: { role: 'analyst' },
    schema: {
      summary: "Hold a merchant's payouts (analyst): sent to the settlement system as a payout.hold webhook",
      description: 'At most one active hold per merchant: a second gets 409 naming the active one. The answer comes once the hold and its webhook event are stored; `delivery` tells when the settlement system has it.',
      tags: ['holds'], params: MerchantParams, body: HoldCreate, response: { 201: HoldSchema, ...writeErrors },
    },
  }, async (req, reply) => {
    const merchantId = req.params.id;
    const reason = reasonOf(req.body.reason);
    if (!(await deps.merchants.get(merchantId))) {
      throw new ApiError('not_found', `merchant ${merchantId} is not in the merchant directory ${deps.merchants.table}`);
    }
    const exposure = await exposureNow(deps, req, merchantId);
    const actor = actorOf(req);
    try {
      const hold = await inTransaction(deps.riskPg, async (c) => {
        const h = await createHold(c, { merchantId, reason, alertId: req.body.alertId ?? null, actor, at: deps.now(), exposure });
        await recordAudit(c, actor, { action: 'hold.create', target: `hold:${h.id}`, detail: { merchantId, reason, alertId: h.alertId, event: h.actions[0]?.id } });
        return h;
      });
      return reply.code(201).send(hold);
    } catch (err) {
      if (err instanceof HoldConflict) return conflict(reply, err);
      if (err instanceof HoldAlertMismatch) throw badRequest('alertId', err.message);
      throw err;
    }
  });

  app.post<{ Params: { id: string }; Body: { reason: string } }>('/api/holds/:id/release', {
    config: { role: 'analyst' },
    schema: {
      summary: "Release a hold (analyst): sent to the settlement system as a payout.release webhook, after the hold's own",
      tags: ['holds'], params: IdParams, body: HoldRelease, response: { 200: HoldSchema, ...writeErrors },
    },
  }, async (req, reply) => {
    const reason = reasonOf(req.body.reason);
    const existing = await getHold(deps.riskPg, req.params.id);
    if (!existing) throw new ApiError('not_found', `hold ${req.params.id} does not exist`);
    const exposure = await exposureNow(deps, req, existing.merchantId);
    const actor = actorOf(req);
    try {
      const hold = await inTransaction(deps.riskPg, async (c) => {
        const h = await releaseHold(c, req.params.id, { reason, actor, at: deps.now(), exposure });
        if (!h) throw new ApiError('not_found', `hold ${req.params.id} does not exist`);
        await recordAudit(c, actor, { action: 'hold.release', target: `hold:${h.id}`, detail: { merchantId: h.merchantId, reason, event: h.actions[h.actions.length - 1]?.id } });
        return h;
      });
      return hold satisfies HoldJson;
    } catch (err) {
      if (err instanceof HoldReleased) return conflict(reply, err);
      throw err;
    }
  });

  app.get<{ Querystring: HoldsQ }>('/api/holds', {
    schema: {
      summary: 'Payout holds, newest first, with the delivery state of their webhook events',
      description: 'Filter by merchantId and state (active, released); pass nextCursor as cursor for the next page.',
      tags: ['holds'], querystring: HoldsQuery, response: { 200: HoldsBody, ...errorResponses },
    },
  }, async (req) => listHolds(deps.riskPg, { merchantId: req.query.merchantId, state: req.query.state, before: req.query.cursor, limit: req.query.limit }));

  app.get<{ Params: { id: string } }>('/api/holds/:id', {
    schema: { summary: 'One payout hold with its webhook events', tags: ['holds'], params: IdParams, response: { 200: HoldSchema, ...errorResponses } },
  }, async (req) => {
    const h = await getHold(deps.riskPg, req.params.id);
    if (!h) throw new ApiError('not_found', `hold ${req.params.id} does not exist`);
    return h;
  });

  app.get<{ Querystring: WebhooksQ }>('/api/webhooks', {
    schema: {
      summary: 'The webhook outbox: payout actions and alert transitions, newest first, with their delivery state',
      description: 'status=failed lists the dead-lettered events (a 4xx from the endpoint, or the retry schedule exhausted); a failed event holds back the later events of its merchant (or alert) until it is retried or discarded.',
      tags: ['holds'], querystring: WebhooksQuery, response: { 200: WebhooksBody, ...errorResponses },
    },
  }, async (req) => listWebhookDeliveries(deps.riskPg, {
    channel: req.query.channel, status: req.query.status, merchantId: req.query.merchantId, before: req.query.cursor, limit: req.query.limit,
  }));

  for (const how of ['retry', 'discard'] as const) {
    app.post<{ Params: { id: string } }>(`/api/webhooks/:id/${how}`, {
      config: { role: 'admin' },
      schema: {
        summary: how === 'retry'
          ? 'Send a failed webhook event again (admin): pending with a fresh retry schedule, same id and body'
          : 'Give up a failed webhook event (admin): the events queued behind it go out',
        tags: ['holds'], params: EventParams, response: { 200: DeliverySchema, ...errorResponses, 409: ErrorBody },
      },
      preValidation: async (req) => { req.body ??= {}; },
    }, async (req, reply) => {
      try {
        return await audited(deps.riskPg, req, { action: `webhook.${how}`, target: `webhook:${req.params.id}` }, async (c) => {
          const d = await resolveFailedWebhook(c, req.params.id, how);
          if (!d) throw new ApiError('not_found', `webhook event ${req.params.id} does not exist`);
          return d;
        });
      } catch (err) {
        if (err instanceof NotFailed) return reply.code(409).send({ error: 'conflict', message: err.message });
        throw err;
      }
    });
  }
}
