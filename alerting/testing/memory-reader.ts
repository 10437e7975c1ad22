/**
 * An in-memory BucketReader for tests and benchmarks of the evaluator's logic (the real one is
 * the bucket store's createBucketReader over Redis). Holds minute buckets; hours and days are sums of them.
 */
import { addTotals, emptyTotals, type BucketReader, type Point, type Step, type Totals } from '../../aggregator/store/index.ts';
import { dayStart, hourStart, minuteStart } from '../../lib/time.ts';

export class MemoryReader implements BucketReader {
  readonly #minutes = new Map<string, Map<number, Totals>>();
  wm: number | null = null;

  constructor(readonly tz = 'Asia/Seoul') {}

  /** Adds activity to the minute containing `t`. */
  add(merchantId: string, t: number, x: Partial<Totals>): this {
    let m = this.#minutes.get(merchantId);
    if (!m) this.#minutes.set(merchantId, (m = new Map()));
    const k = minuteStart(t);
    let b = m.get(k);
    if (!b) m.set(k, (b = emptyTotals()));
    addTotals(b, { ...emptyTotals(), ...x });
    return this;
  }

  #bucket(t: number, step: Step): number {
    return step === '1m' ? minuteStart(t) : step === '1h' ? hourStart(t) : dayStart(t, this.tz);
  }

  async series(merchantId: string, fromMs: number, toMs: number, step: Step): Promise<Point[]> {
    const out = new Map<number, Point>();
    for (const [t, v] of this.#minutes.get(merchantId) ?? []) {
      if (t < fromMs || t >= toMs) continue;
      const b = this.#bucket(t, step);
      let p = out.get(b);
      if (!p) out.set(b, (p = { t: b, ...emptyTotals() }));
      addTotals(p, v);
    }
    return [...out.values()].sort((a, b) => a.t - b.t);
  }

  async totalsByMerchant(fromMs: number, toMs: number): Promise<Map<string, Totals>> {
    return this.totals([...this.#minutes.keys()], fromMs, toMs, true);
  }

  async totals(merchantIds: string[], fromMs: number, toMs: number, activeOnly = false): Promise<Map<string, Totals>> {
    const out = new Map<string, Totals>();
    for (const id of merchantIds) {
      let sum: Totals | null = null;
      for (const [t, v] of this.#minutes.get(id) ?? []) {
        if (t < fromMs || t >= toMs) continue;
        addTotals((sum ??= emptyTotals()), v);
      }
      if (sum) out.set(id, sum);
      else if (!activeOnly) out.set(id, emptyTotals());
    }
    return out;
  }

  async watermark(): Promise<number | null> {
    return this.wm;
  }
}
