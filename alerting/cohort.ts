/**
 * Cohorts: how a merchant with less history than a rule needs is judged — against the median of the merchants of
 * the same category and size band that have that history. Computed once per local day with the baselines.
 *
 * - Category: from the merchant directory (the source's `merchants.category`, read once a day; directory.ts).
 *   Without a directory every merchant is in category "all".
 * - Size band: the decade of approvals a day (1–9, 10–99, 100–999, …): over the baseline days for the cohort's
 *   members; for a new merchant, the pace of its rules window scaled to a day (it has no days to average).
 */
import type { Totals } from '../aggregator/store/index.ts';

export interface Cohort { category: string; band: number; merchants: number; rate: number }

/** The decade of `approvalsPerDay` (0 for fewer than 10). */
export function sizeBand(approvalsPerDay: number): number {
  return approvalsPerDay < 10 ? 0 : Math.floor(Math.log10(approvalsPerDay));
}

export const cohortKey = (category: string, band: number) => `${category}\u0000${band}`;

function median(xs: number[]): number {
  xs.sort((a, b) => a - b);
  const m = xs.length >> 1;
  return xs.length % 2 ? xs[m] : (xs[m - 1] + xs[m]) / 2;
}

/**
 * Median cancel rates by (category, size band) of the merchants with at least `minApprovals` approvals over the
 * `days` baseline days; cohorts of fewer than `minMerchants` are left out.
 */
export function cancelRateCohorts(totals: ReadonlyMap<string, Totals>, days: number, categories: ReadonlyMap<string, string>, minApprovals: number, minMerchants: number): Map<string, Cohort> {
  const rates = new Map<string, { category: string; band: number; rates: number[] }>();
  for (const [id, t] of totals) {
    if (t.approvals < minApprovals || t.approvals <= 0) continue;
    const category = categories.get(id) ?? 'all';
    const band = sizeBand(t.approvals / days);
    const k = cohortKey(category, band);
    let c = rates.get(k);
    if (!c) rates.set(k, (c = { category, band, rates: [] }));
    c.rates.push(t.cancels / t.approvals);
  }
  const out = new Map<string, Cohort>();
  for (const [k, c] of rates) if (c.rates.length >= Math.max(1, minMerchants)) out.set(k, { category: c.category, band: c.band, merchants: c.rates.length, rate: median(c.rates) });
  return out;
}
