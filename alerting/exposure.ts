/**
 * Which merchants owe a receivable, kept exactly every closed minute without range-summing every merchant.
 *
 * A merchant's sums since its settled-through time S, at minute M's instant, are split at the start F of the last
 * hour (F = M + 1m − 60m):
 * - the part in [F, M + 1m) is the evaluator's recent sums (window.ts `RecentFeed`), kept from the window index;
 * - the part in [S, F) is kept here per merchant. It changes only when (a) a minute leaves the last hour (the feed
 *   hands over the slices that left, as last read: added here when their minute is ≥ S), (b) a fact lands at least
 *   REREAD_LATENESS_MS (30 min) late, or a payout of the merchant changes — the aggregator names those merchants in
 *   the changed-merchant index (store `changedMerchants`), and they are read again from the store — or (c) S moves
 *   forward to S': one of its payouts becomes paid (its payouts not paid yet are remembered), or, on the D+N
 *   schedule, a local day starts; the kept sums then lose [S, S'), read as one range (`#shift`).
 * A less late fact is in the recent sums at the next read (the window index logs late writes; see MAX_STEP_MS for
 * why its minute is still inside the last hour then).
 *
 * The first minute, a replay or backfill (a partition's generation changed), a Redis failover (the state epoch
 * changed), a window started over (its continuity changed, or it had no slices) or a jump of the evaluated minute
 * starts over. It then reads at once only the merchants whose receivable a cancel in the last hour can have raised,
 * those merchant_exposure holds (owing at the last committed minute) and those owing in memory. Every other merchant
 * is left unread and is neither judged nor counted owing until it is read: `readUnread` reads them off the alert's
 * path (the evaluator calls it while it waits for a minute to end and between a minute's end and its close), and
 * the update of a minute replayed while catching up reads UNREAD_AT_CLOSE more, so the whole set is read within
 * minutes (a full read takes seconds at 100,000 merchants, minutes at 1,000,000). An unread merchant
 * with a cancel in the recent sums, or named by the changed-merchant index, is read at once. A merchant read is kept
 * exactly from then on, as if it had been read at the start. The price: a merchant that came to owe while the
 * evaluator was down, without a cancel in the last hour (a payout paid over cancels it had before), is seen once
 * read, minutes late. Otherwise the minute's work is the merchants whose sums changed (the recent sums'
 * touched merchants, the departed slices') plus those named by (b) and (c) and those owing, which are checked every
 * minute (their projection moves with the last hour's rates). The owing set with its exposures goes to the risk
 * store's merchant_exposure in the minute's transaction (top list, alerts sorted by receivable).
 */
import type { BucketReader, Exposure, MoneyReader, Settlement, Totals } from '../aggregator/store/index.ts';
import type { Payout } from '../lib/mapping.ts';
import { readExposuresWith, readSchedules, REREAD_LATENESS_MS } from '../aggregator/store/index.ts';
import { exposureOf, scheduleOfDays, type Schedule } from '../lib/exposure.ts';
import { DAY, dayStart, HOUR, MINUTE } from '../lib/time.ts';
import type { RecentFeed } from './window.ts';

/**
 * The instant a closed minute M is judged at: its last millisecond. The sums run through the minute's end
 * ([S, M + 1m), never the next minute, which is still arriving), and the payouts are those paid by then (one paid at
 * exactly M + 1m counts from the next minute). The live evaluator, the shadow version and backtests all use it.
 */
export function exposureInstant(M: number): number {
  return M + MINUTE - 1;
}

const BATCH = 2000;
/** Merchants left unread after a start that an update reads unless told otherwise. */
export const UNREAD_AT_CLOSE = 2000;
/** Merchants left unread read at once by `readUnread` (its time budget is checked between chunks). */
const UNREAD_CHUNK = 1000;
/** How long the evaluator's read ahead of a minute may spend in `prepare` (a part of the allowed lateness). */
export const PREPARE_BUDGET_MS = 500;
/** Merchants one `prepare` call considers at most (it reads as many of them as its time allows). */
const PREPARE_MAX = 50_000;
/** Batches read at once (their round trips overlap; every merchant's reads stay bounded by BATCH × IN_FLIGHT). */
const IN_FLIGHT = 4;
/** A jump of the evaluated minute larger than this (skipped minutes) reads every merchant again. */
const MAX_STEP_MS = 10 * MINUTE;
/**
 * Why the recent sums see every fact the aggregator does not name: a window read for minute M happens once every
 * partition's watermark passed M + 1m, so a fact applied after it and not named (less than REREAD_LATENESS_MS late
 * as of its change) lies after M + 1m − REREAD_LATENESS_MS − 1m; the next read's range starts at most MAX_STEP_MS
 * later than M + 1m − 60m. The second must stay before the first, with a margin.
 */
if (60 * MINUTE - MAX_STEP_MS - REREAD_LATENESS_MS < 10 * MINUTE) throw new Error('the recent sums cannot see every fact the aggregator does not name');

export interface ExposureUpdate {
  /** every merchant that owes now (receivable > 0), with its exposure at `now` */
  owing: Map<string, Exposure>;
  /** merchant_exposure changes: owing merchants to upsert, merchants that no longer owe to delete */
  write: { upsert: Exposure[]; remove: string[] };
  /** merchants read again from the store this minute */
  recomputed: number;
  /** merchants whose settled-through time moved forward, their kept sums adjusted (exposure.ts `#shift`) */
  shifted: number;
  /** of those, the ones whose newly settled range was read now, not ahead (`prepare`) */
  shiftReads: number;
  /** merchants whose receivable was decided this minute */
  checked: number;
  /** merchants left unread since the last start (neither judged nor counted owing yet) */
  unread: number;
}

/** A merchant's schedule and its sums over [settledThrough, the recent sums' start). */
interface Older extends Schedule { approved: bigint; canceled: bigint }

/** A payout not paid yet, as far as the schedule goes. */
export interface Pending { paidAt: number; coversTo: number }

/** A merchant's payouts not paid yet at `now`, the earliest first. */
export function pendingPayouts(payouts: readonly Payout[], now: number): Pending[] {
  return payouts.filter((p) => p.paidAtMs > now).map((p) => ({ paidAt: p.paidAtMs, coversTo: p.coversToMs })).sort((a, b) => a.paidAt - b.paidAt);
}

/**
 * The schedule at `now` of a merchant settled through `settledThrough` with `pending` payouts (as scheduleOfPayouts
 * would compute it from all of them), and those still pending.
 */
export function payPending(pending: readonly Pending[], settledThrough: number | null, now: number): Schedule & { pending: Pending[] } {
  let s = settledThrough, i = 0;
  for (; i < pending.length && pending[i].paidAt <= now; i++) {
    const c = Math.floor(pending[i].coversTo / MINUTE) * MINUTE; // a covers_to inside a minute settles from its start
    if (s === null || c > s) s = c;
  }
  return { settledThrough: s, nextPayoutAt: i < pending.length ? pending[i].paidAt : null, pending: pending.slice(i) };
}

export class ExposureTracker {
  /** merchant → its schedule and sums before the recent range; absent: the default schedule and nothing before */
  #older = new Map<string, Older>();
  /** the recent feed's start and continuity at the last update (null: read everything next time) */
  #from: number | null = null;
  #continuity = -1;
  #since: number[] = [];
  #generation: string | null = null;
  #epoch: string | undefined;
  #day: number | null = null;
  #owing = new Map<string, Exposure>();
  /** merchants in merchant_exposure as last committed (null: not read yet) */
  #stored: Set<string> | null = null;
  /**
   * merchant → its payouts not paid yet, as last read (paid_at, covers_to; the earliest first): when one becomes paid
   * its settled-through time moves forward without reading its payouts again (a payout change names the merchant).
   */
  #pending = new Map<string, Pending[]>();
  /**
   * merchant → its sums over [S, S') read ahead of the instant S moves to S' (`prepare`): used by `#shift` when S and
   * S' are still those; dropped when the merchant is read again (a fact in that range after the read names it).
   */
  #ahead = new Map<string, { from: number; to: number; approved: bigint; canceled: bigint }>();
  /** merchants not read since the last start over: nothing of them is kept, they are not judged */
  #unread = new Set<string>();
  /** merchants `prepare` read since the last update: judged at the next one */
  #fresh = new Set<string>();
  /** the last update's instant */
  #now: number | null = null;
  readonly #unreadAtClose: number;

  /** `unreadAtClose`: merchants left unread after a start that an update reads unless told (default UNREAD_AT_CLOSE). */
  constructor(private readonly reader: BucketReader & MoneyReader, private readonly settlement: Settlement,
    private readonly loadStored: () => Promise<Set<string>>, o: { unreadAtClose?: number } = {}) {
    this.#unreadAtClose = o.unreadAtClose ?? UNREAD_AT_CLOSE;
  }

  /** Merchants not read since the last start over (neither judged nor counted owing until read). */
  get unread(): ReadonlySet<string> { return this.#unread; }

  /** The schedule of a merchant without payouts (none, or the D+N schedule) at `now`. */
  #defaultSchedule(now: number): Schedule {
    const s = this.settlement;
    return s.kind === 'days' ? scheduleOfDays(s.days, now, s.tz) : { settledThrough: null, nextPayoutAt: null };
  }

  /**
   * Recomputes what may have changed, as of instant `now` (a closed minute's `exposureInstant`), with the recent
   * sums of that minute's window read (`recent`, drained here). Reads `unreadToRead` merchants left unread besides
   * (default: the constructor's `unreadAtClose`). Does not touch the store.
   */
  async update(now: number, recent: RecentFeed, o: { unreadToRead?: number } = {}): Promise<ExposureUpdate> {
    const r = this.reader;
    const end = Math.floor(now / MINUTE) * MINUTE + MINUTE;
    if (recent.valid && recent.to !== end) throw new Error(`the recent sums end at ${new Date(recent.to).toISOString()}, not at the minute's end ${new Date(end).toISOString()}`);
    this.#stored ??= await this.loadStored();
    // starting over for sure (the first update, or after a reset): the index's names from before are not needed
    const changes = await r.changedMerchants(this.#since, { names: this.#generation !== null });
    const epoch = await r.stateEpoch?.();
    const day = this.settlement.kind === 'days' ? dayStart(now, this.settlement.tz) : null;
    const all = !recent.valid || this.#generation === null || changes.generation !== this.#generation || epoch !== this.#epoch
      || (day !== null && (this.#day === null || day < this.#day)) || recent.continuity !== this.#continuity || this.#from === null
      || recent.from < this.#from || recent.from - this.#from > MAX_STEP_MS;
    const fallback = this.#defaultSchedule(now);
    const check = new Set<string>(recent.touched);
    let dirty: Set<string>;
    let shifted = { moved: 0, read: 0 };
    if (all) {
      this.#older.clear();
      this.#pending.clear();
      this.#ahead.clear();
      this.#unread.clear();
      this.#fresh.clear();
      const everyone = new Set([...(await r.allMerchants()), ...changes.merchants, ...this.#stored, ...this.#owing.keys()]);
      if (recent.valid) {
        // what may owe more now is read now, the rest later (see the module's comment); the index's names from before
        // are history a later whole read covers
        dirty = new Set([...this.#stored, ...this.#owing.keys(), ...recent.touched.filter((m) => cancelsIn(recent, m))]);
        for (const m of everyone) if (!dirty.has(m)) this.#unread.add(m);
      } else dirty = everyone; // the next update starts over anyway
    } else {
      for (const { minute, totals } of recent.departed) {
        for (const [m, t] of totals) {
          if (this.#unread.has(m)) continue; // read whole later
          let o = this.#older.get(m);
          if (!o) this.#older.set(m, (o = { ...fallback, approved: 0n, canceled: 0n }));
          if (o.settledThrough === null || minute >= o.settledThrough) {
            o.approved += t.approvedAmount;
            o.canceled += t.canceledAmount;
          }
          check.add(m);
        }
      }
      dirty = new Set(changes.merchants);
      for (const m of recent.touched) if (this.#unread.has(m) && cancelsIn(recent, m)) dirty.add(m);
      for (const m of dirty) this.#ahead.delete(m);
      for (const m of this.#fresh) check.add(m);
    }
    this.#fresh.clear();
    let more = o.unreadToRead ?? this.#unreadAtClose;
    for (const m of this.#unread) { if (more <= 0) break; if (!dirty.has(m)) { dirty.add(m); more--; } }
    for (const m of dirty) this.#unread.delete(m);
    for (const m of check) if (this.#unread.has(m)) check.delete(m); // not judged until read
    const upTo = recent.valid ? recent.from : end;
    if (!all) shifted = await this.#shift(now, upTo, day, dirty, check);

    // read again: schedules, and the sums before the recent range (all of them when there is no recent range)
    await this.#read([...dirty], now, upTo, check);
    for (const m of this.#owing.keys()) check.add(m);

    // decide: the part before the recent range plus the recent sums (from S when S lies inside the range)
    const olderOf = (m: string): Older => this.#older.get(m) ?? { ...fallback, approved: 0n, canceled: 0n };
    const partial = new Map<string, number>();
    if (recent.valid) for (const m of check) { const s = olderOf(m).settledThrough; if (s !== null && s > recent.from) partial.set(m, s); }
    const fromS = partial.size ? recent.sumsFrom(partial) : new Map<string, Totals>();
    const owing: [string, Older, bigint, bigint][] = [];
    for (const m of check) {
      const o = olderOf(m);
      let a = o.approved, c = o.canceled;
      if (recent.valid) {
        const w = partial.has(m) ? fromS.get(m) : recent.sums.get(m);
        if (w) { a += w.approvedAmount; c += w.canceledAmount; }
      }
      if (c > a) owing.push([m, o, a, c]); else this.#owing.delete(m);
    }
    // the projection's last hour: the recent sums, or read when there are none
    const hour = recent.valid ? recent.sums : await r.totals(owing.map(([m]) => m), end - HOUR, end);
    for (const [m, o, a, c] of owing) {
      const h = hour.get(m);
      this.#owing.set(m, exposureOf({
        merchantId: m, now, schedule: { settledThrough: o.settledThrough, nextPayoutAt: o.nextPayoutAt }, approvedSince: a, canceledSince: c,
        approvedLastHour: h?.approvedAmount ?? 0n, canceledLastHour: h?.canceledAmount ?? 0n,
      }));
    }

    this.#since = changes.next;
    this.#generation = changes.generation;
    this.#epoch = epoch;
    this.#day = day;
    this.#from = recent.valid ? recent.from : null;
    this.#continuity = recent.continuity;
    this.#now = now;
    const remove = [...this.#stored].filter((m) => !this.#owing.has(m));
    return { owing: new Map(this.#owing), write: { upsert: [...this.#owing.values()], remove }, recomputed: dirty.size, shifted: shifted.moved, shiftReads: shifted.read, checked: check.size, unread: this.#unread.size };
  }

  /**
   * Reads merchants whole as of instant `now`: their payouts (schedule, payouts not paid yet) and their sums over
   * [S, upTo). Each is added to `check`.
   */
  async #read(ids: string[], now: number, upTo: number, check: Set<string>, batch = BATCH): Promise<void> {
    const r = this.reader;
    const batches: string[][] = [];
    for (let i = 0; i < ids.length; i += batch) batches.push(ids.slice(i, i + batch));
    await inParallel(batches, IN_FLIGHT, async (part) => {
      const schedules = await readSchedules(r, part, now, this.settlement);
      const groups = new Map<number | null, string[]>();
      for (const [m, { schedule, payouts }] of schedules) {
        const k = schedule.settledThrough !== null && schedule.settledThrough >= upTo ? upTo : schedule.settledThrough;
        const g = groups.get(k);
        if (g) g.push(m); else groups.set(k, [m]);
        const pending = pendingPayouts(payouts, now);
        if (pending.length) this.#pending.set(m, pending); else this.#pending.delete(m);
      }
      for (const [from, ms] of groups) {
        const t = from === upTo ? null : await r.sinceTotals(ms, from, upTo);
        for (const m of ms) {
          const x = t?.get(m);
          this.#older.set(m, { ...schedules.get(m)!.schedule, approved: x?.approvedAmount ?? 0n, canceled: x?.canceledAmount ?? 0n });
          check.add(m);
        }
      }
    });
  }

  /**
   * Settled-through times that moved forward since the last update — a merchant's payout became paid, or a local day
   * started on the D+N schedule — for merchants not read again anyway (`dirty`): the sums kept over [S, upTo) lose
   * [S, S'), read from the store as one range per distinct (S, S') (on the D+N schedule one day's tier keys), instead
   * of reading the merchant's payouts and its sums since S' whole. Exact for the same reason the kept sums are: they
   * equal the store's over [S, upTo) for every merchant the changed-merchant index does not name. A merchant whose
   * kept sums are zero has nothing in any part of the range (bucket values are never negative) and is not read.
   * A merchant whose first payout became paid is added to `dirty` (read again). Returns how many merchants moved.
   */
  async #shift(now: number, upTo: number, day: number | null, dirty: Set<string>, check: Set<string>): Promise<{ moved: number; read: number }> {
    const moves: [string, Older, number | null, number | null][] = []; // merchant, its kept sums, S', next paid_at
    if (day !== null && day !== this.#day) {
      const s = this.#defaultSchedule(now);
      for (const [m, o] of this.#older) if (!dirty.has(m)) moves.push([m, o, s.settledThrough, s.nextPayoutAt]);
    }
    for (const [m, pending] of this.#pending) {
      if (pending[0].paidAt > now || dirty.has(m)) continue;
      const o = this.#older.get(m);
      if (!o) continue; // read with its payouts: always kept (update's read)
      const paid = payPending(pending, o.settledThrough, now);
      if (paid.pending.length) this.#pending.set(m, paid.pending); else this.#pending.delete(m);
      moves.push([m, o, paid.settledThrough, paid.nextPayoutAt]);
    }
    // merchants whose kept sums lose [S, S')
    const lose: [string, number, number][] = [];
    for (const [m, o, to, next] of moves) {
      const from = o.settledThrough;
      const ahead = this.#ahead.get(m);
      this.#ahead.delete(m);
      o.nextPayoutAt = next;
      check.add(m);
      if (to === null || (from !== null && to <= from)) continue; // not moved forward
      o.settledThrough = to;
      if (from === null) { dirty.add(m); continue; } // its first payout paid: its sums were since the oldest day kept; read again
      if (from >= upTo) continue; // nothing kept before the recent range
      if (to >= upTo || (o.approved === 0n && o.canceled === 0n)) { o.approved = 0n; o.canceled = 0n; continue; }
      if (ahead && ahead.from === from && ahead.to === to) { o.approved -= ahead.approved; o.canceled -= ahead.canceled; continue; }
      lose.push([m, from, to]);
    }
    await inParallel(rangeBatches(lose), IN_FLIGHT, async ({ from, to, ms }) => {
      const t = await this.reader.sinceTotals(ms, from, to);
      for (const m of ms) {
        const o = this.#older.get(m)!, x = t.get(m)!;
        o.approved -= x.approvedAmount;
        o.canceled -= x.canceledAmount;
      }
    });
    return { moved: moves.length, read: lose.length };
  }

  /**
   * Reads ahead, within about `budgetMs`, the ranges `#shift` will need: for merchants whose next payout is known
   * (and, on the D+N schedule, every merchant kept, for the next local day) the sums over [S, S') — once S' lies
   * before the last update's recent range, so that any fact landing in it later is at least REREAD_LATENESS_MS late
   * and names the merchant (which drops what was read ahead). The evaluator calls it between a minute's end and its
   * close, off the alert's path. Returns how many merchants were read.
   */
  async prepare(budgetMs: number): Promise<number> {
    const upTo = this.#from;
    if (upTo === null || this.#generation === null) return 0;
    const t0 = performance.now();
    const want: [string, number, number][] = [];
    const consider = (m: string, o: Older, to: number | null) => {
      const from = o.settledThrough;
      if (from === null || to === null || to <= from || to > upTo || (o.approved === 0n && o.canceled === 0n)) return;
      const a = this.#ahead.get(m);
      if (!a || a.from !== from || a.to !== to) want.push([m, from, to]);
    };
    const s = this.settlement;
    if (s.kind === 'days' && this.#day !== null) {
      const next = scheduleOfDays(s.days, dayStart(this.#day + DAY + 2 * HOUR, s.tz), s.tz).settledThrough;
      for (const [m, o] of this.#older) { if (want.length >= PREPARE_MAX) break; consider(m, o, next); }
    }
    for (const [m, pending] of this.#pending) {
      if (want.length >= PREPARE_MAX) break;
      const o = this.#older.get(m);
      if (o) consider(m, o, payPending(pending, o.settledThrough, pending[0].paidAt).settledThrough);
    }
    const batches = rangeBatches(want);
    let read = 0;
    for (let i = 0; i < batches.length && performance.now() - t0 < budgetMs; i += IN_FLIGHT) {
      await Promise.all(batches.slice(i, i + IN_FLIGHT).map(async ({ from, to, ms }) => {
        const t = await this.reader.sinceTotals(ms, from, to);
        for (const m of ms) {
          const x = t.get(m)!;
          this.#ahead.set(m, { from, to, approved: x.approvedAmount, canceled: x.canceledAmount });
        }
        read += ms.length;
      }));
    }
    return read;
  }

  /**
   * Reads merchants left unread since a start, whole, as the last update would have read them (judged from the next
   * update on), in chunks of UNREAD_CHUNK while less than `budgetMs` has passed (a chunk started runs to its end).
   * The evaluator calls it off the alert's path: between a minute's end and its close, and while it waits for the
   * next minute to end. Returns how many were read.
   */
  async readUnread(budgetMs: number): Promise<number> {
    const upTo = this.#from, now = this.#now;
    if (upTo === null || now === null || this.#generation === null) return 0;
    const t0 = performance.now();
    let read = 0;
    while (this.#unread.size && performance.now() - t0 < budgetMs) {
      const ids: string[] = [];
      for (const m of this.#unread) { if (ids.length >= UNREAD_CHUNK) break; ids.push(m); }
      for (const m of ids) this.#unread.delete(m);
      try {
        await this.#read(ids, now, upTo, this.#fresh, UNREAD_CHUNK / IN_FLIGHT);
      } catch (err) {
        // a part may have been kept: all of them stay unread
        for (const m of ids) { this.#unread.add(m); this.#older.delete(m); this.#pending.delete(m); this.#fresh.delete(m); }
        throw err;
      }
      read += ids.length;
    }
    return read;
  }

  /** The minute's write is committed: merchant_exposure now holds the owing set. */
  committed(u: ExposureUpdate): void {
    this.#stored = new Set(u.owing.keys());
  }

  /** Exposures of merchants outside the owing set (firing alerts whose merchant no longer owes), at `now`. */
  async exposuresOf(ids: string[], now: number): Promise<Map<string, Exposure>> {
    if (!ids.length) return new Map();
    return readExposuresWith(this.reader, await readSchedules(this.reader, ids, now, this.settlement), now);
  }

  /** Forget everything (a failed minute is retried from scratch). */
  reset(): void {
    this.#generation = null;
    this.#stored = null;
    this.#since = [];
    this.#from = null;
  }
}

/** Merchants each to be summed over a range [from, to): grouped by range, cut into batches of BATCH (one read each). */
export function rangeBatches(items: Iterable<readonly [merchant: string, from: number, to: number]>): { from: number; to: number; ms: string[] }[] {
  const groups = new Map<string, { from: number; to: number; ms: string[] }>();
  for (const [m, from, to] of items) {
    const k = `${from}/${to}`;
    const g = groups.get(k);
    if (g) g.ms.push(m); else groups.set(k, { from, to, ms: [m] });
  }
  const out: { from: number; to: number; ms: string[] }[] = [];
  for (const g of groups.values()) for (let i = 0; i < g.ms.length; i += BATCH) out.push({ from: g.from, to: g.to, ms: g.ms.slice(i, i + BATCH) });
  return out;
}

/** The merchant has cancels in the recent sums (the last hour). */
function cancelsIn(recent: RecentFeed, m: string): boolean {
  return (recent.sums.get(m)?.canceledAmount ?? 0n) > 0n;
}

/** Runs `fn` over `items`, at most `n` at a time. */
async function inParallel<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => { while (next < items.length) await fn(items[next++]); };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}
