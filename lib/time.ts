/**
 * Event-time arithmetic. Minutes and hours are the same in every zone we support (whole-hour or half-hour offsets
 * would break hours; we take hours in UTC and days in the configured zone — Asia/Seoul has a whole-hour offset and
 * no DST). All values are epoch milliseconds.
 */
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

export function minuteStart(ms: number): number { return Math.floor(ms / MINUTE) * MINUTE; }
export function hourStart(ms: number): number { return Math.floor(ms / HOUR) * HOUR; }

const offsetCache = new Map<string, Intl.DateTimeFormat>();
function fmt(tz: string): Intl.DateTimeFormat {
  let f = offsetCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    offsetCache.set(tz, f);
  }
  return f;
}

/** Offset of `tz` from UTC at instant `ms`, in ms (Asia/Seoul: +9h). */
export function tzOffsetMs(ms: number, tz: string): number {
  const parts = Object.fromEntries(fmt(tz).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** Start (epoch ms) of the local day containing `ms`. */
export function dayStart(ms: number, tz: string): number {
  const off = tzOffsetMs(ms, tz);
  const local = ms + off;
  const start = Math.floor(local / DAY) * DAY - off;
  // Zones whose offset changes during the day (DST): the local date is the instant's own (`off`), the start
  // instant is that date's midnight at the offset in force then (`off2`). (Using off2 for the date too put the last
  // hour of a day that falls back, 23:00-24:00 in New York on the first Sunday of November, into the next day.)
  const off2 = tzOffsetMs(start, tz);
  return off2 === off ? start : Math.floor(local / DAY) * DAY - off2;
}

/** Local calendar date `YYYY-MM-DD` of `ms` in `tz`. */
export function dayKey(ms: number, tz: string): string {
  return new Date(dayStart(ms, tz) + tzOffsetMs(ms, tz)).toISOString().slice(0, 10);
}

export function iso(ms: number): string { return new Date(ms).toISOString(); }
