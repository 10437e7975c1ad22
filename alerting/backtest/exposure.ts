/**
 * Money at risk through a backtested period, minute by minute, exactly as the live evaluator sees it at each minute's
 * instant (alerting/exposure.ts `exposureInstant`) — without range-summing every merchant every minute.
 *
 * Each merchant's settled-through time S and its approved and canceled amounts since S are kept. From one minute to
 * the next they change only when (a) the merchant has facts in the minute (the engine reads every minute's totals
 * anyway: they are added), or (b) S moves — one of its payouts becomes paid (each merchant's payouts not paid yet are
 * remembered: its sums lose [S, S'), one range read), or a local day starts on the D+N schedule (every merchant read
 * again). Merchants never seen, and those whose first payout becomes paid, are read whole (`readSchedules` and
 * `sinceTotals`, the live code); every merchant is read once at the period's first minute.
 *
 * `exposuresFor` gives decideMinute the same exposures the live evaluator gives it for the merchants it judges; the
 * money figures of the backtest's alerts (`AlertMoney`, docs/detection.md "Money in backtests") come from here too.
 */
import { readExposuresWith, readSchedules, type BucketReader, type MoneyReader, type Settlement, type Totals } from '../../aggregator/store/index.ts';
import { receivableOf, scheduleOfDays, type Exposure } from '../../lib/exposure.ts';
import { dayStart, MINUTE } from '../../lib/time.ts';
import { exposureInstant, payPending, pendingPayouts, rangeBatches, type Pending } from '../exposure.ts';

const BATCH = 2000;
/** How long after its firing a hold is followed: the money figures look this far ahead (or to the period's end). */
export const HOLD_HORIZON_DAYS = 7;
const HORIZON = HOLD_HORIZON_DAYS * 86_400_000;

/** A merchant's settled-through time as last read or moved, and its sums since. */
interface Since { approved: bigint; canceled: bigint; s: number | null }

/** A backtest alert's money (amounts are decimal strings, exact KRW). */
export interface AlertMoney {
  /** The merchant's receivable at the end of the firing minute. */
  receivableAtFiring: string;
  /** The end of the horizon the hold is followed to: min(firing + 7 days, the period's end). */
  horizonTo: string;
  /** The largest receivable at any minute's end from the firing minute to the horizon. */
  peakReceivable: string;
  /** The merchant's payouts a hold placed at firing would have kept: paid after the firing minute, by the horizon. */
  withheld: string;
  /** min(peakReceivable, withheld): the part of the later receivable the held payouts would have covered. */
  covered: string;
}

interface Watch { merchantId: string; firedAt: number; horizon: number; atFiring: bigint; peak: bigint }

export class ExposureHistory {
  #since = new Map<string, Since>();
  #owing = new Set<string>();
  /** merchant → its payouts not paid yet at the last instant (its S moves when one becomes paid) */
  #pending = new Map<string, Pending[]>();
  #day: number | null = null;
  #started = false;
  #watches = new Map<string, Watch[]>();

  constructor(private readonly reader: BucketReader & MoneyReader, private readonly settlement: Settlement, private readonly period: { from: number; to: number }) {}

  /** Minute M, with its per-merchant totals: every merchant's sums as of exposureInstant(M). */
  async advance(M: number, minute: ReadonlyMap<string, Totals>): Promise<void> {
    const now = exposureInstant(M);
    const s = this.settlement;
    const day = s.kind === 'days' ? dayStart(now, s.tz) : null;
    let dirty: Set<string>;
    if (!this.#started || day !== this.#day) {
      dirty = new Set([...(await this.reader.allMerchants()), ...this.#since.keys(), ...minute.keys()]);
    } else {
      dirty = new Set();
      // payouts that became paid: S moves forward to S' (the merchant's first paid payout: read whole)
      const moved = new Map<string, number>();
      for (const [m, pending] of this.#pending) {
        if (pending[0].paidAt > now) continue;
        const since = this.#since.get(m);
        const paid = payPending(pending, since?.s ?? null, now);
        if (paid.pending.length) this.#pending.set(m, paid.pending); else this.#pending.delete(m);
        if (!since || since.s === null) dirty.add(m);
        else if (paid.settledThrough! > since.s) moved.set(m, paid.settledThrough!);
      }
      for (const [m, x] of minute) {
        const since = this.#since.get(m);
        if (dirty.has(m) || !since) { dirty.add(m); continue; }
        since.approved += x.approvedAmount;
        since.canceled += x.canceledAmount;
        if (!moved.has(m)) this.#settle(m, since, M);
      }
      await this.#shift(moved, M);
    }
    const ids = [...dirty];
    for (let i = 0; i < ids.length; i += BATCH) {
      const part = ids.slice(i, i + BATCH);
      const schedules = await readSchedules(this.reader, part, now, s);
      const groups = new Map<number | null, string[]>();
      for (const [m, { schedule, payouts }] of schedules) {
        const g = groups.get(schedule.settledThrough);
        if (g) g.push(m); else groups.set(schedule.settledThrough, [m]);
        const pending = pendingPayouts(payouts, now);
        if (pending.length) this.#pending.set(m, pending); else this.#pending.delete(m);
      }
      for (const [from, ms] of groups) {
        const t = await this.reader.sinceTotals(ms, from, M + MINUTE);
        for (const m of ms) {
          const x = t.get(m)!;
          const since = { approved: x.approvedAmount, canceled: x.canceledAmount, s: from };
          this.#since.set(m, since);
          this.#settle(m, since, M);
        }
      }
    }
    this.#started = true;
    this.#day = day;
  }

  /**
   * The merchants whose S moved forward to S' (`moved`) at minute M, their sums since S (through M) known: they lose
   * [S, S'), read from the store as one range per distinct (S, S') — the buckets as they stand, as every sum here is.
   */
  async #shift(moved: Map<string, number>, M: number): Promise<void> {
    const end = M + MINUTE;
    const lose: [string, number, number][] = [];
    for (const [m, to] of moved) {
      const since = this.#since.get(m)!;
      const from = since.s!;
      since.s = to;
      if (to >= end) { since.approved = 0n; since.canceled = 0n; continue; }
      lose.push([m, from, to]);
    }
    for (const { from, to, ms } of rangeBatches(lose)) {
      const t = await this.reader.sinceTotals(ms, from, to);
      for (const m of ms) {
        const since = this.#since.get(m)!, x = t.get(m)!;
        since.approved -= x.approvedAmount;
        since.canceled -= x.canceledAmount;
      }
    }
    for (const m of moved.keys()) this.#settle(m, this.#since.get(m)!, M);
  }

  /** Records a merchant's new sums: the owing set and the peaks of its followed alerts. */
  #settle(m: string, since: Since, M: number): void {
    const r = receivableOf(since.approved, since.canceled);
    if (r > 0n) this.#owing.add(m); else this.#owing.delete(m);
    for (const w of this.#watches.get(m) ?? []) if (M < w.horizon && r > w.peak) w.peak = r;
  }

  receivable(m: string): bigint {
    const s = this.#since.get(m);
    return s ? receivableOf(s.approved, s.canceled) : 0n;
  }

  /**
   * The exposures decideMinute needs at minute M, as the live evaluator has them: every merchant of `ids` that owes
   * (receivable > 0) or is in `always` (firing receivable alerts), read whole at the minute's instant.
   */
  async exposuresFor(M: number, candidates: { atLeast: bigint; tracked: Iterable<string>; firing: Iterable<string> }): Promise<Map<string, Exposure>> {
    const ids = new Set<string>(candidates.firing);
    for (const m of candidates.tracked) if (this.#owing.has(m)) ids.add(m);
    for (const m of this.#owing) if (this.receivable(m) >= candidates.atLeast) ids.add(m);
    if (!ids.size) return new Map();
    const now = exposureInstant(M);
    return readExposuresWith(this.reader, await readSchedules(this.reader, [...ids], now, this.settlement), now);
  }

  /** Follows an alert fired at minute M: its receivable now, then its peak to the horizon. */
  watch(merchantId: string, M: number): Watch {
    const r = this.receivable(merchantId);
    const w: Watch = { merchantId, firedAt: M, horizon: Math.min(M + HORIZON, this.period.to), atFiring: r, peak: r };
    const list = this.#watches.get(merchantId);
    if (list) list.push(w); else this.#watches.set(merchantId, [w]);
    return w;
  }

  /** The money of a followed alert, once the backtest has run to the period's end. */
  async moneyOf(watches: Watch[]): Promise<Map<Watch, AlertMoney>> {
    const withheld = await this.#withheld(watches);
    const out = new Map<Watch, AlertMoney>();
    for (const w of watches) {
      const held = withheld.get(w)!;
      out.set(w, {
        receivableAtFiring: w.atFiring.toString(), horizonTo: new Date(w.horizon).toISOString(), peakReceivable: w.peak.toString(),
        withheld: held.toString(), covered: (held < w.peak ? held : w.peak).toString(),
      });
    }
    return out;
  }

  /**
   * What a hold placed at the end of the firing minute keeps: the merchant's payouts paid after that instant and by
   * the horizon's last instant (positive amounts). On the D+N schedule, each local midnight in that time pays the
   * net of the local day it settles (when positive); without a settlement source nothing is paid, so nothing is kept.
   */
  async #withheld(watches: Watch[]): Promise<Map<Watch, bigint>> {
    const out = new Map<Watch, bigint>();
    const s = this.settlement;
    const after = (w: Watch) => exposureInstant(w.firedAt);
    const until = (w: Watch) => w.horizon - 1;
    if (s.kind === 'payouts') {
      const ids = [...new Set(watches.map((w) => w.merchantId))];
      const payouts = new Map<string, { amount: bigint; paidAtMs: number }[]>();
      for (let i = 0; i < ids.length; i += BATCH) for (const [m, ps] of await this.reader.payouts(ids.slice(i, i + BATCH))) payouts.set(m, ps);
      for (const w of watches) {
        let sum = 0n;
        for (const p of payouts.get(w.merchantId) ?? []) if (p.paidAtMs > after(w) && p.paidAtMs <= until(w) && p.amount > 0n) sum += p.amount;
        out.set(w, sum);
      }
    } else if (s.kind === 'days') {
      for (const w of watches) {
        let sum = 0n;
        // the local midnights d with after < d ≤ until: each pays [S just before d, S at d)
        for (let d = scheduleOfDays(s.days, after(w), s.tz).nextPayoutAt!; d <= until(w); d = scheduleOfDays(s.days, d, s.tz).nextPayoutAt!) {
          const lo = scheduleOfDays(s.days, d - 1, s.tz).settledThrough!, hi = scheduleOfDays(s.days, d, s.tz).settledThrough!;
          const t = (await this.reader.sinceTotals([w.merchantId], lo, hi)).get(w.merchantId)!;
          const net = t.approvedAmount - t.canceledAmount;
          if (net > 0n) sum += net;
        }
        out.set(w, sum);
      }
    } else {
      for (const w of watches) out.set(w, 0n);
    }
    return out;
  }
}
