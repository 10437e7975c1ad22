/**
 * volume_spike (the bust-out): the approved amount of the last `windowMinutes` closed minutes (the rules' window,
 * 60 by default) against the same window of the local day on the baseline (by default the same weekdays of the
 * last 4 weeks, holidays left out; ../baseline.ts). Fires when window ≥ multiplier × baseline and the window holds
 * at least `minWindowAmount` KRW (the guard: below it the merchant is not judged, which also keeps the evaluator's
 * fast path for the bulk of merchants). A merchant without the history its baseline needs is not judged here.
 * On a holiday nothing is judged (condition unknown: a firing alert holds).
 */
import type { BaselineDays, VolumeSpikeEvidence } from '../../lib/evidence.ts';
import { iso } from '../../lib/time.ts';
import type { VolumeSpikeParams } from './config.ts';
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
}

/** The fast path: below the window guard the verdict is "too little activity" whatever the history says. */
export function belowSpikeGuard(windowAmount: bigint, p: VolumeSpikeParams): boolean {
  return p.enabled && windowAmount < BigInt(p.minWindowAmount);
}

export function evaluateVolumeSpike(input: VolumeSpikeInput, p: VolumeSpikeParams, ruleVersion: string): Evaluation {
  const avg = input.baselineAverage;
  const threshold = avg === null ? null : p.multiplier * avg;
  const evidence = (): VolumeSpikeEvidence => ({
    rule: 'volume_spike',
    ruleVersion,
    minute: iso(input.minute),
    window: { from: iso(input.windowFrom), to: iso(input.windowTo), approvedAmount: input.windowAmount.toString() },
    baseline: { sameWindowAverage: avg === null ? '' : Math.round(avg).toString(), method: input.baselineMethod, ...input.baselineDays },
    multiplier: p.multiplier,
    minWindowAmount: p.minWindowAmount,
    threshold: threshold === null ? '' : Math.round(threshold).toString(),
    windowVsBaseline: avg ? Number(input.windowAmount) / avg : null,
    ...(input.holiday ? { holiday: input.holiday } : {}),
  });
  const base = { rule: 'volume_spike' as const, merchantId: input.merchantId, minute: input.minute };
  const minutes = Math.round((input.windowTo - input.windowFrom) / 60_000);
  if (!p.enabled) return withEvidence({ ...base, status: 'not_evaluated', reason: 'rule disabled for this merchant', condition: false }, evidence);
  if (belowSpikeGuard(input.windowAmount, p)) {
    return withEvidence({ ...base, status: 'not_evaluated', condition: false, reason: `too little activity: needs at least ${p.minWindowAmount} KRW approved in the ${minutes}-minute window` }, evidence);
  }
  if (input.holiday) {
    return withEvidence({ ...base, status: 'not_evaluated', condition: null, reason: 'holiday: the volume rules do not judge public holidays' }, evidence);
  }
  if (threshold === null) {
    return withEvidence({ ...base, status: 'not_evaluated', condition: false, reason: input.noBaseline ?? 'too little history for a baseline' }, evidence);
  }
  const breach = Number(input.windowAmount) >= threshold;
  return withEvidence({ ...base, status: breach ? 'breach' : 'clear', reason: null, condition: breach }, evidence);
}
