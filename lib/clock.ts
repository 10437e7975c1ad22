/**
 * The clock: where every component reads "now" (epoch ms), the time of day that decides which minute is closed,
 * which local day it is, when a bucket expires, when an alert was raised.
 *
 * - Production: the system clock. Each component's `start(env)` takes its clock from `processClock(cfg.clock)`,
 *   which is the system clock unless `RISKMON_CLOCK_START` is set.
 * - A whole-system test or a drill sets `RISKMON_CLOCK_START=<instant>[@<real instant>]` for every process: "now"
 *   then reads <instant> at <real instant> (default: the process's start) and runs on at the real pace. Every
 *   process given the same value shares one timeline, restarts included (the test harness writes the `@` form:
 *   `clockStartEnv`). The cdc moves the source's commit times onto that timeline (`fromSystemTime`), so event time,
 *   watermark, minute closing, TTLs and "today" all follow it. It is logged as a warning at start.
 * - An in-process test passes its own: `buildAlerting(cfg, { now })`, `createDeps(cfg, webDist, { now })`,
 *   `fixedClock`, `clockFrom`.
 *
 * Not "now", and so not from here: durations (latency, backoff, retry and pacing timers, rate windows, caches,
 * log throttles) use `performance.now()`, monotonic and immune to both a shifted clock and the system clock being
 * set; a latency measured against a timestamp another machine's clock wrote (the source's commit time, a Kafka
 * record's timestamp) reads `systemClock()`, the real wall clock, explicitly. test/boundaries.test.ts keeps
 * `Date.now()` and `new Date()` out of the components' code.
 */
import type { Logger } from './logger.ts';

export type Clock = () => number;

/** The real wall clock (`offsetMs` 0: see `fromSystemTime`). */
export const systemClock: Clock & { offsetMs: number } = Object.assign(() => Date.now(), { offsetMs: 0 });

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

// ---- the process clock: RISKMON_CLOCK_START -------------------------------------------------------------------

export const CLOCK_ENV = 'RISKMON_CLOCK_START';

/** A parsed RISKMON_CLOCK_START: the clock reads `at` at real time `realAt` (null: the process's start). */
export interface ClockStart { at: number; realAt: number | null }

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const EARLIEST = Date.parse('2000-01-01T00:00:00Z');
const LATEST = Date.parse('2100-01-01T00:00:00Z');
/** How old a `@<real instant>` may be: a setting left over from an earlier run is refused rather than obeyed. */
const MAX_ANCHOR_AGE_MS = 7 * 86_400_000;

function instant(text: string, what: string): number {
  if (!ISO_WITH_ZONE.test(text)) throw new Error(`${what} "${text.slice(0, 40)}" is not an ISO-8601 time with a zone, e.g. 2026-12-31T23:58:00+09:00 or 2026-12-31T14:58:00Z`);
  const t = Date.parse(text);
  const [y, m, d] = text.slice(0, 10).split('-').map(Number);
  if (!Number.isFinite(t) || new Date(Date.UTC(y, m - 1, d)).getUTCDate() !== d) throw new Error(`${what} "${text}" is not a real date`);
  return t;
}

/**
 * `<instant>` or `<instant>@<real instant>`, both ISO-8601 with a zone. Refuses instants before 2000 or from 2100 on,
 * and a real instant in the future or more than 7 days back (a stale setting). `realNow` is for tests.
 */
export function parseClockStart(raw: string, realNow = Date.now()): ClockStart {
  const parts = raw.trim().split('@');
  if (parts.length > 2) throw new Error('more than one "@": expects <instant> or <instant>@<real instant>');
  const at = instant(parts[0], 'the instant');
  if (at < EARLIEST || at >= LATEST) throw new Error(`the instant ${parts[0]} lies outside 2000–2099`);
  if (parts.length === 1) return { at, realAt: null };
  const realAt = instant(parts[1], 'the real instant');
  if (realAt > realNow + 60_000) throw new Error(`the real instant ${parts[1]} lies in the future (the system clock reads ${new Date(realNow).toISOString()})`);
  if (realNow - realAt > MAX_ANCHOR_AGE_MS) throw new Error(`the real instant ${parts[1]} is more than 7 days old: a setting left from an earlier run? Write a new one`);
  return { at, realAt };
}

/** The config option (lib/config.ts commonSpec): every component reads it through its config, parsed here. */
export const clockStartOption = {
  env: CLOCK_ENV,
  description: 'tests and drills only: run this process as if "now" were this instant (`<ISO instant>`, running on from the process\'s start, or `<ISO instant>@<real ISO instant>` shared by every process given it); unset = the system clock',
  default: null as ClockStart | null,
  expects: 'an ISO-8601 time with a zone, optionally @ the real time it applies at, e.g. 2026-12-31T23:58:00+09:00',
  parse: (s: string): ClockStart | null => parseClockStart(s),
};

/** The clock a RISKMON_CLOCK_START setting describes (the system clock for none). */
export function clockOf(start: ClockStart | null): Clock & { offsetMs: number } {
  if (!start) return systemClock;
  const offsetMs = start.at - (start.realAt ?? performance.timeOrigin);
  const clock = () => Date.now() + offsetMs;
  return Object.assign(clock, { offsetMs });
}

/**
 * The clock a component runs on, from its config's `clock` (RISKMON_CLOCK_START); when set, said loudly in the log,
 * since alerts, buckets and their expiry then follow it rather than the time of day.
 */
export function processClock(start: ClockStart | null, log: Pick<Logger, 'warn'>): Clock & { offsetMs: number } {
  const clock = clockOf(start);
  if (start) {
    log.warn({ clock: new Date(clock()).toISOString(), systemClock: new Date().toISOString(), offsetMs: clock.offsetMs },
      `${CLOCK_ENV} is set: this process's "now" is NOT the system clock (tests and drills only; unset it in production)`);
  }
  return clock;
}

/**
 * Maps a time written by another machine's real clock (the source database's commit time) onto `clock`'s timeline:
 * unchanged on the system clock, moved by the offset on a shifted one.
 */
export function fromSystemTime(clock: Clock): (t: number) => number {
  const offset = offsetOf(clock);
  return offset === 0 ? (t) => t : (t) => t + offset;
}

/**
 * How far `clock` runs ahead of the system clock (ms; 0 for the system clock). An absolute time another system keeps
 * by its own clock — a Redis EXPIREAT — is `t − offsetOf(clock)`, so a key lives as long on either timeline.
 */
export function offsetOf(clock: Clock): number {
  if (clock === systemClock) return 0;
  const offset = (clock as Partial<{ offsetMs: number }>).offsetMs;
  return typeof offset === 'number' ? offset : clock() - Date.now();
}

/**
 * `env` for a thread or a child process that must share `clock`'s timeline: the anchored form of RISKMON_CLOCK_START
 * when the clock is shifted (a bare `<instant>` would start again from the child's own start), `env` itself when not.
 */
export function envWithClock(env: NodeJS.ProcessEnv, clock: Clock & { offsetMs: number }): NodeJS.ProcessEnv {
  return clock.offsetMs === 0 && !env[CLOCK_ENV] ? env : { ...env, [CLOCK_ENV]: clockStartEnv(clock()) };
}

/** The environment value that puts every process on a clock reading `at` now (for tests and drills). */
export function clockStartEnv(at: number | string, realNow = Date.now()): string {
  const t = typeof at === 'string' ? Date.parse(at) : at;
  if (!Number.isFinite(t)) throw new Error(`clockStartEnv: ${JSON.stringify(at)} is not a time`);
  return `${new Date(t).toISOString()}@${new Date(realNow).toISOString()}`;
}
