/**
 * BucketReader over the Redis layout of layout.ts, used by the rules (alerting) and the API. A merchant's state may
 * sit in several partitions (hot-merchant shards, and "foreign" partitions after an UPDATE moved a row to another
 * merchant); every read merges over all of them.
 *
 * - series: one merchant at 1m / 1h / 1d (minute points only while the minute tier holds them).
 * - totalsByMerchant: every merchant active in a window. At 1m it reads the all-merchants minute index
 *   (`xm`, a few hundred keys for a 60-minute window); older windows and 1h/1d walk each partition's merchant set.
 * - totals: given merchants; minutes where the minute tier holds the range, whole hours for the older part.
 * - windowSlices: the minute index per (minute, partition) with a fingerprint, so a caller keeping a sliding
 *   window in memory re-reads only what changed (alerting/window.ts).
 *
 * Hashes are read through a small read-only Lua script that returns each hash as ONE string ("f\0v\0f\0v…",
 * optionally only the fields of a slot range): the client decodes a few strings instead of thousands of RESP bulk
 * strings (that decoding was most of a read's CPU). NUL cannot occur in merchant ids (PostgreSQL text has no NUL).
 * One script call per partition, so every call stays inside one Redis Cluster slot.
 */
import { masters, pipelined, type RedisClient } from '../lib/redis.ts';
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
  /**
   * How long `series` may use a cached copy of the foreign sets (default 1 s). A row an UPDATE just moved to a
   * partition outside its merchant's candidates shows in `series` at most this much later; `totals` and
   * `totalsByMerchant` always read them fresh.
   */
  foreignTtlMs?: number;
}

/** One (minute, partition) of the all-merchants minute index. */
export interface WindowSlice {
  minute: number;
  partition: number;
  /** Changes whenever the hash changes (length and CRC-64 of its DUMP); '' when the key does not exist. */
  fingerprint: string;
  /** Per-merchant totals; null when the fingerprint equals the one the caller already knows. */
  totals: Map<string, Totals> | null;
}

export interface WindowSliceReader {
  /**
   * The index slices of `minutes` in every partition. `known` gives the fingerprint the caller holds for a slice;
   * unchanged slices come back without totals. Null when the index no longer holds the oldest minute asked for
   * (a catch-up far behind): read with totalsByMerchant then.
   */
  windowSlices(minutes: number[], known: (minute: number, partition: number) => string | undefined): Promise<WindowSlice[] | null>;
}

/** Keys per script call: bounds how long one call holds Redis and the size of one reply. */
const KEYS_PER_CALL = 500;
/** Commands per pipeline round trip: bounds client memory on 100,000-merchant reads. */
const PIPELINE_CHUNK = 2_000;

// KEYS: hashes; ARGV: per key lo, hi (field numbers, inclusive; lo = '' keeps every field).
// Returns per key the kept fields and values joined by NUL. A range much smaller than the hash is read with HMGET
// (a 2-hour minute series out of a 6-hour quarter), otherwise HGETALL and a filter: Lua's cost is per string.
const HASHES_LUA = `
local out = {}
for i, k in ipairs(KEYS) do
  local lo = ARGV[2 * i - 1]
  local n = redis.call('HLEN', k)
  if n == 0 then
    out[i] = ''
  elseif lo == '' then
    out[i] = table.concat(redis.call('HGETALL', k), '\\0')
  else
    lo = tonumber(lo)
    local hi, parts, m = tonumber(ARGV[2 * i]), {}, 0
    if hi < lo then
      -- nothing of this hash is in the range
    elseif (hi - lo + 1) * 2 < n then
      local fs = {}
      for f = lo, hi do fs[f - lo + 1] = f end
      local vs = redis.call('HMGET', k, unpack(fs))
      for j = 1, hi - lo + 1 do
        if vs[j] then parts[m + 1] = fs[j]; parts[m + 2] = vs[j]; m = m + 2 end
      end
    else
      local h = redis.call('HGETALL', k)
      for j = 1, #h, 2 do
        local f = tonumber(h[j])
        if f >= lo and f <= hi then parts[m + 1] = h[j]; parts[m + 2] = h[j + 1]; m = m + 2 end
      end
    end
    out[i] = table.concat(parts, '\\0')
  end
end
return out`;

// KEYS: 1 window-index GC cursor, 2.. index hashes; ARGV: 1 oldest minute asked for, 2.. known fingerprints.
// Returns {'gone'} when the GC passed that minute, else per key: fingerprint, content ('' when unchanged).
// The fingerprint is the length and CRC-64 of the key's DUMP (computed by Redis in C): any change to the hash
// changes it (a re-ordered but equal hash may change it too, which only costs a re-read).
const WINDOW_LUA = `
local gc = redis.call('GET', KEYS[1])
if gc and tonumber(gc) > tonumber(ARGV[1]) then return {'gone'} end
local out = {}
for i = 2, #KEYS do
  local d = redis.call('DUMP', KEYS[i])
  local fp = ''
  if d then
    local c = {string.byte(d, -8, -1)}
    fp = string.format('%d:%02x%02x%02x%02x%02x%02x%02x%02x', #d, c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8])
  end
  out[2 * i - 3] = fp
  if fp ~= ARGV[i] and d then out[2 * i - 2] = table.concat(redis.call('HGETALL', KEYS[i]), '\\0') else out[2 * i - 2] = '' end
end
return out`;

type Cmd = [name: string, ...args: (string | number)[]];

function defineScripts(redis: RedisClient): void {
  if (!(redis as any).riskmonReadHashes) redis.defineCommand('riskmonReadHashes', { lua: HASHES_LUA });
  if (!(redis as any).riskmonReadWindow) redis.defineCommand('riskmonReadWindow', { lua: WINDOW_LUA });
}

async function run(redis: RedisClient, cmds: Cmd[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < cmds.length; i += PIPELINE_CHUNK) {
    const chunk = cmds.slice(i, i + PIPELINE_CHUNK);
    let res = await exec(redis, chunk);
    // Scripts flushed on the server (SCRIPT FLUSH, a restarted Redis): ioredis then sends them with EVAL again.
    if (res.some(([err]) => err && /NOSCRIPT/.test(err.message))) res = await exec(redis, chunk);
    for (const [err, v] of res) {
      if (err) throw err;
      out.push(v);
    }
  }
  return out;
}

/** One round trip (one per partition tag on a Redis Cluster: a pipeline must stay on one node). */
function exec(redis: RedisClient, cmds: Cmd[]): Promise<[Error | null, unknown][]> {
  return pipelined(redis, cmds);
}

/** Splits a NUL-joined hash reply into [field, value, field, value, …]. */
function pairsOf(s: string): string[] {
  return s === '' ? [] : s.split('\0');
}

/**
 * A tier key of merchant `m` with its slot range (field div 4) inside [from, to). A slot's bucket starts at
 * `base + slot × MINUTE` (1m: base = the day's start), `(base + slot) × HOUR` (1h), or at the start of local day
 * `base + slot` (1d). Plain data, no closure per key: a baseline read makes 100,000 of them.
 */
interface KeyRead { m: string; key: string; lo: number; hi: number; base: number }

export function createBucketReader(redis: RedisClient, opts: ReaderOptions): BucketReader & WindowSliceReader {
  const { prefix, partitions, hotShards } = opts;
  defineScripts(redis);
  const clock = new DayClock(opts.tz);
  const minuteTtlMs = opts.minuteTtlMs ?? 2 * 86_400_000;
  const foreignTtlMs = opts.foreignTtlMs ?? 1000;
  const now = opts.now ?? Date.now;
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

  let foreignCache: { at: number; sets: Promise<Set<string>[]> } | null = null;
  function foreignSets(): Promise<Set<string>[]> {
    const t = Date.now(); // elapsed real time, also when a test freezes `now`
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

  /** The keys of one (partition, merchant) that cover [from, to) at `step`, with the slots inside the range. */
  function keyReads(p: number, m: string, from: number, to: number, step: Step): KeyRead[] {
    const reads: KeyRead[] = [];
    if (step === '1m') {
      for (let ds = clock.dayStart(from); ds < to; ds = clock.dayStart(ds + 30 * HOUR)) {
        const day = clock.localDayOfStart(ds);
        const next = clock.dayStart(ds + 30 * HOUR);
        const lo = Math.ceil((from - ds) / MINUTE);
        const hi = Math.ceil((Math.min(to, next) - ds) / MINUTE) - 1;
        for (let q = 0; ds + q * QUARTER_MINUTES * MINUTE < next; q++) {
          const qlo = Math.max(lo, q * QUARTER_MINUTES);
          const qhi = Math.min(hi, (q + 1) * QUARTER_MINUTES - 1);
          if (qlo > qhi) continue;
          reads.push({ m, key: keys.minute(prefix, p, m, day, q), lo: qlo, hi: qhi, base: ds });
        }
      }
    } else if (step === '1h') {
      const h0 = Math.ceil(from / HOUR);
      const h1 = Math.ceil(to / HOUR) - 1;
      if (h0 > h1) return reads;
      for (let b = Math.floor(h0 / HOUR_BLOCK); b <= Math.floor(h1 / HOUR_BLOCK); b++) {
        const base = b * HOUR_BLOCK;
        reads.push({ m, key: keys.hour(prefix, p, m, b), lo: Math.max(0, h0 - base), hi: Math.min(HOUR_BLOCK - 1, h1 - base), base });
      }
    } else {
      let d0 = clock.localDay(from);
      if (startOfLocalDay(d0) < from) d0++;
      const d1 = clock.localDay(to - 1);
      if (d0 > d1) return reads;
      for (let b = Math.floor(d0 / DAY_BLOCK); b <= Math.floor(d1 / DAY_BLOCK); b++) {
        const base = b * DAY_BLOCK;
        reads.push({ m, key: keys.day(prefix, p, m, b), lo: Math.max(0, d0 - base), hi: Math.min(DAY_BLOCK - 1, d1 - base), base });
      }
    }
    return reads;
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
        for (const r of keyReads(p, m, from, to, step)) l.push(r);
      }
    }
    const cmds: Cmd[] = [];
    const meta: KeyRead[][] = [];
    for (const reads of byPartition.values()) {
      for (let i = 0; i < reads.length; i += KEYS_PER_CALL) {
        const chunk = reads.slice(i, i + KEYS_PER_CALL);
        const cmd: Cmd = ['riskmonReadHashes', chunk.length];
        for (const r of chunk) cmd.push(r.key);
        for (const r of chunk) cmd.push(r.lo * FIELD_KINDS, r.hi * FIELD_KINDS + FIELD_KINDS - 1);
        cmds.push(cmd);
        meta.push(chunk);
      }
    }
    const timeOf = step === '1m' ? (base: number, slot: number) => base + slot * MINUTE
      : step === '1h' ? (base: number, slot: number) => (base + slot) * HOUR
        : (base: number, slot: number) => startOfLocalDay(base + slot);
    const res = (await run(redis, cmds)) as string[][];
    for (let c = 0; c < res.length; c++) {
      const hashes = res[c];
      for (let i = 0; i < hashes.length; i++) {
        if (hashes[i] === '') continue;
        const r = meta[c][i];
        const fv = hashes[i].split('\0');
        for (let j = 0; j < fv.length; j += 2) {
          const n = Number(fv[j]);
          const t = timeOf(r.base, Math.floor(n / FIELD_KINDS));
          if (t >= from && t < to) visit(r.m, t, n % FIELD_KINDS, fv[j + 1]);
        }
      }
    }
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

  /** Adds a window-index hash (NUL-joined fields 'n:'|'a:'|'c:'|'x:' + merchant) into `into`. */
  function addWindowHash(into: Map<string, Totals>, s: string): void {
    const fv = pairsOf(s);
    for (let j = 0; j < fv.length; j += 2) {
      const [m, kind] = windowField(fv[j]);
      let t = into.get(m);
      if (!t) into.set(m, (t = emptyTotals()));
      addField(t, kind, fv[j + 1]);
    }
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
            cmds.push(['riskmonReadHashes', chunk.length, ...chunk, ...chunk.flatMap(() => ['', ''])]);
          }
        }
        for (const hashes of (await run(redis, cmds)) as string[][]) for (const s of hashes) addWindowHash(out, s);
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

    async watermark() {
      const wms = (await run(redis, allPartitions.map((p) => ['get', keys.watermark(prefix, p)]))) as (string | null)[];
      let min = Infinity;
      for (const w of wms) {
        if (w === null) return null;
        min = Math.min(min, Number(w));
      }
      return min;
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
          cmds.push(['riskmonReadWindow', chunk.length + 1, keys.windowGc(prefix, p),
            ...chunk.map((t) => keys.window(prefix, p, Math.floor(t / MINUTE))), oldest, ...chunk.map((t) => known(t, p) ?? '-')]);
          meta.push(chunk.map((t) => [t, p]));
        }
      }
      const res = (await run(redis, cmds)) as string[][];
      const out: WindowSlice[] = [];
      for (let c = 0; c < res.length; c++) {
        const r = res[c];
        if (r[0] === 'gone') return null;
        meta[c].forEach(([minute, partition], i) => {
          const fingerprint = r[2 * i];
          let totals: Map<string, Totals> | null = null;
          if (fingerprint !== known(minute, partition)) addWindowHash((totals = new Map()), r[2 * i + 1]);
          out.push({ minute, partition, fingerprint, totals });
        });
      }
      return out;
    },
  };
}

/** Merges `b` into `a` (sum per merchant); handy for callers combining reads. */
export function mergeTotals(a: Map<string, Totals>, b: Map<string, Totals>): Map<string, Totals> {
  for (const [m, t] of b) addTotals(a.get(m) ?? (a.set(m, emptyTotals()), a.get(m)!), t);
  return a;
}
