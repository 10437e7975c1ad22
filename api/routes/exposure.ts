/**
 * Money at risk (docs/contracts.md "Exposure"): one merchant's exposure read live from the bucket store, and the
 * merchants that owe the most, from the risk store's merchant_exposure (kept every closed minute by the evaluator:
 * an index scan, whatever the number of merchants).
 */
import type { FastifyInstance } from 'fastify';
import { hasMoney, readExposure, settlementOf, type Exposure } from '../../aggregator/store/index.ts';
import { holdsOf as storedHolds, topExposures } from '../../alerting/risk-store/index.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, ExposureSchema, ExposureTopBody, ExposureTopQuery, MerchantParams } from '../schemas.ts';
import { merchantNames } from './merchants.ts';

/** The holds on a merchant's payouts as the exposure JSON lists them: the active one first, then the latest. */
export async function holdsOf(deps: ApiDeps, merchantId: string): Promise<Exposure['holds']> {
  return storedHolds(deps.riskPg, merchantId);
}

export function exposureRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Params: { id: string } }>('/api/merchants/:id/exposure', {
    schema: {
      summary: "A merchant's money at risk: settled-through time, approved and canceled since, receivable, projection to the next payout",
      tags: ['merchants'], params: MerchantParams, response: { 200: ExposureSchema, ...errorResponses },
    },
  }, async (req) => {
    const id = req.params.id;
    const m = await deps.merchants.get(id);
    if (!m) throw new ApiError('not_found', `merchant ${id} is not in the merchant directory ${deps.merchants.table}`);
    const reader = deps.reader;
    if (!hasMoney(reader)) throw new ApiError('unavailable', 'this bucket reader cannot read exposures');
    const e = await readExposure(reader, id, deps.now(), settlementOf(deps.cfg));
    return { ...e, holds: await holdsOf(deps, id) };
  });

  app.get<{ Querystring: { limit: number } }>('/api/exposure/top', {
    schema: {
      summary: 'Merchants by receivable now, largest first',
      description: 'Every merchant that owes (receivable > 0) as of the last closed minute the evaluator judged; at most `limit` (200).',
      tags: ['merchants'], querystring: ExposureTopQuery, response: { 200: ExposureTopBody, ...errorResponses },
    },
  }, async (req) => {
    const { items, computedAt } = await topExposures(deps.riskPg, req.query.limit);
    const names = await merchantNames(deps, items.map((e) => e.merchantId)).catch(() => new Map<string, string>());
    return { computedAt, items: items.map((e) => ({ ...e, name: names.get(e.merchantId) ?? null })) };
  });
}
