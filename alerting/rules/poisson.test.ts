import { describe, expect, it } from 'vitest';
import { lnGamma, poissonTail } from './poisson.ts';

describe('poissonTail', () => {
  it('matches hand-computed tails', () => {
    expect(lnGamma(5)).toBeCloseTo(Math.log(24), 12);
    // P(X ≥ 5 | λ = 2) = 1 − Σ_{i<5} e^-2 2^i / i! = 0.052653…
    expect(poissonTail(5, 2)).toBeCloseTo(0.0526530173, 9);
    expect(poissonTail(1, 2)).toBeCloseTo(1 - Math.exp(-2), 12);
    expect(poissonTail(0, 3)).toBe(1);
    expect(poissonTail(3, 0)).toBe(0);
  });
  it('stays accurate far in the tail and for large counts', () => {
    // P(X ≥ 20 | λ = 2) = e^-2 2^20/20! (1 + 2/21 + …) ≈ 6.44e-14: tiny but not zero.
    const p = poissonTail(20, 2);
    expect(p).toBeGreaterThan(6.4e-14);
    expect(p).toBeLessThan(6.5e-14);
    // A hot merchant: 110 cancels where 21 were expected is essentially impossible by chance.
    expect(poissonTail(110, 21.3)).toBeLessThan(1e-40);
    // Around the mean of a large λ the tail is about one half.
    expect(poissonTail(1000, 1000)).toBeGreaterThan(0.49);
    expect(poissonTail(1000, 1000)).toBeLessThan(0.52);
  });
});
