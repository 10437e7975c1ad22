/**
 * BucketReader over the Redis layout of layout.ts, used by the rules (alerting), the API and the tools. A merchant's state may
 * sit in several partitions (hot-merchant shards, and "foreign" partitions after an UPDATE moved a row to another
 * merchant); every read merges over all of them.
 *
 * - series: one merchant at 1m / 1h / 1d (minute points only while the minute tier holds them).
 * - totalsByMerchant: every merchant active in a window. At 1m it reads the all-merchants minute index
 *   (`xm`, a few hundred keys for a 60-minute window); older windows and 1h/1d walk each partition's merchant set.
 * - totals: given merchants; minutes where the minute tier holds the range, whole hours for the older part.
 * - windowSlices: the minute index per (minute, partition) with a fingerprint, so a caller keeping a sliding
 *   window in memory re-reads only what changed (alerting/window.ts); a slice read once its minute had ended is
 *   re-read as the merchants written since (its late log), not whole.
 *
 * Which keys and slots a range covers is ranges.ts (pure); the Lua scripts that read them are scripts.ts. One
 * script call per partition, so every call stays inside one Redis Cluster slot.
 */
import { readBackfill, readGap } from './backfill.ts';
import { systemClock } from '../../lib/clock.ts';
import { masters, type RedisClient } from '../../lib/redis.ts';
import { candidatePartitions } from '../../lib/partition.ts';
import { HOUR, MINUTE } from '../../lib/time.ts';
import { addField, emptyTotals, FIELD_KINDS, forEachWindowCounter, isEmpty, type Totals } from './counters.ts';
import { DayClock, keys, PAYOUT_BLOCK_DAYS, payoutBlockOf } from './layout.ts';
import { standingPayouts } from './payouts.ts';
import { keyReads, slotTimeOf, tierSegments, type KeyRead, type RangeContext } from './ranges.ts';
import type { BucketReader, MinuteTotalsReader, MoneyReader, Point, Step, WindowSlice, WindowSliceReader } from './reader.ts';
import type { Payout } from '../../lib/mapping.ts';
import { defineScripts, hashesOf, KEYS_PER_CALL, readHashes, run, type Cmd } from './scripts.ts';

export interface ReaderOptions {
  prefix: string;
  partitions: number;
  hotShards: number;
  tz: string;
  /** TTL of the minute tier (RISKMON_MINUTE_TTL_DAYS); default 2 days. */
  minuteTtlMs?: number;
  /** TTL of the hour and day tiers (RISKMON_HOUR_TTL_DAYS, RISKMON_DAY_TTL_DAYS); default 36 and 400 days. */
  hourTtlMs?: number;
  dayTtlMs?: number;
  /** Wall clock, for which part of a range the minute tier still holds. */
  now?: () => number;
  /**
   * How long `series` may use a cached copy of the foreign sets (default 1 s). A row an UPDATE just moved to a
   * partition outside its merchant's candidates shows in `series` at most this much later; `totals` and
   * `totalsByMerchant` always read them fresh.
   */
  foreignTtlMs?: number;
}

/**
 * Hands every bucket field of one script reply (per key: its fields and values joined by NUL, see scripts.ts) to
 * `visit`, with the bucket's start time, when that lies in [from, to). Pure.
 */
export function visitBucketReplies(hashes: string[], reads: KeyRead[], timeOf: (base: number, slot: number) => number, from: number, to: number,
  visit: (merchant: string, t: number, kind: number, value: string) => void): void {
  for (let i = 0; i < hashes.length; i++) {
    if (hashes[i] === '') continue;
    const r = reads[i];
    const fv = hashes[i].split('\0');
    for (let j = 0; j < fv.length; j += 2) {
      const n = Number(fv[j]);
      const t = timeOf(r.base, Math.floor(n / FIELD_KINDS));
      if (t >= from && t < to) visit(r.m, t, n % FIELD_KINDS, fv[j + 1]);
    }
  }
}

/** A visitor summing fields per merchant into `into`. */
export function accumulate(into: Map<string, Totals>) {
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

/** Adds a window-index hash reply (scripts.ts: NUL-joined fields and values) into `into`. Pure. */
export function addWindowHash(into: Map<string, Totals>, s: string): void {
  forEachWindowCounter(s, (m, kind, v) => {
    let t = into.get(m);
    if (!t) into.set(m, (t = emptyTotals()));
    addField(t, kind, v);
  });
}

export function createBucketReader(redis: RedisClient, opts: ReaderOptions): BucketReader & WindowSliceReader & MinuteTotalsReader & MoneyReader {
  const { prefix, partitions, hotShards } = opts;
  defineScripts(redis);
  const clock = new DayClock(opts.tz);
  const minuteTtlMs = opts.minuteTtlMs ?? 2 * 86_400_000;
  const hourTtlMs = opts.hourTtlMs ?? 36 * 86_400_000;
  const dayTtlMs = opts.dayTtlMs ?? 400 * 86_400_000;
  const foreignTtlMs = opts.foreignTtlMs ?? 1000;
  const now = opts.now ?? systemClock;
  const allPartitions = Array.from({ length: partitions }, (_, i) => i);

  // Pure functions of the merchant / the day number, asked for on every read: cached (bounded).
  const candidates = new Map<string, number[]>();
  function candidatesOf(m: string): number[] {
    let c = candidates.get(m);
    if (!c) {
      if (candidates.size > 200_000) candidates.clear();
      candidates.set(m, (c = candidatePartitions(m, partitions, hotShards)));
    }
    return c;
  }
  const dayStarts = new Map<number, number>();
  function startOfLocalDay(n: number): number {
    let s = dayStarts.get(n);
    if (s === undefined) {
      if (dayStarts.size > 10_000) dayStarts.clear();
      dayStarts.set(n, (s = clock.startOfLocalDay(n)));
    }
    return s;
  }

  const ranges: RangeContext = { prefix, clock, startOfLocalDay };

  let foreignCache: { at: number; sets: Promise<Set<string>[]> } | null = null;
  function foreignSets(): Promise<Set<string>[]> {
    const t = performance.now(); // elapsed time (a cache), also when a test freezes `now`
    if (!foreignCache || t - foreignCache.at >= foreignTtlMs || t < foreignCache.at) {
      const sets = run(redis, allPartitions.map((p) => ['smembers', keys.foreign(prefix, p)]))
        .then((res) => (res as string[][]).map((ms) => new Set(ms)));
      sets.catch(() => { if (foreignCache?.sets === sets) foreignCache = null; });
      foreignCache = { at: t, sets };
    }
    return foreignCache.sets;
  }

  /** Candidate partitions plus every partition whose foreign set names the merchant. */
  async function partitionsOf(merchantIds: string[], cached: boolean): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const m of merchantIds) out.set(m, candidatesOf(m));
    if (!merchantIds.length) return out;
    const addForeign = (m: string, p: number) => {
      const list = out.get(m)!;
      if (!list.includes(p)) out.set(m, [...list, p]);
    };
    if (cached) {
      const sets = await foreignSets();
      sets.forEach((s, p) => { if (s.size) for (const m of merchantIds) if (s.has(m)) addForeign(m, p); });
      return out;
    }
    const res = (await run(redis, allPartitions.map((p) => ['smismember', keys.foreign(prefix, p), ...merchantIds]))) as number[][];
    res.forEach((flags, p) => flags.forEach((f, i) => { if (f) addForeign(merchantIds[i], p); }));
    return out;
  }

  /**
   * Reads (merchant, partitions) pairs at `step` over [from, to) and hands every bucket field to `visit`.
   * One script call per partition and up to KEYS_PER_CALL keys, returning only the fields inside the range.
   */
  async function scan(pairs: [string, number[]][], from: number, to: number, step: Step,
    visit: (merchant: string, t: number, kind: number, value: string) => void): Promise<void> {
    if (to <= from) return;
    const byPartition = new Map<number, KeyRead[]>();
    for (const [m, ps] of pairs) {
      for (const p of ps) {
        let l = byPartition.get(p);
        if (!l) byPartition.set(p, (l = []));
        for (const r of keyReads(ranges, p, m, from, to, step)) l.push(r);
      }
    }
    const cmds: Cmd[] = [];
    const meta: KeyRead[][] = [];
    for (const reads of byPartition.values()) {
      for (let i = 0; i < reads.length; i += KEYS_PER_CALL) {
        const chunk = reads.slice(i, i + KEYS_PER_CALL);
        cmds.push(readHashes(chunk.map((r) => r.key), chunk.map((r) => ({ lo: r.lo * FIELD_KINDS, hi: r.hi * FIELD_KINDS + FIELD_KINDS - 1 }))));
        meta.push(chunk);
      }
    }
    const timeOf = slotTimeOf(step, startOfLocalDay);
    const res = await run(redis, cmds);
    for (let c = 0; c < res.length; c++) visitBucketReplies(hashesOf(res[c], meta[c].length), meta[c], timeOf, from, to, visit);
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
      const ps = (await partitionsOf([merchantId], true)).get(merchantId)!;
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
        for (const p of allPartitions) {
          const ks: string[] = [];
          for (let t = fromMs; t < toMs; t += MINUTE) ks.push(keys.window(prefix, p, Math.floor(t / MINUTE)));
          for (let i = 0; i < ks.length; i += KEYS_PER_CALL) {
            const chunk = ks.slice(i, i + KEYS_PER_CALL);
            cmds.push(readHashes(chunk));
          }
        }
        for (const [c, reply] of (await run(redis, cmds)).entries()) for (const s of hashesOf(reply, cmds[c][1] as number)) addWindowHash(out, s);
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
      const pairs = [...(await partitionsOf(merchantIds, false))];
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

    async minuteTotals(fromMs, toMs) {
      const out = new Map<number, Map<string, Totals>>();
      const at = (t: number) => {
        let m = out.get(t);
        if (!m) out.set(t, (m = new Map()));
        return m;
      };
      if (toMs <= fromMs) return out;
      if (fromMs >= (await windowIndexStart())) {
        const cmds: Cmd[] = [];
        const meta: number[][] = [];
        for (const p of allPartitions) {
          const ts: number[] = [];
          for (let t = fromMs; t < toMs; t += MINUTE) ts.push(t);
          for (let i = 0; i < ts.length; i += KEYS_PER_CALL) {
            const chunk = ts.slice(i, i + KEYS_PER_CALL);
            cmds.push(readHashes(chunk.map((t) => keys.window(prefix, p, Math.floor(t / MINUTE)))));
            meta.push(chunk);
          }
        }
        const res = await run(redis, cmds);
        res.forEach((reply, c) => hashesOf(reply, meta[c].length).forEach((s, i) => addWindowHash(at(meta[c][i]), s)));
      } else {
        const sets = (await run(redis, allPartitions.map((p) => ['smembers', keys.merchants(prefix, p)]))) as string[][];
        const pairs: [string, number[]][] = [];
        sets.forEach((ms, p) => { for (const m of ms) pairs.push([m, [p]]); });
        await scan(pairs, fromMs, toMs, '1m', (m, t, kind, v) => {
          const byM = at(t);
          let x = byM.get(m);
          if (!x) byM.set(m, (x = emptyTotals()));
          addField(x, kind, v);
        });
      }
      for (const m of out.values()) dropEmpty(m);
      return out;
    },

    async sinceTotals(merchantIds, fromMs, toMs) {
      const out = new Map<string, Totals>();
      for (const m of merchantIds) out.set(m, emptyTotals());
      if (!merchantIds.length) return out;
      const t = now();
      const minuteHorizon = Math.ceil((t - minuteTtlMs) / HOUR) * HOUR + HOUR;
      const hourHorizon = Math.ceil((t - hourTtlMs) / HOUR) * HOUR + HOUR;
      // without a start: everything the day tier still holds (its oldest whole local day)
      const from = fromMs ?? clock.dayStart(t - dayTtlMs + 2 * 86_400_000);
      const segments = tierSegments(from, toMs, minuteHorizon, hourHorizon, clock);
      if (!segments.length) return out;
      const pairs = [...(await partitionsOf(merchantIds, false))];
      const add = accumulate(out);
      await Promise.all(segments.map((s) => scan(pairs, s.from, s.to, s.step, add)));
      return out;
    },

    async payouts(merchantIds) {
      const out = new Map<string, Payout[]>();
      if (!merchantIds.length) return out;
      const t = now();
      // every block a payout paid within the day tier's retention, or up to one block ahead, may sit in
      const b0 = payoutBlockOf(t - dayTtlMs), b1 = payoutBlockOf(t + PAYOUT_BLOCK_DAYS * 86_400_000);
      const pairs = await partitionsOf(merchantIds, false);
      const byPartition = new Map<number, { m: string; key: string }[]>();
      for (const [m, ps] of pairs) {
        for (const p of ps) {
          let l = byPartition.get(p);
          if (!l) byPartition.set(p, (l = []));
          for (let b = b0; b <= b1; b++) l.push({ m, key: keys.payouts(prefix, p, m, b) });
        }
      }
      const cmds: Cmd[] = [];
      const meta: { m: string; key: string }[][] = [];
      for (const reads of byPartition.values()) {
        for (let i = 0; i < reads.length; i += KEYS_PER_CALL) {
          const chunk = reads.slice(i, i + KEYS_PER_CALL);
          cmds.push(readHashes(chunk.map((r) => r.key)));
          meta.push(chunk);
        }
      }
      const counts = new Map<string, Map<string, number>>();
      for (const m of merchantIds) counts.set(m, new Map());
      const res = await run(redis, cmds);
      res.forEach((reply, c) => hashesOf(reply, meta[c].length).forEach((h, i) => {
        if (!h) return;
        const byField = counts.get(meta[c][i].m)!;
        const fv = h.split('\0');
        for (let j = 0; j < fv.length; j += 2) byField.set(fv[j], (byField.get(fv[j]) ?? 0) + Number(fv[j + 1]));
      }));
      for (const [m, byField] of counts) out.set(m, standingPayouts(m, byField));
      return out;
    },

    async changedMerchants(since, o = {}) {
      const cmds: Cmd[] = allPartitions.map((p) => o.names === false
        ? ['zrevrangebyscore', keys.changed(prefix, p), '+inf', `(${since[p] ?? '-inf'}`, 'WITHSCORES', 'LIMIT', '0', '1']
        : ['zrangebyscore', keys.changed(prefix, p), `(${since[p] ?? '-inf'}`, '+inf', 'WITHSCORES']);
      const gens = (await run(redis, allPartitions.map((p) => ['get', keys.generation(prefix, p)]))) as (string | null)[];
      const res = (await run(redis, cmds)) as string[][];
      const merchants = new Set<string>();
      const next = allPartitions.map((p) => since[p] ?? -Infinity);
      res.forEach((r, p) => {
        for (let i = 0; i < r.length; i += 2) {
          if (o.names !== false) merchants.add(r[i]);
          next[p] = Math.max(next[p], Number(r[i + 1]));
        }
      });
      return { merchants, next, generation: gens.map((g) => g ?? '').join(',') };
    },

    async allMerchants() {
      const sets = (await run(redis, allPartitions.map((p) => ['smembers', keys.merchants(prefix, p)]))) as string[][];
      const out = new Set<string>();
      for (const ms of sets) for (const m of ms) out.add(m.includes('#') ? m.slice(0, m.indexOf('#')) : m);
      return out;
    },

    minuteHorizon() {
      // As `totals`: the minute tier holds minutes from about now − TTL on; one hour of margin.
      return Math.ceil((now() - minuteTtlMs) / HOUR) * HOUR + HOUR;
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

    backfill() {
      return readBackfill(redis, prefix);
    },

    gap() {
      return readGap(redis, prefix);
    },

    async stateEpoch() {
      const infos = await Promise.all(masters(redis).map((n) => n.info('replication')));
      return infos.map((s) => /master_replid:(\w+)/.exec(s)?.[1] ?? '?').sort().join(',');
    },

    async windowSlices(minutes, known) {
      if (!minutes.length) return [];
      const oldest = Math.floor(Math.min(...minutes) / MINUTE);
      const cmds: Cmd[] = [];
      const meta: [minute: number, partition: number][][] = [];
      for (const p of allPartitions) {
        for (let i = 0; i < minutes.length; i += KEYS_PER_CALL) {
          const chunk = minutes.slice(i, i + KEYS_PER_CALL);
          const cmd: Cmd = ['riskmonReadWindow', chunk.length + 3, keys.windowGc(prefix, p), keys.generation(prefix, p), keys.watermark(prefix, p),
            ...chunk.map((t) => keys.window(prefix, p, Math.floor(t / MINUTE))), oldest];
          for (const t of chunk) cmd.push(Math.floor(t / MINUTE), known(t, p) ?? '-');
          cmds.push(cmd);
          meta.push(chunk.map((t) => [t, p]));
        }
      }
      const res = (await run(redis, cmds)) as string[][];
      const out: WindowSlice[] = [];
      for (let c = 0; c < res.length; c++) {
        const r = res[c];
        if (r[0] === 'gone') return null;
        meta[c].forEach(([minute, partition], i) => {
          const fingerprint = r[3 * i], how = r[3 * i + 1];
          out.push({ minute, partition, fingerprint, content: how === 'u' ? null : r[3 * i + 2], ...(how === 'd' ? { delta: true } : {}) });
        });
      }
      return out;
    },
  };
}
