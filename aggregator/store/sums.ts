/**
 * The replay's sums (rebuild.ts): one partition's range summed per (merchant, minute) in flat typed arrays — a cell
 * holds the four counters of one merchant's minute — instead of the live planner's Maps of (key, field) objects,
 * which cost the replay most of its CPU in allocation and garbage collection. Events are read from their bytes
 * (lib/mapping.ts FactScanner), with decodeEvent + factsOf for any event the scanner leaves to them. The tiers are
 * derived when written: minute buckets and the window index from the cells, hour and day buckets by summing a
 * merchant's cells in minute order. For the same messages the fields and values equal plan.ts's (sums.test.ts):
 * the same watermark, duplicate check, replay filter (`from`), expiries, merchant sets and window horizon.
 *
 * Amounts are summed as doubles, exact while every sum stays below 2^53: facts of at most ±2^31 are summed so, and
 * at most 2^21 facts are summed between writes (MAX_FACTS), so no sum reaches 2^52; larger amounts are summed as
 * bigint beside (`#big`).
 */
import { BadEventError, decodeEvent } from '../../lib/events.ts';
import { recordValue, type RecordSet } from '../../lib/kafka/index.ts';
import { parseLsn } from '../../lib/lsn.ts';
import { BadRowError, FactScanner, factsOf, type Mapping } from '../../lib/mapping.ts';
import { HOUR, MINUTE } from '../../lib/time.ts';
import { RespWriter } from '../../lib/redis.ts';
import { writeBucketCounters, writeWindowCounters } from './counters.ts';
import {
  DAY_BLOCK, dayKeyExpiry, DayClock, HOUR_BLOCK, hourKeyExpiry, keys, minuteKeyExpiry, slotsOf, type Retention,
} from './layout.ts';
import type { Position } from './plan.ts';

/** Most facts summed between two writes: keeps every double sum exact (see above). */
export const MAX_FACTS = 1 << 21;
const SMALL = 2 ** 31;
const SMALL_BIG = BigInt(SMALL);

export interface SumsContext {
  prefix: string;
  partition: number;
  mapping: Mapping;
  clock: DayClock;
  retention: Retention;
  windowKeepMinutes: number;
  /** wall clock (ms): buckets whose key would already have expired are not written */
  now: number;
  /** the reset range: only facts in buckets at or after these instants count */
  from: { minute: number; hour: number; day: number };
  /** and before these (a backfill of a bounded range); unset: no end */
  to?: { minute: number; hour: number; day: number };
  candidates: (merchant: string) => number[];
}

/** One hash to write: its key, expiry (epoch ms) and its (field, value) pairs, encoded — take them before the next. */
export interface SumsEntry { key: string; expiry: number; fields: RespWriter }

export class RebuildSums {
  readonly context: SumsContext;
  readonly #c: SumsContext;
  readonly #scan: FactScanner;
  // merchants: index ↔ name; whether a fact inside the window index's horizon (at its chunk) touched it
  readonly #index = new Map<string, number>();
  readonly #names: string[] = [];
  #windowTouched = new Uint8Array(1024);
  // cells: merchant index, minute number (minutes since the epoch), 4 counters; open addressing on (merchant, minute)
  #size = 0;
  #mer = new Int32Array(1024);
  #min = new Float64Array(1024);
  #val = new Float64Array(4096);
  #slots = new Int32Array(2048); // cell + 1, 0 = free
  readonly #big = new Map<number, [bigint, bigint]>(); // cell → amounts past SMALL (approved, canceled)
  // one chunk's facts, before they are summed (the window horizon needs the chunk's watermark first)
  #fm = new Int32Array(1024);
  #fmin = new Float64Array(1024);
  #fkind = new Uint8Array(1024);
  #fsign = new Int8Array(1024);
  #famt: (number | bigint)[] = [];
  #fn = 0;
  /** the partition's watermark (max commitTs, ms) and last row change applied (lsn halves, seq) */
  watermark: number | null;
  #hasPos: boolean;
  #hi = 0;
  #lo = 0;
  #seq = 0;
  changes = 0;
  facts = 0;
  /** facts summed since the last `clear` */
  pending = 0;
  duplicates = 0;
  bad = 0;

  constructor(c: SumsContext, watermark: number | null, position: Position | null) {
    this.context = c;
    this.#c = c;
    this.#scan = new FactScanner(c.mapping);
    this.watermark = watermark;
    this.#hasPos = position !== null;
    if (position) { this.#hi = Number(position.lsn >> 32n); this.#lo = Number(position.lsn & 0xffffffffn); this.#seq = position.seq; }
  }

  /** The last row change added (or the stored position): where the partition's duplicate check continues. */
  get position(): Position | null {
    return this.#hasPos ? { lsn: (BigInt(this.#hi) << 32n) | BigInt(this.#lo), seq: this.#seq } : null;
  }

  /** Adds records [from, to) of a record set (in partition order) as one chunk, as buildPlan does with a chunk. */
  addChunk(r: RecordSet, from = 0, to = r.count): void {
    this.#fn = 0;
    const fs = this.#scan, ev = fs.event;
    for (let i = from; i < to; i++) {
      if (r.valueStart[i] >= 0 && fs.read(r.bufs[r.buf[i]], r.valueStart[i], r.valueEnd[i])) {
        this.#commit(ev.commitMs);
        if (ev.op === 'heartbeat' || this.#isDuplicate(ev.lsnHi, ev.lsnLo, ev.seq)) continue;
        for (let j = 0; j < fs.n; j++) this.#fact(this.#merchant(fs.merchant(j)), fs.minuteMs[j], fs.kind[j], fs.sign[j], fs.amount[j]);
        this.changes++;
        continue;
      }
      try {
        const e = decodeEvent(recordValue(r, i));
        this.#commit(Date.parse(e.commitTs));
        if (e.op === 'heartbeat') continue;
        const lsn = parseLsn(e.lsn);
        if (this.#isDuplicate(Number(lsn >> 32n), Number(lsn & 0xffffffffn), e.seq)) continue;
        for (const f of factsOf(e, this.#c.mapping)) this.#fact(this.#merchant(f.merchantId), f.minuteMs, f.kind === 'approval' ? 0 : 1, f.sign, f.amount);
        this.changes++;
      } catch (err) {
        if (!(err instanceof BadEventError) && !(err instanceof BadRowError)) throw err;
        this.bad++; // the aggregator dead-lettered it
      }
    }
    this.#sumChunk();
  }

  /**
   * Adds a merchant's already summed totals of one minute (a history backfill's `GROUP BY merchant, minute`):
   * the same cell as facts of that minute would make. `windowFrom`: minutes from it on touch the window index.
   */
  addTotals(merchant: string, minuteMs: number, approvals: number, approvedAmount: bigint, cancels: number, canceledAmount: bigint, windowFrom: number): void {
    const from = this.#c.from;
    if (minuteMs < from.hour || minuteMs >= (this.#c.to?.hour ?? Infinity)) return;
    const mi = this.#merchant(merchant);
    if (minuteMs >= windowFrom && minuteMs >= from.minute) this.#windowTouched[mi] = 1;
    const cell = this.#cell(mi, minuteMs / MINUTE);
    const add = (k: number, n: number, amount: bigint) => {
      if (!n && !amount) return;
      this.facts += Math.abs(n);
      this.pending++;
      this.#val[4 * cell + 2 * k] += n;
      if (amount <= SMALL_BIG && amount >= -SMALL_BIG && Math.abs(this.#val[4 * cell + 2 * k + 1]) < SMALL * 1024) {
        this.#val[4 * cell + 2 * k + 1] += Number(amount);
      } else {
        let big = this.#big.get(cell);
        if (!big) this.#big.set(cell, (big = [0n, 0n]));
        big[k] += amount;
      }
    };
    add(0, approvals, approvedAmount);
    add(1, cancels, canceledAmount);
  }

  #commit(ts: number): void {
    if (this.watermark === null || ts > this.watermark) this.watermark = ts;
  }

  /** Whether the row change is at or before the last one applied (a re-published copy); if not, it becomes the last. */
  #isDuplicate(hi: number, lo: number, seq: number): boolean {
    if (this.#hasPos && (hi < this.#hi || (hi === this.#hi && (lo < this.#lo || (lo === this.#lo && seq <= this.#seq))))) {
      this.duplicates++;
      return true;
    }
    this.#hasPos = true;
    this.#hi = hi; this.#lo = lo; this.#seq = seq;
    return false;
  }

  #merchant(name: string): number {
    let i = this.#index.get(name);
    if (i === undefined) {
      i = this.#names.length;
      this.#index.set(name, i);
      this.#names.push(name);
      if (i >= this.#windowTouched.length) this.#windowTouched = grow(this.#windowTouched, i + 1);
    }
    return i;
  }

  #fact(mi: number, minuteMs: number, kind: number, sign: number, amount: number | bigint): void {
    const j = this.#fn++;
    if (j >= this.#fm.length) {
      this.#fm = grow(this.#fm, j + 1);
      this.#fmin = grow(this.#fmin, j + 1);
      this.#fkind = grow(this.#fkind, j + 1);
      this.#fsign = grow(this.#fsign, j + 1);
    }
    this.#fm[j] = mi;
    this.#fmin[j] = minuteMs;
    this.#fkind[j] = kind;
    this.#fsign[j] = sign;
    this.#famt[j] = amount;
  }

  /** addFacts of plan.ts over the chunk's facts: the replay filter, then one cell per (merchant, minute). */
  #sumChunk(): void {
    const wm = this.watermark;
    const windowFrom = wm === null ? -Infinity : (Math.floor(wm / MINUTE) - this.#c.windowKeepMinutes) * MINUTE;
    const from = this.#c.from;
    const toHour = this.#c.to?.hour ?? Infinity;
    for (let j = 0; j < this.#fn; j++) {
      this.facts++;
      this.pending++;
      const minuteMs = this.#fmin[j];
      // before from.hour no tier of the range is touched (from.hour ≤ from.minute = from.day); nor from to.hour on
      if (minuteMs < from.hour || minuteMs >= toHour) continue;
      const mi = this.#fm[j];
      if (minuteMs >= windowFrom && minuteMs >= from.minute) this.#windowTouched[mi] = 1;
      const cell = this.#cell(mi, minuteMs / MINUTE);
      const sign = this.#fsign[j];
      const k = 4 * cell + 2 * this.#fkind[j];
      this.#val[k] += sign;
      const a = this.#famt[j];
      if (typeof a === 'number' && a <= SMALL && a >= -SMALL) this.#val[k + 1] += sign * a;
      else {
        let big = this.#big.get(cell);
        if (!big) this.#big.set(cell, (big = [0n, 0n]));
        big[this.#fkind[j]] += BigInt(sign) * BigInt(a);
      }
    }
    this.#famt.length = 0;
  }

  #cell(mi: number, minute: number): number {
    let mask = this.#slots.length - 1;
    let h = (Math.imul(mi, 0x9e3779b1) ^ Math.imul(minute | 0, 0x85ebca77)) & mask;
    for (;;) {
      const s = this.#slots[h];
      if (s === 0) break;
      if (this.#mer[s - 1] === mi && this.#min[s - 1] === minute) return s - 1;
      h = (h + 1) & mask;
    }
    const c = this.#size++;
    if (c >= this.#mer.length) {
      this.#mer = grow(this.#mer, c + 1);
      this.#min = grow(this.#min, c + 1);
      this.#val = grow(this.#val, 4 * (c + 1));
    }
    this.#mer[c] = mi;
    this.#min[c] = minute;
    if (2 * this.#size > this.#slots.length) {
      this.#rehash(2 * this.#slots.length);
      return c;
    }
    this.#slots[h] = c + 1;
    return c;
  }

  #rehash(n: number): void {
    this.#slots = new Int32Array(n);
    const mask = n - 1;
    for (let c = 0; c < this.#size; c++) {
      let h = (Math.imul(this.#mer[c], 0x9e3779b1) ^ Math.imul(this.#min[c] | 0, 0x85ebca77)) & mask;
      while (this.#slots[h] !== 0) h = (h + 1) & mask;
      this.#slots[h] = c + 1;
    }
  }

  /**
   * Every hash of the sums, with its non-zero fields: minute, hour and day buckets merchant by merchant, then the
   * window index minute by minute (minutes before `horizon`, a minute number, are left out). `touched` receives each
   * merchant a tier of the range touched, as the live planner's merchant set.
   */
  *entries(horizon: number, touched: (merchant: string) => void): Generator<SumsEntry> {
    const { prefix, partition: p, clock, retention: r, now, from } = this.#c;
    const to = this.#c.to ?? { minute: Infinity, hour: Infinity, day: Infinity };
    const out: SumsEntry = { key: '', expiry: 0, fields: new RespWriter() };
    const pairs = new RespWriter();
    const v = this.#val;
    const emit = (key: string, expiry: number, w: RespWriter) => { out.key = key; out.expiry = expiry; out.fields = w; return out; };
    // merchant by merchant, cells in minute order; each tier's hash is emitted when the next cell needs another
    const minute = new TierHash((m, b) => keys.minute(prefix, p, m, Math.floor(b / 4), b - 4 * Math.floor(b / 4)));
    const hour = new TierHash((m, b) => keys.hour(prefix, p, m, b));
    const day = new TierHash((m, b) => keys.day(prefix, p, m, b));
    const byMerchant = this.#order(this.#mer, this.#names.length);
    for (let x = 0; x < byMerchant.length;) {
      const mi = this.#mer[byMerchant[x]];
      let y = x;
      while (y < byMerchant.length && this.#mer[byMerchant[y]] === mi) y++;
      const cells = byMerchant.subarray(x, y).sort((a, b) => this.#min[a] - this.#min[b]);
      x = y;
      const m = this.#names[mi];
      let hit = this.#windowTouched[mi] === 1;
      for (const c of cells) {
        const minuteMs = this.#min[c] * MINUTE;
        const s = slotsOf(minuteMs, clock);
        const big = this.#big.get(c) ?? null;
        const mExp = minuteKeyExpiry(s, r);
        if (mExp > now && minuteMs >= from.minute && minuteMs < to.minute) {
          hit = true;
          const block = s.localDay * 4 + s.quarter;
          if (minute.ends(this.#min[c], block)) yield emit(minute.key, minute.expiry, minute.fields);
          minute.add(m, this.#min[c], s.minuteOfDay, block, mExp, v, 4 * c, big);
        }
        const hExp = hourKeyExpiry(s, r);
        if (hExp > now && s.hourNo * HOUR >= from.hour && s.hourNo * HOUR < to.hour) {
          hit = true;
          const block = Math.floor(s.hourNo / HOUR_BLOCK);
          if (hour.ends(s.hourNo, block)) yield emit(hour.key, hour.expiry, hour.fields);
          hour.add(m, s.hourNo, s.hourNo % HOUR_BLOCK, block, hExp, v, 4 * c, big);
        }
        const dExp = dayKeyExpiry(s, r);
        if (dExp > now && s.dayStartMs >= from.day && s.dayStartMs < to.day) {
          hit = true;
          const block = Math.floor(s.localDay / DAY_BLOCK);
          if (day.ends(s.localDay, block)) yield emit(day.key, day.expiry, day.fields);
          day.add(m, s.localDay, s.localDay % DAY_BLOCK, block, dExp, v, 4 * c, big);
        }
      }
      for (const t of [minute, hour, day]) {
        if (t.finish()) yield emit(t.key, t.expiry, t.fields);
        t.reset();
      }
      if (hit) touched(m);
    }
    // the window index: minute by minute, every merchant of the minute
    const byMinute = this.#order(this.#min, 0);
    for (let x = 0; x < byMinute.length;) {
      const minute = this.#min[byMinute[x]];
      let y = x;
      while (y < byMinute.length && this.#min[byMinute[y]] === minute) y++;
      if (minute * MINUTE >= from.minute && minute * MINUTE < to.minute && minute >= horizon) {
        pairs.reset();
        for (let z = x; z < y; z++) {
          const c = byMinute[z];
          const big = this.#big.get(c);
          writeWindowCounters(pairs, this.#names[this.#mer[c]], v[4 * c], amount(v[4 * c + 1], big?.[0]), v[4 * c + 2], amount(v[4 * c + 3], big?.[1]));
        }
        if (pairs.count) yield emit(keys.window(prefix, p, minute), Math.max(minute * MINUTE, now) + (this.#c.windowKeepMinutes + 60) * MINUTE, pairs);
      }
      x = y;
    }
    pairs.reset();
  }

  /**
   * Cell indices grouped by `of[cell]`: a counting sort over merchant indices (`n` of them), a sort by value for
   * minutes (n = 0).
   */
  #order(of: Int32Array | Float64Array, n: number): Uint32Array {
    const idx = new Uint32Array(this.#size);
    if (n === 0) {
      for (let c = 0; c < this.#size; c++) idx[c] = c;
      return idx.sort((a, b) => of[a] - of[b]);
    }
    const start = new Uint32Array(n + 1);
    for (let c = 0; c < this.#size; c++) start[of[c] + 1]++;
    for (let i = 0; i < n; i++) start[i + 1] += start[i];
    for (let c = 0; c < this.#size; c++) idx[start[of[c]]++] = c;
    return idx;
  }

  /** Forgets the sums (after they were written); the watermark, position and merchant names stay. */
  clear(): void {
    this.#size = 0;
    this.#slots.fill(0);
    this.#val.fill(0);
    this.#big.clear();
    this.#windowTouched.fill(0);
    this.pending = 0;
  }
}

function amount(x: number, big: bigint | undefined): number | bigint {
  return big === undefined || big === 0n ? x : BigInt(x) + big;
}

/** Writes the non-zero counters of slot `slot` (v[at..at+3], amounts plus `big`). */
function counters(out: RespWriter, slot: number, v: Float64Array, at: number, big: [bigint, bigint] | null): void {
  writeBucketCounters(out, slot, v[at], amount(v[at + 1], big?.[0]), v[at + 2], amount(v[at + 3], big?.[1]));
}

/**
 * One tier's hash of one merchant while the merchant's cells go by in minute order: the cells of one period (a
 * minute, an hour, a local day) are summed into its slot, and a hash (block) is complete when a cell of another
 * block comes (`ends`) or the merchant's cells end (`finish`).
 */
class TierHash {
  readonly fields = new RespWriter();
  key = '';
  expiry = 0;
  #block = NaN;
  #period = NaN;
  #slot = 0;
  readonly #sum = new Float64Array(4);
  #big: [bigint, bigint] | null = null;

  constructor(readonly keyOf: (merchant: string, block: number) => string) {}

  /** Ends the current period if `period` is another; true when `block` ends a hash with fields (emit it first). */
  ends(period: number, block: number): boolean {
    if (period !== this.#period) this.#close();
    return block !== this.#block && this.fields.count > 0;
  }

  add(m: string, period: number, slot: number, block: number, expiry: number, v: Float64Array, at: number, big: [bigint, bigint] | null): void {
    if (block !== this.#block) {
      this.fields.reset();
      this.#block = block;
      this.key = this.keyOf(m, block);
      this.expiry = expiry;
    }
    this.#period = period;
    this.#slot = slot;
    for (let k = 0; k < 4; k++) this.#sum[k] += v[at + k];
    if (big) this.#big = this.#big ? [this.#big[0] + big[0], this.#big[1] + big[1]] : [big[0], big[1]];
  }

  /** Ends the merchant: true when a hash with fields is left (emit it, then reset). */
  finish(): boolean {
    this.#close();
    return this.fields.count > 0;
  }

  reset(): void {
    this.fields.reset();
    this.#block = NaN;
  }

  #close(): void {
    if (!Number.isNaN(this.#period)) counters(this.fields, this.#slot, this.#sum, 0, this.#big);
    this.#sum.fill(0);
    this.#big = null;
    this.#period = NaN;
  }
}

function grow<T extends Int32Array | Float64Array | Uint8Array | Int8Array>(a: T, min: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(min, 2 * a.length));
  b.set(a);
  return b;
}
