/**
 * Learns the hot merchants: the top fraction (default 1%) of merchants by recent volume. Counts decay
 * exponentially (half-life default 1 h) so yesterday's flash sale fades; `top()` is recomputed on `tick`. Pure:
 * time is passed in.
 */
export interface HotSetOptions { fraction: number; halfLifeMs: number }

export class HotSetLearner {
  readonly #counts = new Map<string, number>();
  #lastTick: number | null = null;

  constructor(private readonly opts: HotSetOptions) {}

  seed(counts: Iterable<[string, number]>): void {
    for (const [m, n] of counts) this.#counts.set(m, (this.#counts.get(m) ?? 0) + n);
  }

  observe(merchant: string, n = 1): void {
    this.#counts.set(merchant, (this.#counts.get(merchant) ?? 0) + n);
  }

  /** Applies the decay since the last tick; forgets merchants whose weight fell below 0.01. */
  tick(nowMs: number): void {
    if (this.#lastTick !== null && nowMs > this.#lastTick) {
      const f = 0.5 ** ((nowMs - this.#lastTick) / this.opts.halfLifeMs);
      for (const [m, n] of this.#counts) {
        const v = n * f;
        if (v < 0.01) this.#counts.delete(m); else this.#counts.set(m, v);
      }
    }
    this.#lastTick = nowMs;
  }

  /** The ceil(fraction × active merchants) heaviest merchants (ties broken by id, so the result is stable). */
  top(): Set<string> {
    const n = Math.ceil(this.#counts.size * this.opts.fraction);
    if (n === 0) return new Set();
    const sorted = [...this.#counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    return new Set(sorted.slice(0, n).map(([m]) => m));
  }

  get size(): number { return this.#counts.size; }
}

export function sameSet(a: Set<string>, b: Set<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
