/**
 * Which tier keys, and which slots of each, hold a merchant's buckets in [from, to) at a step. Pure (the zone's
 * day arithmetic comes in through `RangeContext`): the reader turns the result into script calls, and the unit
 * tests check the edges (quarters, local midnights, hour and day blocks) without Redis.
 */
import { HOUR, MINUTE } from '../../lib/time.ts';
import { DAY_BLOCK, HOUR_BLOCK, keys, QUARTER_MINUTES, type DayClock } from './layout.ts';
import type { Step } from './reader.ts';

/**
 * A tier key of merchant `m` with its slot range [lo, hi] (field div FIELD_KINDS) inside [from, to). A slot's
 * bucket starts at `slotTime(step, base, slot)`: `base + slot × MINUTE` (1m: base = the day's start),
 * `(base + slot) × HOUR` (1h), or the start of local day `base + slot` (1d). Plain data, no closure per key: a
 * baseline read makes 100,000 of them.
 */
export interface KeyRead { m: string; key: string; lo: number; hi: number; base: number }

export interface RangeContext {
  prefix: string;
  clock: DayClock;
  /** Start (epoch ms) of local date number n; the reader passes a cached clock.startOfLocalDay. */
  startOfLocalDay: (n: number) => number;
}

/** The keys of one (partition, merchant) that cover [from, to) at `step`, with the slots inside the range. */
export function keyReads(ctx: RangeContext, p: number, m: string, from: number, to: number, step: Step): KeyRead[] {
  const { prefix, clock } = ctx;
  const reads: KeyRead[] = [];
  if (step === '1m') {
    for (let ds = clock.dayStart(from); ds < to; ds = clock.dayStart(ds + 30 * HOUR)) {
      const day = clock.localDayOfStart(ds);
      const next = clock.dayStart(ds + 30 * HOUR);
      const lo = Math.ceil((from - ds) / MINUTE);
      const hi = Math.ceil((Math.min(to, next) - ds) / MINUTE) - 1;
      for (let q = 0; ds + q * QUARTER_MINUTES * MINUTE < next; q++) {
        const qlo = Math.max(lo, q * QUARTER_MINUTES);
        const qhi = Math.min(hi, (q + 1) * QUARTER_MINUTES - 1);
        if (qlo > qhi) continue;
        reads.push({ m, key: keys.minute(prefix, p, m, day, q), lo: qlo, hi: qhi, base: ds });
      }
    }
  } else if (step === '1h') {
    const h0 = Math.ceil(from / HOUR);
    const h1 = Math.ceil(to / HOUR) - 1;
    if (h0 > h1) return reads;
    for (let b = Math.floor(h0 / HOUR_BLOCK); b <= Math.floor(h1 / HOUR_BLOCK); b++) {
      const base = b * HOUR_BLOCK;
      reads.push({ m, key: keys.hour(prefix, p, m, b), lo: Math.max(0, h0 - base), hi: Math.min(HOUR_BLOCK - 1, h1 - base), base });
    }
  } else {
    let d0 = clock.localDay(from);
    if (ctx.startOfLocalDay(d0) < from) d0++;
    const d1 = clock.localDay(to - 1);
    if (d0 > d1) return reads;
    for (let b = Math.floor(d0 / DAY_BLOCK); b <= Math.floor(d1 / DAY_BLOCK); b++) {
      const base = b * DAY_BLOCK;
      reads.push({ m, key: keys.day(prefix, p, m, b), lo: Math.max(0, d0 - base), hi: Math.min(DAY_BLOCK - 1, d1 - base), base });
    }
  }
  return reads;
}

/** Bucket start of `slot` in a key read at `step` with base `base` (see KeyRead). */
export function slotTimeOf(step: Step, startOfLocalDay: (n: number) => number): (base: number, slot: number) => number {
  return step === '1m' ? (base, slot) => base + slot * MINUTE
    : step === '1h' ? (base, slot) => (base + slot) * HOUR
      : (base, slot) => startOfLocalDay(base + slot);
}

/** One part of a long range and the tier that reads it. */
export interface Segment { step: Step; from: number; to: number }

/**
 * [from, to) cut into as few keys as stay exact: the whole local days inside it from the day tier (which holds every
 * day of its retention), the partial days at its two ends (`finestSegments`) from the finest tiers that hold them.
 * A merchant's sums since a midnight a year back are then about 5 day keys and today's minute keys, not the hour
 * and minute tiers' 17 keys of the last 36 days. Exact when `finestSegments` is for its ends. Pure.
 */
export function tierSegments(from: number, to: number, minuteHorizon: number, hourHorizon: number, clock: DayClock): Segment[] {
  if (from >= to) return [];
  const start = clock.dayStart(from);
  const d0 = start === from ? from : clock.dayStart(start + 30 * HOUR); // the first local midnight at or after from
  const d1 = clock.dayStart(to);
  if (d0 >= d1) return finestSegments(from, to, minuteHorizon, hourHorizon, clock);
  return [...finestSegments(from, d0, minuteHorizon, hourHorizon, clock), { step: '1d', from: d0, to: d1 }, ...finestSegments(d1, to, minuteHorizon, hourHorizon, clock)];
}

/**
 * [from, to) cut into the finest tiers that still hold each part: local days before `hourHorizon` (the first local
 * midnight at or after it ends the day part), whole UTC hours before `minuteHorizon`, minutes after. Exact when
 * `from` is within the minute tier, or on a whole hour within the hour tier, or a local midnight; otherwise the
 * partial hour (or day) at the start is left out — as `totals` does. Pure; both horizons whole hours.
 */
export function finestSegments(from: number, to: number, minuteHorizon: number, hourHorizon: number, clock: DayClock): Segment[] {
  const out: Segment[] = [];
  let a = from;
  if (a >= to) return out;
  if (a < hourHorizon) {
    let dEnd = clock.dayStart(hourHorizon);
    if (dEnd < hourHorizon) dEnd = clock.dayStart(dEnd + 30 * HOUR);
    const b = Math.min(dEnd, to);
    if (b > a) out.push({ step: '1d', from: a, to: b });
    a = Math.max(a, b);
  }
  if (a < minuteHorizon && a < to) {
    const b = Math.min(minuteHorizon, to);
    out.push({ step: '1h', from: a, to: b });
    a = b;
  }
  if (a < to) out.push({ step: '1m', from: a, to });
  return out;
}
