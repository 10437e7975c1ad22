import { describe, expect, it } from 'vitest';
import { emptyTotals } from '../aggregator/store/index.ts';
import { dayStart, HOUR } from '../lib/time.ts';
import { baselineDayStarts, hourProfile, sameTimeAverage } from './baseline.ts';

const tz = 'Asia/Seoul';
const today = dayStart(Date.parse('2026-11-21T05:00:00Z'), tz); // 2026-11-20T15:00Z

describe('baselines', () => {
  it('takes the 7 full local days before today', () => {
    const s = baselineDayStarts(today, 7, tz);
    expect(s).toHaveLength(7);
    expect(new Date(s[0]).toISOString()).toBe('2026-11-13T15:00:00.000Z');
    expect(s[6] + 24 * HOUR).toBe(today);
  });
  it('sums full hours and prorates the current hour', () => {
    const s = baselineDayStarts(today, 7, tz);
    const points = s.flatMap((d) => [0, 1, 2].map((h) => ({ ...emptyTotals(), t: d + h * HOUR, approvals: 1, approvedAmount: BigInt((h + 1) * 600) })));
    const prof = hourProfile(points, s);
    expect(prof[0]).toBe(7 * 600);
    expect(sameTimeAverage(prof, HOUR, 7)).toBe(600);
    expect(sameTimeAverage(prof, 2 * HOUR + 30 * 60_000, 7)).toBe(600 + 1200 + 900);
    expect(sameTimeAverage(prof, 10 * 60_000, 7)).toBe(100);
  });
});
