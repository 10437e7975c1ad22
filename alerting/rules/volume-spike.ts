/**
 * volume_spike (the bust-out): the approved amount of the last `windowMinutes` closed minutes (the rules' window,
 * 60 by default) against the same window of the local day on the baseline (by default the same weekdays of the
 * last 4 weeks, holidays left out; ../baseline.ts). Fires when window ≥ multiplier × baseline and the window holds
 * at least `minWindowAmount` KRW (the guard: below it the merchant is not judged, which also keeps the evaluator's
 * fast path for the bulk of merchants). A merchant without the history its baseline needs is not judged here.
 * On a holiday nothing is judged (condition unknown: a firing alert holds).
 *
 * The rule is a definition of the composed form (builtin.ts) judged by its engine (composed.ts `judge`); this module
 * gives it its inputs and its evidence.
 */
import type { BaselineDays, VolumeSpikeEvidence } from '../../lib/evidence.ts';
import { iso } from '../../lib/time.ts';
import type { VolumeSpikeParams } from './config.ts';
import { cohortEvidence, volumeSpikeRule, vsCohort, type VolumeCohort } from './builtin.ts';
import { amountOnly, judge } from './composed.ts';
import { withEvidence, type Evaluation } from './types.ts';

export interface VolumeSpikeInput {
  merchantId: string;
  minute: number;
  windowFrom: number;
  windowTo: number;
  windowAmount: bigint;
  /** The same window's average over the baseline's days (KRW); null: too little history. */
  baselineAverage: number | null;
  baselineDays: BaselineDays;
  baselineMethod: string;
  holiday: string | null;
  /** Why there is no baseline (reason text, stable). */
  noBaseline?: string;
  /** Without a baseline of its own: the cohort to judge against (its median scaled to the window), when large enough. */
  cohort?: VolumeCohort | null;
}

/** The fast path: below the window guard the verdict is "too little activity" whatever the history says. */
export function belowSpikeGuard(windowAmount: bigint, p: VolumeSpikeParams): boolean {
  return p.enabled && windowAmount < BigInt(p.minWindowAmount);
}

export function evaluateVolumeSpike(input: VolumeSpikeInput, p: VolumeSpikeParams, ruleVersion: string): Evaluation {
  const avg = input.baselineAverage;
  const v = judge(volumeSpikeRule(p), {
    window: amountOnly(input.windowAmount), windowMinutes: Math.round((input.windowTo - input.windowFrom) / 60_000),
    baseline: avg === null ? { none: input.noBaseline ?? 'too little history for a baseline' } : { value: avg }, holiday: input.holiday,
    cohort: input.cohort ? { value: input.cohort.average } : null,
  });
  const evidence = (): VolumeSpikeEvidence => ({
    rule: 'volume_spike',
    ruleVersion,
    minute: iso(input.minute),
    window: { from: iso(input.windowFrom), to: iso(input.windowTo), approvedAmount: input.windowAmount.toString() },
    baseline: { sameWindowAverage: avg === null ? '' : Math.round(avg).toString(), method: input.baselineMethod, ...input.baselineDays },
    multiplier: p.multiplier,
    minWindowAmount: p.minWindowAmount,
    threshold: v.threshold === null ? '' : Math.round(v.threshold).toString(),
    windowVsBaseline: v.usedCohort ? vsCohort(input.windowAmount, input.cohort!) : avg ? Number(input.windowAmount) / avg : null,
    ...(input.holiday ? { holiday: input.holiday } : {}),
    ...(v.usedCohort ? { cohort: cohortEvidence(input.cohort!) } : {}),
  });
  return withEvidence({ rule: 'volume_spike', merchantId: input.merchantId, minute: input.minute, status: v.status, reason: v.reason, condition: v.condition }, evidence);
}
