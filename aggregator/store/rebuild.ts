/**
 * The write side of a replay (`riskmon replay`, aggregator/replay.ts): resetting every bucket from an instant on,
 * and rebuilding them. A reset range holds nothing, so the rebuild does not pay the live path's price (a Lua apply
 * per chunk doing one HINCRBY per field): it sums one partition's range in memory (sums.ts: per merchant and minute,
 * the same fields as the live planner's), then writes each field's final value with HSET, many fields and keys per
 * call (rebuild.lua, which also checks the replay's lock), the call encoded once (lib/redis.ts RespWriter). The
 * partition's merchant sets, watermark and window-index GC go through the live path's apply (apply.lua, replay
 * mode), so the aggregators continue exactly afterwards. Memory is bounded: past `maxFacts` facts the sums are
 * written and the next ones added to them (HINCRBY).
 */
import { readFileSync } from 'node:fs';
import type { RecordSet } from '../../lib/kafka/index.ts';
import { RespWriter, scanKeys, sendEncoded, type RedisClient } from '../../lib/redis.ts';
import { HOUR, MINUTE } from '../../lib/time.ts';
import { Applier } from './apply.ts';
import { FIELD_KINDS } from './counters.ts';
import { DAY_BLOCK, DayClock, HOUR_BLOCK, keys, partitionTag, withLayoutNames } from './layout.ts';
import { candidateCache, emptyPlan, type PlanContext, type Position } from './plan.ts';
import { MAX_FACTS, RebuildSums } from './sums.ts';

const LUA = withLayoutNames(readFileSync(new URL('./rebuild.lua', import.meta.url), 'utf8'));

/** Arguments per rebuild.lua call: bounds how long one call holds Redis (a few ms) and the request's size. */
const ARGS_PER_CALL = 16_000;
/** rebuild.lua calls in flight on the connection (pipelined). */
const IN_FLIGHT = 4;
const SLICE = 512;

export class ReplayLostLockError extends Error {
  constructor(readonly partition: number, readonly owner: string) {
    super(`replay lost its lock on partition ${partition} (now held by "${owner}"): another replay took over with --force; rerun the replay`);
    this.name = 'ReplayLostLockError';
  }
}

export interface RebuildOptions {
  /** the planner's context for this partition; `watermark` and `lastPosition` are the partition's stored ones */
  ctx: PlanContext & { from: { minute: number; hour: number; day: number }; to?: { minute: number; hour: number; day: number } };
  lockToken: string;
  /** facts summed in memory before they are written (bounds memory: ~60 bytes per distinct merchant and minute) */
  maxFacts?: number;
  /**
   * The window index is written for minutes from this instant on (a backfill: the index's span behind now), on top
   * of its span behind the partition's watermark; default: the watermark's span only (none: every minute).
   */
  windowFrom?: number;
}

/** One partition's rebuild: `add` every chunk of the range in order, then `finish`. */
export class PartitionRebuild {
  readonly #redis: RedisClient;
  readonly #applier: Applier;
  readonly #ctx: RebuildOptions['ctx'];
  readonly #token: string;
  readonly #maxFacts: number;
  readonly #windowFrom: number;
  #sums: RebuildSums;
  /** the sums a background write (`flushBehind`) has taken, cleared and handed back when written */
  #spare: RebuildSums | null = null;
  /** the background write in flight (never rejects: its error is kept in #failed) */
  #behind: Promise<void> = Promise.resolve();
  #failed: unknown = null;
  /** changes and facts of the sums handed to background writes */
  #changesBefore = 0;
  #writeMs = 0;
  #factsBefore = 0;
  /** whether sums were written already: later ones are added to them (HINCRBY), not set */
  #written = false;
  /** rebuild.lua calls made: with the lock token, each call's unique window-index version */
  #calls = 0;

  constructor(redis: RedisClient, o: RebuildOptions) {
    this.#redis = redis;
    this.#applier = new Applier(redis, o.ctx.prefix);
    this.#ctx = o.ctx;
    this.#token = o.lockToken;
    this.#maxFacts = Math.min(o.maxFacts ?? 300_000, MAX_FACTS);
    this.#windowFrom = o.windowFrom ?? -Infinity;
    const c = o.ctx;
    this.#sums = new RebuildSums({ ...c, candidates: c.candidates ?? candidateCache(c.partitions, c.hotShards) }, c.watermark, c.lastPosition ?? null);
  }

  /** The position of the last row change added (or the stored one): where the partition's duplicates check continues. */
  get position(): Position | null { return this.#sums.position; }
  get changes(): number { return this.#changesBefore + this.#sums.changes; }
  get facts(): number { return this.#factsBefore + this.#sums.facts; }

  async add(records: RecordSet): Promise<void> {
    // chunks of SLICE messages, as the live path's (a chunk's watermark decides the window index's horizon);
    // a fetch holds up to 4 MiB of messages: the memory bound is checked after each
    for (let i = 0; i < records.count; i += SLICE) {
      this.#sums.addChunk(records, i, Math.min(i + SLICE, records.count));
      if (this.#sums.pending >= this.#maxFacts) await this.#flush();
    }
  }

  /**
   * Adds one merchant's totals of one minute, already summed (a history backfill's GROUP BY); amounts are exact
   * integers. Writes the sums once `maxFacts` cells are pending.
   */
  async addTotals(merchant: string, minuteMs: number, approvals: number, approvedAmount: bigint, cancels: number, canceledAmount: bigint): Promise<void> {
    if (this.addTotalsSync(merchant, minuteMs, approvals, approvedAmount, cancels, canceledAmount)) await this.#flush();
  }

  /** As addTotals without writing: true when `maxFacts` cells are pending and `flush` is due. */
  addTotalsSync(merchant: string, minuteMs: number, approvals: number, approvedAmount: bigint, cancels: number, canceledAmount: bigint): boolean {
    this.#sums.addTotals(merchant, minuteMs, approvals, approvedAmount, cancels, canceledAmount, this.#windowFrom);
    return this.#sums.pending >= this.#maxFacts;
  }

  /** Writes the sums so far (later ones are added to them). */
  async flush(): Promise<void> {
    await this.#flush();
  }

  /**
   * Starts writing the sums so far in the background, if at least `min` cells (default maxFacts) are pending, and
   * returns once new ones can be added (a history backfill reads on meanwhile). One background write at a time: waits for the previous one first, so at most two sets of
   * sums are held (memory stays bounded by 2 × maxFacts) and writes reach Redis in order. For totals only
   * (addTotals): the watermark does not move.
   */
  async flushBehind(min = this.#maxFacts): Promise<void> {
    await this.#settle();
    if (this.#sums.pending < Math.min(min, this.#maxFacts) || this.#sums.pending === 0) return; // too few (another caller took them meanwhile)
    const sums = this.#sums;
    this.#changesBefore += sums.changes;
    this.#factsBefore += sums.facts;
    this.#sums = this.#spare ?? new RebuildSums(sums.context, sums.watermark, sums.position);
    this.#spare = null;
    this.#sums.changes = 0;
    this.#sums.facts = 0;
    this.#behind = this.#write(sums).then(() => { this.#spare = sums; }, (err) => { this.#failed = err; });
  }

  /** Waits for the background write; rethrows its error. */
  async #settle(): Promise<void> {
    for (let b = this.#behind; ; b = this.#behind) {
      await b;
      if (b === this.#behind) break; // no other caller started one meanwhile
    }
    if (this.#failed) throw this.#failed;
  }

  /** Milliseconds spent writing (background writes included; those of several partitions overlap). */
  get writeMs(): number { return this.#writeMs; }

  /** Cells summed and not yet written. */
  get pending(): number { return this.#sums.pending; }

  /** Cells summed before the sums are written. */
  get maxFacts(): number { return this.#maxFacts; }

  /** Writes what is left; the merchant sets, watermark and window-index GC included. */
  async finish(): Promise<void> {
    await this.#flush();
  }

  async #flush(): Promise<void> {
    await this.#settle();
    await this.#write(this.#sums);
  }

  async #write(sums: RebuildSums): Promise<void> {
    const t = performance.now();
    try {
      await this.#writeSums(sums);
    } finally {
      this.#writeMs += performance.now() - t;
    }
  }

  async #writeSums(sums: RebuildSums): Promise<void> {
    const { prefix, partition: p } = this.#ctx;
    const wm = sums.watermark;
    // The window index keeps `windowKeepMinutes` behind the watermark: minutes the range's end has left behind
    // are not written (the live path writes them and its GC deletes them at the next apply).
    const horizon = Math.max(wm === null ? -Infinity : Math.floor(wm / MINUTE) - this.#ctx.windowKeepMinutes, Math.floor(this.#windowFrom / MINUTE));
    const mode = this.#written ? 'i' : 's';
    this.#written = true; // a write after this one adds to it, even while this one is still in flight
    const windowMode = mode.toUpperCase(); // a window-index hash also gets the call's version
    const windowPrefix = keys.windowPrefix(prefix, p);
    const lockKey = keys.lock(prefix, p);
    // KEYS and ARGV of the next rebuild.lua call, encoded as they are made (lib/redis.ts RespWriter); a call's KEYS
    // start with the lock key, its ARGV with the lock token and the call's version
    const ks = new RespWriter(), args = new RespWriter();
    const startCall = () => {
      ks.string(lockKey);
      args.string(this.#token).string(`${this.#token}:${++this.#calls}`);
    };
    startCall();
    const inFlight = new Set<Promise<void>>();
    let failed: Error | null = null;
    const send = async () => {
      const head = new RespWriter(LUA.length + 64).string(LUA).integer(ks.count);
      const call: Promise<void> = sendEncoded(this.#redis, 'eval', [LUA, '1', lockKey], [head.take(), ks.take(), args.take()]).then((res) => {
        const [status, owner] = res as string[];
        if (String(status) !== 'ok') throw new ReplayLostLockError(p, String(owner));
      }).catch((err) => { failed ??= err; }).finally(() => { inFlight.delete(call); });
      startCall();
      inFlight.add(call);
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      if (failed) throw failed;
    };
    const merchants = new Set<string>(), foreign = new Set<string>();
    const candidates = this.#ctx.candidates ?? candidateCache(this.#ctx.partitions, this.#ctx.hotShards);
    const touched = (m: string) => {
      merchants.add(m);
      if (!candidates(m).includes(p)) foreign.add(m);
    };
    for (const { key, expiry, fields } of sums.entries(horizon, touched)) {
      ks.string(key);
      args.string(key.startsWith(windowPrefix) ? windowMode : mode).integer(fields.count / 2).integer(Math.ceil((expiry - (this.#ctx.clockOffsetMs ?? 0)) / 1000)).append(fields); // by Redis' clock
      if (args.count >= ARGS_PER_CALL) await send();
    }
    if (ks.count > 1) await send();
    await Promise.all(inFlight);
    if (failed) throw failed;
    sums.clear();
    // merchant sets, watermark, window-index GC, under the same lock check (the live path's apply, replay mode)
    const meta = emptyPlan();
    meta.merchants = merchants;
    meta.foreign = foreign;
    meta.watermark = wm;
    const res = await this.#applier.apply(p, meta, { mode: 'replay', first: '', next: '', lockToken: this.#token, windowKeepMinutes: this.#ctx.windowKeepMinutes });
    if (res.status === 'locked') throw new ReplayLostLockError(p, res.owner);
  }
}

/**
 * Deletes every bucket at or after `from` in every tier and the window index of the given partitions: one SCAN over
 * the prefix's partition-tagged keys on every master (SCAN walks the whole keyspace whatever the pattern, so once,
 * not per partition); the deletes go in one pipeline per partition (a cluster pipeline stays on one slot).
 */
export async function resetFrom(redis: RedisClient, prefix: string, parts: number[], clock: DayClock, from: { minute: number; hour: number; day: number }): Promise<void> {
  await resetRange(redis, prefix, parts, clock, from, null);
}

/**
 * Deletes every bucket in [from, to) of every tier and the window index (to = null: no end). `from.day` and
 * `to.day` are local midnights, `from.hour` and `to.hour` whole UTC hours, as a backfill's range
 * (store/backfill.ts `rangeOf`).
 */
export async function resetRange(redis: RedisClient, prefix: string, parts: number[], clock: DayClock, from: { minute: number; hour: number; day: number }, to: { minute: number; hour: number; day: number } | null): Promise<void> {
  const fromDay = clock.localDay(from.day);
  const fromHour = from.hour / HOUR;
  const toDay = to ? clock.localDay(to.day) : Infinity;
  const toHour = to ? to.hour / HOUR : Infinity;
  const toMinute = to ? to.minute : Infinity;
  // fields [a, b) of a block of `size` periods starting at period `start`, clipped to the range
  const clip = (key: string, tx: ReturnType<RedisClient['pipeline']>, start: number, size: number, a: number, b: number) => {
    const lo = Math.max(a, start), hi = Math.min(b, start + size);
    if (lo >= hi) return;
    if (lo === start && hi === start + size) tx.del(key);
    else tx.hdel(key, ...range((lo - start) * FIELD_KINDS, (hi - start) * FIELD_KINDS));
  };
  const wanted = new Set(parts);
  const head = `${prefix}:{p`;
  await scanKeys(redis, `${head}*}:*`, async (found) => {
    const byPartition = new Map<number, ReturnType<RedisClient['pipeline']>>();
    for (const key of found) {
      const close = key.indexOf('}:', head.length);
      if (close < 0) continue;
      const p = Number(key.slice(head.length, close));
      if (!wanted.has(p)) continue;
      const tag = partitionTag(prefix, p);
      if (!key.startsWith(`${tag}:`)) continue;
      let tx = byPartition.get(p);
      if (!tx) byPartition.set(p, (tx = redis.pipeline()));
      const rest = key.slice(tag.length + 1);
      const kind = rest.slice(0, rest.indexOf(':'));
      const parts_ = rest.split(':');
      if (kind === 'm') {
        const day = Number(parts_[parts_.length - 2]);
        if (day >= fromDay && day < toDay) tx.del(key);
      } else if (kind === 'xm') {
        const m = Number(parts_[1]) * MINUTE;
        if (m >= from.minute && m < toMinute) tx.del(key);
      } else if (kind === 'h') {
        const block = Number(parts_[parts_.length - 1]);
        clip(key, tx, block * HOUR_BLOCK, HOUR_BLOCK, fromHour, toHour);
      } else if (kind === 'd') {
        const block = Number(parts_[parts_.length - 1]);
        clip(key, tx, block * DAY_BLOCK, DAY_BLOCK, fromDay, toDay);
      }
    }
    await Promise.all([...byPartition.values()].filter((tx) => tx.length).map((tx) => tx.exec()));
  });
}

function range(a: number, b: number): string[] {
  return Array.from({ length: b - a }, (_, i) => String(a + i));
}
