/** The generator's weeks: weekday shapes by category and public holidays (opt-in, `--week-shapes 1`). */
import { describe, expect, it } from 'vitest';
import { defaultHolidays } from '../../lib/holidays-kr.ts';
import { CATEGORIES, WEEK_FACTOR_MAX, WEEK_SHAPE, weekAcceptance } from './distribution.ts';
import { Rng } from './random.ts';
import { Workload } from './workload.ts';

const tz = 'Asia/Seoul';
const holidays = new Set(defaultHolidays());
const at = (localIso: string) => Date.parse(`${localIso}+09:00`);

describe('week shapes', () => {
  it('give each category a weekday shape and a holiday factor, all within the acceptance bound', () => {
    for (const c of CATEGORIES) {
      const s = WEEK_SHAPE[c];
      expect(s.days).toHaveLength(7);
      for (const f of [...s.days, s.holiday]) expect(f).toBeGreaterThan(0), expect(f).toBeLessThanOrEqual(WEEK_FACTOR_MAX);
    }
    // B2B-like general merchants: a Sunday a quarter of a weekday or less; travel the opposite.
    expect(WEEK_SHAPE.general.days[0] / WEEK_SHAPE.general.days[1]).toBeLessThanOrEqual(0.25);
    expect(WEEK_SHAPE.travel.days[6]).toBeGreaterThan(WEEK_SHAPE.travel.days[2]);
  });

  it('read the weekday and the holidays in the zone', () => {
    const g = CATEGORIES.indexOf('general');
    expect(weekAcceptance(at('2026-11-22T12:00:00'), tz, holidays)[g]).toBeCloseTo(0.25 / WEEK_FACTOR_MAX); // Sunday
    expect(weekAcceptance(at('2026-11-23T00:30:00'), tz, holidays)[g]).toBeCloseTo(1.15 / WEEK_FACTOR_MAX); // Monday, just after midnight
    expect(weekAcceptance(at('2026-09-24T12:00:00'), tz, holidays)[g]).toBeCloseTo(0.25 / WEEK_FACTOR_MAX); // Chuseok eve, a Thursday
    expect(weekAcceptance(at('2026-09-24T12:00:00'), tz, new Set())[g]).toBeCloseTo(1.15 / WEEK_FACTOR_MAX);
  });

  it('shape the transactions: general merchants get a quarter of their weekday share on Sundays; flat weeks draw as before', () => {
    const w = new Workload(600);
    const share = (ms: number) => {
      const rng = new Rng(7);
      const accept = weekAcceptance(ms, tz, holidays);
      let general = 0;
      const n = 60_000;
      for (let i = 0; i < n; i++) if (CATEGORIES[w.category[w.sampleMerchantIn(rng, accept) - 1]] === 'general') general++;
      return general / n;
    };
    const sunday = share(at('2026-11-22T12:00:00'));
    const monday = share(at('2026-11-23T12:00:00'));
    expect(sunday / monday).toBeGreaterThan(0.15);
    expect(sunday / monday).toBeLessThan(0.35);
    const a = new Rng(3);
    const b = new Rng(3);
    for (let i = 0; i < 1000; i++) expect(w.sampleMerchantIn(a, null)).toBe(w.sampleMerchant(b));
  });
});
