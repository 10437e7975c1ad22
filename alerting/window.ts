/**
 * The rules' 60-minute window kept in memory. Reading the whole window every minute (12 partitions × 60 minutes
 * of the all-merchants minute index) cost most of a minute's evaluation; instead the window keeps every
 * (minute, partition) slice of the index it has read, with the slice's fingerprint, and per minute asks the reader
 * for the fingerprints of the whole window: only the newly closed minute and slices that changed since (late rows,
 * corrections — any age, any partition) are read again. Running sums over [from, to) and over the current hour
 * [hourFrom, to) are updated by subtracting a slice's old totals and adding its new ones, so they stay exactly equal
 * to a full read (tested against `totalsByMerchant`).
 *
 * Readers without slices (the in-memory test reader) and windows the index no longer holds (a catch-up far
 * behind) are read with `totalsByMerchant`.
 */
import { emptyTotals, hasWindowSlices, isEmpty, type BucketReader, type Totals } from '../aggregator/store/index.ts';
import { MINUTE } from '../lib/time.ts';

export interface Slice { minute: number; fingerprint: string; totals: Map<string, Totals> }

/** A running per-merchant sum over the slices whose minute lies in [from, to). */
export class RangeSum {
  from = 0;
  to = 0;
  readonly sums = new Map<string, Totals>();
  readonly #in = new Map<string, Slice>();

  has(key: string): boolean { return this.#in.has(key); }

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

  /** Adds (sign 1) or subtracts (-1) a slice; a merchant whose sum is all zeros is dropped, as a full read does. */
  #apply(s: Slice, sign: 1 | -1): void {
    const big = BigInt(sign);
    for (const [m, t] of s.totals) {
      let cur = this.sums.get(m);
      if (!cur) this.sums.set(m, (cur = emptyTotals()));
      cur.approvals += sign * t.approvals;
      cur.approvedAmount += big * t.approvedAmount;
      cur.cancels += sign * t.cancels;
      cur.canceledAmount += big * t.canceledAmount;
      if (isEmpty(cur)) this.sums.delete(m);
    }
  }

  /** Moves the range, dropping the slices now outside it (the caller adds those newly inside). */
  setRange(from: number, to: number): void {
    this.from = from;
    this.to = to;
    for (const [key, s] of this.#in) if (s.minute < from || s.minute >= to) this.remove(key);
  }

  covers(minute: number): boolean { return minute >= this.from && minute < this.to; }
}

export interface WindowTotals {
  /** Totals over [from, to), merchants with any activity only. Valid until the next `read`; do not modify. */
  window: Map<string, Totals>;
  /** Totals over [hourFrom, to), likewise. */
  hour: Map<string, Totals>;
  /** Slices read from Redis this time (the rest came from memory); -1 when read in full by totalsByMerchant. */
  slicesRead: number;
}

export class WindowSums {
  readonly #reader: BucketReader;
  #slices = new Map<string, Slice>();
  readonly #window = new RangeSum();
  readonly #hour = new RangeSum();

  constructor(reader: BucketReader) { this.#reader = reader; }

  /** Totals over [from, to) and over [hourFrom, to) (minute-aligned). */
  async read(from: number, hourFrom: number, to: number): Promise<WindowTotals> {
    const reader = this.#reader;
    if (hasWindowSlices(reader)) {
      const minutes: number[] = [];
      for (let t = Math.min(from, hourFrom); t < to; t += MINUTE) minutes.push(t);
      const slices = await reader.windowSlices(minutes, (m, p) => this.#slices.get(`${m}/${p}`)?.fingerprint);
      if (slices) {
        const sums = [this.#window, this.#hour];
        this.#window.setRange(from, to);
        this.#hour.setRange(hourFrom, to);
        let read = 0;
        const kept = new Map<string, Slice>();
        for (const s of slices) {
          const key = `${s.minute}/${s.partition}`;
          let slice = this.#slices.get(key)!;
          if (s.totals) {
            read++;
            for (const sum of sums) sum.remove(key);
            slice = { minute: s.minute, fingerprint: s.fingerprint, totals: s.totals };
          }
          kept.set(key, slice);
          for (const sum of sums) if (sum.covers(s.minute) && !sum.has(key)) sum.add(key, slice);
        }
        this.#slices = kept;
        return { window: this.#window.sums, hour: this.#hour.sums, slicesRead: read };
      }
    }
    this.#reset();
    const [window, hour] = await Promise.all([
      reader.totalsByMerchant(from, to, '1m'),
      hourFrom === from ? null : reader.totalsByMerchant(hourFrom, to, '1m'),
    ]);
    return { window, hour: hour ?? window, slicesRead: -1 };
  }

  /** Drops every slice read so far (they may come from a Redis state that rolled back). */
  forget(): void { this.#reset(); }

  #reset(): void {
    this.#slices.clear();
    this.#window.setRange(0, 0);
    this.#hour.setRange(0, 0);
  }
}

/** A copy of `t`, or empty totals: what the rules get (they keep it in lazily built evidence). */
export function totalsOf(map: Map<string, Totals>, id: string): Totals {
  const t = map.get(id);
  return t ? { ...t } : emptyTotals();
}
