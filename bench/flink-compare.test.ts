import { describe, expect, it } from 'vitest';
import { defaultRules } from '../alerting/index.ts';
import { MINUTE } from '../lib/time.ts';
import { alertsOf, breachesFromCounts, compareAlerts, type Counts } from './flink-compare.ts';

const T = Date.UTC(2026, 11, 7, 3, 0);

describe('alertsOf (riskmon lifecycle over per-minute verdicts)', () => {
  it('fires once per run of breaches and again only after resolveAfterMinutes clear minutes', () => {
    const m = (k: number) => T + k * MINUTE;
    // breaches at 0,1,2 then a gap of 5 clear minutes (3..7 → resolved at 7), breach at 8 fires anew;
    // breach at 14 is 5 minutes after 8 with 9..13 clear: resolved at 13, so 14 fires too; 16 is inside the run
    const a = alertsOf(new Map([['x', [m(0), m(1), m(2), m(8), m(14), m(16)]]]), m(0), m(60), 5);
    expect(a.map((x) => (x.firedAt - T) / MINUTE)).toEqual([0, 8, 14]);
    // 4 clear minutes keep it firing
    expect(alertsOf(new Map([['y', [m(0), m(5)]]]), m(0), m(60), 5).length).toBe(1);
    expect(alertsOf(new Map([['y', [m(0), m(6)]]]), m(0), m(60), 5).length).toBe(2);
  });
  it('ignores minutes outside [from, to)', () => {
    expect(alertsOf(new Map([['z', [T - MINUTE, T + 60 * MINUTE]]]), T, T + 60 * MINUTE, 5)).toEqual([]);
  });
});

describe('breachesFromCounts', () => {
  const rules = defaultRules();
  const day = T - 24 * 60 * MINUTE;
  const baselineDaysOf = () => [day];
  const series = (perMinute: (k: number) => Counts, from: number, n: number) => new Map(Array.from({ length: n }, (_, k) => [from + k * MINUTE, perMinute(k)] as const));

  it('judges the sliding 60-minute window against the baseline with the rule\'s guards', () => {
    // 1 approval a minute; cancels: none until minute 70, then 1 a minute: the window reaches 5 cancels at minute 74
    const minutes = new Map([['m', series((k) => ({ approvals: 1, cancels: k >= 70 ? 1 : 0 }), T - 59 * MINUTE, 200)]]);
    const baselines = new Map([['m', new Map([[day, { approvals: 10_000, cancels: 100 }]])]]);
    const b = breachesFromCounts({ minutes, baselines, from: T, to: T + 140 * MINUTE, rules, baselineDaysOf });
    const got = (b.get('m') ?? []).map((x) => (x - T) / MINUTE);
    // window of minute M (relative to T) is M-59..M in the series offset by 59: cancels = (M + 59) - 70 + 1 from M = 11 on
    // minute 15: 5 cancels of 60 approvals (8.3% ≥ 2 × 1%) but p = 4.4e-4 (Binomial(105, 60/10060) ≥ 5);
    // minute 16: 6 cancels, p = 4.6e-5 < 1e-4 — the first breach
    expect(got[0]).toBe(16);
    expect(got.at(-1)).toBe(139);
  });

  it('does not fire without enough baseline approvals or with a normal rate', () => {
    const minutes = new Map([['m', series(() => ({ approvals: 1, cancels: 1 }), T - 59 * MINUTE, 120)]]);
    const thin = new Map([['m', new Map([[day, { approvals: 99, cancels: 1 }]])]]);
    expect(breachesFromCounts({ minutes, baselines: thin, from: T, to: T + 60 * MINUTE, rules, baselineDaysOf }).size).toBe(0);
    const usual = new Map([['m', new Map([[day, { approvals: 10_000, cancels: 9_000 }]])]]);
    expect(breachesFromCounts({ minutes, baselines: usual, from: T, to: T + 60 * MINUTE, rules, baselineDaysOf }).size).toBe(0);
  });
});

describe('compareAlerts', () => {
  it('names what is missing and what is extra', () => {
    const r = compareAlerts([{ merchant: 'a', firedAt: 1 }, { merchant: 'b', firedAt: 2 }], [{ merchant: 'a', firedAt: 1 }, { merchant: 'c', firedAt: 3 }]);
    expect(r.equal).toBe(false);
    expect(r.missing).toEqual([{ merchant: 'b', firedAt: 2 }]);
    expect(r.extra).toEqual([{ merchant: 'c', firedAt: 3 }]);
    expect(compareAlerts([{ merchant: 'a', firedAt: 1 }], [{ merchant: 'a', firedAt: 1 }]).equal).toBe(true);
  });
});
