/**
 * The rules as configuration: every number of docs/contracts.md "Rules" is a field here, with per-merchant overrides of the
 * thresholds. Given as RISKMON_RULES (JSON inline or @file), merged over the defaults, validated field by field.
 * The rule version recorded with every alert is the configured `version`, or a hash of the effective configuration
 * so that any change of a number changes the version.
 */
import { createHash } from 'node:crypto';

import { ALERT_RULES, type AlertRule } from '../../lib/alert-message.ts';
import { BASELINE_KINDS, type BaselineKind } from '../baseline.ts';
import { parseComposed, type ComposedRule } from './composed.ts';
import { defaultHolidays } from '../../lib/holidays-kr.ts';

export const RULES = ALERT_RULES;
/** A rule's name as alerts carry it: a built-in rule, or `composed:<name>`. */
export type RuleName = AlertRule;
export type BuiltinRule = (typeof ALERT_RULES)[number];

export interface CancelRateSpikeParams {
  enabled: boolean;
  /** rate_W ≥ multiplier × baseline rate fires. */
  multiplier: number;
  minApprovals: number;
  minCancels: number;
  minBaselineApprovals: number;
  /**
   * Significance guard: fire only when at least cancels_W cancels would happen by chance with probability below
   * this, if the merchant still cancelled at one steady rate in window and baseline (rules/significance.ts). 1 turns it off.
   */
  maxPValue: number;
  /**
   * A merchant below minBaselineApprovals is judged against the median rate of its cohort (same category and size
   * band, cohort.ts) when the cohort has at least this many merchants; 0 turns cohorts off.
   */
  minCohortMerchants: number;
}

export interface VolumeDropParams {
  enabled: boolean;
  /** Eligible when the average daily approved amount over the baseline days is at least this (KRW). */
  minDailyAmount: number;
  /** today ≤ ratio × same-time baseline fires. */
  ratio: number;
  /** Not evaluated before this many minutes of the local day have closed. */
  minElapsedMinutes: number;
  /** Not evaluated while the same-time baseline is below this amount (KRW). */
  minBaselineAmount: number;
  /** same_weekday: the same weekdays of the last weeks (holidays left out); last_7_days: the flat 7-day mean. */
  baseline: BaselineKind;
  /**
   * A merchant with less history than its baseline needs (activity on minSameWeekdays same weekdays, or on every
   * baseline day) is judged against its cohort (same category and size band, ../cohort.ts) when the cohort has at
   * least this many merchants; 0 turns cohorts off.
   */
  minCohortMerchants: number;
}

export interface VolumeSpikeParams {
  enabled: boolean;
  /** The window's approved amount ≥ multiplier × the same window on the baseline fires. */
  multiplier: number;
  /** …and at least this much in the window (KRW): below it the merchant is not judged. */
  minWindowAmount: number;
  baseline: BaselineKind;
  /** As volume_drop's: a merchant with too little history is judged against its cohort. */
  minCohortMerchants: number;
}

export interface ReceivableParams {
  enabled: boolean;
  /** Fires when the merchant's receivable (lib/exposure.ts) is at least this (KRW). */
  minReceivable: number;
}

export interface RulesConfig {
  version: string;
  /** Global only (they shape the reads): the cancel-rate window and the number of baseline days. */
  windowMinutes: number;
  baselineDays: number;
  /** Same-weekday baselines: how many weeks back (hour tier), and how many same weekdays at least. */
  sameWeekdayWeeks: number;
  minSameWeekdays: number;
  /** Local dates (YYYY-MM-DD): left out of same-weekday baselines; the volume rules do not judge them. */
  holidays: string[];
  cancel_rate_spike: CancelRateSpikeParams;
  volume_drop: VolumeDropParams;
  volume_spike: VolumeSpikeParams;
  receivable: ReceivableParams;
  lifecycle: { resolveAfterMinutes: number; renotifyMinutes: number };
  /** Rules composed from metrics (rules/composed.ts); their alerts are rule `composed:<name>`. */
  composed: ComposedRule[];
  /** merchantId → partial thresholds for that merchant. */
  overrides: Record<string, { cancel_rate_spike?: Partial<CancelRateSpikeParams>; volume_drop?: Partial<VolumeDropParams>; volume_spike?: Partial<VolumeSpikeParams>; receivable?: Partial<ReceivableParams> }>;
}

export const DEFAULT_RULES: Omit<RulesConfig, 'version'> = {
  windowMinutes: 60,
  baselineDays: 7,
  sameWeekdayWeeks: 4,
  minSameWeekdays: 2,
  holidays: defaultHolidays(),
  cancel_rate_spike: { enabled: true, multiplier: 2, minApprovals: 20, minCancels: 5, minBaselineApprovals: 100, maxPValue: 1e-4, minCohortMerchants: 5 },
  volume_drop: { enabled: true, minDailyAmount: 1_000_000_000, ratio: 0.5, minElapsedMinutes: 30, minBaselineAmount: 5_000_000, baseline: 'same_weekday', minCohortMerchants: 5 },
  volume_spike: { enabled: true, multiplier: 5, minWindowAmount: 10_000_000, baseline: 'same_weekday', minCohortMerchants: 5 },
  receivable: { enabled: true, minReceivable: 30_000_000 },
  lifecycle: { resolveAfterMinutes: 5, renotifyMinutes: 60 },
  composed: [],
  overrides: {},
};

/**
 * Sane ranges: a threshold that lets every merchant fire every minute (a multiplier below 1, guards of 0, a ratio of
 * 1, no eligibility floor) is refused, live and in backtests alike — an all-zero config would otherwise raise an
 * alert for every merchant and minute of a 7-day backtest.
 */
type Field = { min: number; max: number; int: boolean } | 'bool' | { oneOf: readonly string[] };
const CANCEL_FIELDS: Record<keyof CancelRateSpikeParams, Field> = {
  enabled: 'bool',
  multiplier: { min: 1, max: 1000, int: false },
  minApprovals: { min: 1, max: 1e9, int: true },
  minCancels: { min: 1, max: 1e9, int: true },
  minBaselineApprovals: { min: 1, max: 1e12, int: true },
  maxPValue: { min: 0, max: 1, int: false },
  minCohortMerchants: { min: 0, max: 1e6, int: true },
};
const VOLUME_FIELDS: Record<keyof VolumeDropParams, Field> = {
  enabled: 'bool',
  minDailyAmount: { min: 1_000_000, max: 1e15, int: true },
  ratio: { min: 0, max: 0.9, int: false },
  minElapsedMinutes: { min: 0, max: 1440, int: true },
  minBaselineAmount: { min: 1, max: 1e15, int: true },
  baseline: { oneOf: BASELINE_KINDS },
  minCohortMerchants: { min: 0, max: 1e6, int: true },
};
const SPIKE_FIELDS: Record<keyof VolumeSpikeParams, Field> = {
  enabled: 'bool',
  multiplier: { min: 1, max: 1000, int: false },
  // At least 1M KRW: every merchant above it has its history read once a day (the work stays bounded).
  minWindowAmount: { min: 1_000_000, max: 1e15, int: true },
  baseline: { oneOf: BASELINE_KINDS },
  minCohortMerchants: { min: 0, max: 1e6, int: true },
};
const RECEIVABLE_FIELDS: Record<keyof ReceivableParams, Field> = {
  enabled: 'bool',
  // at least 1 KRW: a receivable of 0 is no receivable
  minReceivable: { min: 1, max: 1e15, int: true },
};
const LIFECYCLE_FIELDS: Record<keyof RulesConfig['lifecycle'], Field> = {
  resolveAfterMinutes: { min: 1, max: 1440, int: true },
  renotifyMinutes: { min: 1, max: 100_000, int: true },
};

function isDate(d: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(d) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkFields<T>(path: string, v: unknown, fields: Record<string, Field>, problems: string[]): Partial<T> {
  if (!isObject(v)) { problems.push(`${path} must be an object`); return {}; }
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    const f = fields[k];
    if (!f) { problems.push(`${path}.${k} is unknown (known: ${Object.keys(fields).join(', ')})`); continue; }
    if (f === 'bool') {
      if (typeof val !== 'boolean') problems.push(`${path}.${k} must be true or false`);
      else out[k] = val;
      continue;
    }
    if ('oneOf' in f) {
      if (typeof val !== 'string' || !f.oneOf.includes(val)) problems.push(`${path}.${k} must be one of ${f.oneOf.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(val)}`);
      else out[k] = val;
      continue;
    }
    if (typeof val !== 'number' || !Number.isFinite(val) || val < f.min || val > f.max || (f.int && !Number.isInteger(val))) {
      problems.push(`${path}.${k} must be ${f.int ? 'an integer' : 'a number'} from ${f.min} to ${f.max}, got ${JSON.stringify(val)}`);
      continue;
    }
    out[k] = val;
  }
  return out as Partial<T>;
}

/**
 * Invalid rules: every problem, each starting with the path of the value in the config (`cancel_rate_spike.multiplier`,
 * `overrides.42.volume_drop.ratio`; empty for the whole config).
 */
export class RulesError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.name = 'RulesError';
    this.problems = problems;
  }

  /** The path each problem names (its first word). */
  get paths(): string[] { return this.problems.map((p) => (/^[\w.]+ /.test(p) && !p.startsWith('RISKMON_RULES ') ? p.split(' ')[0] : '')); }
}

/** Validates a RISKMON_RULES value and merges it over the defaults; throws one RulesError listing every problem. */
export function parseRules(v: unknown): RulesConfig {
  const problems: string[] = [];
  if (!isObject(v)) throw new RulesError(['RISKMON_RULES must be a JSON object such as {"cancel_rate_spike":{"multiplier":3}}']);
  const known = ['version', 'windowMinutes', 'baselineDays', 'sameWeekdayWeeks', 'minSameWeekdays', 'holidays', 'cancel_rate_spike', 'volume_drop', 'volume_spike', 'receivable', 'lifecycle', 'composed', 'overrides'];
  for (const k of Object.keys(v)) if (!known.includes(k)) problems.push(`${k} is unknown (known: ${known.join(', ')})`);
  const cfg: Omit<RulesConfig, 'version'> = structuredClone(DEFAULT_RULES);
  const intIn = (k: 'windowMinutes' | 'baselineDays' | 'sameWeekdayWeeks' | 'minSameWeekdays', min: number, max: number) => {
    if (v[k] === undefined) return;
    const n = v[k];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) problems.push(`${k} must be an integer from ${min} to ${max}`);
    else cfg[k] = n;
  };
  intIn('windowMinutes', 1, 1440);
  intIn('baselineDays', 1, 30);
  intIn('sameWeekdayWeeks', 1, 5); // the hour tier keeps 36 days
  intIn('minSameWeekdays', 1, 5);
  if (v.holidays !== undefined) {
    if (!Array.isArray(v.holidays) || v.holidays.length > 2000) problems.push('holidays must be an array of at most 2000 local dates "YYYY-MM-DD"');
    else {
      const bad = v.holidays.findIndex((d) => typeof d !== 'string' || !isDate(d));
      if (bad >= 0) problems.push(`holidays.${bad} must be a local date "YYYY-MM-DD", got ${JSON.stringify(v.holidays[bad])}`);
      else cfg.holidays = [...new Set(v.holidays as string[])].sort();
    }
  }
  if (v.cancel_rate_spike !== undefined) Object.assign(cfg.cancel_rate_spike, checkFields('cancel_rate_spike', v.cancel_rate_spike, CANCEL_FIELDS, problems));
  if (v.volume_drop !== undefined) Object.assign(cfg.volume_drop, checkFields('volume_drop', v.volume_drop, VOLUME_FIELDS, problems));
  if (v.volume_spike !== undefined) Object.assign(cfg.volume_spike, checkFields('volume_spike', v.volume_spike, SPIKE_FIELDS, problems));
  if (v.receivable !== undefined) Object.assign(cfg.receivable, checkFields('receivable', v.receivable, RECEIVABLE_FIELDS, problems));
  if (v.composed !== undefined) cfg.composed = parseComposed(v.composed, problems);
  if (v.lifecycle !== undefined) Object.assign(cfg.lifecycle, checkFields('lifecycle', v.lifecycle, LIFECYCLE_FIELDS, problems));
  if (v.overrides !== undefined) {
    if (!isObject(v.overrides)) problems.push('overrides must be an object of merchantId → {cancel_rate_spike?, volume_drop?, volume_spike?}');
    else for (const [m, o] of Object.entries(v.overrides)) {
      if (!isObject(o)) { problems.push(`overrides.${m} must be an object`); continue; }
      const entry: RulesConfig['overrides'][string] = {};
      for (const k of Object.keys(o)) {
        if (k === 'cancel_rate_spike') entry.cancel_rate_spike = checkFields(`overrides.${m}.cancel_rate_spike`, o[k], CANCEL_FIELDS, problems);
        else if (k === 'volume_drop') entry.volume_drop = checkFields(`overrides.${m}.volume_drop`, o[k], VOLUME_FIELDS, problems);
        else if (k === 'volume_spike') entry.volume_spike = checkFields(`overrides.${m}.volume_spike`, o[k], SPIKE_FIELDS, problems);
        else if (k === 'receivable') entry.receivable = checkFields(`overrides.${m}.receivable`, o[k], RECEIVABLE_FIELDS, problems);
        else problems.push(`overrides.${m}.${k} is unknown (known: cancel_rate_spike, volume_drop, volume_spike, receivable)`);
      }
      cfg.overrides[m] = entry;
    }
  }
  if (v.version !== undefined && (typeof v.version !== 'string' || !v.version.trim())) problems.push('version must be a non-empty string');
  if (problems.length) throw new RulesError(problems);
  const version = typeof v.version === 'string' ? v.version : ruleVersion(cfg);
  return deepFreeze({ version, ...cfg });
}

/** `h-<12 hex>` of the effective configuration: the same numbers give the same version across restarts. */
export function ruleVersion(cfg: Omit<RulesConfig, 'version'>): string {
  return `h-${createHash('sha256').update(stableJson(cfg)).digest('hex').slice(0, 12)}`;
}

function stableJson(v: unknown): string {
  if (!isObject(v)) return JSON.stringify(v);
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(',')}}`;
}

function deepFreeze<T>(o: T): T {
  if (isObject(o)) for (const x of Object.values(o)) deepFreeze(x);
  return Object.freeze(o);
}

export function defaultRules(): RulesConfig {
  return parseRules({});
}

/** The thresholds of one rule for one merchant (the override merged over the rule's defaults). */
export function paramsFor<R extends BuiltinRule>(cfg: RulesConfig, rule: R, merchantId: string): RulesConfig[R] {
  const o = cfg.overrides[merchantId]?.[rule];
  return o ? ({ ...cfg[rule], ...o } as RulesConfig[R]) : cfg[rule];
}
