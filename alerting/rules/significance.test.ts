import { describe, expect, it } from 'vitest';
import { binomialTail, lnGamma } from './significance.ts';

/** Σ_{i ≥ k} C(n, i) p^i (1 − p)^(n − i), term by term in plain floating point (small n only). */
function naive(k: number, n: number, p: number): number {
  let s = 0;
  for (let i = k; i <= n; i++) {
    let c = 1;
    for (let j = 0; j < i; j++) c = (c * (n - j)) / (j + 1);
    s += c * p ** i * (1 - p) ** (n - i);
  }
  return s;
}

describe('binomialTail', () => {
  it('matches hand-computed tails', () => {
    expect(lnGamma(5)).toBeCloseTo(Math.log(24), 12);
    // P(X ≥ 8 | n = 10, p = ½) = (45 + 10 + 1) / 1024
    expect(binomialTail(8, 10, 0.5)).toBeCloseTo(56 / 1024, 12);
    expect(binomialTail(5, 5, 0.2)).toBeCloseTo(0.2 ** 5, 14);
    expect(binomialTail(1, 3, 0.5)).toBeCloseTo(7 / 8, 12);
    expect(binomialTail(0, 3, 0.5)).toBe(1);
    expect(binomialTail(4, 3, 0.5)).toBe(0);
    expect(binomialTail(2, 10, 0)).toBe(0);
  });
  it('agrees with the plain sum on both sides of the mean', () => {
    for (const [k, n, p] of [[3, 40, 0.1], [12, 40, 0.1], [30, 60, 0.5], [25, 60, 0.5], [7, 30, 0.02]]) {
      expect(binomialTail(k, n, p)).toBeCloseTo(naive(k, n, p), 10);
    }
  });
  it('tends to the Poisson tail when the window is a small share of the history', () => {
    // n large, n·p = 2: P(X ≥ 5) → the Poisson value 0.052653…
    expect(binomialTail(5, 1_000_000, 2e-6)).toBeCloseTo(0.0526530173, 5);
  });
  it('stays accurate far in the tail and for large counts', () => {
    // A hot merchant's surge: 110 of 3,404 cancels in 497 of 77,244 approvals is no accident.
    const p = binomialTail(110, 3404, 497 / 77_244);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1e-40);
    // Around the mean of a large n the tail is about one half.
    expect(binomialTail(5000, 10_000, 0.5)).toBeGreaterThan(0.49);
    expect(binomialTail(5000, 10_000, 0.5)).toBeLessThan(0.51);
  });
});
