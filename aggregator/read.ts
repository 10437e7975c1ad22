/**
 * BucketReader over the Redis layout of layout.ts, used by the rules (alerting) and the API. A merchant's state may
 * sit in several partitions (hot-merchant shards, and "foreign" partitions after an UPDATE moved a row to another
 * merchant); every read merges over all of them.
 *
 * - series: one merchant at 1m / 1h / 1d (minute points only while the minute tier holds them).
 * - totalsByMerchant: every merchant active in a window. At 1m it reads the all-merchants minute index
 *   (`xm`, a few hundred HGETALLs for a 60-minute window); older windows and 1h/1d walk each partition's merchant set.
 * - totals: given merchants; minutes where the minute tier holds the range, whole hours for the older part.
 */
import type { Redis } from 'ioredis';
import { addTotals, emptyTotals, isEmpty, type BucketReader, type Point, type Step, type Totals } from '../lib/buckets.ts';
import { candidatePartitions } from '../lib/partition.ts';
import { HOUR, MINUTE } from '../lib/time.ts';
import { addField, DAY_BLOCK, DayClock, FIELD_KINDS, HOUR_BLOCK, keys, QUARTER_MINUTES, windowField } from './layout.ts';

export interface ReaderOptions {
  prefix: string;
  partitions: number;
  hotShards: number;
  tz: string;
  /** TTL of the minute tier (RISKMON_MINUTE_TTL_DAYS); default 2 days. */
  minuteTtlMs?: number;
  /** Wall clock, for which part of a range the minute tier still holds. */
  now?: () => number;
}

/** Commands per pipeline round trip: bounds client memory on 100,000-merchant reads. */
const PIPELINE_CHUNK = 5_000;

type Cmd = [name: string, ...args: (string | number)[]];

async function run(redis: Redis, cmds: Cmd[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < cmds.length; i += PIPELINE_CHUNK) {
    const res = await redis.pipeline(cmds.slice(i, i + PIPELINE_CHUNK)).exec();
    for (const [err, v] of res ?? []) {
      if (err) throw err;
      out.push(v);
    }
  }
  return out;
}

/** A tier key with its slots (field div 4) decoded to bucket start times, for one (partition, merchant) read. */
interface KeyRead { key: string; timeOf: (slot: number) => number }

export function createBucketReader(redis: Redis, opts: ReaderOptions): BucketReader {
  const { prefix, partitions, hotShards } = opts;
  const clock = new DayClock(opts.tz);
  const minuteTtlMs = opts.minuteTtlMs ?? 2 * 86_400_000;
  const now = opts.now ?? Date.now;
  const allPartitions = Array.from({ length: partitions }, (_, i) => i);

  /** Candidate partitions plus every partition whose foreign set names the merchant. */
  async function partitionsOf(merchantIds: string[]): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const m of merchantIds) out.set(m, candidatePartitions(m, partitions, hotShards));
    if (!merchantIds.length) return out;
    const res = (await run(redis, allPartitions.map((p) => ['smismember', keys.foreign(prefix, p), ...merchantIds]))) as number[][];
    res.forEach((flags, p) => flags.forEach((f, i) => {
      if (!f) return;
      const list = out.get(merchantIds[i])!;
      if (!list.includes(p)) list.push(p);
    }));
    return out;
  }

  /** The keys of one (partition, merchant) that cover [from, to) at `step`. */
  function keyReads(p: number, m: string, from: number, to: number, step: Step): KeyRead[] {
    const reads: KeyRead[] = [];
    if (step === '1m') {
      for (let ds = clock.dayStart(from); ds < to; ds = clock.dayStart(ds + 30 * HOUR)) {
        const day = clock.localDayOfStart(ds);
        const next = clock.dayStart(ds + 30 * HOUR);
        for (let q = 0; ds + q * QUARTER_MINUTES * MINUTE < next; q++) {
          const qs = ds + q * QUARTER_MINUTES * MINUTE;
          if (qs + QUARTER_MINUTES * MINUTE <= from || qs >= to) continue;
          reads.push({ key: keys.minute(prefix, p, m, day, q), timeOf: (slot) => ds + slot * MINUTE });
        }
      }
    } else if (step === '1h') {
      for (let b = Math.floor(from / HOUR / HOUR_BLOCK); b <= Math.floor((to - 1) / HOUR / HOUR_BLOCK); b++) {
        reads.push({ key: keys.hour(prefix, p, m, b), timeOf: (slot) => (b * HOUR_BLOCK + slot) * HOUR });
      }
    } else {
      for (let b = Math.floor(clock.localDay(from) / DAY_BLOCK); b <= Math.floor(clock.localDay(to - 1) / DAY_BLOCK); b++) {
        reads.push({ key: keys.day(prefix, p, m, b), timeOf: (slot) => clock.startOfLocalDay(b * DAY_BLOCK + slot) });
      }
    }
    return reads;
  }

  /**
   * Reads (merchant, partitions) pairs at `step` over [from, to) and hands every bucket field to `visit`.
   * One HGETALL per key; the hashes are small (≤ 4 × 360 / 120 / 100 fields).
   */
  async function scan(pairs: [string, number[]][], from: number, to: number, step: Step,
    visit: (merchant: string, t: number, kind: number, value: string) => void): Promise<void> {
    if (to <= from) return;
    const cmds: Cmd[] = [];
    const meta: [string, KeyRead][] = [];
    for (const [m, ps] of pairs) {
      for (const p of ps) {
        for (const r of keyReads(p, m, from, to, step)) { cmds.push(['hgetall', r.key]); meta.push([m, r]); }
      }
    }
    const res = (await run(redis, cmds)) as Record<string, string>[];
    res.forEach((h, i) => {
      const [m, r] = meta[i];
      for (const f in h) {
        const n = Number(f);
        const t = r.timeOf(Math.floor(n / FIELD_KINDS));
        if (t >= from && t < to) visit(m, t, n % FIELD_KINDS, h[f]);
      }
    });
  }

  function accumulate(into: Map<string, Totals>) {
    return (m: string, _t: number, kind: number, v: string) => {
      let t = into.get(m);
      if (!t) into.set(m, (t = emptyTotals()));
      addField(t, kind, v);
    };
  }

  function dropEmpty(map: Map<string, Totals>): Map<string, Totals> {
    for (const [m, t] of map) if (isEmpty(t)) map.delete(m);
    return map;
  }

  /** Earliest minute the all-merchants minute index still holds in every partition; +∞ when it holds none. */
  async function windowIndexStart(): Promise<number> {
    const gcs = (await run(redis, allPartitions.map((p) => ['get', keys.windowGc(prefix, p)]))) as (string | null)[];
    let start = -Infinity;
    for (const g of gcs) if (g !== null) start = Math.max(start, Number(g) * MINUTE);
    return start;
  }

  return {
    async series(merchantId, fromMs, toMs, step) {
      const ps = (await partitionsOf([merchantId])).get(merchantId)!;
      const byT = new Map<number, Totals>();
      await scan([[merchantId, ps]], fromMs, toMs, step, (_m, t, kind, v) => {
        let x = byT.get(t);
        if (!x) byT.set(t, (x = emptyTotals()));
        addField(x, kind, v);
      });
      const points: Point[] = [];
      for (const [t, x] of byT) if (!isEmpty(x)) points.push({ t, ...x });
      return points.sort((a, b) => a.t - b.t);
    },

    async totalsByMerchant(fromMs, toMs, step) {
      const out = new Map<string, Totals>();
      if (toMs <= fromMs) return out;
      if (step === '1m' && fromMs >= (await windowIndexStart())) {
        const cmds: Cmd[] = [];
        for (let t = fromMs; t < toMs; t += MINUTE) {
          for (const p of allPartitions) cmds.push(['hgetall', keys.window(prefix, p, Math.floor(t / MINUTE))]);
        }
        const add = accumulate(out);
        for (const h of (await run(redis, cmds)) as Record<string, string>[]) {
          for (const f in h) {
            const [m, kind] = windowField(f);
            add(m, 0, kind, h[f]);
          }
        }
        return dropEmpty(out);
      }
      // Every partition's merchants, each read from that partition only: a merchant's shards and foreign
      // partitions are all visited because every partition is.
      const sets = (await run(redis, allPartitions.map((p) => ['smembers', keys.merchants(prefix, p)]))) as string[][];
      const pairs: [string, number[]][] = [];
      sets.forEach((ms, p) => { for (const m of ms) pairs.push([m, [p]]); });
      await scan(pairs, fromMs, toMs, step, accumulate(out));
      return dropEmpty(out);
    },

    async totals(merchantIds, fromMs, toMs) {
      const out = new Map<string, Totals>();
      for (const m of merchantIds) out.set(m, emptyTotals());
      if (toMs <= fromMs || !merchantIds.length) return out;
      // The minute tier holds minutes from about now − TTL on; one extra hour of margin for keys about to expire.
      const horizon = Math.ceil((now() - minuteTtlMs) / HOUR) * HOUR + HOUR;
      const split = Math.min(toMs, Math.max(fromMs, horizon));
      const pairs = [...(await partitionsOf(merchantIds))];
      const add = accumulate(out);
      if (split > fromMs) {
        // Older than the minute tier: whole hours inside [from, split) (exact when from/split are on the hour).
        const hFrom = Math.ceil(fromMs / HOUR) * HOUR;
        const hTo = Math.floor(split / HOUR) * HOUR;
        await scan(pairs, hFrom, hTo, '1h', add);
      }
      await scan(pairs, split, toMs, '1m', add);
      return out;
    },

    async watermark() {
      const wms = (await run(redis, allPartitions.map((p) => ['get', keys.watermark(prefix, p)]))) as (string | null)[];
      let min = Infinity;
      for (const w of wms) {
        if (w === null) return null;
        min = Math.min(min, Number(w));
      }
      return min;
    },
  };
}

/** Merges `b` into `a` (sum per merchant); handy for callers combining reads. */
export function mergeTotals(a: Map<string, Totals>, b: Map<string, Totals>): Map<string, Totals> {
  for (const [m, t] of b) addTotals(a.get(m) ?? (a.set(m, emptyTotals()), a.get(m)!), t);
  return a;
}
