import type { FastifyInstance } from 'fastify';
import { merchantEvaluations, topEvaluations } from '../../alerting/risk-store/index.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, EvaluationsBody, MerchantParams, MerchantSchema, SearchBody, SearchQuery, TopBody, TopQuery } from '../schemas.ts';

const isNumericId = (s: string) => /^\d{1,18}$/.test(s);

/** Merchant names from the source database, by id (ids that are not numeric cannot be in the bigint column). */
export async function merchantNames(deps: ApiDeps, ids: string[]): Promise<Map<string, string>> {
  const numeric = ids.filter(isNumericId);
  if (!numeric.length) return new Map();
  const { rows } = await deps.sourcePg.query<{ id: string; name: string }>(
    'SELECT merchant_id::text AS id, name FROM merchants WHERE merchant_id = ANY($1::bigint[])', [numeric]);
  return new Map(rows.map((r) => [r.id, r.name]));
}

export function merchantRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Querystring: { q: string; limit: number } }>('/api/merchants', {
    schema: { summary: 'Find merchants by id or by part of the name', tags: ['merchants'], querystring: SearchQuery, response: { 200: SearchBody, ...errorResponses } },
  }, async (req) => {
    const q = req.query.q.trim();
    const pattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const { rows } = await deps.sourcePg.query<{ id: string; name: string; category: string }>(
      `SELECT merchant_id::text AS id, name, category FROM merchants
        WHERE ($1::bigint IS NOT NULL AND merchant_id = $1::bigint) OR name ILIKE $2
        ORDER BY (merchant_id = $1::bigint) IS TRUE DESC, name LIMIT $3`,
      [isNumericId(q) ? q : null, pattern, req.query.limit]);
    return { items: rows.map((r) => ({ merchantId: r.id, name: r.name, category: r.category })) };
  });

  app.get<{ Params: { id: string } }>('/api/merchants/:id', {
    schema: { summary: 'One merchant (name and category from the source database)', tags: ['merchants'], params: MerchantParams, response: { 200: MerchantSchema, ...errorResponses } },
  }, async (req) => {
    const id = req.params.id;
    const { rows } = isNumericId(id)
      ? await deps.sourcePg.query<{ name: string; category: string }>('SELECT name, category FROM merchants WHERE merchant_id = $1::bigint', [id])
      : { rows: [] };
    if (!rows.length) throw new ApiError('not_found', `merchant ${id} is not in the merchants table`);
    return { merchantId: id, name: rows[0].name, category: rows[0].category };
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
