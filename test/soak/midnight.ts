/**
 * A time zone whose local midnight falls inside a given interval, so a run of a few minutes can cross a day
 * boundary (day buckets, the 7-day baselines and volume_drop's "today" all turn over) without waiting for
 * Seoul's midnight. Zones at :30 and :45 offsets give a midnight every 15–30 minutes of UTC.
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
