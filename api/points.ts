/** Bucket points → the JSON bodies of the API (and of WebSocket messages). */
import type { Point } from '../aggregator/store/index.ts';
import type { PointBody } from './schemas.ts';

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
