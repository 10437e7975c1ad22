/**
 * The built-in rules as rules of the composed form (composed.ts): each is a metric over a window against a baseline
 * by a multiple or a fraction, with guards — judged by the same engine (`judge`) as the rules an admin composes.
 * Their parameters (docs/contracts.md "Rules", config.ts) map onto the form's fields and options:
 *
 * - cancel_rate_spike: cancel_rate over the rules' window ≥ multiplier × its rate over the baseline days, with the
 *   activity guards, the history guard (minBaselineApprovals), the significance guard (maxPValue) and the cohort
 *   for a merchant below the history guard (minCohortMerchants);
 * - volume_drop: approved_amount of the day so far ≤ ratio × the same time of day on the baseline (same weekdays, or
 *   the 7-day mean), eligible from minDailyAmount a day, holidays skipped, with the first-minutes and baseline floors;
 * - volume_spike: approved_amount over the rules' window ≥ multiplier × the same window of the day on the baseline,
 *   from minWindowAmount in the window, holidays skipped.
 *
 * Only the evidence stays each rule's own (its JSON shape is a contract: lib/evidence.ts).
 */
import type { VolumeCohortEvidence } from '../../lib/evidence.ts';
import type { ComposedRule } from './composed.ts';
import type { CancelRateSpikeParams, VolumeDropParams, VolumeSpikeParams } from './config.ts';

/** One definition per parameters object (paramsFor returns the config's own object unless a merchant has an override). */
function memo<P extends object>(build: (p: P) => ComposedRule): (p: P) => ComposedRule {
  const cache = new WeakMap<P, ComposedRule>();
  return (p) => {
    let r = cache.get(p);
    if (!r) cache.set(p, (r = build(p)));
    return r;
  };
}

export const cancelRateSpikeRule = memo((p: CancelRateSpikeParams): ComposedRule => ({
  name: 'cancel_rate_spike', enabled: p.enabled, metric: 'cancel_rate', baseline: 'last_7_days', compare: 'multiple', k: p.multiplier,
  minApprovals: p.minApprovals, minCancels: p.minCancels, minWindowAmount: 0, minBaselineApprovals: p.minBaselineApprovals,
  maxPValue: p.maxPValue, cohortFallback: p.minCohortMerchants,
}));

export const volumeDropRule = memo((p: VolumeDropParams): ComposedRule => ({
  name: 'volume_drop', enabled: p.enabled, metric: 'approved_amount', baseline: p.baseline, timeOfDay: true, compare: 'fraction', k: p.ratio,
  minApprovals: 0, minCancels: 0, minWindowAmount: 0, minBaselineApprovals: 0,
  window: 'day_so_far', minDailyAmount: p.minDailyAmount, holidays: 'skip', minElapsedMinutes: p.minElapsedMinutes, minBaselineValue: p.minBaselineAmount,
  cohortFallback: p.minCohortMerchants,
}));

export const volumeSpikeRule = memo((p: VolumeSpikeParams): ComposedRule => ({
  name: 'volume_spike', enabled: p.enabled, metric: 'approved_amount', baseline: p.baseline, timeOfDay: true, compare: 'multiple', k: p.multiplier,
  minApprovals: 0, minCancels: 0, minWindowAmount: p.minWindowAmount, minBaselineApprovals: 0, holidays: 'skip',
  cohortFallback: p.minCohortMerchants,
}));

/** A volume rule's cohort for one merchant: its category and size band, how many merchants, their median scaled to the window (KRW). */
export interface VolumeCohort { category: string; band: number; merchants: number; average: number }

export const cohortEvidence = (c: VolumeCohort): VolumeCohortEvidence => ({ category: c.category, sizeBand: c.band, merchants: c.merchants, average: Math.round(c.average).toString() });
export const vsCohort = (amount: bigint, c: VolumeCohort): number | null => (c.average > 0 ? Number(amount) / c.average : null);
