/**
 * Which merchants owe a receivable, kept exactly every closed minute without range-summing every merchant.
 *
 * A merchant's net since its settled-through time S changes only when (a) a fact or payout of it is applied — the
 * bucket store's changed-merchant index names it (store `changedMerchants`: every live apply scores the merchants
 * it touched with the partition's offset) — or (b) S or its next payout moves with time: one of its payouts
 * becomes paid (the tracker remembers each merchant's next paid_at), or, on the D+N schedule, a local day starts.
 * So each minute the tracker recomputes exactly: the merchants changed since the last minute, those whose schedule
 * moved, and those that owe now (their projection moves with the last hour's rates). Everyone else's receivable is
 * unchanged (0 for those not owing). The first minute, a replay or backfill (a partition's generation changed),
 * or a Redis failover (the state epoch changed) recomputes every merchant once. The owing set with its exposures
 * goes to the risk store's merchant_exposure in the minute's transaction (top list, alerts sorted by receivable).
 */
import type { BucketReader, Exposure, MoneyReader, Settlement } from '../aggregator/store/index.ts';
import { readExposuresWith, readSchedules } from '../aggregator/store/index.ts';
import { nextScheduleChange } from '../lib/exposure.ts';
import { dayStart, MINUTE } from '../lib/time.ts';

/**
 * The instant a closed minute M is judged at: its last millisecond. The sums run through the minute's end
 * ([S, M + 1m), never the next minute, which is still arriving), and the payouts are those paid by then (one paid at
 * exactly M + 1m counts from the next minute). The live evaluator, the shadow version and backtests all use it.
 */
export function exposureInstant(M: number): number {
  return M + MINUTE - 1;
}

const BATCH = 2000;

export interface ExposureUpdate {
  /** every merchant that owes now (receivable > 0), with its exposure at `now` */
  owing: Map<string, Exposure>;
  /** merchant_exposure changes: owing merchants to upsert, merchants that no longer owe to delete */
  write: { upsert: Exposure[]; remove: string[] };
  /** merchants recomputed this minute */
  recomputed: number;
}

export class ExposureTracker {
  #since: number[] = [];
  #generation: string | null = null;
  #epoch: string | undefined;
  #day: number | null = null;
  #owing = new Map<string, Exposure>();
  /** merchants in merchant_exposure as last committed (null: not read yet) */
  #stored: Set<string> | null = null;
  /** merchant → the next paid_at of its payouts (its settled-through time moves then) */
  #nextChange = new Map<string, number>();

  constructor(private readonly reader: BucketReader & MoneyReader, private readonly settlement: Settlement,
    private readonly loadStored: () => Promise<Set<string>>) {}

  /** Recomputes what may have changed, as of instant `now` (a closed minute's `exposureInstant`). Does not touch the store. */
  async update(now: number): Promise<ExposureUpdate> {
    const r = this.reader;
    this.#stored ??= await this.loadStored();
    const changes = await r.changedMerchants(this.#since);
    const epoch = await r.stateEpoch?.();
    const day = this.settlement.kind === 'days' ? dayStart(now, this.settlement.tz) : null;
    const all = this.#generation === null || changes.generation !== this.#generation || epoch !== this.#epoch || day !== this.#day;
    const dirty = new Set<string>(all ? [...(await r.allMerchants()), ...changes.merchants, ...this.#stored] : changes.merchants);
    for (const m of this.#owing.keys()) dirty.add(m);
    for (const [m, t] of this.#nextChange) if (t <= now) dirty.add(m);
    const ids = [...dirty];
    for (let i = 0; i < ids.length; i += BATCH) {
      const part = ids.slice(i, i + BATCH);
      const schedules = await readSchedules(r, part, now, this.settlement);
      const exposures = await readExposuresWith(r, schedules, now);
      for (const m of part) {
        const e = exposures.get(m)!;
        if (e.receivable !== '0') this.#owing.set(m, e); else this.#owing.delete(m);
        const next = nextScheduleChange(schedules.get(m)!.payouts, now);
        if (next === null) this.#nextChange.delete(m); else this.#nextChange.set(m, next);
      }
    }
    this.#since = changes.next;
    this.#generation = changes.generation;
    this.#epoch = epoch;
    this.#day = day;
    const remove = [...this.#stored].filter((m) => !this.#owing.has(m));
    return { owing: new Map(this.#owing), write: { upsert: [...this.#owing.values()], remove }, recomputed: ids.length };
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
  }
}
