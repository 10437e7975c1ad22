import { describe, expect, it } from 'vitest';
import { compareWithLive } from './compare.ts';
import type { BacktestAlert } from './engine.ts';
import type { PeriodAlert } from '../risk-store/index.ts';

const T = Date.parse('2026-11-21T00:00:00Z'); // 09:00 in Seoul
const m = (n: number) => T + n * 60_000;
const bt = (merchantId: string, firedAt: number, resolvedAt: number | null, rule: BacktestAlert['rule'] = 'cancel_rate_spike'): BacktestAlert =>
  ({ rule, merchantId, firedAt, resolvedAt, evidence: {} as BacktestAlert['evidence'], renotified: 0, carried: false, money: null });
const live = (id: string, merchantId: string, firedAt: number, resolvedAt: number | null, disposition: string | null = null): PeriodAlert =>
  ({ id, rule: 'cancel_rate_spike', merchantId, firedAt, resolvedAt, disposition });
const o = { from: m(0), to: m(24 * 60), tz: 'Asia/Seoul', minutes: 1440, evaluations: 0 };

describe('compareWithLive', () => {
  it('identical alerts are exact', () => {
    const r = compareWithLive([bt('a', m(5), m(30)), bt('b', m(7), null)], [live('1', 'a', m(5), m(30)), live('2', 'b', m(7), null)], o);
    expect(r.vsLive.exact).toBe(true);
    expect(r.vsLive.both.map((p) => p.exact)).toEqual([true, true]);
    expect(r.summary.cancel_rate_spike).toEqual({ fired: 2, merchants: 2, live: { fired: 2, merchants: 2 } });
  });

  it('overlapping alerts of one merchant pair up (not exact); the rest is one side only', () => {
    const r = compareWithLive([bt('a', m(8), m(30)), bt('c', m(100), null)], [live('1', 'a', m(5), m(20), 'confirmed'), live('2', 'b', m(7), null, 'false_positive'), live('3', 'a', m(200), m(210))], o);
    expect(r.vsLive.both).toMatchObject([{ merchantId: 'a', exact: false, live: { id: '1', disposition: 'confirmed' } }]);
    expect(r.vsLive.onlyBacktest.map((a) => a.merchantId)).toEqual(['c']);
    expect(r.vsLive.onlyLive.map((a) => a.id)).toEqual(['2', '3']);
    expect(r.vsLive.exact).toBe(false);
    // Precision of the candidate from the live dispositions of the alerts it also raised; of live from all of them.
    expect(r.quality.cancel_rate_spike).toEqual({ confirmed: 1, falsePositive: 0, benign: 0, precision: 1 });
    expect(r.liveQuality.cancel_rate_spike).toEqual({ confirmed: 1, falsePositive: 1, benign: 0, precision: 0.5 });
    expect(r.quality.volume_drop.precision).toBeNull();
  });

  it('counts alerts per local day across midnight; carried alerts count as alerts, not as fired in the period', () => {
    const carried = { ...bt('z', m(-30), m(3)), carried: true };
    const r = compareWithLive([carried, bt('a', m(60), null), bt('b', m(15 * 60 + 5), null)], [live('1', 'z', m(-30), m(3))], o);
    expect(r.perDay).toEqual([{ day: '2026-11-21', backtest: 1, live: 0 }, { day: '2026-11-22', backtest: 1, live: 0 }]);
    expect(r.summary.cancel_rate_spike.fired).toBe(2);
    expect(r.vsLive.both).toMatchObject([{ merchantId: 'z', exact: true }]);
  });

  it('money: each merchant held once at its first alert; false positives are merchants whose judged alerts all are', () => {
    const money = (r: number, peak: number, held: number) => ({ receivableAtFiring: String(r), horizonTo: '', peakReceivable: String(peak), withheld: String(held), covered: String(Math.min(peak, held)) });
    const alerts = [
      { ...bt('a', m(5), m(30)), money: money(40, 50, 25) },
      { ...bt('a', m(6), null, 'receivable'), money: money(41, 50, 24) }, // a's second alert: not a second hold
      { ...bt('b', m(7), null), money: money(35, 35, 15) },
      { ...bt('z', m(-30), null), carried: true }, // carried: no money
    ];
    const r = compareWithLive(alerts, [live('1', 'a', m(5), m(30), 'confirmed'), live('2', 'b', m(7), null, 'false_positive')], { ...o, money: true });
    expect(r.money).toEqual({
      horizonDays: 7, merchants: 2, receivableAtFiring: '75', peakReceivable: '85', withheld: '40', covered: '40',
      falsePositive: { merchants: 1, withheld: '15' },
      byRule: { cancel_rate_spike: { alerts: 2, receivableAtFiring: '75', covered: '40' }, receivable: { alerts: 1, receivableAtFiring: '41', covered: '24' } },
    });
    expect(r.alerts.find((a) => a.merchantId === 'b')!.money).toMatchObject({ covered: '15' });
    expect(compareWithLive(alerts, [], o).money).toBeNull();
  });
});
