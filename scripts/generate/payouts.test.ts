import { describe, expect, it } from 'vitest';
import { DAY, HOUR } from '../../lib/time.ts';
import { localMidnight, payoutId, PayoutLedger, settlementOf } from './payouts.ts';
import { parseScenario, ScenarioSet } from './scenarios.ts';

const TZ = 'Asia/Seoul';
const d = Date.parse('2026-11-20T15:00:00Z'); // 2026-11-21 00:00 in Seoul

describe('generated payouts', () => {
  it('pays local day D at the start of D+N, covering through the end of D', () => {
    expect(localMidnight(d + 5 * HOUR, 0, TZ)).toBe(d);
    expect(settlementOf(d, 2, TZ)).toEqual({ coversTo: d + DAY, paidAt: d + 2 * DAY });
    expect(payoutId(d, 42, TZ)).toBe(20261121_00000042);
  });

  it('pays the net since the last payout when positive, and carries a negative net to later sales', () => {
    const l = new PayoutLedger(3, 2, TZ);
    l.approve(1, 1000); l.cancel(1, 300);
    l.approve(2, 100); l.cancel(2, 500);
    expect(l.endDay(d)).toEqual([{ id: payoutId(d, 1, TZ), merchant: 1, amount: 700, coversTo: d + DAY, paidAt: d + 2 * DAY }]);
    l.approve(2, 1000); // 1000 − 400 carried
    expect(l.endDay(d + DAY).map((r) => [r.merchant, r.amount])).toEqual([[2, 600]]);
    expect(l.endDay(d + 2 * DAY)).toEqual([]);
  });

  it('bust_out: cancels per transaction from its start, checked', () => {
    const ctx = { now: d, merchants: 10, resolveAlias: () => 1 };
    const s = new ScenarioSet([parseScenario('bust_out:3:+1h', ctx)]);
    expect(s.bustOut(3, d)).toBe(0);
    expect(s.bustOut(3, d + HOUR)).toBe(10);
    expect(s.bustOut(4, d + HOUR)).toBe(0);
    expect(s.empty).toBe(false);
    expect(() => parseScenario('bust_out:3:now:0.5', ctx)).toThrow(/whole number from 1 to 100/);
  });
});
