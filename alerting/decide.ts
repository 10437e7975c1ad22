/**
 * "Decide this minute": everything the evaluator concludes about one closed minute M, as a pure function of what
 * it read (window and today's totals, the day's baselines, silences) and what it remembers (firing alerts, stored
 * evaluation signatures, tracked merchants). No Redis, no PostgreSQL, no clock: the evaluator reads, calls this,
 * commits the decision in one transaction, then updates its memory from it.
 */
import { emptyTotals, type Totals } from '../aggregator/store/index.ts';
import { DAY, MINUTE } from '../lib/time.ts';
import { chooseBaseline, hasFullHistory, rangeAverage, SAME_TIME_METHOD, type BaselineKind, type ChosenBaseline, type DayBaselines } from './baseline.ts';
import { cohortKey, sizeBand, type Cohort } from './cohort.ts';
import { stepAlert } from './lifecycle.ts';
import { belowActivityGuard, evaluateCancelRateSpike } from './rules/cancel-rate-spike.ts';
import { paramsFor, type RuleName, type RulesConfig } from './rules/config.ts';
import type { Evaluation, EvaluationStatus } from './rules/types.ts';
import { evaluateVolumeDrop } from './rules/volume-drop.ts';
import { belowSpikeGuard, evaluateVolumeSpike } from './rules/volume-spike.ts';
import type { VolumeCohort } from './rules/builtin.ts';
import { belowComposedGuard, evaluateComposed, metricOf, type BaselineValue, type ComposedInput, type ComposedRule, type Metric } from './rules/composed.ts';
import { withEvidence } from './rules/types.ts';
import { evaluateReceivable } from './rules/receivable.ts';
import type { Exposure } from '../lib/exposure.ts';
import { silenceFor, type Silence } from './risk-store/index.ts';
import { isQuietSignature, keyOf, signatureOf, type EvaluationRow, type FiringAlert, type TransitionWrite } from './risk-store/index.ts';

export interface MinuteInput {
  /** The closed minute (epoch ms) and the bounds derived from it. */
  minute: number;
  today: number;
  windowFrom: number;
  /** Wall clock minus the watermark: volume_drop is not evaluated while ingestion lags more than maxIngestLagMs. */
  ingestLagMs: number;
  replay: boolean;
  rules: RulesConfig;
  maxIngestLagMs: number;
  slackEnabled: boolean;
  /** Per merchant: the rules' window [windowFrom, M+1m), and today's partial hour and full hours. */
  window: ReadonlyMap<string, Totals>;
  partialHour: ReadonlyMap<string, Totals>;
  todayHours: Map<string, Totals>;
  baselines: DayBaselines;
  silences: Silence[];
  /** The evaluator's memory. */
  firing: ReadonlyMap<string, FiringAlert>;
  signatures: ReadonlyMap<string, string>;
  tracked: Readonly<Record<RuleName, ReadonlySet<string>>>;
  /**
   * receivable: the exposure at the minute's end of every merchant that owes (receivable > 0) and of every merchant
   * with a firing receivable alert (alerting/exposure.ts); absent: the rule is not judged this minute (a firing
   * alert holds).
   */
  exposures?: ReadonlyMap<string, Exposure>;
}

export interface MinuteDecision {
  /** Evaluations judged, including the quiet ones skipped by the fast path. */
  evaluated: number;
  counts: Record<RuleName, Partial<Record<EvaluationStatus, number>>>;
  /** Evaluation rows that changed (to write), transitions (to write and publish), clear-minute counters. */
  rows: EvaluationRow[];
  transitions: TransitionWrite[];
  clearCounts: { alertId: string; clearMinutes: number }[];
  /** Firing alerts after this minute, by key: null = no longer firing; id '' = fired now (the store assigns it). */
  nextFiring: Map<string, FiringAlert | null>;
  /** Merchants to start (quiet: false) or stop (quiet: true) re-evaluating when absent from the window. */
  trackedChanges: { rule: RuleName; id: string; quiet: boolean }[];
}

export function firingMerchants(firing: ReadonlyMap<string, FiringAlert>, rule: RuleName): string[] {
  return [...firing.values()].filter((a) => a.rule === rule).map((a) => a.merchantId);
}

/** Whether a transition's Slack message is due, and if not, why. */
export function notificationFor(e: Pick<Evaluation, 'rule' | 'merchantId'>, replay: boolean, slackEnabled: boolean, silences: Silence[]): TransitionWrite['notification'] {
  if (replay) return { status: 'suppressed', reason: 'replay', silenceId: null };
  if (!slackEnabled) return { status: 'suppressed', reason: 'slack not configured', silenceId: null };
  const s = silenceFor(silences, e.rule, e.merchantId);
  if (s) return { status: 'suppressed', reason: `silenced${s.reason ? `: ${s.reason}` : ''}`, silenceId: s.id };
  return { status: 'pending', reason: null, silenceId: null };
}

/** The cancel-rate cohort of a merchant with less history than `minBaselineApprovals` (null: none, or enough history). */
function cohortOf(base: DayBaselines, id: string, w: Totals, windowMinutes: number, minBaselineApprovals: number, minCohortMerchants: number): Cohort | null {
  if (minCohortMerchants <= 0 || (base.totals.get(id)?.approvals ?? 0) >= minBaselineApprovals) return null;
  const c = base.cancelCohorts.get(cohortKey(base.categories.get(id) ?? 'all', sizeBand((w.approvals * 1440) / windowMinutes)));
  return c && c.merchants >= minCohortMerchants ? c : null;
}

/** The evidence's account of a chosen baseline: its kind, its days, why the flat mean stood in. */
function daysOf(c: ChosenBaseline | null) {
  return c ? { kind: c.kind, days: c.dayKeys, fallback: c.fallback } : {};
}

/**
 * The merchants volume_spike judges this minute beyond the quiet fast path: at least its window guard in the window,
 * or tracked, or firing. Their hour profiles must be in the day's baselines before `decideMinute` (inputs.ts
 * `profileSpikeCandidates` reads those it lacks).
 */
export function spikeCandidates(rules: RulesConfig, window: ReadonlyMap<string, Totals>, firing: ReadonlyMap<string, FiringAlert>, tracked: ReadonlySet<string>): string[] {
  const out = new Set<string>([...tracked, ...firingMerchants(firing, 'volume_spike')]);
  const floor = Math.min(rules.volume_spike.minWindowAmount, ...Object.values(rules.overrides).map((o) => o.volume_spike?.minWindowAmount ?? Infinity));
  const min = BigInt(floor);
  for (const [id, w] of window) {
    if (w.approvedAmount >= min && !belowSpikeGuard(w.approvedAmount, paramsFor(rules, 'volume_spike', id))) out.add(id);
  }
  // Composed rules on the same window of the day (same weekdays, or timeOfDay) need the same profiles.
  for (const r of rules.composed) {
    if (!r.enabled || !(r.baseline === 'same_weekday' || r.timeOfDay)) continue;
    for (const id of firingMerchants(firing, `composed:${r.name}`)) out.add(id);
    for (const [id, w] of window) if (!belowComposedGuard(w, r)) out.add(id);
  }
  return [...out];
}

/** Per-window metric values of the merchants with at least `minApprovals` baseline approvals, by cohort (median; memoized for the day). */
function metricCohorts(base: DayBaselines, metric: Metric, minApprovals: number, scale: number): Map<string, { median: number; merchants: number; category: string; band: number }> {
  const memo = (base as DayBaselines & { metricCohorts?: Map<string, ReturnType<typeof metricCohorts>> });
  memo.metricCohorts ??= new Map();
  const key = `${metric}/${minApprovals}/${scale}`;
  const hit = memo.metricCohorts.get(key);
  if (hit) return hit;
  const groups = new Map<string, { values: number[]; category: string; band: number }>();
  // A count or an amount over the baseline days reads a young merchant's missing days as zero: those known young
  // (profiled, not active on the first baseline day) are left out.
  const perDay = metric === 'approvals' || metric === 'cancels' || metric === 'approved_amount' || metric === 'canceled_amount';
  for (const [id, t] of base.totals) {
    if (t.approvals < Math.max(1, minApprovals)) continue;
    if (perDay && base.weekday.has(id) && !hasFullHistory(base, id)) continue;
    const v = metricOf(metric, t, scale);
    if (v === null) continue;
    const category = base.categories.get(id) ?? 'all';
    const band = sizeBand(t.approvals / base.days);
    const k = cohortKey(category, band);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { values: [], category, band }));
    g.values.push(v);
  }
  const out = new Map<string, { median: number; merchants: number; category: string; band: number }>();
  for (const [k, g] of groups) {
    g.values.sort((a, b) => a - b);
    const m = g.values.length >> 1;
    out.set(k, { median: g.values.length % 2 ? g.values[m] : (g.values[m - 1] + g.values[m]) / 2, merchants: g.values.length, category: g.category, band: g.band });
  }
  memo.metricCohorts.set(key, out);
  return out;
}

/**
 * The same window [a, b) of the local day (ms from its start; a < 0 reaches into the previous evening) on a volume
 * baseline — the same weekdays, or the flat mean of the baseline days (baseline.ts) — and whether the merchant's
 * history is long enough for it: activity on enough same weekdays, or on every baseline day (the flat mean of a
 * merchant younger than the baseline days would read its missing days as zero sales).
 */
function timeOfDayBaseline(base: DayBaselines, id: string, kind: BaselineKind, a: number, b: number): { chosen: ChosenBaseline | null; value: number; enough: boolean } {
  const chosen = chooseBaseline(base, id, kind);
  return {
    chosen,
    value: chosen ? rangeAverage(chosen.profile, a, b, chosen.days) : 0,
    enough: chosen !== null && (chosen.kind === 'same_weekday' || hasFullHistory(base, id)),
  };
}

/**
 * A volume rule's cohort for a merchant with less history than its baseline needs (null: cohorts off, or fewer than
 * `minMerchants` with history): the median daily approved amount of the merchants of its category and size band
 * that have the history cancel_rate_spike asks (minBaselineApprovals over the baseline days), scaled to `windowMs`.
 * The merchant's size band is its approvals a day over the days it has been active, or at the pace of `pace` (its
 * approvals over `paceMs`) when it has no history at all.
 */
function volumeCohort(i: MinuteInput, id: string, minMerchants: number, windowMs: number, pace: number, paceMs: number): VolumeCohort | null {
  if (minMerchants <= 0) return null;
  const base = i.baselines;
  const own = base.totals.get(id)?.approvals ?? 0;
  const since = base.weekday.get(id)?.since;
  const activeDays = since === null || since === undefined ? 0 : Math.min(base.days, Math.max(1, Math.ceil((base.todayStart - since) / DAY)));
  const perDay = own > 0 && activeDays > 0 ? own / activeDays : (pace * DAY) / Math.max(MINUTE, paceMs);
  const category = base.categories.get(id) ?? 'all';
  const c = metricCohorts(base, 'approved_amount', i.rules.cancel_rate_spike.minBaselineApprovals, 1 / base.days).get(cohortKey(category, sizeBand(perDay)));
  if (!c || c.merchants < minMerchants) return null;
  return { category: c.category, band: c.band, merchants: c.merchants, average: (c.median * windowMs) / DAY };
}

const tooLittleHistory = (base: DayBaselines) => `too little history: needs activity on ${base.minSameWeekdays} same weekdays or on every one of the ${base.days} baseline days`;

/** A composed rule's baseline for one merchant (rules/composed.ts). */
function composedBaseline(i: MinuteInput, r: ComposedRule, id: string, w: Totals): ComposedInput['baseline'] {
  const base = i.baselines;
  const scale = i.rules.windowMinutes / (base.days * 1440);
  const span = { from: new Date(base.from).toISOString(), to: new Date(base.to).toISOString() };
  if (r.baseline === 'same_weekday' || (r.timeOfDay && r.baseline === 'last_7_days')) {
    const t = timeOfDayBaseline(base, id, r.baseline, i.windowFrom - i.today, i.minute + 60_000 - i.today);
    if (!t.enough) return { none: tooLittleHistory(base) };
    return { value: t.value, ...span, days: t.chosen!.dayKeys, fallback: t.chosen!.fallback };
  }
  if (r.baseline === 'cohort') {
    const minMerchants = Math.max(1, i.rules.cancel_rate_spike.minCohortMerchants);
    return composedCohort(i, r, id, w, minMerchants) ?? { none: `no cohort: fewer than ${minMerchants} merchants of this category and size band with history` };
  }
  const t = base.totals.get(id);
  if (!t || t.approvals < r.minBaselineApprovals) return { none: `too little history: needs at least ${r.minBaselineApprovals} approvals over the baseline days` };
  const v = metricOf(r.metric, t, scale);
  if (v === null) return { none: `too little history: ${r.metric} is undefined over the baseline days` };
  return { value: v, ...span, days: base.dayKeys, counts: { approvals: t.approvals, cancels: t.cancels } };
}

/** A composed rule's cohort baseline for one merchant: the median of its category and size band (null: none that large). */
function composedCohort(i: MinuteInput, r: ComposedRule, id: string, w: Totals, minMerchants: number): BaselineValue | null {
  const base = i.baselines;
  const c = metricCohorts(base, r.metric, r.minBaselineApprovals, i.rules.windowMinutes / (base.days * 1440))
    .get(cohortKey(base.categories.get(id) ?? 'all', sizeBand((w.approvals * 1440) / i.rules.windowMinutes)));
  if (!c || c.merchants < Math.max(1, minMerchants)) return null;
  return { value: c.median, from: new Date(base.from).toISOString(), to: new Date(base.to).toISOString(), cohort: { category: c.category, sizeBand: c.band, merchants: c.merchants } };
}

/** The rules' verdicts for every merchant that needs one this minute (`quietSkipped` counts the fast path). */
export function evaluateRules(i: MinuteInput): { evaluations: Evaluation[]; quietSkipped: number; quietSpikes: number; quietComposed: number } {
  const { rules, minute: M, baselines: base, window: windowTotals } = i;
  const end = M + 60_000;
  const none = emptyTotals();
  const evaluations: Evaluation[] = [];
  const firingCancel = new Set(firingMerchants(i.firing, 'cancel_rate_spike'));
  let quietSkipped = 0;
  const evaluateCancel = (id: string, w: Totals) => {
    const p = paramsFor(rules, 'cancel_rate_spike', id);
    // Fast path: too little activity, and the stored verdict says so already (or there is no row: the API reads
    // a missing row as "no activity"), and no alert to resolve: nothing would change.
    if (belowActivityGuard(w, p) && !i.tracked.cancel_rate_spike.has(id) && !firingCancel.has(id)) { quietSkipped++; return; }
    evaluations.push(evaluateCancelRateSpike({
      merchantId: id, minute: M, windowFrom: i.windowFrom, windowTo: end, window: { ...w },
      baselineFrom: base.from, baselineTo: base.to, baseline: base.totals.get(id),
      cohort: cohortOf(base, id, w, rules.windowMinutes, p.minBaselineApprovals, p.minCohortMerchants),
    }, p, rules.version));
  };
  // Every merchant once: those active in the window, then the tracked and firing ones absent from it.
  for (const [id, w] of windowTotals) evaluateCancel(id, w);
  for (const id of new Set([...i.tracked.cancel_rate_spike, ...firingCancel])) if (!windowTotals.has(id)) evaluateCancel(id, none);
  const volumeIds = new Set<string>([...base.eligible, ...i.tracked.volume_drop, ...firingMerchants(i.firing, 'volume_drop')]);
  for (const id of volumeIds) {
    const p = paramsFor(rules, 'volume_drop', id);
    const t = timeOfDayBaseline(base, id, p.baseline, 0, end - i.today);
    const todayAmount = (i.todayHours.get(id)?.approvedAmount ?? 0n) + (i.partialHour.get(id)?.approvedAmount ?? 0n);
    const todayApprovals = (i.todayHours.get(id)?.approvals ?? 0) + (i.partialHour.get(id)?.approvals ?? 0);
    evaluations.push(evaluateVolumeDrop({
      cohort: t.enough ? null : volumeCohort(i, id, p.minCohortMerchants, end - i.today, todayApprovals, end - i.today),
      merchantId: id, minute: M, dayStart: i.today, elapsedMs: end - i.today, todayAmount,
      dailyAverage: Number(base.totals.get(id)?.approvedAmount ?? 0n) / base.days,
      sameTimeBaseline: t.value,
      baselineFrom: base.from, baselineTo: base.to, baselineMethod: SAME_TIME_METHOD, baselineDays: daysOf(t.chosen),
      holiday: base.holiday, ingestLagMs: i.ingestLagMs, maxIngestLagMs: i.maxIngestLagMs,
    }, p, rules.version));
  }
  // volume_spike: merchants at or above the window guard (their profiles read beforehand), tracked and firing ones.
  let quietSpikes = 0;
  const firingSpike = new Set(firingMerchants(i.firing, 'volume_spike'));
  const spikeMin = BigInt(rules.volume_spike.minWindowAmount);
  const spikeOn = rules.volume_spike.enabled;
  const evaluateSpike = (id: string, w: Totals) => {
    // The bulk: no override, below the guard, nothing to resolve (the same verdict as belowSpikeGuard, cheaper).
    if (spikeOn && w.approvedAmount < spikeMin && !rules.overrides[id] && !i.tracked.volume_spike.has(id) && !firingSpike.has(id)) { quietSpikes++; return; }
    const p = paramsFor(rules, 'volume_spike', id);
    if (belowSpikeGuard(w.approvedAmount, p) && !i.tracked.volume_spike.has(id) && !firingSpike.has(id)) { quietSpikes++; return; }
    const t = timeOfDayBaseline(base, id, p.baseline, i.windowFrom - i.today, end - i.today);
    evaluations.push(evaluateVolumeSpike({
      merchantId: id, minute: M, windowFrom: i.windowFrom, windowTo: end, windowAmount: w.approvedAmount,
      baselineAverage: t.enough ? t.value : null,
      baselineDays: daysOf(t.chosen), baselineMethod: SAME_TIME_METHOD, holiday: base.holiday, noBaseline: tooLittleHistory(base),
      cohort: t.enough ? null : volumeCohort(i, id, p.minCohortMerchants, end - i.windowFrom, w.approvals, end - i.windowFrom),
    }, p, rules.version));
  };
  for (const [id, w] of windowTotals) evaluateSpike(id, w);
  for (const id of new Set([...i.tracked.volume_spike, ...firingSpike])) if (!windowTotals.has(id)) evaluateSpike(id, none);
  // Composed rules: the same fast path (below the window guards, not tracked, not firing: nothing to say).
  let quietComposed = 0;
  const composedNames = new Set<string>();
  for (const r of rules.composed) {
    if (!r.enabled) continue;
    const rule = `composed:${r.name}` as const;
    composedNames.add(rule);
    const tracked = i.tracked[rule] ?? new Set<string>();
    const firing = new Set(firingMerchants(i.firing, rule));
    const evaluate = (id: string, w: Totals) => {
      if (belowComposedGuard(w, r) && !tracked.has(id) && !firing.has(id)) { quietComposed++; return; }
      const own = composedBaseline(i, r, id, w);
      evaluations.push(evaluateComposed({
        merchantId: id, minute: M, windowFrom: i.windowFrom, windowTo: end, window: { ...w }, baseline: own,
        // without a baseline of its own, the cohort's (cohortFallback)
        cohort: 'none' in own && r.cohortFallback ? composedCohort(i, r, id, w, r.cohortFallback) : null,
        baselineApprovals: base.totals.get(id)?.approvals ?? 0,
        dailyAverage: Number(base.totals.get(id)?.approvedAmount ?? 0n) / base.days, holiday: base.holiday,
      }, r, rules.version));
    };
    for (const [id, w] of windowTotals) evaluate(id, w);
    for (const id of new Set([...tracked, ...firing])) if (!windowTotals.has(id)) evaluate(id, none);
  }
  // receivable: the merchants that owe at least the lowest threshold, and the tracked and firing ones.
  if (i.exposures) {
    const firingRec = new Set(firingMerchants(i.firing, 'receivable'));
    const tracked = i.tracked.receivable ?? new Set<string>();
    const floor = receivableFloor(rules);
    const ids = new Set<string>([...tracked, ...firingRec]);
    for (const [id, e] of i.exposures) if (BigInt(e.receivable) >= floor) ids.add(id);
    for (const id of ids) {
      const e = i.exposures.get(id) ?? owesNothing(id);
      evaluations.push(evaluateReceivable(id, M, e, paramsFor(rules, 'receivable', id), rules.version));
    }
  } else {
    // not judged this minute: a firing alert neither resolves nor counts a clear minute
    for (const id of firingMerchants(i.firing, 'receivable')) {
      evaluations.push(withEvidence({ rule: 'receivable', merchantId: id, minute: M, status: 'not_evaluated', reason: 'exposure not read this minute', condition: null },
        () => ({ rule: 'receivable' as const, ruleVersion: rules.version, minute: new Date(M).toISOString(), minReceivable: rules.receivable.minReceivable, exposure: owesNothing(id) })));
    }
  }
  // Alerts of a composed rule no longer in the rules (or disabled): clear, so they resolve.
  for (const a of i.firing.values()) {
    if (!a.rule.startsWith('composed:') || composedNames.has(a.rule)) continue;
    evaluations.push(withEvidence({ rule: a.rule, merchantId: a.merchantId, minute: M, status: 'not_evaluated', reason: 'rule removed or disabled', condition: false },
      () => ({ rule: a.rule as `composed:${string}`, ruleVersion: rules.version, minute: new Date(M).toISOString(), metric: '', compare: 'multiple', k: 0,
        window: { from: new Date(i.windowFrom).toISOString(), to: new Date(end).toISOString(), value: null, approvals: 0, cancels: 0, approvedAmount: '0', canceledAmount: '0' },
        baseline: { kind: '', value: null }, threshold: null })));
  }
  return { evaluations, quietSkipped, quietSpikes, quietComposed };
}

/** The lowest receivable threshold of the rules (with overrides): merchants owing less are not judged unless tracked or firing. */
export function receivableFloor(rules: RulesConfig): bigint {
  return BigInt(Math.min(rules.receivable.minReceivable, ...Object.values(rules.overrides).map((o) => o.receivable?.minReceivable ?? Infinity)));
}

/** The exposure of a merchant absent from the owing set: it owes nothing (amounts unknown here, shown as 0). */
function owesNothing(merchantId: string): Exposure {
  return { merchantId, settledThrough: null, approvedSinceSettled: '0', canceledSinceSettled: '0', netSinceSettled: '0', receivable: '0', projectedReceivable: '0', nextPayoutAt: null, holds: [] };
}

/** Verdicts → lifecycle steps, transitions and the rows that changed. */
export function decideMinute(i: MinuteInput): MinuteDecision {
  const { evaluations, quietSkipped, quietSpikes, quietComposed } = evaluateRules(i);
  const { rules, minute: M } = i;
  const transitions: TransitionWrite[] = [];
  const clearCounts: MinuteDecision['clearCounts'] = [];
  const nextFiring = new Map<string, FiringAlert | null>();
  const rows: EvaluationRow[] = [];
  const trackedChanges: MinuteDecision['trackedChanges'] = [];
  const counts: MinuteDecision['counts'] = { cancel_rate_spike: { not_evaluated: quietSkipped }, volume_drop: {}, volume_spike: { not_evaluated: quietSpikes }, receivable: {} };
  for (const e of evaluations) {
    const key = keyOf(e.rule, e.merchantId);
    const c = (counts[e.rule] ??= {});
    c[e.status] = (c[e.status] ?? 0) + 1;
    const sig = signatureOf(e);
    const quiet = isQuietSignature(sig);
    // Breach rows carry the evidence the dashboard shows, so they are refreshed every minute; others on change.
    if (e.status === 'breach' || i.signatures.get(key) !== sig) rows.push({ e, key, sig, quiet });
    if (quiet === (i.tracked[e.rule]?.has(e.merchantId) ?? false)) trackedChanges.push({ rule: e.rule, id: e.merchantId, quiet });
    const cur = i.firing.get(key) ?? null;
    if (!cur && e.condition !== true) continue; // the common case: nothing firing, nothing to fire
    const step = stepAlert(cur?.life ?? null, e.condition, M, rules.lifecycle);
    if (!step.changed) continue;
    nextFiring.set(key, step.next ? { id: cur?.id ?? '', rule: e.rule, merchantId: e.merchantId, life: step.next } : null);
    if (!step.transition) { clearCounts.push({ alertId: cur!.id, clearMinutes: step.next!.clearMinutes }); continue; }
    transitions.push({
      kind: step.transition, rule: e.rule, merchantId: e.merchantId, alertId: cur?.id,
      life: step.next ?? { ...cur!.life, clearMinutes: rules.lifecycle.resolveAfterMinutes },
      evidence: e.evidence, ruleVersion: rules.version, replay: i.replay,
      notification: notificationFor(e, i.replay, i.slackEnabled, i.silences),
      ...(step.transition === 'fired' && i.exposures?.get(e.merchantId) ? { exposure: i.exposures.get(e.merchantId)! } : {}),
    });
  }
  return { evaluated: evaluations.length + quietSkipped + quietSpikes + quietComposed, counts, rows, transitions, clearCounts, nextFiring, trackedChanges };
}

/** What the evaluator (and a backtest) remembers between minutes. */
export interface Memory {
  firing: Map<string, FiringAlert>;
  signatures: Map<string, string>;
  tracked: Record<RuleName, Set<string>>;
}

export function emptyMemory(firing: FiringAlert[] = []): Memory {
  return {
    firing: new Map(firing.map((a) => [keyOf(a.rule, a.merchantId), a])),
    signatures: new Map(),
    tracked: { cancel_rate_spike: new Set(), volume_drop: new Set(), volume_spike: new Set(), receivable: new Set() },
  };
}

/** After a minute's decision is committed, memory follows it; alerts fired now get the id `idOf` gives them. */
export function applyDecision(m: Memory, d: MinuteDecision, idOf: (key: string) => string): void {
  for (const r of d.rows) m.signatures.set(r.key, r.sig);
  for (const t of d.trackedChanges) {
    if (t.quiet) m.tracked[t.rule]?.delete(t.id);
    else (m.tracked[t.rule] ??= new Set()).add(t.id);
  }
  for (const [key, a] of d.nextFiring) {
    if (!a) m.firing.delete(key);
    else m.firing.set(key, { ...a, id: a.id || idOf(key) });
  }
}
