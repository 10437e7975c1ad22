/**
 * Baselines, computed once per local day (they depend only on the full days before today).
 *
 * - cancel_rate_spike and volume_drop eligibility: `totalsByMerchant` over the baseline days at step 1d.
 * - volume_drop's same time-of-day baseline: the minute tier lives ~2 days, so older days are read from the hour
 *   tier. For each eligible merchant we read its hourly series over the baseline days once per day and keep, per
 *   hour of the local day, the approved amount summed over those days. The same-time window [00:00, end of M) is
 *   then the full hours before M's hour plus the current hour prorated by the minutes elapsed in it, divided by the
 *   number of days. (Exact at whole hours; inside an hour it assumes the amount spreads evenly over that hour of
 *   the baseline days, which is what a 7-day average can resolve anyway.) Hours are local hours because the
 *   supported zones have whole-hour offsets (lib/time.ts).
 */
import type { BucketReader, Point, Totals } from '../aggregator/store/index.ts';
import { dayStart, HOUR } from '../lib/time.ts';

export const SAME_TIME_METHOD = 'hour rollups of the baseline days; the current hour prorated by the minutes elapsed';

/** Starts of the `days` full local days before the day starting at `todayStart`, oldest first. */
export function baselineDayStarts(todayStart: number, days: number, tz: string): number[] {
  const out: number[] = [];
  let d = todayStart;
  for (let i = 0; i < days; i++) {
    d = dayStart(d - 1, tz);
    out.unshift(d);
  }
  return out;
}

/** Approved amount per hour of the local day (index 0..24; 24 only on a 25-hour day), summed over the days. */
export function hourProfile(points: Point[], dayStarts: number[]): Float64Array {
  const profile = new Float64Array(25);
  let di = 0;
  for (const p of points) {
    while (di + 1 < dayStarts.length && p.t >= dayStarts[di + 1]) di++;
    if (p.t < dayStarts[di]) continue;
    const h = Math.floor((p.t - dayStarts[di]) / HOUR);
    if (h >= 0 && h < 25) profile[h] += Number(p.approvedAmount);
  }
  return profile;
}

/** Average over `days` of the approved amount of [00:00, 00:00 + elapsedMs), from an hour profile. */
export function sameTimeAverage(profile: Float64Array, elapsedMs: number, days: number): number {
  const full = Math.min(25, Math.floor(elapsedMs / HOUR));
  let sum = 0;
  for (let h = 0; h < full; h++) sum += profile[h];
  if (full < 25) sum += (profile[full] * (elapsedMs - full * HOUR)) / HOUR;
  return sum / days;
}

export interface DayBaselines {
  todayStart: number;
  from: number;
  to: number;
  days: number;
  /** Totals over the baseline days of every merchant with any history. */
  totals: Map<string, Totals>;
  /** Hour profiles of the merchants eligible for volume_drop (by their own threshold). */
  profiles: Map<string, Float64Array>;
}

/** Reads the baselines of the day starting at `todayStart`. `isEligible` applies per-merchant thresholds. */
export async function loadDayBaselines(
  reader: BucketReader, todayStart: number, days: number, tz: string,
  isEligible: (merchantId: string, dailyAverage: number) => boolean, concurrency = 16,
): Promise<DayBaselines> {
  const starts = baselineDayStarts(todayStart, days, tz);
  const from = starts[0];
  const totals = await reader.totalsByMerchant(from, todayStart, '1d');
  const eligible = [...totals].filter(([id, t]) => isEligible(id, Number(t.approvedAmount) / days)).map(([id]) => id);
  const profiles = new Map<string, Float64Array>();
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, eligible.length) }, async () => {
    while (next < eligible.length) {
      const id = eligible[next++];
      profiles.set(id, hourProfile(await reader.series(id, from, todayStart, '1h'), starts));
    }
  }));
  return { todayStart, from, to: todayStart, days, totals, profiles };
}
