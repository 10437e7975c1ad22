/**
 * The clock: where every component reads "now" (epoch ms). Production uses the system clock; a test or a benchmark
 * that wants the system at a chosen instant (00:30 in Seoul, a DST change, a month's end) passes its own through the
 * component's dependencies — `buildAlerting(cfg, { now })`, `createDeps(cfg, webDist, { now })` — instead of
 * searching for a time zone whose hour happens to suit the test. Durations measured for metrics and pacing
 * (performance.now(), timers) are not "now" and stay on the system clock.
 */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/** A clock that reads `at` and moves only when told: for tests that step through minutes. */
export function fixedClock(at: number | string): Clock & { set(t: number | string): void; advance(ms: number): void } {
  let t = typeof at === 'string' ? Date.parse(at) : at;
  if (!Number.isFinite(t)) throw new Error(`fixedClock: ${JSON.stringify(at)} is not a time`);
  const clock = (() => t) as Clock & { set(t: number | string): void; advance(ms: number): void };
  clock.set = (x) => { t = typeof x === 'string' ? Date.parse(x) : x; };
  clock.advance = (ms) => { t += ms; };
  return clock;
}

/** The system clock shifted so that it reads `at` now and runs on from there at the real pace. */
export function clockFrom(at: number | string, base: Clock = systemClock): Clock {
  const target = typeof at === 'string' ? Date.parse(at) : at;
  if (!Number.isFinite(target)) throw new Error(`clockFrom: ${JSON.stringify(at)} is not a time`);
  const offset = target - base();
  return () => base() + offset;
}
