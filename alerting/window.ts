/**
 * The rules' 60-minute window kept in memory. Reading the whole window every minute (12 partitions × 60 minutes
 * of the all-merchants minute index) cost most of a minute's evaluation; instead the window keeps every
 * (minute, partition) slice of the index it has read, with the slice's fingerprint, and per minute asks the reader
 * for the fingerprints of the whole window: only the newly closed minute and slices that changed since (late rows,
 * corrections — any age, any partition) are read again. Running sums over [from, to) and over the current hour
 * [hourFrom, to) are updated by subtracting a slice's old totals and adding its new ones, so they stay exactly equal
 * to a full read (tested against `totalsByMerchant`).
 *
 * A slice read after its minute ended (the evaluator reads the window ahead, once the watermark passes the minute's
 * end and before the allowed lateness closes it) is re-read as a delta: the store logs every merchant written to a
 * minute after it ended (late rows), so the read at the close only fetches those merchants' counters. The work after
 * the close is then proportional to the late rows, not to the merchants active in the minute.
 *
 * At the 5,000 TPS peak a minute's slices hold ~80,000 merchants, added to two sums and removed from one every
 * minute. Merchants are therefore numbered (MerchantNumbers) and the sums kept in one Float64Array, 4 counters per
 * merchant: adding a slice is a loop over numbers, without a Map lookup or a bigint per counter. Doubles hold
 * integers exactly up to 2^53 (9×10^15 KRW); a value or a sum beyond that switches to an exact bigint read (never
 * seen: a merchant would need 9 quadrillion KRW in an hour).
 *
 * Readers without slices (the in-memory test reader) and windows the index no longer holds (a catch-up far
 * behind) are read with `totalsByMerchant`.
 */
import { forEachWindowCounter, hasWindowSlices, type BucketReader, type Totals } from '../aggregator/store/index.ts';
import { MINUTE } from '../lib/time.ts';

/** Totals per merchant, merchants with any activity only (what the rules read). */
export type TotalsByMerchant = ReadonlyMap<string, Totals>;

const COUNTERS = 4; // approvals, approvedAmount, cancels, canceledAmount (counters.ts order)
const MAX_EXACT = Number.MAX_SAFE_INTEGER;
/** Merchants numbered before the numbering starts over (bounds memory; costs one full read). */
const MAX_NUMBERED = 2_000_000;

/** Merchant ids numbered 0, 1, 2, … in the order first seen. */
export class MerchantNumbers {
  readonly #no = new Map<string, number>();
  readonly names: string[] = [];

  of(m: string): number {
    let i = this.#no.get(m);
    if (i === undefined) {
      i = this.names.length;
      this.#no.set(m, i);
      this.names.push(m);
    }
    return i;
  }

  find(m: string): number | undefined { return this.#no.get(m); }
}

/** One (minute, partition) slice: its counters as (merchant number, counter, value) triples. */
export interface Slice { minute: number; fingerprint: string; merchants: number[]; counters: number[]; values: number[] }

function emptySlice(minute: number, fingerprint: string): Slice {
  return { minute, fingerprint, merchants: [], counters: [], values: [] };
}

/** A slice from a window-index hash (reader.windowSlices); null when a value is not exact as a double. */
export function sliceOfHash(minute: number, fingerprint: string, content: string, numbers: MerchantNumbers): Slice | null {
  const s = emptySlice(minute, fingerprint);
  let exact = true;
  forEachWindowCounter(content, (m, k, v) => {
    const x = Number(v);
    if (!(Math.abs(x) <= MAX_EXACT)) exact = false;
    s.merchants.push(numbers.of(m));
    s.counters.push(k);
    s.values.push(x);
  });
  return exact ? s : null;
}

/**
 * Replaces, in place, the counters of the merchants in a delta (reader.windowSlices `delta`: each merchant written
 * since the slice was read, with its four counters as they stand now): their old entries are zeroed and the new ones
 * appended. Returns the entries taken out and put in (what the running sums must subtract and add), or null when a
 * value is not exact as a double. Work: one pass over the slice, and the delta; the sums only see the difference.
 */
export function patchSlice(s: Slice, fingerprint: string, delta: string, numbers: MerchantNumbers): { minus: Slice; plus: Slice } | null {
  const fresh = sliceOfHash(s.minute, fingerprint, delta, numbers);
  if (!fresh) return null;
  const changed = new Set(fresh.merchants);
  const minus = emptySlice(s.minute, fingerprint), plus = emptySlice(s.minute, fingerprint);
  let live = 0;
  for (let j = 0; j < s.merchants.length; j++) {
    if (s.values[j] === 0) continue;
    if (changed.has(s.merchants[j])) {
      minus.merchants.push(s.merchants[j]);
      minus.counters.push(s.counters[j]);
      minus.values.push(s.values[j]);
      s.values[j] = 0;
    } else live++;
  }
  for (let j = 0; j < fresh.merchants.length; j++) {
    if (fresh.values[j] === 0) continue;
    plus.merchants.push(fresh.merchants[j]);
    plus.counters.push(fresh.counters[j]);
    plus.values.push(fresh.values[j]);
  }
  // zeroed entries are dropped once they are most of the slice (a slice patched many times)
  if (s.merchants.length > 2 * (live + plus.merchants.length) + 64) {
    let k = 0;
    for (let j = 0; j < s.merchants.length; j++) {
      if (s.values[j] === 0) continue;
      s.merchants[k] = s.merchants[j];
      s.counters[k] = s.counters[j];
      s.values[k++] = s.values[j];
    }
    s.merchants.length = s.counters.length = s.values.length = k;
  }
  for (let j = 0; j < plus.merchants.length; j++) {
    s.merchants.push(plus.merchants[j]);
    s.counters.push(plus.counters[j]);
    s.values.push(plus.values[j]);
  }
  s.fingerprint = fingerprint;
  return { minus, plus };
}

/** A slice from per-merchant totals (the backtest's minutes); null when a value is not exact as a double. */
export function sliceOfTotals(minute: number, totals: ReadonlyMap<string, Totals>, numbers: MerchantNumbers): Slice | null {
  const s = emptySlice(minute, '');
  for (const [m, t] of totals) {
    const i = numbers.of(m);
    const vs = [t.approvals, Number(t.approvedAmount), t.cancels, Number(t.canceledAmount)];
    for (let k = 0; k < COUNTERS; k++) {
      if (vs[k] === 0) continue;
      if (!(Math.abs(vs[k]) <= MAX_EXACT)) return null;
      s.merchants.push(i);
      s.counters.push(k);
      s.values.push(vs[k]);
    }
  }
  return s;
}

/** A slice's per-merchant totals again, exactly: its values are integers a double holds exactly. */
export function totalsOfSlice(s: Slice, numbers: MerchantNumbers): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (let j = 0; j < s.merchants.length; j++) {
    if (s.values[j] === 0) continue; // a counter at 0 (netted out, or zeroed by patchSlice)
    const m = numbers.names[s.merchants[j]];
    let t = out.get(m);
    if (!t) out.set(m, (t = { approvals: 0, approvedAmount: 0n, cancels: 0, canceledAmount: 0n }));
    addCounter(t, s.counters[j], s.values[j]);
  }
  return out;
}

/** Adds one slice entry (counter number in counters.ts order, an exact integer) to a Totals. */
function addCounter(t: Totals, counter: number, v: number): void {
  switch (counter) {
    case 0: t.approvals += v; break;
    case 1: t.approvedAmount += BigInt(v); break;
    case 2: t.cancels += v; break;
    default: t.canceledAmount += BigInt(v);
  }
}

/**
 * A running per-merchant sum over the slices whose minute lies in [from, to). A tracking sum also records the
 * slices that left it by its start moving forward (`departed`, as they were last read) and the merchants whose sums
 * changed (`touched`), for a caller that keeps sums reaching further back (alerting/exposure.ts).
 */
export class RangeSum {
  from = 0;
  to = 0;
  readonly #numbers: MerchantNumbers;
  readonly #in = new Map<string, Slice>();
  #c = new Float64Array(COUNTERS * 1024);
  #exact = true;
  readonly #track: boolean;
  departed: Slice[] = [];
  touched = new Set<number>();

  constructor(numbers: MerchantNumbers, track = false) {
    this.#numbers = numbers;
    this.#track = track;
  }

  /** False once a sum left the range doubles hold exactly: read exactly instead (the sums stay wrong until a new RangeSum). */
  get exact(): boolean { return this.#exact; }

  /** The sums as the rules read them. Valid until the next change; do not keep. */
  get sums(): TotalsByMerchant { return new SumsView(this.#numbers, this.#c); }

  has(key: string): boolean { return this.#in.has(key); }

  /** A slice in the sum changed in place (patchSlice): subtracts what it lost, adds what it gained. */
  patch(key: string, minus: Slice, plus: Slice): void {
    if (!this.#in.has(key)) return;
    this.#apply(minus, -1);
    this.#apply(plus, 1);
  }

  add(key: string, s: Slice): void {
    this.#in.set(key, s);
    this.#apply(s, 1);
  }

  remove(key: string): void {
    const s = this.#in.get(key);
    if (!s) return;
    this.#in.delete(key);
    this.#apply(s, -1);
  }

  /** Moves the range, dropping the slices now outside it (the caller adds those newly inside). */
  setRange(from: number, to: number): void {
    this.from = from;
    this.to = to;
    for (const [key, s] of this.#in) {
      if (s.minute >= from && s.minute < to) continue;
      if (this.#track && s.minute < from) {
        this.departed.push({ minute: s.minute, fingerprint: s.fingerprint, merchants: s.merchants.slice(), counters: s.counters.slice(), values: s.values.slice() });
      }
      this.remove(key);
    }
  }

  /** The slices in the sum, for reads the running sums do not answer (`sumsFrom`). */
  slices(): Iterable<Slice> { return this.#in.values(); }

  covers(minute: number): boolean { return minute >= this.from && minute < this.to; }

  #apply(s: Slice, sign: 1 | -1): void {
    const need = this.#numbers.names.length * COUNTERS;
    if (this.#c.length < need) {
      const c = new Float64Array(Math.max(need, 2 * this.#c.length));
      c.set(this.#c);
      this.#c = c;
    }
    const c = this.#c, { merchants, counters, values } = s;
    if (this.#track) for (let j = 0; j < merchants.length; j++) this.touched.add(merchants[j]);
    for (let j = 0; j < merchants.length; j++) {
      const at = merchants[j] * COUNTERS + counters[j];
      const v = c[at] + sign * values[j];
      if (v > MAX_EXACT || v < -MAX_EXACT) this.#exact = false;
      c[at] = v;
    }
  }
}

/**
 * A read-only Map view of a RangeSum's counters: merchants whose four sums are all zero are absent, as in a full
 * read; each `get` makes a fresh Totals (amounts as bigint).
 */
class SumsView implements ReadonlyMap<string, Totals> {
  readonly #numbers: MerchantNumbers;
  readonly #names: string[];
  readonly #c: Float64Array;
  #size = -1;

  constructor(numbers: MerchantNumbers, c: Float64Array) {
    this.#numbers = numbers;
    this.#names = numbers.names;
    this.#c = c;
  }

  #active(i: number): boolean {
    const c = this.#c, b = i * COUNTERS;
    return b < c.length && (c[b] !== 0 || c[b + 1] !== 0 || c[b + 2] !== 0 || c[b + 3] !== 0);
  }

  #totals(i: number): Totals {
    const c = this.#c, b = i * COUNTERS;
    return { approvals: c[b], approvedAmount: BigInt(c[b + 1]), cancels: c[b + 2], canceledAmount: BigInt(c[b + 3]) };
  }

  #number(m: string): number { return this.#numbers.find(m) ?? -1; }

  get(m: string): Totals | undefined {
    const i = this.#number(m);
    return i >= 0 && this.#active(i) ? this.#totals(i) : undefined;
  }

  has(m: string): boolean {
    const i = this.#number(m);
    return i >= 0 && this.#active(i);
  }

  get size(): number {
    if (this.#size < 0) {
      let n = 0;
      for (let i = 0; i < this.#names.length; i++) if (this.#active(i)) n++;
      this.#size = n;
    }
    return this.#size;
  }

  *entries(): MapIterator<[string, Totals]> {
    for (let i = 0; i < this.#names.length; i++) if (this.#active(i)) yield [this.#names[i], this.#totals(i)];
  }

  *keys(): MapIterator<string> {
    for (let i = 0; i < this.#names.length; i++) if (this.#active(i)) yield this.#names[i];
  }

  *values(): MapIterator<Totals> {
    for (let i = 0; i < this.#names.length; i++) if (this.#active(i)) yield this.#totals(i);
  }

  [Symbol.iterator](): MapIterator<[string, Totals]> { return this.entries(); }

  forEach(fn: (t: Totals, m: string, map: ReadonlyMap<string, Totals>) => void): void {
    for (const [m, t] of this.entries()) fn(t, m, this);
  }
}

export interface WindowTotals {
  /** Totals over [from, to), merchants with any activity only. Valid until the next `read`; do not modify. */
  window: TotalsByMerchant;
  /** Totals over [hourFrom, to), likewise. */
  hour: TotalsByMerchant;
  /** Slices read from Redis this time (the rest came from memory); -1 when read in full by totalsByMerchant. */
  slicesRead: number;
  /** Of those, slices read as a delta: only the merchants written since the last read (late rows). */
  deltas: number;
}

/**
 * The last hour as money at risk follows it (alerting/exposure.ts): running sums over [from, to) = the 60 minutes
 * ending with the last read's minute, what left them since the last `recent()` call and which merchants changed.
 */
export interface RecentFeed {
  /** False when the last read had no slices (read whole by `totalsByMerchant`): the fields below are empty. */
  valid: boolean;
  /** Changes whenever the kept slices were dropped: what left the range before then is not known. */
  continuity: number;
  from: number;
  to: number;
  /** Totals over [from, to). Valid until the next read; do not keep. */
  sums: TotalsByMerchant;
  /** The slices that left the range since the last call (one entry per minute and partition), as last read. */
  departed: { minute: number; totals: Map<string, Totals> }[];
  /** Merchants whose sums changed since the last call. */
  touched: string[];
  /** Each merchant's totals over [start, to) for a start inside the range. */
  sumsFrom(starts: ReadonlyMap<string, number>): Map<string, Totals>;
}

/** The range the recent feed covers: the last hour, which is also what the exposure's projection reads. */
const RECENT_MS = 60 * MINUTE;

export class WindowSums {
  readonly #reader: BucketReader;
  #numbers = new MerchantNumbers();
  #slices = new Map<string, Slice>();
  #window = new RangeSum(this.#numbers);
  #hour = new RangeSum(this.#numbers);
  /** the last hour, kept only for a caller of `recent()` (money at risk) */
  #recent: RangeSum | null;
  #recentValid = false;
  #continuity = 0;
  #epoch: string | undefined;

  constructor(reader: BucketReader, o: { recent?: boolean } = {}) {
    this.#reader = reader;
    this.#recent = o.recent ? new RangeSum(this.#numbers, true) : null;
  }

  /**
   * Totals over [from, to) and over [hourFrom, to) (minute-aligned). `epoch`: the store's state epoch (the masters'
   * replication ids) when the caller knows it; a different one than at the last read drops every slice kept (a
   * failover may have rolled writes back, and a late log on the new master need not hold them).
   */
  async read(from: number, hourFrom: number, to: number, epoch?: string): Promise<WindowTotals> {
    const reader = this.#reader;
    if (epoch !== undefined && epoch !== this.#epoch) {
      this.#reset();
      this.#epoch = epoch;
    }
    if (hasWindowSlices(reader)) {
      if (this.#numbers.names.length > MAX_NUMBERED) this.#reset();
      const recentFrom = this.#recent ? to - RECENT_MS : from;
      // the recent sums only move forward: a read further back starts them over (what left them is then unknown)
      if (this.#recent && this.#recentValid && (recentFrom < this.#recent.from || to < this.#recent.to)) this.#reset();
      const minutes: number[] = [];
      for (let t = Math.min(from, hourFrom, recentFrom); t < to; t += MINUTE) minutes.push(t);
      const slices = await reader.windowSlices(minutes, (m, p) => this.#slices.get(`${m}/${p}`)?.fingerprint);
      if (slices) {
        const sums = this.#recent ? [this.#window, this.#hour, this.#recent] : [this.#window, this.#hour];
        this.#window.setRange(from, to);
        this.#hour.setRange(hourFrom, to);
        this.#recent?.setRange(recentFrom, to);
        let read = 0, delta = 0, exact = true;
        const kept = new Map<string, Slice>();
        for (const s of slices) {
          const key = `${s.minute}/${s.partition}`;
          let slice = this.#slices.get(key)!;
          if (s.content !== null && s.delta) {
            read++;
            delta++;
            const d = slice ? patchSlice(slice, s.fingerprint, s.content, this.#numbers) : null;
            if (!d) { exact = false; break; }
            for (const sum of sums) sum.patch(key, d.minus, d.plus);
          } else if (s.content !== null) {
            read++;
            for (const sum of sums) sum.remove(key);
            const fresh = sliceOfHash(s.minute, s.fingerprint, s.content, this.#numbers);
            if (!fresh) { exact = false; break; }
            slice = fresh;
          } else {
            // unchanged, perhaps now marked as read after the minute ended
            slice.fingerprint = s.fingerprint;
          }
          kept.set(key, slice);
          for (const sum of sums) if (sum.covers(s.minute) && !sum.has(key)) sum.add(key, slice);
        }
        if (exact && this.#window.exact && this.#hour.exact && (this.#recent?.exact ?? true)) {
          this.#slices = kept;
          this.#recentValid = true;
          return { window: this.#window.sums, hour: this.#hour.sums, slicesRead: read, deltas: delta };
        }
      }
    }
    this.#reset();
    const [window, hour] = await Promise.all([
      reader.totalsByMerchant(from, to, '1m'),
      hourFrom === from ? null : reader.totalsByMerchant(hourFrom, to, '1m'),
    ]);
    return { window, hour: hour ?? window, slicesRead: -1, deltas: 0 };
  }

  /** Drops every slice read so far (they may come from a Redis state that rolled back). */
  forget(): void { this.#reset(); }

  /** The last hour as of the last read, for money at risk (RecentFeed); drains what left it and who changed. */
  recent(): RecentFeed {
    const r = this.#recent, numbers = this.#numbers;
    if (!r) throw new Error('this window keeps no recent sums (new WindowSums(reader, { recent: true }))');
    const departed = r.departed.map((s) => ({ minute: s.minute, totals: totalsOfSlice(s, numbers) }));
    const touched = [...r.touched].map((i) => numbers.names[i]);
    r.departed = [];
    r.touched = new Set();
    return {
      valid: this.#recentValid, continuity: this.#continuity, from: r.from, to: r.to, sums: r.sums, departed, touched,
      sumsFrom: (starts) => {
        const byNo = new Map<number, number>();
        for (const [m, t] of starts) { const i = numbers.find(m); if (i !== undefined) byNo.set(i, t); }
        const out = new Map<string, Totals>();
        for (const m of starts.keys()) out.set(m, { approvals: 0, approvedAmount: 0n, cancels: 0, canceledAmount: 0n });
        for (const s of r.slices()) {
          for (let j = 0; j < s.merchants.length; j++) {
            const start = byNo.get(s.merchants[j]);
            if (start === undefined || s.minute < start || s.values[j] === 0) continue;
            addCounter(out.get(numbers.names[s.merchants[j]])!, s.counters[j], s.values[j]);
          }
        }
        return out;
      },
    };
  }

  #reset(): void {
    this.#slices.clear();
    this.#numbers = new MerchantNumbers();
    this.#window = new RangeSum(this.#numbers);
    this.#hour = new RangeSum(this.#numbers);
    this.#recent = this.#recent ? new RangeSum(this.#numbers, true) : null;
    this.#recentValid = false;
    this.#continuity++;
  }
}
