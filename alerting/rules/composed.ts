/**
 * Rules composed from metrics: a metric of the rules' window (the last `windowMinutes` closed minutes) compared with
 * a baseline by a multiple (value ≥ k × baseline fires) or a fraction (value ≤ k × baseline fires), with guards on
 * the window's activity and on the history. Alerts of a composed rule named `x` are rule `composed:x`; they are
 * versioned, backtested and shadowed like the built-in rules (decideMinute evaluates them).
 *
 * Metrics: approvals, cancels, approved_amount, canceled_amount (counts and KRW in the window), cancel_rate (cancels
 * ÷ approvals), cancel_amount_rate (canceled ÷ approved amount), average_ticket (approved amount ÷ approvals).
 * Baselines:
 * - last_7_days: the metric over the baseline days' totals — a rate or an average ticket as it is; a count or an
 *   amount per window length (the days' total × windowMinutes ÷ the days' minutes);
 * - same_weekday: approved_amount only — the same window of the day on the same weekdays (../baseline.ts);
 * - cohort: the median of the metric's last_7_days value over the merchants of the same category and size band
 *   with at least minBaselineApprovals approvals (../cohort.ts).
 */
import type { Totals } from '../../aggregator/store/index.ts';
import type { ComposedEvidence } from '../../lib/evidence.ts';
import { iso } from '../../lib/time.ts';
import { binomialTail, poissonTail } from './significance.ts';
import { withEvidence, type Evaluation } from './types.ts';

export const METRICS = ['approvals', 'cancels', 'approved_amount', 'canceled_amount', 'cancel_rate', 'cancel_amount_rate', 'average_ticket'] as const;
export type Metric = (typeof METRICS)[number];
export const COMPOSED_BASELINES = ['last_7_days', 'same_weekday', 'cohort'] as const;
export type ComposedBaseline = (typeof COMPOSED_BASELINES)[number];

export interface ComposedRule {
  /** [a-z0-9_], 1-40: the alerts' rule is `composed:<name>` (a built-in rule's definition carries the built-in's name). */
  name: string;
  enabled: boolean;
  metric: Metric;
  baseline: ComposedBaseline;
  /** multiple: value ≥ k × baseline fires; fraction: value ≤ k × baseline fires. */
  compare: 'multiple' | 'fraction';
  k: number;
  /** Guards on the window (below them: not judged, "too little activity") and on the history. */
  minApprovals: number;
  minCancels: number;
  minWindowAmount: number;
  minBaselineApprovals: number;
  // Options (absent: off). The built-in rules are definitions of this form using them (builtin.ts).
  /**
   * The window: the rules' window (the last `windowMinutes` closed minutes, the default) or `day_so_far`, the local
   * day from 00:00 to the end of the minute. A day-so-far window is not judged while ingestion lags the wall clock
   * by more than the bound (a lagging pipeline must not look like a sales collapse), nor in its first
   * `minElapsedMinutes` minutes.
   */
  window?: 'rules_window' | 'day_so_far';
  /**
   * approved_amount against the same window of the local day on the baseline days (the hour profiles; same_weekday
   * always is) rather than the days' totals per window length.
   */
  timeOfDay?: boolean;
  /**
   * The significance guard (cancel_rate only; significance.ts): fire only when the window's cancels would happen by
   * chance with probability below this if the merchant cancelled at its baseline rate. 1: computed, never blocks.
   */
  maxPValue?: number;
  /** Eligibility: judged only when the merchant's average daily approved amount over the baseline days is at least this (KRW). */
  minDailyAmount?: number;
  /** `skip`: today's public holiday is not judged (condition unknown: a firing alert holds). */
  holidays?: 'skip';
  /**
   * A merchant with less history than its baseline needs is judged against the median of its cohort (same category
   * and size band, ../cohort.ts) when the cohort has at least this many merchants; 0 or absent: not judged.
   */
  cohortFallback?: number;
  /** day_so_far: not judged before this many minutes of the day have closed. */
  minElapsedMinutes?: number;
  /** Not judged (condition unknown) while the baseline value is below this. */
  minBaselineValue?: number;
}

export const COMPOSED_DEFAULTS: Omit<ComposedRule, 'name' | 'metric' | 'baseline' | 'compare' | 'k'> = {
  enabled: true, minApprovals: 0, minCancels: 0, minWindowAmount: 0, minBaselineApprovals: 0,
};

/** The metric of some totals; null when undefined (a rate over nothing). `scale` turns counts and amounts into per-window values. */
export function metricOf(m: Metric, t: Totals, scale = 1): number | null {
  switch (m) {
    case 'approvals': return t.approvals * scale;
    case 'cancels': return t.cancels * scale;
    case 'approved_amount': return Number(t.approvedAmount) * scale;
    case 'canceled_amount': return Number(t.canceledAmount) * scale;
    case 'cancel_rate': return t.approvals > 0 ? t.cancels / t.approvals : null;
    case 'cancel_amount_rate': return t.approvedAmount > 0n ? Number(t.canceledAmount) / Number(t.approvedAmount) : null;
    case 'average_ticket': return t.approvals > 0 ? Number(t.approvedAmount) / t.approvals : null;
  }
}

/** Below the window guards: "too little activity" (the quiet fast path). */
export function belowComposedGuard(w: Totals, r: ComposedRule): boolean {
  return r.enabled && (w.approvals < r.minApprovals || w.cancels < r.minCancels || (r.minWindowAmount > 0 && Number(w.approvedAmount) < r.minWindowAmount));
}

/** A baseline value, with what the evidence shows about it; `counts`: the baseline's own approvals and cancels (the significance test). */
export interface BaselineValue {
  value: number;
  from?: string; to?: string; days?: string[]; fallback?: string | null;
  cohort?: { category: string; sizeBand: number; merchants: number };
  counts?: { approvals: number; cancels: number };
}

/** What the engine judges: the window's totals and the merchant's baseline, and the facts the options look at. */
export interface Measured {
  /** The window's totals (day_so_far: today's so far). */
  window: Totals;
  /** The window's length (reason text). */
  windowMinutes: number;
  /** The merchant's own baseline, or why it has none. */
  baseline: BaselineValue | { none: string };
  /** The cohort's baseline, used when the merchant has none of its own (`cohortFallback`). */
  cohort?: BaselineValue | null;
  /** Average daily approved amount over the baseline days (`minDailyAmount`). */
  dailyAverage?: number;
  /** Today's local date when it is a holiday. */
  holiday?: string | null;
  /** day_so_far: wall clock minus the event-time watermark, its bound, and the minutes of the day closed. */
  ingestLagMs?: number;
  maxIngestLagMs?: number;
  elapsedMs?: number;
}

/** The engine's verdict, with the numbers it compared (the rules' evidence shows them). */
export interface Verdict {
  status: Evaluation['status'];
  reason: string | null;
  condition: boolean | null;
  /** The metric in the window. */
  value: number | null;
  /** The baseline judged against (own or cohort), and k × its value. */
  basis: BaselineValue | null;
  usedCohort: boolean;
  threshold: number | null;
  /** With maxPValue, once the value was compared: the expected count and the chance of the window's count. */
  expected?: number;
  pValue?: number;
}

const andList = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

/** The guards' reason ("too little activity: needs at least …"), naming the guards that are set. */
function guardReason(r: ComposedRule, minutes: number): string {
  const parts: string[] = [];
  if (r.minApprovals > 0) parts.push(`${r.minApprovals} approvals`);
  if (r.minCancels > 0) parts.push(`${r.minCancels} cancels`);
  if (r.minWindowAmount > 0) parts.push(`${r.minWindowAmount} KRW approved`);
  return `too little activity: needs at least ${andList(parts)} in the ${minutes}-minute window`;
}

function verdict(r: ComposedRule, status: Verdict['status'], condition: boolean | null, reason: string | null, value: number | null, basis: BaselineValue | null, usedCohort: boolean): Verdict {
  return { status, reason, condition, value, basis, usedCohort, threshold: basis ? r.k * basis.value : null };
}

/** Totals holding an approved amount only (the volume rules' windows). */
export function amountOnly(approvedAmount: bigint): Totals {
  return { approvals: 0, approvedAmount, cancels: 0, canceledAmount: 0n };
}

const AMOUNT_METRICS: ReadonlySet<Metric> = new Set(['approved_amount', 'canceled_amount', 'average_ticket']);

/**
 * One rule of this form for one merchant: the guards and options in order (disabled; the window's guards;
 * eligibility; a holiday; a day-so-far window's ingestion lag and first minutes; the baseline, own or the cohort's;
 * its floor), then value against k × baseline (and the significance guard). Every rule — built-in or composed — is
 * judged here.
 */
export function judge(r: ComposedRule, m: Measured): Verdict {
  const w = m.window;
  const value = metricOf(r.metric, w);
  const own = 'none' in m.baseline ? null : m.baseline;
  if (!r.enabled) return verdict(r, 'not_evaluated', false, 'rule disabled for this merchant', value, own, false);
  if (belowComposedGuard(w, r)) return verdict(r, 'not_evaluated', false, guardReason(r, m.windowMinutes), value, own, false);
  if (r.minDailyAmount !== undefined && (m.dailyAverage ?? 0) < r.minDailyAmount) {
    return verdict(r, 'not_evaluated', false, `not eligible: average daily approved amount below ${r.minDailyAmount} KRW`, value, own, false);
  }
  if (r.holidays === 'skip' && m.holiday) return verdict(r, 'not_evaluated', null, 'holiday: the volume rules do not judge public holidays', value, own, false);
  if (r.window === 'day_so_far') {
    if ((m.ingestLagMs ?? 0) > (m.maxIngestLagMs ?? Infinity)) {
      return verdict(r, 'not_evaluated', null, `ingestion lags the wall clock by more than ${Math.round((m.maxIngestLagMs ?? 0) / 1000)} s`, value, own, false);
    }
    if (r.minElapsedMinutes !== undefined && (m.elapsedMs ?? 0) < r.minElapsedMinutes * 60_000) {
      return verdict(r, 'not_evaluated', null, `baseline window too small: first ${r.minElapsedMinutes} minutes of the day`, value, own, false);
    }
  }
  let basis = own;
  let usedCohort = false;
  if (!basis) {
    if (!r.cohortFallback || !m.cohort || value === null) return verdict(r, 'not_evaluated', false, (m.baseline as { none: string }).none, value, own, false);
    basis = m.cohort;
    usedCohort = true;
  }
  if (r.minBaselineValue !== undefined && basis.value < r.minBaselineValue) {
    const what = r.window === 'day_so_far' ? 'same-time' : 'same-window';
    return verdict(r, 'not_evaluated', null, `baseline window too small: ${what} baseline below ${r.minBaselineValue}${AMOUNT_METRICS.has(r.metric) ? ' KRW' : ''}`, value, basis, usedCohort);
  }
  if (value === null) return verdict(r, 'not_evaluated', false, `too little activity: ${r.metric} is undefined in the window`, value, basis, usedCohort);
  const threshold = r.k * basis.value;
  const passes = r.compare === 'multiple' ? value >= threshold : value <= threshold;
  if (r.maxPValue === undefined) {
    return { status: passes ? 'breach' : 'clear', reason: null, condition: passes, value, basis, usedCohort, threshold };
  }
  // The significance guard (cancel_rate): the window's cancels against the baseline's, or against a known rate.
  const expected = w.approvals * basis.value;
  const pValue = !passes ? 1 : basis.counts
    ? binomialTail(w.cancels, w.cancels + basis.counts.cancels, w.approvals / (w.approvals + basis.counts.approvals))
    : poissonTail(w.cancels, expected);
  const breach = passes && pValue < r.maxPValue;
  return { status: breach ? 'breach' : 'clear', reason: null, condition: breach, value, basis, usedCohort, threshold, expected, pValue };
}

export interface ComposedInput {
  merchantId: string;
  minute: number;
  windowFrom: number;
  windowTo: number;
  window: Totals;
  /** The baseline value, or null with the reason there is none. */
  baseline: BaselineValue | { none: string };
  /** The merchant's own baseline approvals (the history guard; not applied to a cohort baseline). */
  baselineApprovals: number;
  /** The cohort, when the rule falls back to it; the day's facts the options look at. */
  cohort?: BaselineValue | null;
  dailyAverage?: number;
  holiday?: string | null;
}

export function evaluateComposed(input: ComposedInput, r: ComposedRule, ruleVersion: string): Evaluation {
  const rule = `composed:${r.name}` as const;
  const w = input.window;
  const v = judge(r, {
    window: w, windowMinutes: Math.round((input.windowTo - input.windowFrom) / 60_000), baseline: input.baseline,
    cohort: input.cohort, dailyAverage: input.dailyAverage, holiday: input.holiday,
  });
  const evidence = (): ComposedEvidence => {
    const { counts: _, ...b } = v.basis ?? {};
    return {
      rule, ruleVersion, minute: iso(input.minute), metric: r.metric, compare: r.compare, k: r.k,
      window: { from: iso(input.windowFrom), to: iso(input.windowTo), value: v.value, approvals: w.approvals, cancels: w.cancels, approvedAmount: w.approvedAmount.toString(), canceledAmount: w.canceledAmount.toString() },
      baseline: v.basis ? { kind: v.usedCohort ? 'cohort' : r.baseline, ...(b as BaselineValue) } : { kind: r.baseline, value: null },
      threshold: v.threshold,
      ...(v.pValue !== undefined ? { expected: v.expected, pValue: v.pValue, maxPValue: r.maxPValue } : {}),
      ...(input.holiday && r.holidays === 'skip' ? { holiday: input.holiday } : {}),
    };
  };
  return withEvidence({ rule, merchantId: input.merchantId, minute: input.minute, status: v.status, reason: v.reason, condition: v.condition }, evidence);
}

type Problems = string[];
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates `composed` (a list of at most 20 rules); each problem names its path (`composed.0.metric …`). */
export function parseComposed(v: unknown, problems: Problems): ComposedRule[] {
  if (!Array.isArray(v) || v.length > 20) { problems.push('composed must be a list of at most 20 rules {name, metric, baseline, compare, k, …}'); return []; }
  const out: ComposedRule[] = [];
  const names = new Set<string>();
  v.forEach((x, i) => {
    const p = `composed.${i}`;
    if (!isObj(x)) { problems.push(`${p} must be an object {name, metric, baseline, compare, k, …}`); return; }
    const before = problems.length;
    const known = ['name', 'enabled', 'metric', 'baseline', 'compare', 'k', 'minApprovals', 'minCancels', 'minWindowAmount', 'minBaselineApprovals',
      'timeOfDay', 'maxPValue', 'minDailyAmount', 'holidays', 'cohortFallback', 'minBaselineValue'];
    for (const k of Object.keys(x)) if (!known.includes(k)) problems.push(`${p}.${k} is unknown (known: ${known.join(', ')})`);
    const oneOf = <T extends string>(k: string, xs: readonly T[]): T => {
      if (typeof x[k] !== 'string' || !xs.includes(x[k] as T)) problems.push(`${p}.${k} must be one of ${xs.map((s) => JSON.stringify(s)).join(', ')}, got ${JSON.stringify(x[k])}`);
      return x[k] as T;
    };
    const num = (k: string, min: number, max: number, int: boolean, dflt?: number): number => {
      const n = x[k] === undefined ? dflt : x[k];
      if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
        problems.push(`${p}.${k} must be ${int ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(x[k])}`);
        return 0;
      }
      return n;
    };
    const name = x.name;
    if (typeof name !== 'string' || !/^[a-z0-9_]{1,40}$/.test(name)) problems.push(`${p}.name must be 1-40 of a-z, 0-9, _ (got ${JSON.stringify(name)})`);
    else if (names.has(name)) problems.push(`${p}.name "${name}" is used twice`);
    else names.add(name);
    if (x.enabled !== undefined && typeof x.enabled !== 'boolean') problems.push(`${p}.enabled must be true or false`);
    const r: ComposedRule = {
      name: name as string,
      enabled: x.enabled === undefined ? true : Boolean(x.enabled),
      metric: oneOf('metric', METRICS),
      baseline: oneOf('baseline', COMPOSED_BASELINES),
      compare: oneOf('compare', ['multiple', 'fraction'] as const),
      k: num('k', 0, 1000, false),
      minApprovals: num('minApprovals', 0, 1e9, true, 0),
      minCancels: num('minCancels', 0, 1e9, true, 0),
      minWindowAmount: num('minWindowAmount', 0, 1e15, true, 0),
      minBaselineApprovals: num('minBaselineApprovals', 0, 1e12, true, 0),
    };
    // Options: present only when given (the stored rule and its version hash stay as they were without them).
    const opt = <K extends keyof ComposedRule>(k: K, v: () => ComposedRule[K]) => { if (x[k] !== undefined) (r as unknown as Record<string, unknown>)[k] = v(); };
    opt('timeOfDay', () => {
      if (typeof x.timeOfDay !== 'boolean') problems.push(`${p}.timeOfDay must be true or false`);
      else if (x.timeOfDay && r.metric !== 'approved_amount') problems.push(`${p}.timeOfDay applies to the metric "approved_amount" only (the hour tier's profiles), got ${JSON.stringify(r.metric)}`);
      else if (x.timeOfDay && r.minWindowAmount < 1_000_000) problems.push(`${p}.minWindowAmount must be at least 1000000 with timeOfDay (the history of every merchant above it is read from the hour tier), got ${JSON.stringify(x.minWindowAmount)}`);
      return x.timeOfDay === true;
    });
    opt('maxPValue', () => {
      if (r.metric !== 'cancel_rate') problems.push(`${p}.maxPValue applies to the metric "cancel_rate" only (a test of cancel counts), got ${JSON.stringify(r.metric)}`);
      return num('maxPValue', 0, 1, false);
    });
    opt('minDailyAmount', () => num('minDailyAmount', 0, 1e15, true));
    opt('holidays', () => {
      if (x.holidays !== 'skip') problems.push(`${p}.holidays must be "skip" (public holidays not judged) or absent, got ${JSON.stringify(x.holidays)}`);
      return 'skip';
    });
    opt('cohortFallback', () => {
      if (r.baseline === 'cohort') problems.push(`${p}.cohortFallback does not apply to the baseline "cohort" (it is the cohort already)`);
      return num('cohortFallback', 0, 1e6, true);
    });
    opt('minBaselineValue', () => num('minBaselineValue', 0, 1e15, false));
    if (r.baseline === 'same_weekday' && r.minWindowAmount < 1_000_000) problems.push(`${p}.minWindowAmount must be at least 1000000 with the baseline "same_weekday" (the history of every merchant above it is read from the hour tier), got ${JSON.stringify(x.minWindowAmount)}`);
    if (r.baseline === 'same_weekday' && x.metric !== undefined && r.metric !== 'approved_amount') problems.push(`${p}.baseline "same_weekday" applies to the metric "approved_amount" only (the hour tier's profiles), got ${JSON.stringify(r.metric)}`);
    if (problems.length === before) out.push(r);
  });
  return out;
}
