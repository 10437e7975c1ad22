import type { FastifyInstance } from 'fastify';
import { merchantEvaluations, topEvaluations } from '../../alerting/risk-store/index.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, EvaluationsBody, MerchantParams, MerchantSchema, SearchBody, SearchQuery, TopBody, TopQuery } from '../schemas.ts';

/** Merchant names from the merchant directory, by id. */
export async function merchantNames(deps: ApiDeps, ids: string[]): Promise<Map<string, string>> {
  return deps.merchants.names(ids);
}

export function merchantRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Querystring: { q: string; limit: number } }>('/api/merchants', {
    schema: { summary: 'Find merchants by id or by part of the name', tags: ['merchants'], querystring: SearchQuery, response: { 200: SearchBody, ...errorResponses } },
  }, async (req) => {
    const rows = await deps.merchants.search(req.query.q.trim(), req.query.limit);
    return { items: rows.map((r) => ({ merchantId: r.id, name: r.name, category: r.category })) };
  });

  app.get<{ Params: { id: string } }>('/api/merchants/:id', {
    schema: { summary: 'One merchant (name and category from the merchant directory)', tags: ['merchants'], params: MerchantParams, response: { 200: MerchantSchema, ...errorResponses } },
  }, async (req) => {
    const id = req.params.id;
    const m = await deps.merchants.get(id);
    if (!m) throw new ApiError('not_found', `merchant ${id} is not in the merchant directory ${deps.merchants.table}`);
    return { merchantId: id, name: m.name, category: m.category };
  });

  app.get<{ Params: { id: string } }>('/api/merchants/:id/evaluations', {
    schema: {
      summary: "The latest evaluation of each rule for a merchant: breach, clear, or not evaluated and why",
      tags: ['merchants'], params: MerchantParams, response: { 200: EvaluationsBody, ...errorResponses },
    },
  }, async (req) => {
    const items = await merchantEvaluations(deps.riskPg, req.params.id);
    return {
      merchantId: req.params.id,
      items,
      note: items.length ? null
        : 'not evaluated yet: the merchant had no activity in a closed minute since the evaluator started, or (volume_drop) its 7-day average is below the eligibility threshold',
    };
  });

  app.get<{ Querystring: { by: 'cancel_rate' | 'volume_drop'; limit: number } }>('/api/top', {
    schema: {
      summary: 'Riskiest merchants right now: highest cancel rate against baseline, or deepest volume drop',
      description: 'From the latest evaluation of each merchant at the most recent evaluated minute.',
      tags: ['merchants'], querystring: TopQuery, response: { 200: TopBody, ...errorResponses },
    },
  }, async (req) => {
    const { by, limit } = req.query;
    const rows = await topEvaluations(deps.riskPg, by, limit);
    const names = await merchantNames(deps, rows.map((r) => r.merchantId)).catch(() => new Map<string, string>());
    return {
      by, minute: rows[0]?.minute ?? null,
      items: rows.map((r) => ({ ...r, name: names.get(r.merchantId) ?? null })),
    };
  });
}
