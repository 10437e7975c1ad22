/**
 * The Redis layout of the buckets (aggregator/README.md "Redis layout"). Pure: key names, fields, packing and TTL arithmetic,
 * shared by the writer (the Lua apply) and the reader. Every key carries the hash tag `{p<N>}` of the Kafka
 * partition whose messages wrote it, so one partition's apply touches one Redis Cluster slot.
 *
 *   <P>:{pN}:m:<merchant>:<localDay>:<q>   hash  minute-of-local-day ×4 + kind  (quarter q = 6 h of the local day)
 *   <P>:{pN}:h:<merchant>:<hour div 120>   hash  (hour mod 120) ×4 + kind      (UTC hours, 5-day blocks)
 *   <P>:{pN}:d:<merchant>:<localDay div 100> hash (localDay mod 100) ×4 + kind
 *   <P>:{pN}:xm:<minute>                   hash  kind + ':' + merchant           (all merchants of one minute)
 *                                                and '~v': the hash's version, the partition offset after the last
 *                                                live apply that wrote it (the window reader's cheap fingerprint);
 *                                                '~r': present once a write without an offset (a replay's rebuild)
 *                                                touched it after its minute ended
 *   <P>:{pN}:xm:<minute>:l                 sorted set: merchant → version of the last apply that wrote its fields of
 *                                                the minute after the partition's watermark passed the minute's end
 *                                                (late writes: the window reader re-reads only these merchants)
 *   <P>:{pN}:chg  sorted set: merchant → next offset after the last live apply that wrote a fact ≥ 30 min late or a payout of it
 *   <P>:{pN}:mer  set of merchants with state in the partition; <P>:{pN}:foreign  merchants outside their candidates
 *   <P>:{pN}:pos  position (lsn/seq) of the last row change applied
 *   <P>:{pN}:off  next offset to consume; <P>:{pN}:wm  watermark (max commitTs, ms); <P>:{pN}:lock  replay lock
 *   <P>:{pN}:po:<merchant>:<paid_at UTC day div 100>  hash  payout row → how many times it stands (payouts.ts)
 *   <P>:backfill  the last history backfill's state (JSON): running or done, its range and progress
 *   <P>:gap       a known gap in the stream (a lost slot created anew), until a backfill covers it
 *   <P>:aggregators  sorted set of the running aggregators (member id → expiry, ms): who consumes which partition
 *   <P>:bf:{pN}:…  a range backfill's new generation of its range, in the same layout, until swapped in (swap.ts)
 *
 * kind: the four counters of counters.ts (fields of a counter never written are absent).
 * Most hashes stay small enough for Redis's compact listpack encoding; see aggregator/README.md "Redis layout".
 */
import { DAY, HOUR, MINUTE, tzOffsetMs, dayStart as slowDayStart } from '../../lib/time.ts';

export const QUARTER_MINUTES = 360;
export const HOUR_BLOCK = 120;
export const DAY_BLOCK = 100;

export function partitionTag(prefix: string, p: number): string {
  return `${prefix}:{p${p}}`;
}

/** Field of a window-index hash holding its version (apply.lua writes it, the window reader compares it). */
export const WINDOW_VERSION_FIELD = '~v';
/**
 * Field of a window-index hash marking that a write without an offset (rebuild.lua, an apply outside the live path)
 * changed it after its minute ended: such a write is not in the late log, so the reader reads the hash whole.
 */
export const WINDOW_REBUILT_FIELD = '~r';
/** Suffix of a window-index hash's late log (the sorted set of merchants written after the minute ended). */
export const WINDOW_LATE_SUFFIX = ':l';

/**
 * A Lua script's text with the layout's names filled in: `$WINDOW_VERSION_FIELD` (required), `$WINDOW_REBUILT_FIELD`
 * and `$WINDOW_LATE_SUFFIX` in apply.lua, rebuild.lua and the read scripts.
 */
export function withLayoutNames(lua: string): string {
  if (!lua.includes('$WINDOW_VERSION_FIELD')) throw new Error('the script names no $WINDOW_VERSION_FIELD');
  return lua.replaceAll('$WINDOW_VERSION_FIELD', WINDOW_VERSION_FIELD).replaceAll('$WINDOW_REBUILT_FIELD', WINDOW_REBUILT_FIELD)
    .replaceAll('$WINDOW_LATE_SUFFIX', WINDOW_LATE_SUFFIX);
}

export const keys = {
  offset: (prefix: string, p: number) => `${partitionTag(prefix, p)}:off`,
  watermark: (prefix: string, p: number) => `${partitionTag(prefix, p)}:wm`,
  lock: (prefix: string, p: number) => `${partitionTag(prefix, p)}:lock`,
  merchants: (prefix: string, p: number) => `${partitionTag(prefix, p)}:mer`,
  foreign: (prefix: string, p: number) => `${partitionTag(prefix, p)}:foreign`,
  windowGc: (prefix: string, p: number) => `${partitionTag(prefix, p)}:xmgc`,
  /** (lsn/seq) of the last row change applied: a re-published copy of a change is skipped */
  position: (prefix: string, p: number) => `${partitionTag(prefix, p)}:pos`,
  /**
   * sorted set: merchant → the partition's next offset after the last live apply that wrote a fact of it at least
   * REREAD_LATENESS_MS late or changed its payouts: what a reader following the last hour through the window index
   * cannot see there (alerting/exposure.ts re-reads these merchants)
   */
  changed: (prefix: string, p: number) => `${partitionTag(prefix, p)}:chg`,
  /** bumped by every replay: aggregators drop what they remember about keys' TTLs */
  generation: (prefix: string, p: number) => `${partitionTag(prefix, p)}:gen`,
  /** prefix of the all-merchants minute index keys; the Lua GC appends the minute number */
  windowPrefix: (prefix: string, p: number) => `${partitionTag(prefix, p)}:xm:`,
  window: (prefix: string, p: number, minuteNo: number) => `${partitionTag(prefix, p)}:xm:${minuteNo}`,
  /** the late log of a window-index hash (merchants written after the minute ended → version of that write) */
  windowLate: (prefix: string, p: number, minuteNo: number) => `${partitionTag(prefix, p)}:xm:${minuteNo}${WINDOW_LATE_SUFFIX}`,
  minute: (prefix: string, p: number, merchant: string, localDay: number, q: number) => `${partitionTag(prefix, p)}:m:${merchant}:${localDay}:${q}`,
  hour: (prefix: string, p: number, merchant: string, block: number) => `${partitionTag(prefix, p)}:h:${merchant}:${block}`,
  day: (prefix: string, p: number, merchant: string, block: number) => `${partitionTag(prefix, p)}:d:${merchant}:${block}`,
  /** a merchant's payout rows whose paid_at falls in UTC-day block `block` (PAYOUT_BLOCK_DAYS days; payouts.ts) */
  payouts: (prefix: string, p: number, merchant: string, block: number) => `${partitionTag(prefix, p)}:po:${merchant}:${block}`,
  /** the state of the last history backfill (JSON, store/backfill.ts); one per prefix, not per partition */
  backfill: (prefix: string) => `${prefix}:backfill`,
  /** a known gap in the stream (a lost slot created anew): JSON, store/backfill.ts; deleted by a backfill covering it */
  gap: (prefix: string) => `${prefix}:gap`,
  /** the running aggregators (members.ts): member id → when its registration expires (Redis time, ms) */
  members: (prefix: string) => `${prefix}:aggregators`,
  /**
   * the prefix a range backfill rebuilds its range under (swap.ts): the same layout, `<P>:bf:{pN}:…`, each key in its
   * partition's hash slot, swapped into the live keys when complete
   */
  aside: (prefix: string) => `${prefix}:bf`,
};

/**
 * Local days of one time zone, cached per UTC hour (zone offsets change on hour or half-hour boundaries; an hour
 * whose two ends fall in different local days is computed per minute). `localDay` numbers the local calendar date
 * as days since 1970-01-01.
 */
export class DayClock {
  readonly #cache = new Map<number, number>(); // hour start → day start, or -1 when the hour spans two days
  readonly #dayNo = new Map<number, number>(); // day start → local date number
  constructor(readonly tz: string) {}

  dayStart(ms: number): number {
    const h = Math.floor(ms / HOUR) * HOUR;
    let d = this.#cache.get(h);
    if (d === undefined) {
      const a = slowDayStart(h, this.tz);
      d = a === slowDayStart(h + HOUR - 1, this.tz) ? a : -1;
      if (this.#cache.size > 100_000) this.#cache.clear();
      this.#cache.set(h, d);
    }
    return d === -1 ? slowDayStart(ms, this.tz) : d;
  }

  /** Local date number of the day starting at `start` (a value of dayStart). */
  localDayOfStart(start: number): number {
    let n = this.#dayNo.get(start);
    if (n === undefined) {
      n = Math.round((start + tzOffsetMs(start + HOUR, this.tz)) / DAY);
      if (this.#dayNo.size > 10_000) this.#dayNo.clear();
      this.#dayNo.set(start, n);
    }
    return n;
  }

  localDay(ms: number): number {
    return this.localDayOfStart(this.dayStart(ms));
  }

  /** Start (epoch ms) of local date number `n`. */
  startOfLocalDay(n: number): number {
    const noonUtc = n * DAY + 12 * HOUR;
    return this.dayStart(noonUtc - tzOffsetMs(noonUtc, this.tz));
  }
}

/** Where one fact minute lands in each tier. */
export interface Slots {
  localDay: number;
  quarter: number;
  minuteOfDay: number;
  hourNo: number;
  dayStartMs: number;
}

export function slotsOf(minuteMs: number, clock: DayClock): Slots {
  const ds = clock.dayStart(minuteMs);
  const minuteOfDay = Math.round((minuteMs - ds) / MINUTE);
  return {
    localDay: clock.localDayOfStart(ds),
    quarter: Math.floor(minuteOfDay / QUARTER_MINUTES),
    minuteOfDay,
    hourNo: Math.floor(minuteMs / HOUR),
    dayStartMs: ds,
  };
}

// ---- retention -----------------------------------------------------------------------------------------------

export interface Retention {
  minuteTtlMs: number;
  hourTtlMs: number;
  dayTtlMs: number;
}

/** Retention from the configured TTLs in days (RISKMON_MINUTE_TTL_DAYS, …). */
export function retentionOf(c: { minuteTtlDays: number; hourTtlDays: number; dayTtlDays: number }): Retention {
  return { minuteTtlMs: c.minuteTtlDays * 86_400_000, hourTtlMs: c.hourTtlDays * 86_400_000, dayTtlMs: c.dayTtlDays * 86_400_000 };
}

/** Expiry (epoch ms) of each tier's key: the end of the period the key covers plus the tier's TTL. */
export function minuteKeyExpiry(s: Slots, r: Retention): number {
  return s.dayStartMs + (s.quarter + 1) * QUARTER_MINUTES * MINUTE + r.minuteTtlMs;
}
export function hourKeyExpiry(s: Slots, r: Retention): number {
  return (Math.floor(s.hourNo / HOUR_BLOCK) + 1) * HOUR_BLOCK * HOUR + r.hourTtlMs;
}
/**
 * A fact whose minute ended at least this long before its partition's watermark (as of the fact's own change) names
 * its merchant in the changed-merchant index (`keys.changed`): a reader following the last hour through the window
 * index (alerting/exposure.ts) may no longer hold that minute by its next read. Less late facts it reads itself.
 */
export const REREAD_LATENESS_MS = 30 * MINUTE;

/** UTC days per payout key (a daily payout keeps a key under Redis's compact-encoding limit of 128 fields). */
export const PAYOUT_BLOCK_DAYS = 100;
export function payoutBlockOf(paidAtMs: number): number {
  return Math.floor(paidAtMs / (PAYOUT_BLOCK_DAYS * DAY));
}
/** A payout key lives as long as day buckets do after the last paid_at it can hold. */
export function payoutKeyExpiry(block: number, r: Retention): number {
  return (block + 1) * PAYOUT_BLOCK_DAYS * DAY + r.dayTtlMs;
}
export function dayKeyExpiry(s: Slots, r: Retention): number {
  // block end is at most a day or so off the local midnight; a day of slack is irrelevant at a 400-day TTL
  return (Math.floor(s.localDay / DAY_BLOCK) + 1) * DAY_BLOCK * DAY + DAY + r.dayTtlMs;
}
