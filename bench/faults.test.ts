import { describe, expect, it } from 'vitest';
import { recoverySeconds } from './faults.ts';

const probe = (at: number, ms: number, ok = true) => ({ at, done: at + ms, ok });

describe('recoverySeconds', () => {
  const tf = 100_000;
  it('is the completion of the first probe of the final streak under 1 s, counted from the fault', () => {
    const probes = [probe(tf - 400, 80), probe(tf + 100, 9_000), ...Array.from({ length: 12 }, (_, i) => probe(tf + 9_200 + i * 200, 100))];
    expect(recoverySeconds(probes, tf)).toBeCloseTo(9.3);
  });
  it('counts failed probes (an INSERT while PostgreSQL was down) as slow', () => {
    const probes = [probe(tf + 100, 300, false), probe(tf + 500, 200, false), ...Array.from({ length: 10 }, (_, i) => probe(tf + 2_000 + i * 200, 150))];
    expect(recoverySeconds(probes, tf)).toBeCloseTo(2.15);
  });
  it('waits for a long enough streak, and a fault nobody noticed costs one probe', () => {
    expect(recoverySeconds([probe(tf + 100, 5_000), probe(tf + 5_200, 100)], tf)).toBeNull();
    expect(recoverySeconds(Array.from({ length: 10 }, (_, i) => probe(tf + 50 + i * 200, 60)), tf)).toBeCloseTo(0.11);
  });
});
