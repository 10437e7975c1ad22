/**
 * A range rebuilt aside and swapped in: `riskmon backfill` on a running system writes the range's new generation
 * under the aside prefix (layout.ts `keys.aside`, the same layout: `<P>:bf:{pN}:…`, every key in its partition's hash
 * slot) while the aggregators go on applying live changes to the live keys and the evaluator goes on judging on them.
 * When it is complete, each partition's range is swapped in under that partition's lock (the aggregators of that
 * partition wait a moment): per merchant of the partition (live or aside), every key of the range — minute keys of
 * its local days, hour and day blocks (clipped to the range where a block straddles its ends), payout hashes — is
 * replaced by its aside counterpart or deleted when there is none (swap.lua), then the window index of the range's
 * recent minutes, the merchant sets are merged and the generation bumped (readers and aggregators drop what they
 * cached of the partition).
 *
 * Locks carry an expiry, renewed while their holder lives (`LockKeeper`): a killed backfill holds nothing for more
 * than `LOCK_TTL_MS`, so the aggregators resume by themselves and a rerun needs no --force.
 */
import { readFileSync } from 'node:fs';
import { scanKeys, type RedisClient } from '../../lib/redis.ts';
import { DAY, HOUR, MINUTE } from '../../lib/time.ts';
import type { TierRange } from './backfill.ts';
import { FIELD_KINDS } from './counters.ts';
import { DAY_BLOCK, type DayClock, HOUR_BLOCK, keys, PAYOUT_BLOCK_DAYS, payoutBlockOf, QUARTER_MINUTES, type Retention } from './layout.ts';

const LUA = readFileSync(new URL('./swap.lua', import.meta.url), 'utf8');

/** Expiry of a backfill's locks; renewed every LOCK_TTL_MS / 6 while it runs. */
export const LOCK_TTL_MS = 60_000;
/** Merchants per swap.lua call: ≈ 50 keys each on an 8-day range, a few ms of Redis per call. */
const MERCHANTS_PER_CALL = 100;

export class SwapLostLockError extends Error {
  constructor(readonly partition: number, readonly owner: string) {
    super(`the backfill lost its lock on partition ${partition} (now "${owner}") while swapping its range in: rerun riskmon backfill with the same range`);
    this.name = 'SwapLostLockError';
  }
}

/** What to swap: the backfill's range and how far keys can reach. */
export interface SwapRange {
  from: TierRange;
  to: TierRange | null;
  clock: DayClock;
  retention: Retention;
  now: number;
  /** the latest instant a fact of the range can lie at (rows dated in the future included) */
  untilMs: number;
  /** window-index minutes kept behind the watermark */
  windowMinutes: number;
  /** the mapping has a payouts table: its hashes are rebuilt whole and swapped too */
  payouts: boolean;
}

/**
 * Holds locks (SET NX PX) and renews them while the process lives: a lock whose holder was killed expires by itself.
 * `acquire` waits for a lock held by an expiring owner up to `waitMs` (logged by the caller's `onWait`).
 */
export class LockKeeper {
  readonly #held = new Map<string, string>();
  readonly #timer: NodeJS.Timeout;
  constructor(private readonly redis: RedisClient) {
    this.#timer = setInterval(() => { void this.renew().catch(() => {}); }, LOCK_TTL_MS / 6);
    this.#timer.unref();
  }

  /** Takes `key` for `token`; null when done, else the owner that still holds it after `waitMs`. `force` takes it over. */
  async acquire(key: string, token: string, o: { force?: boolean; waitMs?: number; onWait?: (owner: string, ttlMs: number) => void }): Promise<string | null> {
    const deadline = performance.now() + (o.waitMs ?? 0);
    let told = 0;
    for (;;) {
      if ((await this.redis.set(key, token, 'PX', LOCK_TTL_MS, 'NX')) !== null) break;
      const owner = (await this.redis.get(key)) ?? '';
      if (owner === token) break;
      if (o.force) { await this.redis.set(key, token, 'PX', LOCK_TTL_MS); break; }
      const ttl = await this.redis.pttl(key);
      // no expiry (a replay's lock, or an interrupted first start's): only --force takes it
      if (ttl === -1 || performance.now() > deadline) return owner;
      if (performance.now() - told >= 10_000) { o.onWait?.(owner, ttl); told = performance.now(); } // said once per 10 s
      await new Promise((res) => setTimeout(res, Math.min(1000, Math.max(50, ttl))));
    }
    this.#held.set(key, token);
    return null;
  }

  async renew(): Promise<void> {
    await Promise.all([...this.#held].map(([k, t]) => this.redis.eval(
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0", 1, k, t, String(LOCK_TTL_MS))));
  }

  async release(key: string): Promise<void> {
    const t = this.#held.get(key);
    if (t === undefined) return;
    this.#held.delete(key);
    await this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, key, t);
  }

  async releaseAll(): Promise<void> {
    clearInterval(this.#timer);
    for (const k of [...this.#held.keys()]) await this.release(k).catch(() => {});
  }
}

/** Deletes everything under the aside prefix but the locks (a killed run's leftovers, or what a finished one left). */
export async function clearAside(redis: RedisClient, prefix: string): Promise<void> {
  const aside = keys.aside(prefix);
  await scanKeys(redis, `${aside}:{p*}:*`, async (found) => {
    const tx = redis.pipeline();
    for (const k of found) if (!k.endsWith('}:lock')) tx.del(k); // one DEL per key: a cluster refuses a multi-key DEL across slots
    if (tx.length) await tx.exec();
  });
}

type Pair = [live: string, aside: string, mode: 'w'] | [live: string, aside: string, mode: 'c', lo: number, hi: number];

/**
 * Every key of `merchant` in partition `p` that the range can touch, as (live, aside, mode) — `w`: wholly in the
 * range; `c`: fields [lo, hi) of it are. Keys whose tier's TTL has passed are left out (they exist in neither).
 */
export function rangeKeys(prefix: string, p: number, merchant: string, r: SwapRange): Pair[] {
  const aside = keys.aside(prefix);
  const out: Pair[] = [];
  const { clock, from, to, retention, now, untilMs } = r;
  const fromDay = clock.localDay(from.day);
  const toDay = to ? clock.localDay(to.day) : Infinity;
  const lastDay = Math.min(toDay - 1, clock.localDay(untilMs));
  // minute keys: whole local days of the range (the range is whole local days), quarters of 6 hours
  for (let d = Math.max(fromDay, clock.localDay(now - retention.minuteTtlMs - 2 * DAY)); d <= lastDay; d++) {
    for (let q = 0; q < (24 * 60) / QUARTER_MINUTES; q++) out.push([keys.minute(prefix, p, merchant, d, q), keys.minute(aside, p, merchant, d, q), 'w']);
  }
  const clip = (key: (x: string) => string, block: number, size: number, a: number, b: number) => {
    const lo = Math.max(a, block * size), hi = Math.min(b, (block + 1) * size);
    if (lo >= hi) return;
    if (lo === block * size && hi === (block + 1) * size) out.push([key(prefix), key(aside), 'w']);
    else out.push([key(prefix), key(aside), 'c', (lo - block * size) * FIELD_KINDS, (hi - block * size) * FIELD_KINDS]);
  };
  const fromHour = from.hour / HOUR, toHour = to ? to.hour / HOUR : Infinity;
  const firstHour = Math.max(fromHour, Math.floor((now - retention.hourTtlMs) / HOUR) - HOUR_BLOCK);
  const lastHour = Math.min(toHour - 1, Math.floor(untilMs / HOUR));
  for (let b = Math.floor(firstHour / HOUR_BLOCK); b <= Math.floor(lastHour / HOUR_BLOCK); b++) {
    clip((x) => keys.hour(x, p, merchant, b), b, HOUR_BLOCK, fromHour, toHour);
  }
  for (let b = Math.floor(fromDay / DAY_BLOCK); b <= Math.floor(lastDay / DAY_BLOCK); b++) {
    clip((x) => keys.day(x, p, merchant, b), b, DAY_BLOCK, fromDay, toDay);
  }
  if (r.payouts) {
    // payout hashes are rebuilt whole, whatever the range: every block a key can still exist for
    const first = payoutBlockOf(now - retention.dayTtlMs - PAYOUT_BLOCK_DAYS * DAY);
    const last = payoutBlockOf(Math.max(now, untilMs) + 2 * PAYOUT_BLOCK_DAYS * DAY);
    for (let b = first; b <= last; b++) out.push([keys.payouts(prefix, p, merchant, b), keys.payouts(aside, p, merchant, b), 'w']);
  }
  return out;
}

/**
 * Swaps partition `p`'s range in from the aside prefix. The caller holds the partition's lock (`token`) and has
 * written everything the aggregators applied up to the partition's stored offset into the aside keys. Returns the
 * keys replaced.
 */
export async function swapPartition(redis: RedisClient, prefix: string, p: number, token: string, r: SwapRange): Promise<number> {
  if (!(redis as any).riskmonSwap) redis.defineCommand('riskmonSwap', { lua: LUA });
  const aside = keys.aside(prefix);
  const lock = keys.lock(prefix, p);
  let replaced = 0;
  const call = async (pairs: Pair[]) => {
    if (!pairs.length) return;
    const ks: string[] = [lock], args: (string | number)[] = [token];
    for (const [live, a, mode, lo, hi] of pairs) {
      ks.push(live, a);
      args.push(mode);
      if (mode === 'c') args.push(lo!, hi!);
    }
    const res = await (redis as any).riskmonSwap(ks.length, ...ks, ...args) as [string, string | number];
    if (String(res[0]) !== 'ok') throw new SwapLostLockError(p, String(res[1]));
    replaced += Number(res[1]);
  };
  const [live, set] = await Promise.all([redis.smembers(keys.merchants(prefix, p)), redis.smembers(keys.merchants(aside, p))]);
  const merchants = [...new Set([...live, ...set])];
  for (let i = 0; i < merchants.length; i += MERCHANTS_PER_CALL) {
    await call(merchants.slice(i, i + MERCHANTS_PER_CALL).flatMap((m) => rangeKeys(prefix, p, m, r)));
  }
  // the window index: the range's minutes the index can still hold (its span behind the watermark, and a day more)
  const toMinute = r.to ? r.to.minute : Infinity;
  const minutes: Pair[] = [];
  for (let m = Math.max(r.from.minute, Math.floor((r.now - (r.windowMinutes + 1440) * MINUTE) / MINUTE) * MINUTE); m < Math.min(toMinute, r.untilMs + MINUTE); m += MINUTE) {
    minutes.push([keys.window(prefix, p, m / MINUTE), keys.window(aside, p, m / MINUTE), 'w']);
    if (minutes.length >= 2000) await call(minutes.splice(0));
  }
  await call(minutes);
  // merchants the range brought stay known to the partition's readers
  const tx = redis.multi()
    .sunionstore(keys.merchants(prefix, p), keys.merchants(prefix, p), keys.merchants(aside, p))
    .sunionstore(keys.foreign(prefix, p), keys.foreign(prefix, p), keys.foreign(aside, p))
    .incr(keys.generation(prefix, p));
  for (const k of [keys.merchants(aside, p), keys.foreign(aside, p), keys.watermark(aside, p), keys.windowGc(aside, p), keys.position(aside, p), keys.changed(aside, p), keys.generation(aside, p), keys.offset(aside, p)]) tx.del(k);
  await tx.exec();
  return replaced;
}
