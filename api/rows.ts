/** Rows of the risk store and bucket points → the JSON bodies of the API (and of WebSocket messages). */
import { TRIAGE_COLUMNS, triageOf, type TriageRow } from '../alerting/index.ts';
import type { Point } from '../aggregator/store/index.ts';
import type { AlertBody, PointBody } from './schemas.ts';

/**
 * Bucket starts repeat across requests (every client of a merchant page asks for the same hours and minutes):
 * their ISO strings are cached, which was the largest single cost of a series response.
 */
const isoCache = new Map<number, string>();
function isoOf(t: number): string {
  let s = isoCache.get(t);
  if (s === undefined) {
    if (isoCache.size >= 50_000) isoCache.clear();
    isoCache.set(t, (s = new Date(t).toISOString()));
  }
  return s;
}

export function pointBody(p: Point): PointBody {
  return {
    t: isoOf(p.t),
    approvals: p.approvals,
    approvedAmount: p.approvedAmount.toString(),
    cancels: p.cancels,
    canceledAmount: p.canceledAmount.toString(),
  };
}

export interface AlertRow extends TriageRow {
  id: string; rule: string; merchant_id: string; state: string; fired_at: Date; resolved_at: Date | null; evidence: unknown; rule_version: string;
}

/** Columns of `alerts a` for alertBody: the alert and its triage state. */
export const ALERT_COLUMNS = `a.id, a.rule, a.merchant_id, a.state, a.fired_at, a.resolved_at, a.evidence, a.rule_version, ${TRIAGE_COLUMNS}`;

export function alertBody(r: AlertRow): AlertBody {
  return {
    id: String(r.id), rule: r.rule, merchantId: r.merchant_id, state: r.state,
    firedAt: r.fired_at.toISOString(), resolvedAt: r.resolved_at ? r.resolved_at.toISOString() : null, evidence: r.evidence,
    ruleVersion: r.rule_version, ...triageOf(r),
  };
}
