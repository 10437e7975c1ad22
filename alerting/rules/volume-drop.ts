/**
 * volume_drop (docs/contracts.md "Rules"): for a merchant whose average daily approved amount over the baseline days is
 * at least `minDailyAmount`, today's approved amount from local 00:00 to the end of M against the average of the
 * same time-of-day window on the baseline (by default the same weekdays of the last 4 weeks, holidays left out;
 * see ../baseline.ts for how that average is computed). Fires when
 * today ≤ ratio × baseline. A merchant with no traffic today is evaluated like any other (today = 0).
 * Not evaluated (condition unknown, so a firing alert holds) while ingestion lags the wall clock by more than the
 * bound — a lagging pipeline must not look like a sales collapse — or while the baseline window is tiny.
 *
 * The rule is a definition of the composed form (builtin.ts) judged by its engine (composed.ts `judge`); this module
 * gives it its inputs and its evidence.
 */
import type { BaselineDays, VolumeDropEvidence } from '../../lib/evidence.ts';
import { iso } from '../../lib/time.ts';
import type { VolumeDropParams } from './config.ts';
import { cohortEvidence, volumeDropRule, vsCohort, type VolumeCohort } from './builtin.ts';
import { amountOnly, judge } from './composed.ts';
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
  /**
   * Set when the merchant has less history than its baseline needs and its cohort is large enough: judged against the
   * cohort's median daily amount scaled to the elapsed part of the day (`average`, KRW).
   */
  cohort?: VolumeCohort | null;
  /** Wall clock minus the event-time watermark when M was evaluated. */
  ingestLagMs: number;
  maxIngestLagMs: number;
}

export function evaluateVolumeDrop(input: VolumeDropInput, p: VolumeDropParams, ruleVersion: string): Evaluation {
  const v = judge(volumeDropRule(p), {
    window: amountOnly(input.todayAmount), windowMinutes: Math.round(input.elapsedMs / 60_000),
    baseline: input.cohort ? { none: 'too little history for a baseline of its own' } : { value: input.sameTimeBaseline },
    cohort: input.cohort ? { value: input.cohort.average } : null, dailyAverage: input.dailyAverage, holiday: input.holiday,
    ingestLagMs: input.ingestLagMs, maxIngestLagMs: input.maxIngestLagMs, elapsedMs: input.elapsedMs,
  });
  const threshold = v.threshold ?? p.ratio * input.sameTimeBaseline;
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
    todayVsBaseline: v.usedCohort ? vsCohort(input.todayAmount, input.cohort!) : input.sameTimeBaseline > 0 ? Number(input.todayAmount) / input.sameTimeBaseline : null,
    ingestLagMs: input.ingestLagMs,
    ...(input.holiday ? { holiday: input.holiday } : {}),
    ...(v.usedCohort ? { cohort: cohortEvidence(input.cohort!) } : {}),
  });
  return withEvidence({ rule: 'volume_drop', merchantId: input.merchantId, minute: input.minute, status: v.status, reason: v.reason, condition: v.condition }, evidence);
}
