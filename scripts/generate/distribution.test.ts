import { describe, expect, it } from 'vitest';
import {
  CANCEL_RATE_RANGE, CATEGORIES, CATEGORY_PARAMS, curveAtMinuteOfDay, expectedPerMinute, hotCount, localMinuteOfDay,
  merchantName, merchantProfile, merchantWeights, roundKrw, sampleAmount, sampleCancelAmount, sampleCount,
} from './distribution.ts';
import { AliasTable, Rng } from './random.ts';

describe('Rng', () => {
  it('is a pure function of its seed', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.u32());
    expect(Array.from({ length: 5 }, () => b.u32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.u32())).not.toEqual(xs);
  });
  it('draws uniform [0,1) and standard normals', () => {
    const r = new Rng(7);
    let sum = 0, sq = 0, min = 1, max = 0;
    const N = 200_000;
    for (let i = 0; i < N; i++) { const u = r.next(); min = Math.min(min, u); max = Math.max(max, u); }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    for (let i = 0; i < N; i++) { const z = r.normal(); sum += z; sq += z * z; }
    expect(Math.abs(sum / N)).toBeLessThan(0.01);
    expect(Math.abs(sq / N - 1)).toBeLessThan(0.02);
  });
  it('samples an alias table by weight', () => {
    const t = new AliasTable([1, 2, 7, 0]);
    const r = new Rng(1);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 100_000; i++) counts[t.sample(r)]++;
    expect(counts[3]).toBe(0);
    expect(counts[0] / 100_000).toBeCloseTo(0.1, 1);
    expect(counts[2] / 100_000).toBeCloseTo(0.7, 1);
    expect(() => new AliasTable([0, 0])).toThrow(/positive total/);
  });
});

describe('merchant weights', () => {
  for (const n of [1_000, 10_000, 100_000]) {
    it(`the top 1% of ${n} merchants carry at least half of the transactions`, () => {
      const w = merchantWeights(n);
      expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      let top = 0;
      for (let i = 0; i < hotCount(n); i++) top += w[i];
      expect(top).toBeGreaterThanOrEqual(0.5);
      let increases = 0;
      for (let i = 1; i < n; i++) if (w[i] > w[i - 1]) increases++;
      expect(increases).toBe(0);
    });
  }
  it('leaves the merchants just below the top 1% busy enough for the cancel-rate guards (≥ 20 approvals/h at 3M/day)', () => {
    const w = merchantWeights(100_000);
    expect((w[hotCount(100_000)] * 3_000_000) / 24).toBeGreaterThanOrEqual(20);
  });
  it('rejects a bad count', () => {
    expect(() => merchantWeights(0)).toThrow(/positive integer/);
  });
});

describe('merchant profiles', () => {
  it('depend on the id only, with a cancel rate in range and a known category', () => {
    expect(merchantProfile(123)).toEqual(merchantProfile(123));
    const seen = new Set<string>();
    for (let id = 1; id <= 5000; id++) {
      const p = merchantProfile(id);
      expect(p.cancelRate).toBeGreaterThanOrEqual(CANCEL_RATE_RANGE[0]);
      expect(p.cancelRate).toBeLessThanOrEqual(CANCEL_RATE_RANGE[1]);
      expect(CATEGORIES).toContain(p.category);
      seen.add(p.category);
    }
    expect(seen.size).toBe(CATEGORIES.length);
    expect(merchantName(merchantProfile(7))).toMatch(/ 7$/);
  });
});

describe('daily curve', () => {
  it('has mean 1 over a day and a night trough', () => {
    let sum = 0;
    for (let m = 0; m < 1440; m++) sum += curveAtMinuteOfDay(m);
    expect(sum / 1440).toBeCloseTo(1, 6);
    const night = curveAtMinuteOfDay(4 * 60);
    const evening = curveAtMinuteOfDay(21 * 60);
    expect(night).toBeLessThan(0.2 * evening);
  });
  it('is read in the configured zone', () => {
    // 15:00 UTC is local midnight in Seoul (+09:00).
    expect(localMinuteOfDay(Date.parse('2026-11-21T15:00:00Z'), 'Asia/Seoul')).toBe(0);
    expect(localMinuteOfDay(Date.parse('2026-11-21T15:00:00Z'), 'UTC')).toBe(900);
    const seoulNight = expectedPerMinute(Date.parse('2026-11-21T19:00:00Z'), 1440, 'Asia/Seoul'); // 04:00 KST
    const seoulEvening = expectedPerMinute(Date.parse('2026-11-21T12:00:00Z'), 1440, 'Asia/Seoul'); // 21:00 KST
    expect(seoulNight).toBeLessThan(seoulEvening);
  });
});

describe('amounts', () => {
  it('are positive multiples of 10 KRW, log-normal around the category median', () => {
    const r = new Rng(3);
    const p = CATEGORY_PARAMS.food;
    const xs: number[] = [];
    for (let i = 0; i < 20_000; i++) xs.push(sampleAmount(r, Math.log(p.median), p.sigma));
    for (const x of xs) { expect(x % 10).toBe(0); expect(x).toBeGreaterThan(0); }
    xs.sort((a, b) => a - b);
    expect(xs[10_000] / p.median).toBeGreaterThan(0.95);
    expect(xs[10_000] / p.median).toBeLessThan(1.05);
    expect(roundKrw(3)).toBe(10);
  });
  it('cancels are full or partial (strictly smaller, ≥ 10)', () => {
    const r = new Rng(5);
    let partial = 0;
    for (let i = 0; i < 10_000; i++) {
      const c = sampleCancelAmount(r, 15_000);
      expect(c).toBeGreaterThanOrEqual(10);
      expect(c).toBeLessThanOrEqual(15_000);
      if (c < 15_000) partial++;
    }
    expect(partial / 10_000).toBeGreaterThan(0.25);
    expect(partial / 10_000).toBeLessThan(0.35);
    expect(sampleCancelAmount(r, 10)).toBe(10);
  });
  it('counts average their mean', () => {
    const r = new Rng(9);
    for (const lambda of [0.5, 12, 2000]) {
      let s = 0;
      for (let i = 0; i < 5000; i++) s += sampleCount(r, lambda);
      expect(s / 5000 / lambda).toBeGreaterThan(0.95);
      expect(s / 5000 / lambda).toBeLessThan(1.05);
    }
  });
});
