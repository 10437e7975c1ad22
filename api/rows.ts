/** Rows of the risk store and bucket points → the JSON bodies of the API (and of WebSocket messages). */
import type { Point } from '../lib/buckets.ts';
import type { AlertBody, PointBody } from './schemas.ts';

export function pointBody(p: Point): PointBody {
  return {
    t: new Date(p.t).toISOString(),
    approvals: p.approvals,
    approvedAmount: p.approvedAmount.toString(),
    cancels: p.cancels,
    canceledAmount: p.canceledAmount.toString(),
  };
}

export interface AlertRow {
  id: string; rule: string; merchant_id: string; state: string; fired_at: Date; resolved_at: Date | null; evidence: unknown;
}

export const ALERT_COLUMNS = 'a.id, a.rule, a.merchant_id, a.state, a.fired_at, a.resolved_at, a.evidence';

export function alertBody(r: AlertRow): AlertBody {
  return {
    id: String(r.id), rule: r.rule, merchantId: r.merchant_id, state: r.state,
    firedAt: r.fired_at.toISOString(), resolvedAt: r.resolved_at ? r.resolved_at.toISOString() : null, evidence: r.evidence,
  };
}
