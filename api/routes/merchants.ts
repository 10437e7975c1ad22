import type { FastifyInstance } from 'fastify';
import { EVIDENCE_RATIO_SQL } from '../../lib/evidence.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, EvaluationsBody, MerchantParams, MerchantSchema, SearchBody, SearchQuery, TopBody, TopQuery } from '../schemas.ts';

/** Merchant names from the merchant directory, by id. */
export async function merchantNames(deps: ApiDeps, ids: string[]): Promise<Map<string, string>> {
  return deps.merchants.names(ids);
}

/** How a rule's latest evaluation ranks a merchant, from the evidence the evaluator stores (lib/evidence.ts). */
const RATIO_SQL = EVIDENCE_RATIO_SQL;
const numOf = (expr: string) => expr.replaceAll(/num\(([^)]*)\)/g, (_, e) => `(CASE WHEN jsonb_typeof(${e}) = 'number' OR (jsonb_typeof(${e}) = 'string' AND (${e})#>>'{}' ~ '^-?[0-9.]+(e-?[0-9]+)?$') THEN ((${e})#>>'{}')::float8 END)`);

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
    const { rows } = await deps.riskPg.query<{ rule: string; minute: Date; status: string; reason: string | null; evidence: unknown }>(
      'SELECT rule, minute, status, reason, evidence FROM evaluations WHERE merchant_id = $1 ORDER BY rule', [req.params.id]);
    return {
      merchantId: req.params.id,
      items: rows.map((r) => ({ rule: r.rule, minute: r.minute.toISOString(), status: r.status, reason: r.reason, evidence: r.evidence })),
      note: rows.length ? null
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
    const rule = by === 'cancel_rate' ? 'cancel_rate_spike' : 'volume_drop';
    const ratio = numOf(RATIO_SQL[by]);
    const { rows } = await deps.riskPg.query<{ merchant_id: string; status: string; minute: Date; ratio: number | null; evidence: unknown }>(
      `WITH latest AS (SELECT max(minute) AS m FROM evaluations WHERE rule = $1 AND status <> 'not_evaluated')
       SELECT merchant_id, status, minute, evidence, ${ratio} AS ratio
         FROM evaluations, latest
        WHERE rule = $1 AND status <> 'not_evaluated' AND minute = latest.m
        ORDER BY ratio ${by === 'cancel_rate' ? 'DESC' : 'ASC'} NULLS LAST, merchant_id
        LIMIT $2`, [rule, limit]);
    const names = await merchantNames(deps, rows.map((r) => r.merchant_id)).catch(() => new Map<string, string>());
    return {
      by, minute: rows[0]?.minute.toISOString() ?? null,
      items: rows.map((r) => ({
        merchantId: r.merchant_id, name: names.get(r.merchant_id) ?? null, rule, status: r.status,
        minute: r.minute.toISOString(), ratio: r.ratio === null ? null : Number(r.ratio), evidence: r.evidence,
      })),
    };
  });
}
