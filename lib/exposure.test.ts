import { describe, expect, it } from 'vitest';
import { exposureOf, nextScheduleChange, projectedReceivable, scheduleOfDays, scheduleOfPayouts } from './exposure.ts';
import type { Payout } from './mapping.ts';
import { HOUR, MINUTE } from './time.ts';

const T = Date.parse('2026-12-10T03:00:00Z'); // 12:00 in Seoul
const p = (coversTo: string, paidAt: string, amount = 1n): Payout => ({ id: coversTo, merchantId: '1', amount, coversToMs: Date.parse(coversTo), paidAtMs: Date.parse(paidAt) });

describe('settlement schedules', () => {
  it('from payouts: the latest covers_to among paid ones, the earliest paid_at still ahead', () => {
    const ps = [p('2026-12-07T15:00:00Z', '2026-12-08T00:00:00Z'), p('2026-12-08T15:00:00Z', '2026-12-09T00:00:00Z'), p('2026-12-09T15:00:00Z', '2026-12-10T05:00:00Z'), p('2026-12-10T15:00:00Z', '2026-12-11T00:00:00Z')];
    expect(scheduleOfPayouts(ps, T)).toEqual({ settledThrough: Date.parse('2026-12-08T15:00:00Z'), nextPayoutAt: Date.parse('2026-12-10T05:00:00Z') });
    // a payout counts from its paid_at on (inclusive)
    expect(scheduleOfPayouts(ps, Date.parse('2026-12-10T05:00:00Z')).settledThrough).toBe(Date.parse('2026-12-09T15:00:00Z'));
    expect(scheduleOfPayouts([], T)).toEqual({ settledThrough: null, nextPayoutAt: null });
    // an earlier covers_to paid later does not move settledThrough back
    expect(scheduleOfPayouts([...ps, p('2026-12-01T15:00:00Z', '2026-12-10T01:00:00Z')], T).settledThrough).toBe(Date.parse('2026-12-08T15:00:00Z'));
    expect(nextScheduleChange(ps, T)).toBe(Date.parse('2026-12-10T05:00:00Z'));
  });

  it('a covers_to inside a minute settles from that minute (the minute stays unsettled)', () => {
    expect(scheduleOfPayouts([p('2026-12-08T15:00:30Z', '2026-12-09T00:00:00Z')], T).settledThrough).toBe(Date.parse('2026-12-08T15:00:00Z'));
  });

  it('D+N: local day D is paid at the start of local day D+N', () => {
    // Seoul 2026-12-10 12:00: D+2 has paid day 12-08 at the start of 12-10, so settled through the start of 12-09
    expect(scheduleOfDays(2, T, 'Asia/Seoul')).toEqual({ settledThrough: Date.parse('2026-12-08T15:00:00Z'), nextPayoutAt: Date.parse('2026-12-10T15:00:00Z') });
    expect(scheduleOfDays(1, T, 'Asia/Seoul').settledThrough).toBe(Date.parse('2026-12-09T15:00:00Z'));
    expect(() => scheduleOfDays(0, T, 'Asia/Seoul')).toThrow(/≥ 1/);
  });
});

describe('exposure', () => {
  it('receivable is what cancels since settled exceed approvals by; projected at the next payout at the last hour’s rates', () => {
    const e = exposureOf({
      merchantId: '7', now: T, schedule: { settledThrough: T - 20 * HOUR, nextPayoutAt: T + 2 * HOUR },
      approvedSince: 1_000n, canceledSince: 5_000n, approvedLastHour: 100n, canceledLastHour: 400n,
    });
    expect(e).toEqual({
      merchantId: '7', settledThrough: new Date(T - 20 * HOUR).toISOString(), approvedSinceSettled: '1000', canceledSinceSettled: '5000',
      netSinceSettled: '-4000', receivable: '4000', projectedReceivable: '4600', nextPayoutAt: new Date(T + 2 * HOUR).toISOString(), holds: [],
    });
    expect(exposureOf({ merchantId: '7', now: T, schedule: { settledThrough: null, nextPayoutAt: null }, approvedSince: 9n, canceledSince: 2n, approvedLastHour: 0n, canceledLastHour: 0n }).receivable).toBe('0');
  });

  it('projection: none past the payout time, clamped at zero, exact for amounts beyond 2^53', () => {
    expect(projectedReceivable(-50n, 0n, 0n, T, null)).toBe(50n);
    expect(projectedReceivable(-50n, 1000n, 0n, T, T + 30 * MINUTE)).toBe(0n);
    expect(projectedReceivable(-(2n ** 60n), 0n, 3n * 2n ** 55n, T, T + 20 * MINUTE)).toBe(2n ** 60n + 2n ** 55n);
  });
});
