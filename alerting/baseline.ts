/**
 * Baselines, computed once per local day (they depend only on the full days before today).
 *
 * - cancel_rate_spike and volume_drop eligibility: `totalsByMerchant` over the baseline days at step 1d.
 * - The volume rules' same time-of-day baselines: the minute tier lives ~2 days, so older days are read from the
 *   hour tier. For each profiled merchant (eligible for volume_drop, or a volume_spike candidate) one hourly series
 *   covers the baseline days and the same weekdays of the last `sameWeekdayWeeks` weeks; it gives two hour profiles
 *   (approved amount per hour of the local day, summed over days):
 *   - `last_7_days`: summed over the baseline days (the flat mean);
 *   - `same_weekday`: summed over the same weekdays as today that are not holidays and on which the merchant had
 *     any activity (a merchant that did not exist yet is not averaged in as zero). With fewer than
 *     `minSameWeekdays` such days the flat mean is used instead, and the evidence says so.
 *   A window [a, b) of the local day is the full hours inside it plus the hours at its ends prorated by the minutes
 *   covered, divided by the number of days. (Exact at whole hours; inside an hour it assumes the amount spreads
 *   evenly over that hour, which is what an hourly history can resolve.) Hours are local hours because the supported
 *   zones have whole-hour offsets (lib/time.ts).
 * - Today itself may be a holiday (`holidays`, local dates): the volume rules do not judge it (rules/volume-drop.ts).
 */
import type { BucketReader, Point, Totals } from '../aggregator/store/index.ts';
import { cancelRateCohorts, type Cohort } from './cohort.ts';
import { DAY, dayKey, dayStart, HOUR } from '../lib/time.ts';

export const SAME_TIME_METHOD = 'hour rollups of the baseline days; the current hour prorated by the minutes elapsed';

export type BaselineKind = 'same_weekday' | 'last_7_days';
export const BASELINE_KINDS: readonly BaselineKind[] = ['same_weekday', 'last_7_days'];

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

/** The same weekday as `todayStart` in each of the `weeks` weeks before it, oldest first, holidays left out. */
export function sameWeekdayStarts(todayStart: number, weeks: number, tz: string, holidays: ReadonlySet<string>): number[] {
  const all = baselineDayStarts(todayStart, weeks * 7, tz);
  return all.filter((_, i) => (all.length - i) % 7 === 0 && !holidays.has(dayKey(all[i], tz)));
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

/**
 * Average over `days` of the approved amount of [a, b) (ms from the local day's start). A window that begins before
 * midnight (a < 0) takes that part from the profile's last hours (the same days' late evening).
 */
export function rangeAverage(profile: Float64Array, a: number, b: number, days: number): number {
  if (a >= 0) return sameTimeAverage(profile, b, days) - sameTimeAverage(profile, a, days);
  return sameTimeAverage(profile, b, days) + sameTimeAverage(profile, DAY, days) - sameTimeAverage(profile, DAY + a, days);
}

/**
 * A merchant's same-weekday baseline: the profile summed over `days` (local dates); `since`: its first hour with
 * activity in the range read (null: none).
 */
export interface WeekdayProfile { profile: Float64Array; days: string[]; since: number | null }

export interface DayBaselines {
  todayStart: number;
  from: number;
  to: number;
  days: number;
  /** Local dates of the baseline days (the flat mean's days). */
  dayKeys: string[];
  /** Today's holiday (its local date), or null. */
  holiday: string | null;
  /** Same weekdays fewer than this: the flat mean instead. */
  minSameWeekdays: number;
  /** Totals over the baseline days of every merchant with any history. */
  totals: Map<string, Totals>;
  /** Flat hour profiles (summed over the baseline days) of the profiled merchants: eligible for volume_drop first. */
  profiles: Map<string, Float64Array>;
  /** Same-weekday hour profiles of the profiled merchants. */
  weekday: Map<string, WeekdayProfile>;
  /** Merchants eligible for volume_drop (by their own threshold). */
  eligible: Set<string>;
  /** How the profiles are read (for merchants profiled later in the day: volume_spike candidates). */
  plan: ProfilePlan;
  /** Merchant → category (the directory, read with the baselines; empty without one). */
  categories: ReadonlyMap<string, string>;
  /** cancel_rate_spike's cohorts by cohortKey(category, band) (cohort.ts). */
  cancelCohorts: Map<string, Cohort>;
}

/** Which days a merchant's profile read covers. */
export interface ProfilePlan { from: number; to: number; flatStarts: number[]; weekdayStarts: number[]; tz: string }

export function profilePlan(todayStart: number, days: number, weeks: number, tz: string, holidays: ReadonlySet<string>): ProfilePlan {
  const flatStarts = baselineDayStarts(todayStart, days, tz);
  const weekdayStarts = sameWeekdayStarts(todayStart, weeks, tz, holidays);
  return { from: Math.min(flatStarts[0], weekdayStarts[0] ?? Infinity), to: todayStart, flatStarts, weekdayStarts, tz };
}

/** The flat and same-weekday profiles of one merchant's hourly points (pure). */
export function profilesOf(points: Point[], plan: ProfilePlan): { flat: Float64Array; weekday: WeekdayProfile } {
  const flat = hourProfile(points, plan.flatStarts); // points before the first flat day are skipped
  const profile = new Float64Array(25);
  const days: string[] = [];
  const first = points.find((p) => p.approvals > 0 || p.cancels > 0 || p.approvedAmount > 0n);
  for (const d of plan.weekdayStarts) {
    const end = dayStart(d + 36 * HOUR, plan.tz);
    const inDay = points.filter((p) => p.t >= d && p.t < end);
    if (!inDay.some((p) => p.approvals > 0 || p.cancels > 0 || p.approvedAmount > 0n)) continue;
    const one = hourProfile(inDay, [d]);
    for (let h = 0; h < 25; h++) profile[h] += one[h];
    days.push(dayKey(d, plan.tz));
  }
  return { flat, weekday: { profile, days, since: first?.t ?? null } };
}

/** Reads the profiles of `ids` into `base` (those it lacks), `concurrency` merchants at a time. */
export async function readProfiles(reader: BucketReader, base: DayBaselines, ids: string[], concurrency = 16): Promise<void> {
  const todo = ids.filter((id) => !base.profiles.has(id));
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, async () => {
    while (next < todo.length) {
      const id = todo[next++];
      const p = profilesOf(await reader.series(id, base.plan.from, base.plan.to, '1h'), base.plan);
      base.profiles.set(id, p.flat);
      base.weekday.set(id, p.weekday);
    }
  }));
}

export interface BaselineOptions {
  /** Weeks of same weekdays (hour tier). */
  weeks: number;
  minSameWeekdays: number;
  /** Local dates (YYYY-MM-DD) left out of the same-weekday baselines and not judged by the volume rules. */
  holidays: ReadonlySet<string>;
  /** Merchants profiled besides the eligible ones (volume_spike candidates of the previous load). */
  alsoProfile?: Iterable<string>;
  /** The merchant directory's categories, and who makes a cohort (cohort.ts). */
  categories?: ReadonlyMap<string, string>;
  cohort?: { minApprovals: number; minMerchants: number };
  concurrency?: number;
}

/** Reads the baselines of the day starting at `todayStart`. `isEligible` applies per-merchant thresholds. */
export async function loadDayBaselines(
  reader: BucketReader, todayStart: number, days: number, tz: string,
  isEligible: (merchantId: string, dailyAverage: number) => boolean, o: BaselineOptions = { weeks: 4, minSameWeekdays: 2, holidays: new Set() },
): Promise<DayBaselines> {
  const base = emptyDayBaselines(todayStart, days, tz, o);
  base.totals = await reader.totalsByMerchant(base.from, todayStart, '1d');
  for (const [id, t] of base.totals) if (isEligible(id, Number(t.approvedAmount) / days)) base.eligible.add(id);
  base.categories = o.categories ?? new Map();
  if (o.cohort && o.cohort.minMerchants > 0) base.cancelCohorts = cancelRateCohorts(base.totals, days, base.categories, o.cohort.minApprovals, o.cohort.minMerchants);
  await readProfiles(reader, base, [...new Set([...base.eligible, ...(o.alsoProfile ?? [])])], o.concurrency);
  return base;
}

/** The same-time baseline a volume rule uses for a merchant: which profile, over how many days, and which days. */
export interface ChosenBaseline {
  kind: BaselineKind;
  profile: Float64Array;
  days: number;
  dayKeys: string[];
  /** Set when same_weekday was asked for and the flat mean is used instead. */
  fallback: string | null;
}

/** True when the merchant was active on the first of the baseline days or before (the flat mean is a full one). */
export function hasFullHistory(base: DayBaselines, id: string): boolean {
  const since = base.weekday.get(id)?.since;
  return since !== null && since !== undefined && since < base.plan.flatStarts[0] + DAY;
}

export function chooseBaseline(base: DayBaselines, id: string, kind: BaselineKind): ChosenBaseline | null {
  const flat = base.profiles.get(id);
  if (!flat) return null;
  if (kind === 'same_weekday') {
    const w = base.weekday.get(id);
    if (w && w.days.length >= base.minSameWeekdays) return { kind, profile: w.profile, days: w.days.length, dayKeys: w.days, fallback: null };
    const n = w?.days.length ?? 0;
    return { kind: 'last_7_days', profile: flat, days: base.days, dayKeys: base.dayKeys, fallback: `${n} same weekday${n === 1 ? '' : 's'} with activity (fewer than ${base.minSameWeekdays}): the ${base.days}-day mean` };
  }
  return { kind, profile: flat, days: base.days, dayKeys: base.dayKeys, fallback: null };
}

/** Baselines with no merchant yet (tests, and the shape `loadDayBaselines` fills). */
export function emptyDayBaselines(todayStart: number, days: number, tz: string, o: Omit<BaselineOptions, 'alsoProfile' | 'concurrency' | 'categories' | 'cohort'> = { weeks: 4, minSameWeekdays: 2, holidays: new Set() }): DayBaselines {
  const plan = profilePlan(todayStart, days, o.weeks, tz, o.holidays);
  const todayKey = dayKey(todayStart, tz);
  return {
    todayStart, from: plan.flatStarts[0], to: todayStart, days, dayKeys: plan.flatStarts.map((d) => dayKey(d, tz)),
    holiday: o.holidays.has(todayKey) ? todayKey : null, minSameWeekdays: o.minSameWeekdays,
    totals: new Map(), profiles: new Map(), weekday: new Map(), eligible: new Set(), plan, categories: new Map(), cancelCohorts: new Map(),
  };
}
