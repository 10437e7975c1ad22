/**
 * cancel_rate_spike (docs/contracts.md "Rules"): rate_W = cancels_W / approvals_W over the window W of the last
 * `windowMinutes` closed minutes ending with M; baseline = cancels / approvals summed over the baseline days (the
 * full local days before today). Fires when rate_W ≥ multiplier × baseline, with guards on the activity in W and
 * on the history, and a significance guard (`maxPValue`): at the DESIGN guards alone (5 cancels where 2 were
 * expected) plain Poisson noise fires for a few of every few hundred merchants each hour. The guard is the exact
 * conditional test of two Poisson rates (significance.ts): the chance that a merchant cancelling at one steady rate
 * splits its cancels between window and baseline at least this unevenly. A baseline without any cancel makes a
 * guarded cancel wave fire when the window is a small enough share of the merchant's approvals.
 *
 * The rule is a definition of the composed form (builtin.ts) judged by its engine (composed.ts `judge`); this module
 * gives it its inputs and its evidence.
 */
import type { CancelRateSpikeEvidence } from '../../lib/evidence.ts';
import type { Totals } from '../../aggregator/store/index.ts';
import { iso } from '../../lib/time.ts';
import { cancelRateSpikeRule } from './builtin.ts';
import type { CancelRateSpikeParams } from './config.ts';
import type { Cohort } from '../cohort.ts';
import { belowComposedGuard, judge } from './composed.ts';
import { withEvidence, type Evaluation } from './types.ts';

export interface CancelRateInput {
  merchantId: string;
  /** The closed minute M (epoch ms of its start). */
  minute: number;
  windowFrom: number;
  windowTo: number;
  window: Totals;
  baselineFrom: number;
  baselineTo: number;
  /** Totals over the baseline days; undefined when the merchant has no history at all. */
  baseline: Totals | undefined;
  /** The merchant's cohort (cohort.ts), used when its own history is below minBaselineApprovals. */
  cohort?: Cohort | null;
}

/**
 * True when the activity guard alone decides ("too little activity"): the evaluator's fast path for the bulk of
 * ~100,000 merchants, which then need no Evaluation object at all unless their stored verdict differs.
 */
export function belowActivityGuard(w: Totals, p: CancelRateSpikeParams): boolean {
  return belowComposedGuard(w, cancelRateSpikeRule(p));
}

export function evaluateCancelRateSpike(input: CancelRateInput, p: CancelRateSpikeParams, ruleVersion: string): Evaluation {
  const w = input.window;
  const bApprovals = input.baseline?.approvals ?? 0;
  const bCancels = input.baseline?.cancels ?? 0;
  const baselineRate = bApprovals > 0 ? bCancels / bApprovals : null;
  const r = cancelRateSpikeRule(p);
  const c = input.cohort;
  const v = judge(r, {
    window: w, windowMinutes: Math.round((input.windowTo - input.windowFrom) / 60_000),
    baseline: bApprovals < p.minBaselineApprovals || baselineRate === null
      ? { none: `too little history: needs at least ${p.minBaselineApprovals} approvals over the baseline days` }
      : { value: baselineRate, counts: { approvals: bApprovals, cancels: bCancels } },
    // Too little history of its own: judged against its cohort's median rate, as a known rate (Poisson tail).
    cohort: c ? { value: c.rate } : null,
  });
  const evidence = (): CancelRateSpikeEvidence => ({
    rule: 'cancel_rate_spike',
    ruleVersion,
    minute: iso(input.minute),
    window: { from: iso(input.windowFrom), to: iso(input.windowTo), approvals: w.approvals, cancels: w.cancels, rate: v.value },
    baseline: { from: iso(input.baselineFrom), to: iso(input.baselineTo), approvals: bApprovals, cancels: bCancels, rate: baselineRate },
    multiplier: p.multiplier,
    threshold: v.usedCohort ? v.threshold : baselineRate === null ? null : p.multiplier * baselineRate,
    ...(v.pValue !== undefined ? { expectedCancels: v.expected, pValue: v.pValue, maxPValue: p.maxPValue } : {}),
    ...(v.usedCohort && c ? { cohort: { category: c.category, sizeBand: c.band, merchants: c.merchants, rate: c.rate } } : {}),
  });
  return withEvidence({ rule: 'cancel_rate_spike', merchantId: input.merchantId, minute: input.minute, status: v.status, reason: v.reason, condition: v.condition }, evidence);
}
