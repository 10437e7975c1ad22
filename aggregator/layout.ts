/**
 * The Redis layout of the buckets (README "Redis layout"). Pure: key names, fields, packing and TTL arithmetic,
 * shared by the writer (the Lua apply) and the reader. Every key carries the hash tag `{p<N>}` of the Kafka
 * partition whose messages wrote it, so one partition's apply touches one Redis Cluster slot.
 *
 *   <P>:{pN}:m:<merchant>:<localDay>:<q>   hash  minute-of-local-day → packed   (quarter q = 6 h of the local day)
 *   <P>:{pN}:h:<merchant>:<hour div 120>   hash  hour mod 120 → packed          (UTC hours, 5-day blocks)
 *   <P>:{pN}:d:<merchant>:<localDay div 100> hash localDay mod 100 → packed
 *   <P>:{pN}:xm:<minute>                   hash  merchant → packed               (all merchants of one minute)
 *   <P>:{pN}:mer  set of merchants with state in the partition; <P>:{pN}:foreign  merchants outside their candidates
 *   <P>:{pN}:pos  position (lsn/seq) of the last row change applied
 *   <P>:{pN}:off  next offset to consume; <P>:{pN}:wm  watermark (max commitTs, ms); <P>:{pN}:lock  replay lock
 *
 * Hash sizes stay ≤ 128 fields for all but the very hottest merchants (6 h of minutes = 360 possible fields, but a
 * merchant rarely has 128 active minutes in one partition), so Redis keeps them in its compact listpack encoding.
 * Packed value: "approvals,approvedAmount" or, when there are cancels, "approvals,approvedAmount,cancels,canceledAmount".
 */
import { DAY, HOUR, MINUTE, tzOffsetMs, dayStart as slowDayStart } from '../lib/time.ts';
import type { Totals } from '../lib/buckets.ts';

export const QUARTER_MINUTES = 360;
export const HOUR_BLOCK = 120;
export const DAY_BLOCK = 100;

export function partitionTag(prefix: string, p: number): string {
  return `${prefix}:{p${p}}`;
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
  /** bumped by every replay: aggregators drop what they remember about keys' TTLs */
  generation: (prefix: string, p: number) => `${partitionTag(prefix, p)}:gen`,
  /** prefix of the all-merchants minute index keys; the Lua GC appends the minute number */
  windowPrefix: (prefix: string, p: number) => `${partitionTag(prefix, p)}:xm:`,
  window: (prefix: string, p: number, minuteNo: number) => `${partitionTag(prefix, p)}:xm:${minuteNo}`,
  minute: (prefix: string, p: number, merchant: string, localDay: number, q: number) => `${partitionTag(prefix, p)}:m:${merchant}:${localDay}:${q}`,
  hour: (prefix: string, p: number, merchant: string, block: number) => `${partitionTag(prefix, p)}:h:${merchant}:${block}`,
  day: (prefix: string, p: number, merchant: string, block: number) => `${partitionTag(prefix, p)}:d:${merchant}:${block}`,
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

// ---- packed values -------------------------------------------------------------------------------------------

export function packTotals(t: Totals): string {
  return t.cancels === 0 && t.canceledAmount === 0n
    ? `${t.approvals},${t.approvedAmount}`
    : `${t.approvals},${t.approvedAmount},${t.cancels},${t.canceledAmount}`;
}

export function unpackTotals(v: string): Totals {
  const parts = v.split(',');
  return {
    approvals: Number(parts[0]),
    approvedAmount: BigInt(parts[1]),
    cancels: parts.length > 2 ? Number(parts[2]) : 0,
    canceledAmount: parts.length > 2 ? BigInt(parts[3]) : 0n,
  };
}

/** Adds a packed value into `into` (no allocation of an intermediate Totals). */
export function addPacked(into: Totals, v: string): void {
  const c1 = v.indexOf(',');
  const c2 = v.indexOf(',', c1 + 1);
  into.approvals += Number(v.slice(0, c1));
  if (c2 < 0) {
    into.approvedAmount += BigInt(v.slice(c1 + 1));
    return;
  }
  const c3 = v.indexOf(',', c2 + 1);
  into.approvedAmount += BigInt(v.slice(c1 + 1, c2));
  into.cancels += Number(v.slice(c2 + 1, c3));
  into.canceledAmount += BigInt(v.slice(c3 + 1));
}

// ---- retention -----------------------------------------------------------------------------------------------

export interface Retention {
  minuteTtlMs: number;
  hourTtlMs: number;
  dayTtlMs: number;
}

/** Expiry (epoch ms) of each tier's key: the end of the period the key covers plus the tier's TTL. */
export function minuteKeyExpiry(s: Slots, r: Retention): number {
  return s.dayStartMs + (s.quarter + 1) * QUARTER_MINUTES * MINUTE + r.minuteTtlMs;
}
export function hourKeyExpiry(s: Slots, r: Retention): number {
  return (Math.floor(s.hourNo / HOUR_BLOCK) + 1) * HOUR_BLOCK * HOUR + r.hourTtlMs;
}
export function dayKeyExpiry(s: Slots, r: Retention): number {
  // block end is at most a day or so off the local midnight; a day of slack is irrelevant at a 400-day TTL
  return (Math.floor(s.localDay / DAY_BLOCK) + 1) * DAY_BLOCK * DAY + DAY + r.dayTtlMs;
}
