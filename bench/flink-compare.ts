/**
 * Pure parts of the Flink side-by-side (bench/flink.ts): the ground truth of cancel_rate_spike from SQL counts, the
 * alert lifecycle applied to per-minute verdicts, and the comparison of alert sets.
 *
 * An alert is (merchant, minute it fired). From per-minute verdicts it follows riskmon's lifecycle
 * (alerting/lifecycle.ts): a breach fires an alert when none is firing; a firing alert resolves after
 * `resolveAfterMinutes` consecutive minutes without a breach (a minute the rule does not judge counts as clear).
 */
import { evaluateCancelRateSpike, type RulesConfig } from '../alerting/index.ts';
import { MINUTE } from '../lib/time.ts';

export interface Alert { merchant: string; firedAt: number }

/** Alerts fired over [from, to) given each merchant's breaching minutes (nothing firing at `from`). */
export function alertsOf(breaches: Map<string, Iterable<number>>, from: number, to: number, resolveAfterMinutes: number): Alert[] {
  const out: Alert[] = [];
  for (const [merchant, ms] of breaches) {
    const sorted = [...new Set(ms)].filter((m) => m >= from && m < to).sort((a, b) => a - b);
    let firingUntil = -Infinity; // the minute at which the current alert resolves when no breach comes first
    for (const m of sorted) {
      if (m >= firingUntil) out.push({ merchant, firedAt: m });
      firingUntil = m + (resolveAfterMinutes + 1) * MINUTE;
    }
  }
  return out.sort((a, b) => a.firedAt - b.firedAt || (a.merchant < b.merchant ? -1 : a.merchant > b.merchant ? 1 : 0));
}

/** Counts of one merchant in one bucket (minute or local day). */
export interface Counts { approvals: number; cancels: number }

/**
 * Breaching minutes of [from, to) per merchant from SQL counts: `minutes` merchant → minute → counts (covering
 * [from − window + 1 minute, to)), `baselines` merchant → day start → counts, `baselineDaysOf(minute)` the baseline
 * day starts of a minute's local day. Judged by riskmon's own rule function (cohorts off), so a difference from
 * another system is a difference in the counts it saw.
 */
export function breachesFromCounts(o: {
  minutes: Map<string, Map<number, Counts>>; baselines: Map<string, Map<number, Counts>>; from: number; to: number;
  rules: RulesConfig; baselineDaysOf: (minute: number) => number[];
}): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const W = o.rules.windowMinutes;
  const p = o.rules.cancel_rate_spike;
  for (const [merchant, byMinute] of o.minutes) {
    const days = o.baselines.get(merchant);
    let wA = 0, wC = 0;
    const at = (m: number) => byMinute.get(m);
    for (let m = o.from - (W - 1) * MINUTE; m < o.from; m += MINUTE) { wA += at(m)?.approvals ?? 0; wC += at(m)?.cancels ?? 0; }
    for (let m = o.from; m < o.to; m += MINUTE) {
      wA += at(m)?.approvals ?? 0; wC += at(m)?.cancels ?? 0;
      if (wA >= p.minApprovals && wC >= p.minCancels) {
        let bA = 0, bC = 0;
        for (const d of o.baselineDaysOf(m)) { bA += days?.get(d)?.approvals ?? 0; bC += days?.get(d)?.cancels ?? 0; }
        const e = evaluateCancelRateSpike({
          merchantId: merchant, minute: m, windowFrom: m - (W - 1) * MINUTE, windowTo: m + MINUTE,
          window: { approvals: wA, approvedAmount: 0n, cancels: wC, canceledAmount: 0n },
          baselineFrom: 0, baselineTo: 0, baseline: bA || bC ? { approvals: bA, approvedAmount: 0n, cancels: bC, canceledAmount: 0n } : undefined,
        }, p, 'bench');
        if (e.status === 'breach') { let l = out.get(merchant); if (!l) out.set(merchant, (l = [])); l.push(m); }
      }
      const old = m - (W - 1) * MINUTE;
      wA -= at(old)?.approvals ?? 0; wC -= at(old)?.cancels ?? 0;
    }
  }
  return out;
}

/** How an alert set differs from the truth: alerts it lacks and alerts it has that the truth has not. */
export function compareAlerts(truth: Alert[], got: Alert[]): { equal: boolean; missing: Alert[]; extra: Alert[] } {
  const key = (a: Alert) => `${a.merchant}@${a.firedAt}`;
  const t = new Set(truth.map(key)), g = new Set(got.map(key));
  const missing = truth.filter((a) => !g.has(key(a)));
  const extra = got.filter((a) => !t.has(key(a)));
  return { equal: !missing.length && !extra.length, missing, extra };
}
