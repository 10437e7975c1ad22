import { describe, expect, it } from 'vitest';
import { clockFrom, clockOf, clockStartEnv, envWithClock, fixedClock, fromSystemTime, parseClockStart, processClock, systemClock } from './clock.ts';
import { commonSpec, readConfig } from './config.ts';

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

describe('RISKMON_CLOCK_START', () => {
  const real = Date.parse('2026-12-07T10:00:00Z');

  it('reads an instant, or an instant at a real instant; both need a zone', () => {
    expect(parseClockStart('2026-12-31T23:58:00+09:00', real)).toEqual({ at: Date.parse('2026-12-31T14:58:00Z'), realAt: null });
    expect(parseClockStart(' 2026-12-31T14:58:00Z@2026-12-07T09:59:00.123Z ', real))
      .toEqual({ at: Date.parse('2026-12-31T14:58:00Z'), realAt: Date.parse('2026-12-07T09:59:00.123Z') });
  });

  it('refuses nonsense with what is wrong', () => {
    const bad = (s: string) => () => parseClockStart(s, real);
    expect(bad('2026-12-31T23:58:00')).toThrow(/with a zone/); // local time: whose?
    expect(bad('tomorrow')).toThrow(/not an ISO-8601 time with a zone/);
    expect(bad('1735689600000')).toThrow(/not an ISO-8601 time with a zone/);
    expect(bad('2026-02-30T00:00:00Z')).toThrow(/not a real date|not an ISO/);
    expect(bad('1970-01-01T00:00:00Z')).toThrow(/outside 2000–2099/);
    expect(bad('2026-12-31T14:58:00Z@2026-12-07T11:00:00Z')).toThrow(/in the future/);
    expect(bad('2026-12-31T14:58:00Z@2026-11-01T00:00:00Z')).toThrow(/more than 7 days old/);
    expect(bad('2026-12-31T14:58:00Z@2026-12-07T09:00:00Z@x')).toThrow(/more than one "@"/);
  });

  it('through the configuration: unset is the system clock; a bad value names the variable', () => {
    expect(readConfig({ clock: commonSpec.clock }, {}).clock).toBeNull();
    expect(() => readConfig({ clock: commonSpec.clock }, { RISKMON_CLOCK_START: 'noon' })).toThrow(/RISKMON_CLOCK_START="noon" is invalid: the instant "noon" is not an ISO-8601 time/);
  });

  it('the anchored form gives every process the same timeline, restarts included', () => {
    const start = parseClockStart(clockStartEnv('2026-03-08T06:59:00Z'));
    const a = clockOf(start);
    const b = clockOf(parseClockStart(clockStartEnv('2026-03-08T06:59:00Z', start.realAt!)));
    expect(Math.abs(a() - Date.parse('2026-03-08T06:59:00Z'))).toBeLessThan(5_000);
    expect(a.offsetMs).toBe(b.offsetMs);
    expect(clockOf(null)).toBe(systemClock);
  });

  it('the bare form starts at the instant when the process started', () => {
    const c = clockOf(parseClockStart('2026-12-31T14:58:00Z'));
    expect(c.offsetMs).toBe(Date.parse('2026-12-31T14:58:00Z') - performance.timeOrigin);
  });

  it('a shifted process clock is logged as a warning; the system clock is not', () => {
    const warned: unknown[][] = [];
    const log = { warn: (...a: unknown[]) => { warned.push(a); } } as unknown as Parameters<typeof processClock>[1];
    processClock(null, log);
    expect(warned).toEqual([]);
    processClock(parseClockStart('2026-12-31T14:58:00Z'), log);
    expect(String(warned[0][1])).toMatch(/RISKMON_CLOCK_START is set: this process's "now" is NOT the system clock/);
  });

  it('source times move onto the timeline; a child gets the anchored form', () => {
    expect(fromSystemTime(systemClock)(123)).toBe(123);
    const shifted = clockOf({ at: 5_000_000, realAt: 1_000_000 });
    expect(fromSystemTime(shifted)(1_000_500)).toBe(5_000_500);
    const frozen = fixedClock(Date.now() + 3_600_000);
    expect(Math.abs(fromSystemTime(frozen)(0) - 3_600_000)).toBeLessThan(1000);
    const env = { A: '1' };
    expect(envWithClock(env, systemClock)).toBe(env);
    const child = envWithClock(env, clockOf(parseClockStart('2026-12-31T14:58:00Z')));
    expect(clockOf(parseClockStart(child.RISKMON_CLOCK_START!)).offsetMs).toBeCloseTo(Date.parse('2026-12-31T14:58:00Z') - performance.timeOrigin, -1);
  });
});
