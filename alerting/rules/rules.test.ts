import { describe, expect, it } from 'vitest';
import { emptyTotals, type Totals } from '../../aggregator/store/index.ts';
import { evaluateCancelRateSpike, type CancelRateInput } from './cancel-rate-spike.ts';
import { defaultRules, paramsFor, parseRules, RulesError } from './config.ts';
import { evaluateVolumeDrop, type VolumeDropInput } from './volume-drop.ts';

const M = Date.parse('2026-11-21T05:00:00Z'); // 14:00 in Seoul
const rules = defaultRules();
const t = (approvals: number, cancels: number, amount = 0n): Totals => ({ ...emptyTotals(), approvals, cancels, approvedAmount: amount });

function cancelInput(window: Totals, baseline: Totals | undefined): CancelRateInput {
  return { merchantId: '42', minute: M, windowFrom: M - 59 * 60_000, windowTo: M + 60_000, window, baselineFrom: M - 8 * 86_400_000, baselineTo: M - 86_400_000, baseline };
}

describe('cancel_rate_spike', () => {
  const p = rules.cancel_rate_spike;
  it('fires at twice the baseline rate and not below (significance guard off: the plain contract semantics)', () => {
    const plain = { ...p, maxPValue: 1 };
    expect(evaluateCancelRateSpike(cancelInput(t(100, 10), t(1000, 50)), plain, 'v').status).toBe('breach'); // 10% ≥ 2×5%
    expect(evaluateCancelRateSpike(cancelInput(t(100, 9), t(1000, 50)), plain, 'v').status).toBe('clear');
  });
  it('does not fire on a doubling that chance explains, and fires on a real surge', () => {
    // 5 cancels where 2 were expected: twice the rate, but 5% of merchants show that by luck every hour.
    const luck = evaluateCancelRateSpike(cancelInput(t(40, 5), t(2000, 100)), p, 'v');
    expect(luck).toMatchObject({ status: 'clear', condition: false });
    expect((luck.evidence as { pValue: number }).pValue).toBeGreaterThan(0.01);
    // A hot merchant's surge: 110 cancels where 21 were expected.
    const surge = evaluateCancelRateSpike(cancelInput(t(497, 110), t(76747, 3294)), p, 'v');
    expect(surge.status).toBe('breach');
    expect((surge.evidence as { pValue: number }).pValue).toBeLessThan(1e-30);
  });
  it('does not read a thin history that came out low by chance as a spike', () => {
    // 40 cancels in 1,000 approvals against 3 in 200: twice the baseline rate, and a Poisson tail around 1.5%
    // would call it certain (p ~ 1e-8); but 3 in 200 is itself a noisy estimate of a 3–4% merchant.
    const thin = evaluateCancelRateSpike(cancelInput(t(1000, 40), t(200, 3)), p, 'v');
    expect(thin.status).toBe('clear');
    expect((thin.evidence as { pValue: number }).pValue).toBeGreaterThan(0.01);
    // The same window against a long history at 1.5% is a real spike.
    expect(evaluateCancelRateSpike(cancelInput(t(1000, 40), t(20_000, 300)), p, 'v').status).toBe('breach');
  });
  it('a small noisy merchant is not evaluated: too little activity', () => {
    const e = evaluateCancelRateSpike(cancelInput(t(19, 10), t(1000, 10)), p, 'v');
    expect(e).toMatchObject({ status: 'not_evaluated', condition: false });
    expect(e.reason).toMatch(/too little activity/);
    expect(evaluateCancelRateSpike(cancelInput(t(100, 4), t(1000, 1)), p, 'v').reason).toMatch(/too little activity/);
  });
  it('a new merchant is not evaluated: too little history', () => {
    expect(evaluateCancelRateSpike(cancelInput(t(50, 20), t(99, 1)), p, 'v').reason).toMatch(/too little history/);
    expect(evaluateCancelRateSpike(cancelInput(t(50, 20), undefined), p, 'v').reason).toMatch(/too little history/);
  });
  it('a merchant that never had a cancel fires on a guarded wave', () => {
    expect(evaluateCancelRateSpike(cancelInput(t(20, 5), t(500, 0)), p, 'v').status).toBe('breach');
  });
  it('records the evidence and a stable reason', () => {
    const e = evaluateCancelRateSpike(cancelInput(t(100, 10), t(1000, 50)), p, 'v7');
    expect(e.evidence).toMatchObject({ ruleVersion: 'v7', window: { approvals: 100, cancels: 10, rate: 0.1 }, baseline: { approvals: 1000, cancels: 50, rate: 0.05 }, threshold: 0.1 });
    const a = evaluateCancelRateSpike(cancelInput(t(3, 1), t(1000, 50)), p, 'v');
    const b = evaluateCancelRateSpike(cancelInput(t(7, 2), t(1000, 50)), p, 'v');
    expect(a.reason).toBe(b.reason);
  });
  it('honours a per-merchant override', () => {
    const cfg = parseRules({ overrides: { '42': { cancel_rate_spike: { multiplier: 3 } } } });
    expect(evaluateCancelRateSpike(cancelInput(t(100, 10), t(1000, 50)), paramsFor(cfg, 'cancel_rate_spike', '42'), 'v').status).toBe('clear');
    expect(paramsFor(cfg, 'cancel_rate_spike', '43').multiplier).toBe(2);
  });
});

function volumeInput(over: Partial<VolumeDropInput>): VolumeDropInput {
  return {
    merchantId: '7', minute: M, dayStart: M - 14 * 3_600_000 + 60_000, elapsedMs: 14 * 3_600_000, todayAmount: 600_000_000n,
    dailyAverage: 2e9, sameTimeBaseline: 1e9, baselineFrom: 0, baselineTo: 0, baselineMethod: 'm', ingestLagMs: 1000, maxIngestLagMs: 120_000, ...over,
  };
}

describe('volume_drop', () => {
  const p = rules.volume_drop;
  it('fires at half the same-time baseline or less', () => {
    expect(evaluateVolumeDrop(volumeInput({ todayAmount: 500_000_000n }), p, 'v').status).toBe('breach');
    expect(evaluateVolumeDrop(volumeInput({ todayAmount: 500_000_001n }), p, 'v').status).toBe('clear');
  });
  it('a silent big merchant (no traffic today) fires', () => {
    const e = evaluateVolumeDrop(volumeInput({ todayAmount: 0n }), p, 'v');
    expect(e).toMatchObject({ status: 'breach', condition: true });
    expect(e.evidence).toMatchObject({ window: { approvedAmount: '0' }, baseline: { sameTimeAverage: '1000000000' } });
  });
  it('a merchant below the daily threshold is not eligible', () => {
    expect(evaluateVolumeDrop(volumeInput({ dailyAverage: 999_999_999, todayAmount: 0n }), p, 'v')).toMatchObject({ status: 'not_evaluated', condition: false });
  });
  it('the first minutes of the day are not evaluated and hold a firing alert', () => {
    const e = evaluateVolumeDrop(volumeInput({ elapsedMs: 29 * 60_000, sameTimeBaseline: 3e7, todayAmount: 0n }), p, 'v');
    expect(e).toMatchObject({ status: 'not_evaluated', condition: null });
    expect(e.reason).toMatch(/first 30 minutes/);
    expect(evaluateVolumeDrop(volumeInput({ elapsedMs: 31 * 60_000, sameTimeBaseline: 4e6, todayAmount: 0n }), p, 'v').reason).toMatch(/below 5000000 KRW/);
  });
  it('a lagging pipeline is not a sales collapse', () => {
    const e = evaluateVolumeDrop(volumeInput({ todayAmount: 0n, ingestLagMs: 121_000 }), p, 'v');
    expect(e).toMatchObject({ status: 'not_evaluated', condition: null });
    expect(e.reason).toMatch(/ingestion lags/);
  });
});

describe('rules configuration', () => {
  it('names every bad field', () => {
    expect(() => parseRules({ cancel_rate_spike: { multiplier: -1, foo: 1 }, volume_drop: { ratio: 2 }, bar: 1 }))
      .toThrow(/bar is unknown.*cancel_rate_spike.multiplier must be a number.*cancel_rate_spike.foo is unknown.*volume_drop.ratio/);
    expect(() => parseRules([])).toThrow(/JSON object/);
  });
  it('refuses thresholds that would fire for every merchant and minute, naming each path', () => {
    let err: RulesError | undefined;
    try {
      parseRules({
        cancel_rate_spike: { multiplier: 0, minApprovals: 0, minCancels: 0, minBaselineApprovals: 0 },
        volume_drop: { minDailyAmount: 0, ratio: 1, minBaselineAmount: 0 },
        overrides: { '42': { cancel_rate_spike: { multiplier: 0.5 } } },
      });
    } catch (e) { err = e as RulesError; }
    expect(err?.paths).toEqual([
      'cancel_rate_spike.multiplier', 'cancel_rate_spike.minApprovals', 'cancel_rate_spike.minCancels', 'cancel_rate_spike.minBaselineApprovals',
      'volume_drop.minDailyAmount', 'volume_drop.ratio', 'volume_drop.minBaselineAmount', 'overrides.42.cancel_rate_spike.multiplier',
    ]);
  });
  it('derives the version from the numbers unless given', () => {
    expect(parseRules({}).version).toBe(defaultRules().version);
    expect(parseRules({ cancel_rate_spike: { multiplier: 3 } }).version).not.toBe(defaultRules().version);
    expect(parseRules({ version: 'ops-3' }).version).toBe('ops-3');
  });
});
