/**
 * "Decide this minute": everything the evaluator concludes about one closed minute M, as a pure function of what
 * it read (window and today's totals, the day's baselines, silences) and what it remembers (firing alerts, stored
 * evaluation signatures, tracked merchants). No Redis, no PostgreSQL, no clock: the evaluator reads, calls this,
 * commits the decision in one transaction, then updates its memory from it.
 */
import { emptyTotals, type Totals } from '../aggregator/store/index.ts';
import { SAME_TIME_METHOD, sameTimeAverage, type DayBaselines } from './baseline.ts';
import { stepAlert } from './lifecycle.ts';
import { belowActivityGuard, evaluateCancelRateSpike } from './rules/cancel-rate-spike.ts';
import { paramsFor, type RuleName, type RulesConfig } from './rules/config.ts';
import type { Evaluation, EvaluationStatus } from './rules/types.ts';
import { evaluateVolumeDrop } from './rules/volume-drop.ts';
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

/** The rules' verdicts for every merchant that needs one this minute (`quietSkipped` counts the fast path). */
export function evaluateRules(i: MinuteInput): { evaluations: Evaluation[]; quietSkipped: number } {
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
    }, p, rules.version));
  };
  // Every merchant once: those active in the window, then the tracked and firing ones absent from it.
  for (const [id, w] of windowTotals) evaluateCancel(id, w);
  for (const id of new Set([...i.tracked.cancel_rate_spike, ...firingCancel])) if (!windowTotals.has(id)) evaluateCancel(id, none);
  const volumeIds = new Set<string>([...base.profiles.keys(), ...i.tracked.volume_drop, ...firingMerchants(i.firing, 'volume_drop')]);
  for (const id of volumeIds) {
    const profile = base.profiles.get(id);
    const todayAmount = (i.todayHours.get(id)?.approvedAmount ?? 0n) + (i.partialHour.get(id)?.approvedAmount ?? 0n);
    evaluations.push(evaluateVolumeDrop({
      merchantId: id, minute: M, dayStart: i.today, elapsedMs: end - i.today, todayAmount,
      dailyAverage: Number(base.totals.get(id)?.approvedAmount ?? 0n) / base.days,
      sameTimeBaseline: profile ? sameTimeAverage(profile, end - i.today, base.days) : 0,
      baselineFrom: base.from, baselineTo: base.to, baselineMethod: SAME_TIME_METHOD,
      ingestLagMs: i.ingestLagMs, maxIngestLagMs: i.maxIngestLagMs,
    }, paramsFor(rules, 'volume_drop', id), rules.version));
  }
  return { evaluations, quietSkipped };
}

/** Verdicts → lifecycle steps, transitions and the rows that changed. */
export function decideMinute(i: MinuteInput): MinuteDecision {
  const { evaluations, quietSkipped } = evaluateRules(i);
  const { rules, minute: M } = i;
  const transitions: TransitionWrite[] = [];
  const clearCounts: MinuteDecision['clearCounts'] = [];
  const nextFiring = new Map<string, FiringAlert | null>();
  const rows: EvaluationRow[] = [];
  const trackedChanges: MinuteDecision['trackedChanges'] = [];
  const counts: MinuteDecision['counts'] = { cancel_rate_spike: { not_evaluated: quietSkipped }, volume_drop: {} };
  for (const e of evaluations) {
    const key = keyOf(e.rule, e.merchantId);
    const c = counts[e.rule];
    c[e.status] = (c[e.status] ?? 0) + 1;
    const sig = signatureOf(e);
    const quiet = isQuietSignature(sig);
    // Breach rows carry the evidence the dashboard shows, so they are refreshed every minute; others on change.
    if (e.status === 'breach' || i.signatures.get(key) !== sig) rows.push({ e, key, sig, quiet });
    if (quiet === i.tracked[e.rule].has(e.merchantId)) trackedChanges.push({ rule: e.rule, id: e.merchantId, quiet });
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
    });
  }
  return { evaluated: evaluations.length + quietSkipped, counts, rows, transitions, clearCounts, nextFiring, trackedChanges };
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
    tracked: { cancel_rate_spike: new Set(), volume_drop: new Set() },
  };
}

/** After a minute's decision is committed, memory follows it; alerts fired now get the id `idOf` gives them. */
export function applyDecision(m: Memory, d: MinuteDecision, idOf: (key: string) => string): void {
  for (const r of d.rows) m.signatures.set(r.key, r.sig);
  for (const t of d.trackedChanges) {
    if (t.quiet) m.tracked[t.rule].delete(t.id);
    else m.tracked[t.rule].add(t.id);
  }
  for (const [key, a] of d.nextFiring) {
    if (!a) m.firing.delete(key);
    else m.firing.set(key, { ...a, id: a.id || idOf(key) });
  }
}
