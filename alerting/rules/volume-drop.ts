/**
 * volume_drop (docs/contracts.md "Rules"): for a merchant whose average daily approved amount over the baseline days is
 * at least `minDailyAmount`, today's approved amount from local 00:00 to the end of M against the average of the
 * same time-of-day window on the baseline (by default the same weekdays of the last 4 weeks, holidays left out;
 * see ../baseline.ts for how that average is computed). Fires when
 * today ≤ ratio × baseline. A merchant with no traffic today is evaluated like any other (today = 0).
 * Not evaluated (condition unknown, so a firing alert holds) while ingestion lags the wall clock by more than the
 * bound — a lagging pipeline must not look like a sales collapse — or while the baseline window is tiny.
 */
import type { BaselineDays, VolumeDropEvidence } from '../../lib/evidence.ts';
import { iso } from '../../lib/time.ts';
import type { VolumeDropParams } from './config.ts';
import { withEvidence, type Evaluation } from './types.ts';

export interface VolumeDropInput {
  merchantId: string;
  minute: number;
  dayStart: number;
  /** End of M minus the start of the local day. */
  elapsedMs: number;
  todayAmount: bigint;
  /** Average daily approved amount over the baseline days (KRW). */
  dailyAverage: number;
  /** Average approved amount of [day start, day start + elapsedMs) over the baseline days (KRW). */
  sameTimeBaseline: number;
  baselineFrom: number;
  baselineTo: number;
  baselineMethod: string;
  /** Which days formed the same-time baseline (evidence). */
  baselineDays?: BaselineDays;
  /** Today's local date when it is a holiday: not judged. */
  holiday?: string | null;
  /** Wall clock minus the event-time watermark when M was evaluated. */
  ingestLagMs: number;
  maxIngestLagMs: number;
}

export function evaluateVolumeDrop(input: VolumeDropInput, p: VolumeDropParams, ruleVersion: string): Evaluation {
  const threshold = p.ratio * input.sameTimeBaseline;
  const evidence = (): VolumeDropEvidence => ({
    rule: 'volume_drop',
    ruleVersion,
    minute: iso(input.minute),
    window: { from: iso(input.dayStart), to: iso(input.dayStart + input.elapsedMs), approvedAmount: input.todayAmount.toString() },
    baseline: {
      from: iso(input.baselineFrom), to: iso(input.baselineTo),
      sameTimeAverage: Math.round(input.sameTimeBaseline).toString(),
      dailyAverage: Math.round(input.dailyAverage).toString(),
      method: input.baselineMethod,
      ...input.baselineDays,
    },
    ratio: p.ratio,
    threshold: Math.round(threshold).toString(),
    todayVsBaseline: input.sameTimeBaseline > 0 ? Number(input.todayAmount) / input.sameTimeBaseline : null,
    ingestLagMs: input.ingestLagMs,
    ...(input.holiday ? { holiday: input.holiday } : {}),
  });
  const base = { rule: 'volume_drop' as const, merchantId: input.merchantId, minute: input.minute };
  if (!p.enabled) return withEvidence({ ...base, status: 'not_evaluated', reason: 'rule disabled for this merchant', condition: false }, evidence);
  if (input.dailyAverage < p.minDailyAmount) {
    return withEvidence({ ...base, status: 'not_evaluated', condition: false, reason: `not eligible: average daily approved amount below ${p.minDailyAmount} KRW` }, evidence);
  }
  if (input.holiday) {
    // Cannot tell: a holiday has no comparable days (a firing alert holds, neither resolving nor counting).
    return withEvidence({ ...base, status: 'not_evaluated', condition: null, reason: 'holiday: the volume rules do not judge public holidays' }, evidence);
  }
  if (input.ingestLagMs > input.maxIngestLagMs) {
    return withEvidence({ ...base, status: 'not_evaluated', condition: null, reason: `ingestion lags the wall clock by more than ${Math.round(input.maxIngestLagMs / 1000)} s` }, evidence);
  }
  if (input.elapsedMs < p.minElapsedMinutes * 60_000) {
    return withEvidence({ ...base, status: 'not_evaluated', condition: null, reason: `baseline window too small: first ${p.minElapsedMinutes} minutes of the day` }, evidence);
  }
  if (input.sameTimeBaseline < p.minBaselineAmount) {
    return withEvidence({ ...base, status: 'not_evaluated', condition: null, reason: `baseline window too small: same-time baseline below ${p.minBaselineAmount} KRW` }, evidence);
  }
  const breach = Number(input.todayAmount) <= threshold;
  return withEvidence({ ...base, status: breach ? 'breach' : 'clear', reason: null, condition: breach }, evidence);
}
