import { describe, expect, it } from 'vitest';
import { baselineAt, baselineRate, cumulative, fill, merge, netPosition, parsePoints, rollingRate, sameTimeBaseline, sameWeekdayBaseline, settledAt, type P } from './series.ts';

const M = 60_000;
const H = 3_600_000;
const D = 86_400_000;
const p = (t: number, approvals: number, cancels = 0, approvedAmount = approvals * 1000): P => ({ t, approvals, cancels, approvedAmount, canceledAmount: cancels * 1000 });

describe('merchant page series', () => {
  it('parses API points and fills omitted buckets with zeros', () => {
    const pts = parsePoints([{ t: '1970-01-01T00:01:00.000Z', approvals: 3, approvedAmount: '45000', cancels: 1, canceledAmount: '15000' }]);
    expect(pts).toEqual([{ t: M, approvals: 3, approvedAmount: 45000, cancels: 1, canceledAmount: 15000 }]);
    expect(fill(pts, 0, 3 * M, M).map((x) => x.approvals)).toEqual([0, 3, 0]);
  });

  it('merges live points over loaded ones', () => {
    expect(merge([p(0, 1), p(M, 1)], [p(M, 5), p(2 * M, 2)]).map((x) => x.approvals)).toEqual([1, 5, 2]);
  });

  it('computes the rolling window rate only over full windows', () => {
    const mins = [p(0, 10, 1), p(M, 10, 3), p(2 * M, 0, 0), p(3 * M, 20, 0)];
    expect(rollingRate(mins, 2)).toEqual([null, 0.2, 0.3, 0]);
    expect(rollingRate([p(0, 0), p(M, 0)], 2)).toEqual([null, null]);
  });

  it('baseline rate is the ratio of sums, not the mean of ratios', () => {
    expect(baselineRate([p(0, 100, 1), p(H, 10, 9)]).rate).toBeCloseTo(10 / 110);
    expect(baselineRate([]).rate).toBeNull();
  });

  it('same-time baseline averages each of the 7 days from its start to the same hour', () => {
    const today = 10 * D;
    // Every earlier day: 1,000 per hour in hours 0 and 1; day −1 also 7,000 in hour 2.
    const hourly: P[] = [];
    for (let d = 1; d <= 7; d++) { hourly.push(p(today - d * D, 1, 0, 1000), p(today - d * D + H, 1, 0, 1000)); }
    hourly.push(p(today - D + 2 * H, 1, 0, 7000));
    const b = sameTimeBaseline(hourly, today);
    expect(b.v.slice(0, 4)).toEqual([0, 1000, 2000, 3000]);
    expect(b.t[1]).toBe(today + H);
    expect(baselineAt(b, today + H / 2)).toBe(500);
    expect(cumulative([p(0, 1, 0, 5), p(M, 0), p(2 * M, 1, 0, 7)])).toEqual([5, 5, 12]);
  });

  it('the same-time baseline of the same weekdays: holidays and days without activity left out, else 7 days', () => {
    const today = Date.parse('2026-11-21T15:00:00Z'); // Sunday 2026-11-22 in Seoul
    const hourly: P[] = [];
    for (let d = 1; d <= 28; d++) for (let h = 0; h < 24; h++) hourly.push(p(today - d * D + h * H, 1, 0, d % 7 === 0 ? 250 : 1000));
    const b = sameWeekdayBaseline(hourly, today, 'Asia/Seoul', new Set(['2026-11-08']));
    expect(b.days).toEqual(['2026-10-25', '2026-11-01', '2026-11-15']);
    expect(b.v[24]).toBe(24 * 250);
    const young = sameWeekdayBaseline(hourly.filter((x) => x.t >= today - 10 * D), today, 'Asia/Seoul', new Set());
    expect(young.days).toEqual([]);
    expect(young.v[24]).toBeCloseTo((6 * 24 * 1000 + 24 * 250) / 7, 6);
  });

  it('charts the net position since the last payout: forward from each settled-through time, anchored at the exact net now', () => {
    // hourly buckets over 6 h: +10 approved each hour, hour 4 a 50 cancel; payout A paid at 2 h settling through 1 h,
    // payout B paid at 5 h settling through 3 h, payout C scheduled at 8 h
    const b: P[] = [0, 1, 2, 3, 4, 5].map((h) => ({ t: h * H, approvals: 1, approvedAmount: 10, cancels: h === 4 ? 1 : 0, canceledAmount: h === 4 ? 50 : 0 }));
    const payouts = [{ coversTo: H, paidAt: 2 * H }, { coversTo: 3 * H, paidAt: 5 * H }, { coversTo: 5 * H, paidAt: 8 * H }];
    expect(settledAt(payouts, 2 * H - 1)).toBe(null);
    expect(settledAt(payouts, 6 * H)).toBe(3 * H);
    const now = 5 * H + 30 * M;
    // the exposure's net now: hours 3, 4, 5 = 10 + (10 − 50) + 10 = −20
    const net = netPosition(b, H, payouts, [H, 2 * H, 3 * H, 4 * H, 5 * H, now, 7 * H], now, -20);
    // 1 h: nothing settled yet while something is now → unknown; 2–4 h: since 1 h (A); 5 h: since 3 h (B, = now's S): 10 − 40
    expect(net).toEqual([null, 10, 20, 30, -30, -20, null]);
    // without any payout, every value hangs from the net now (exact whatever the buckets reach back to)
    expect(netPosition(b, H, [], [4 * H, now], now, 1000)).toEqual([1000 - (-40 + 10), 1000]); // less hours 4 and 5
    expect(netPosition([], H, payouts, [4 * H, now], now, -20)).toEqual([null, -20]);
  });
});
