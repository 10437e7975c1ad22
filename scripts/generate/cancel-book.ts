/**
 * Which payment a cancel refers to. Each merchant keeps a small random sample of its recent payments (a "book");
 * a cancel takes one out, so a payment is cancelled at most once, and the time between the payment and its cancel
 * comes out as minutes to days: a busy merchant's book is refreshed a few times a day (replacing a random entry
 * with probability ~ 4·capacity / daily payments), a quiet merchant's book holds its last few payments.
 *
 * Cancels are decided per approval (the merchant's rate, times any scenario factor) and owed when the book is
 * empty ("debt"), paid at the merchant's next opportunity. Cancels therefore follow the approvals through the
 * day: cancels / approvals stays at the merchant's rate hour by hour, instead of lagging the daily curve.
 */
import type { Rng } from './random.ts';

export interface BookEntry { paymentId: number; amount: number; at: number }

export class CancelBook {
  readonly #start: Int32Array;
  readonly #cap: Int32Array;
  readonly #size: Int32Array;
  readonly #replaceP: Float64Array;
  readonly #debt: Uint16Array;
  readonly #id: Float64Array;
  readonly #amount: Float64Array;
  readonly #at: Float64Array;

  /**
   * @param dailyPayments expected payments a day of merchant i+1
   * @param cancelRate its cancel rate
   */
  constructor(dailyPayments: ArrayLike<number>, cancelRate: ArrayLike<number>) {
    const n = dailyPayments.length;
    this.#start = new Int32Array(n);
    this.#cap = new Int32Array(n);
    this.#size = new Int32Array(n);
    this.#replaceP = new Float64Array(n);
    this.#debt = new Uint16Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      // Room for about six hours of cancels, at least 8 payments.
      const cap = Math.max(8, Math.min(1024, Math.ceil(dailyPayments[i] * cancelRate[i] * 0.25)));
      this.#start[i] = total;
      this.#cap[i] = cap;
      this.#replaceP[i] = Math.min(1, (4 * cap) / Math.max(1, dailyPayments[i]));
      total += cap;
    }
    this.#id = new Float64Array(total);
    this.#amount = new Float64Array(total);
    this.#at = new Float64Array(total);
  }

  /** Offers a committed payment of merchant `m` (1-based). */
  add(rng: Rng, m: number, paymentId: number, amount: number, at: number): void {
    const i = m - 1;
    let slot: number;
    if (this.#size[i] < this.#cap[i]) slot = this.#size[i]++;
    else if (rng.next() < this.#replaceP[i]) slot = rng.int(this.#cap[i]);
    else return;
    const k = this.#start[i] + slot;
    this.#id[k] = paymentId;
    this.#amount[k] = amount;
    this.#at[k] = at;
  }

  /** Records that merchant `m` owes one cancel. */
  owe(m: number): void {
    if (this.#debt[m - 1] < 65535) this.#debt[m - 1]++;
  }

  /** True when merchant `m` owes a cancel and has a payment to cancel. */
  canPay(m: number): boolean {
    return this.#debt[m - 1] > 0 && this.#size[m - 1] > 0;
  }

  /** Takes a random payment of merchant `m` out of its book, settling one owed cancel. Call after canPay. */
  take(rng: Rng, m: number): BookEntry {
    const i = m - 1;
    const base = this.#start[i];
    const k = base + rng.int(this.#size[i]);
    const last = base + --this.#size[i];
    const e = { paymentId: this.#id[k], amount: this.#amount[k], at: this.#at[k] };
    this.#id[k] = this.#id[last]; this.#amount[k] = this.#amount[last]; this.#at[k] = this.#at[last];
    this.#debt[i]--;
    return e;
  }

  debt(m: number): number { return this.#debt[m - 1]; }
  size(m: number): number { return this.#size[m - 1]; }
}
