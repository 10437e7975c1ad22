import { describe, expect, it } from 'vitest';
import { clockFrom, fixedClock, systemClock } from './clock.ts';

describe('clock', () => {
  it('a fixed clock reads its instant until set or advanced', () => {
    const c = fixedClock('2026-12-06T15:30:00Z'); // 00:30 in Seoul
    expect(c()).toBe(Date.parse('2026-12-06T15:30:00Z'));
    c.advance(60_000);
    expect(new Date(c()).toISOString()).toBe('2026-12-06T15:31:00.000Z');
    c.set('2026-12-31T14:59:00Z');
    expect(new Date(c()).toISOString()).toBe('2026-12-31T14:59:00.000Z');
    expect(() => fixedClock('not a time')).toThrow(/not a time/);
  });

  it('a shifted clock starts at the chosen instant and runs at the base clock\'s pace', () => {
    const base = fixedClock(1_000_000);
    const c = clockFrom('2026-03-29T00:59:00Z', base);
    expect(c()).toBe(Date.parse('2026-03-29T00:59:00Z'));
    base.advance(90_000);
    expect(c()).toBe(Date.parse('2026-03-29T01:00:30Z'));
    expect(Math.abs(systemClock() - Date.now())).toBeLessThan(1000);
  });
});
