/**
 * Time zones chosen by where their midnight lies, for tests that run at whatever hour CI runs them:
 * - zoneWithMidnight: a zone whose local midnight falls inside a given interval, so a run of a few minutes can
 *   cross a day boundary (day buckets, the 7-day baselines and volume_drop's "today" all turn over) without waiting
 *   for Seoul's midnight. Zones at :30 and :45 offsets give a midnight every 15–30 minutes of UTC (the soak).
 * - zoneClearOfMidnight: a zone whose day has hours behind it and none turning over while the test runs (tests
 *   whose rules judge "today so far", which Seoul's first minutes after 00:00 — 15:00 UTC — cannot show).
 */
import { tzOffsetMs } from '../../lib/time.ts';

const DAY = 86_400_000;

/** The next local midnight in `tz` strictly after `t`. */
export function nextMidnight(t: number, tz: string): number {
  const off = tzOffsetMs(t, tz);
  const local = t + off;
  return local - (((local % DAY) + DAY) % DAY) + DAY - off;
}

/** The zone whose next midnight after `from` lies in [from, to] closest to `target`; null when none does. */
export function zoneWithMidnight(from: number, to: number, target: number): { tz: string; midnight: number } | null {
  let best: { tz: string; midnight: number } | null = null;
  for (const tz of Intl.supportedValuesOf('timeZone')) {
    // Etc/ zones and aliases are fine; a DST change inside the window would not matter either.
    const m = nextMidnight(from, tz);
    if (m > to) continue;
    if (!best || Math.abs(m - target) < Math.abs(best.midnight - target)) best = { tz, midnight: m };
  }
  return best;
}

/**
 * `preferred` when, at `t`, its last local midnight is at least `afterMs` back and its next at least `beforeMs`
 * ahead; else the whole-hour zone (UTC−12 … UTC+14) whose local time is nearest noon.
 */
export function zoneClearOfMidnight(t: number, preferred: string, afterMs: number, beforeMs: number): string {
  const next = (tz: string) => nextMidnight(t, tz);
  const clear = (tz: string) => next(tz) - t >= beforeMs && t - (next(tz) - DAY) >= afterMs;
  if (clear(preferred)) return preferred;
  const zones = Array.from({ length: 27 }, (_, i) => i - 12).map((h) => (h === 0 ? 'UTC' : `Etc/GMT${h > 0 ? '-' : '+'}${Math.abs(h)}`)); // Etc/GMT-9 is UTC+9
  const best = zones.filter(clear).sort((a, b) => Math.abs(next(a) - t - DAY / 2) - Math.abs(next(b) - t - DAY / 2))[0];
  if (!best) throw new Error(`no zone has ${afterMs / 3_600_000} h behind and ${beforeMs / 3_600_000} h ahead of its midnight`);
  return best;
}
