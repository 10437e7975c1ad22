/**
 * The payout hashes (payouts.ts) rebuilt whole by a history backfill. Payout rows are not in any bucket range (a
 * payout's state is the row, whatever its times), so a backfill of any range rebuilds all of them: the payout hashes
 * of every partition are deleted, the payouts table is written as it stood at the slot's consistent point C (each row
 * +1 in its merchant's first candidate partition; readers sum every candidate), and — for a range backfill on a
 * running system — the payout changes after C that the aggregators had applied (re-read from the topic) are added
 * back in the partition they came from, so the hashes end as the table stands now. The writes go through the live
 * apply (apply.lua, replay mode under the backfill's lock), in batches, so memory stays bounded.
 */
import { decodeEvent } from '../../lib/events.ts';
import { recordValue, type RecordSet } from '../../lib/kafka/index.ts';
import { parseLsn } from '../../lib/lsn.ts';
import { payoutsOf, type PayoutDelta } from '../../lib/mapping.ts';
import { scanKeys, type RedisClient } from '../../lib/redis.ts';
import { Applier } from './apply.ts';
import { partitionTag } from './layout.ts';
import { addPayouts, emptyPlan, type Plan, type PlanContext, type Position } from './plan.ts';
import { ReplayLostLockError } from './rebuild.ts';

/** Payout fields planned per partition before they are written. */
const BATCH = 5000;

export class PayoutRebuild {
  readonly #applier: Applier;
  readonly #plans = new Map<number, { plan: Plan; n: number }>();
  /** per partition: the last topic change taken (re-delivered copies are skipped, as the live path does) */
  readonly #last = new Map<number, Position>();
  topicChanges = 0;

  constructor(private readonly redis: RedisClient, private readonly ctxOf: (p: number) => PlanContext, private readonly lockToken: string,
    private readonly windowKeepMinutes: number) {
    this.#applier = new Applier(redis, ctxOf(0).prefix);
  }

  /** Deletes every payout hash of these partitions (before the table is written again). */
  static async reset(redis: RedisClient, prefix: string, parts: number[]): Promise<void> {
    const wanted = new Set(parts.map((p) => `${partitionTag(prefix, p)}:po:`));
    await scanKeys(redis, `${prefix}:{p*}:po:*`, async (found) => {
      const mine = found.filter((k) => wanted.has(k.slice(0, k.indexOf(':po:') + 4)));
      // one DEL per key: a cluster rejects a multi-key DEL across slots
      if (mine.length) { const tx = redis.pipeline(); for (const k of mine) tx.del(k); await tx.exec(); }
    });
  }

  /** A payout row of the snapshot (or a change's delta) into partition `p`. */
  async add(p: number, d: PayoutDelta): Promise<void> {
    let e = this.#plans.get(p);
    if (!e) this.#plans.set(p, (e = { plan: emptyPlan(), n: 0 }));
    addPayouts(e.plan, [d], this.ctxOf(p));
    if (++e.n >= BATCH) await this.#write(p);
  }

  /**
   * The payout changes among topic records of partition `p` at or after `from` (the consistent point: the snapshot
   * holds everything before it). Other tables' changes are skipped without parsing.
   */
  async addRecords(p: number, r: RecordSet, from: Position, table: string): Promise<void> {
    const needle = Buffer.from(JSON.stringify(table));
    const mapping = this.ctxOf(p).mapping;
    for (let i = 0; i < r.count; i++) {
      const v = recordValue(r, i);
      if (!v || v.indexOf(needle) < 0) continue;
      let e;
      try { e = decodeEvent(v); } catch { continue; } // the aggregator dead-lettered it
      if (e.op === 'heartbeat') continue;
      const pos = { lsn: parseLsn(e.lsn), seq: e.seq };
      const last = this.#last.get(p) ?? from;
      if (pos.lsn < last.lsn || (pos.lsn === last.lsn && pos.seq <= last.seq)) continue;
      this.#last.set(p, pos);
      let ds: PayoutDelta[];
      try { ds = payoutsOf(e, mapping); } catch { continue; }
      if (ds.length) this.topicChanges++;
      for (const d of ds) await this.add(p, d);
    }
  }

  /** Writes what is planned. */
  async finish(): Promise<void> {
    for (const p of [...this.#plans.keys()]) await this.#write(p);
  }

  async #write(p: number): Promise<void> {
    const e = this.#plans.get(p);
    if (!e) return;
    this.#plans.delete(p);
    const res = await this.#applier.apply(p, e.plan, { mode: 'replay', first: '', next: '', lockToken: this.lockToken, windowKeepMinutes: this.windowKeepMinutes });
    if (res.status === 'locked') throw new ReplayLostLockError(p, res.owner);
  }
}
