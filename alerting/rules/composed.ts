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
import { withEvidence, type Evaluation } from './types.ts';

export const METRICS = ['approvals', 'cancels', 'approved_amount', 'canceled_amount', 'cancel_rate', 'cancel_amount_rate', 'average_ticket'] as const;
export type Metric = (typeof METRICS)[number];
export const COMPOSED_BASELINES = ['last_7_days', 'same_weekday', 'cohort'] as const;
export type ComposedBaseline = (typeof COMPOSED_BASELINES)[number];

export interface ComposedRule {
  /** [a-z0-9_], 1-40: the alerts' rule is `composed:<name>`. */
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

export interface ComposedInput {
  merchantId: string;
  minute: number;
  windowFrom: number;
  windowTo: number;
  window: Totals;
  /** The baseline value, or null with the reason there is none. */
  baseline: { value: number; from: string; to: string; days?: string[]; fallback?: string | null; cohort?: { category: string; sizeBand: number; merchants: number } } | { none: string };
  /** The merchant's own baseline approvals (the history guard; not applied to a cohort baseline). */
  baselineApprovals: number;
}

export function evaluateComposed(input: ComposedInput, r: ComposedRule, ruleVersion: string): Evaluation {
  const rule = `composed:${r.name}` as const;
  const w = input.window;
  const value = metricOf(r.metric, w);
  const b = 'none' in input.baseline ? null : input.baseline;
  const threshold = b ? r.k * b.value : null;
  const evidence = (): ComposedEvidence => ({
    rule, ruleVersion, minute: iso(input.minute), metric: r.metric, compare: r.compare, k: r.k,
    window: { from: iso(input.windowFrom), to: iso(input.windowTo), value, approvals: w.approvals, cancels: w.cancels, approvedAmount: w.approvedAmount.toString(), canceledAmount: w.canceledAmount.toString() },
    baseline: b ? { kind: r.baseline, ...b } : { kind: r.baseline, value: null },
    threshold,
  });
  const base = { rule, merchantId: input.merchantId, minute: input.minute };
  const minutes = Math.round((input.windowTo - input.windowFrom) / 60_000);
  if (!r.enabled) return withEvidence({ ...base, status: 'not_evaluated', reason: 'rule disabled', condition: false }, evidence);
  if (belowComposedGuard(w, r)) {
    return withEvidence({ ...base, status: 'not_evaluated', condition: false,
      reason: `too little activity: needs at least ${r.minApprovals} approvals, ${r.minCancels} cancels and ${r.minWindowAmount} KRW approved in the ${minutes}-minute window` }, evidence);
  }
  if (!b || threshold === null) return withEvidence({ ...base, status: 'not_evaluated', condition: false, reason: 'none' in input.baseline ? input.baseline.none : 'no baseline' }, evidence);
  if (value === null) return withEvidence({ ...base, status: 'not_evaluated', condition: false, reason: `too little activity: ${r.metric} is undefined in the window` }, evidence);
  const breach = r.compare === 'multiple' ? value >= threshold : value <= threshold;
  return withEvidence({ ...base, status: breach ? 'breach' : 'clear', reason: null, condition: breach }, evidence);
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
    const known = ['name', 'enabled', 'metric', 'baseline', 'compare', 'k', 'minApprovals', 'minCancels', 'minWindowAmount', 'minBaselineApprovals'];
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
    if (r.baseline === 'same_weekday' && r.minWindowAmount < 1_000_000) problems.push(`${p}.minWindowAmount must be at least 1000000 with the baseline "same_weekday" (the history of every merchant above it is read from the hour tier), got ${JSON.stringify(x.minWindowAmount)}`);
    if (r.baseline === 'same_weekday' && x.metric !== undefined && r.metric !== 'approved_amount') problems.push(`${p}.baseline "same_weekday" applies to the metric "approved_amount" only (the hour tier's profiles), got ${JSON.stringify(r.metric)}`);
    if (problems.length === before) out.push(r);
  });
  return out;
}
