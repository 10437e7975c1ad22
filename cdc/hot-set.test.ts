import { describe, expect, it } from 'vitest';
import { HotSetLearner } from './hot-set.ts';
import { HotSchedule } from './hot-schedule.ts';
import { atOrBefore } from './tails.ts';

describe('HotSetLearner', () => {
  it('picks the top fraction by volume and lets old volume decay', () => {
    const l = new HotSetLearner({ fraction: 0.01, halfLifeMs: 60_000 });
    l.seed(Array.from({ length: 200 }, (_, i) => [String(i), i === 7 || i === 9 ? 1000 : 10] as [string, number]));
    l.tick(0);
    expect(l.top()).toEqual(new Set(['7', '9']));
    l.tick(10 * 60_000); // 10 half-lives: 1000 → ~1
    for (let i = 0; i < 50; i++) l.observe('150');
    // the quiet merchants were forgotten (weight < 0.01); 7, 9 and 150 remain, and 150 leads
    expect(l.size).toBe(3);
    expect(l.top()).toEqual(new Set(['150']));
  });
});

describe('HotSchedule', () => {
  it('routes a transaction with the set in force at its commit LSN', () => {
    const s = new HotSchedule();
    expect(s.at(5n).size).toBe(0);
    s.add({ from: 10n, hot: new Set(['a']) });
    s.add({ from: 20n, hot: new Set(['b']) });
    expect([...s.at(9n)]).toEqual([]);
    expect([...s.at(10n)]).toEqual(['a']);
    expect([...s.at(19n)]).toEqual(['a']);
    expect([...s.at(25n)]).toEqual(['b']);
    expect(() => s.add({ from: 20n, hot: new Set() })).toThrow();
    s.prune(22n);
    expect(s.size).toBe(1);
    expect([...s.at(22n)]).toEqual(['b']);
  });
});

describe('restart check', () => {
  it('skips exactly the positions at or before a partition tail', () => {
    const tail = { lsn: 100n, seq: 3 };
    expect(atOrBefore(99n, 50, tail)).toBe(true);
    expect(atOrBefore(100n, 3, tail)).toBe(true);
    expect(atOrBefore(100n, 4, tail)).toBe(false);
    expect(atOrBefore(101n, 0, tail)).toBe(false);
    expect(atOrBefore(1n, 0, undefined)).toBe(false);
  });
});
