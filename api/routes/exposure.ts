/**
 * Money at risk (docs/contracts.md "Exposure"): one merchant's exposure read live from the bucket store, and the
 * merchants that owe the most, from the risk store's merchant_exposure (kept every closed minute by the evaluator:
 * an index scan, whatever the number of merchants), and a merchant's payouts (the rows the bucket store keeps, or the
 * D+N schedule) for the dashboard's net-position chart.
 */
import type { FastifyInstance } from 'fastify';
import { hasMoney, readExposure, settlementOf, type Exposure } from '../../aggregator/store/index.ts';
import { holdsOf as storedHolds, topExposures } from '../../alerting/risk-store/index.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { scheduleOfDays } from '../../lib/exposure.ts';
import { dayStart, HOUR } from '../../lib/time.ts';
import { errorResponses, ExposureSchema, ExposureTopBody, ExposureTopQuery, MerchantParams, PayoutsBody, PayoutsQuery } from '../schemas.ts';
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

  app.get<{ Params: { id: string }; Querystring: { limit: number } }>('/api/merchants/:id/payouts', {
    schema: {
      summary: "A merchant's payouts: when each was paid and what it settled through",
      description: 'The payout rows the bucket store keeps (paid within the day tier or up to 100 days ahead); with RISKMON_SETTLEMENT_DAYS instead of a payouts table, the D+N schedule (a payout at every local midnight, amount null). The latest `limit` by paidAt, oldest first.',
      tags: ['merchants'], params: MerchantParams, querystring: PayoutsQuery, response: { 200: PayoutsBody, ...errorResponses },
    },
  }, async (req) => {
    const id = req.params.id;
    const m = await deps.merchants.get(id);
    if (!m) throw new ApiError('not_found', `merchant ${id} is not in the merchant directory ${deps.merchants.table}`);
    const reader = deps.reader;
    if (!hasMoney(reader)) throw new ApiError('unavailable', 'this bucket reader cannot read payouts');
    const now = deps.now();
    const s = settlementOf(deps.cfg);
    const items: { id: string | null; amount: string | null; coversTo: string; paidAt: string; paid: boolean }[] = [];
    if (s.kind === 'payouts') {
      const rows = ((await reader.payouts([id])).get(id) ?? []).slice().sort((a, b) => a.paidAtMs - b.paidAtMs || a.coversToMs - b.coversToMs);
      for (const p of rows.slice(-req.query.limit)) {
        items.push({ id: p.id, amount: p.amount.toString(), coversTo: new Date(p.coversToMs).toISOString(), paidAt: new Date(p.paidAtMs).toISOString(), paid: p.paidAtMs <= now });
      }
    } else if (s.kind === 'days') {
      // every local midnight back from the next payout: the payout at M settles through the schedule's S at M
      let at = scheduleOfDays(s.days, now, s.tz).nextPayoutAt!;
      for (let i = 0; i < req.query.limit; i++) {
        items.unshift({ id: null, amount: null, coversTo: new Date(scheduleOfDays(s.days, at, s.tz).settledThrough!).toISOString(), paidAt: new Date(at).toISOString(), paid: at <= now });
        at = dayStart(at - HOUR, s.tz);
      }
    }
    return { merchantId: id, settlement: s.kind, items };
  });
}
