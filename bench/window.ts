/**
 * The evaluator's 60-minute window read at the 5,000 TPS peak (alerting/window.ts over the store's reader), without
 * the rest of the pipeline: 59 minutes of 20,000 payments, then minutes of 300,000 (5,000 TPS) over 100,000
 * merchants, the top 1% carrying half, written through the aggregator's apply path (the store's test writer). As the
 * evaluator does, the window is read ahead once the watermark passes a minute's end; then 1% of the minute's rows
 * arrive late (within the 5 s allowed lateness, RISKMON_BENCH_WINDOW_LATE_SHARE), the minute closes and the window is
 * read again; that read must equal a full read. Timed (medians of the peak minutes):
 *
 * - window_read_ms_5000tps                the read at the close (what the alert waits for): the late rows' merchants
 * - window_read_cpu_ms_5000tps            this process's CPU for it
 * - window_read_redis_cpu_ms_5000tps      Redis's CPU for it (fingerprints, the late logs, the late merchants' counters)
 * - window_read_ahead_ms_5000tps          the read ahead, between the minute's end and its close (the closed minute's
 *                                         merchants), with `_cpu_ms_` and `_redis_cpu_ms_` likewise: it must fit the
 *                                         allowed lateness, or the close waits for the rest of it
 * - window_full_read_ms_5000tps           the same window read in full (totalsByMerchant, 12 × 60 hashes)
 * - window_read_ratio_to_full_read        the first over the last, measured in the same run
 *
 * `npm run bench -- --only window` runs it alone (about 2 minutes, most of it writing the minutes).
 */
import { Redis } from 'ioredis';
import { addFacts, Applier, BucketWriter, candidateCache, createBucketReader, DayClock, emptyPlan } from '../aggregator/store/index.ts';
import { referenceMapping, type Fact } from '../lib/mapping.ts';
import { messageKey, partitionOfKey } from '../lib/partition.ts';
import { WindowSums } from '../alerting/index.ts';
import { MINUTE } from '../lib/time.ts';
import { dropKeys } from '../test/harness/index.ts';
import { quantile } from './util.ts';

const PARTITIONS = 12;
const MERCHANTS_1X = 100_000;
const PEAK_PER_MINUTE_1X = Number(process.env.RISKMON_BENCH_WINDOW_PEAK_PER_MIN ?? 300_000);
const PEAK_MINUTES_1X = 4;
/** Rows of a minute that arrive after it ended, within its allowed lateness (a share of the minute's rows). */
const LATE_SHARE = Number(process.env.RISKMON_BENCH_WINDOW_LATE_SHARE ?? 0.01);
const TZ = 'Asia/Seoul';

/** Deterministic uniform [0, 1) (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Scale of the window part (defaults: the reference workload at its 5,000 TPS peak); bench/growth-10x.ts asks 10×.
 * `direct`: the rows go into the window index only, planned by the store's planner (addFacts) and written by its Lua
 * apply in live mode, without change events and without the minute, hour and day tiers the read does not touch
 * (50,000 TPS through the whole writer does not fit a run on 2 cores).
 */
export interface WindowScale { merchants: number; basePerMinute: number; peakPerMinute: number; peakMinutes: number; direct: boolean }

/** Writes facts into the window index only, through the store's planner and Lua apply (live mode, real offsets). */
class DirectWriter {
  readonly #applier: Applier;
  readonly #prefix: string;
  readonly #clock = new DayClock(TZ);
  readonly #candidates = candidateCache(PARTITIONS, 8);
  readonly #facts: Fact[][] = Array.from({ length: PARTITIONS }, () => []);
  readonly #offsets = new Array<number>(PARTITIONS).fill(0);
  #tx = 0;

  constructor(redis: Redis, prefix: string) {
    this.#applier = new Applier(redis, prefix);
    this.#prefix = prefix;
  }

  add(m: string, kind: 'approval' | 'cancel', amount: number, at: number): void {
    const p = partitionOfKey(messageKey(m, false, String(++this.#tx), 8), PARTITIONS);
    this.#facts[p].push({ merchantId: m, kind, minuteMs: Math.floor(at / MINUTE) * MINUTE, sign: 1, amount: BigInt(amount) });
  }

  async flush(watermark: number): Promise<void> {
    const now = Date.now();
    await Promise.all(this.#facts.map(async (fs, p) => {
      const plan = emptyPlan();
      addFacts(plan, fs, {
        prefix: this.#prefix, partition: p, partitions: PARTITIONS, hotShards: 8, mapping: referenceMapping, clock: this.#clock,
        retention: { minuteTtlMs: 2 * 86_400_000, hourTtlMs: 36 * 86_400_000, dayTtlMs: 400 * 86_400_000 }, windowKeepMinutes: 240,
        allowedLatenessMs: 5000, now, watermark, candidates: this.#candidates,
      }, watermark);
      for (const [k, h] of plan.hashes) if (h.kind !== 'window') { plan.hashes.delete(k); plan.expires.delete(k); }
      plan.watermark = watermark;
      const first = this.#offsets[p], next = first + fs.length + 1;
      const r = await this.#applier.apply(p, plan, { mode: first === 0 ? 'init' : 'live', first: String(first), next: String(next), windowKeepMinutes: 240 });
      if (r.status !== 'ok') throw new Error(`window bench apply: ${JSON.stringify(r)}`);
      this.#offsets[p] = next;
      this.#facts[p] = [];
    }));
  }
}

export async function benchWindow(env: { REDIS_URL: string }, scale: Partial<WindowScale> = {}): Promise<Record<string, number>> {
  const MERCHANTS = scale.merchants ?? MERCHANTS_1X;
  const PEAK_PER_MINUTE = scale.peakPerMinute ?? PEAK_PER_MINUTE_1X;
  const PEAK_MINUTES = scale.peakMinutes ?? PEAK_MINUTES_1X;
  const BASE_PER_MINUTE = scale.basePerMinute ?? 20_000;
  const redis = new Redis(env.REDIS_URL);
  const prefix = `bench_win_${Date.now().toString(36)}`;
  const redisCpuMs = async () => {
    const s = await redis.info('cpu');
    return (Number(/used_cpu_sys:([\d.]+)/.exec(s)![1]) + Number(/used_cpu_user:([\d.]+)/.exec(s)![1])) * 1000;
  };
  const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  try {
    const writer = new BucketWriter(redis, { prefix, partitions: PARTITIONS, hotShards: 8, tz: TZ });
    const reader = createBucketReader(redis, { prefix, partitions: PARTITIONS, hotShards: 8, tz: TZ });
    const win = new WindowSums(reader);
    const rnd = random(7);
    const hot = Math.floor(MERCHANTS / 100);
    const first = Math.floor(Date.now() / MINUTE) * MINUTE - (59 + PEAK_MINUTES) * MINUTE;
    const wall: number[] = [], cpu: number[] = [], rcpu: number[] = [], full: number[] = [];
    const ahead: number[] = [], aheadCpu: number[] = [], aheadRcpu: number[] = [];
    const measure = async (fn: () => Promise<unknown>) => {
      const c0 = cpuMs(), r0 = await redisCpuMs(), t0 = performance.now();
      await fn();
      const t1 = performance.now(), c1 = cpuMs(), r1 = await redisCpuMs();
      return { wall: t1 - t0, cpu: c1 - c0, rcpu: r1 - r0 };
    };
    const direct = scale.direct ? new DirectWriter(redis, prefix) : null;
    const row = (k: number, M: number, commit?: string) => {
      const m = String(rnd() < 0.5 ? 1 + Math.floor(rnd() * hot) : hot + 1 + Math.floor(rnd() * (MERCHANTS - hot)));
      const cancel = rnd() < 0.02, amount = cancel ? 20_000 : 10_000 + Math.floor(rnd() * 90_000), at = M + Math.floor(rnd() * MINUTE);
      if (direct) direct.add(m, cancel ? 'cancel' : 'approval', amount, at);
      else if (cancel) writer.cancel(m, amount, at, commit);
      else writer.approval(m, amount, at, commit);
    };
    const flush = async (watermark: number) => {
      if (direct) return direct.flush(watermark);
      writer.cdc.heartbeats(new Date(watermark).toISOString());
      await writer.flush();
    };
    for (let k = 0; k < 59 + PEAK_MINUTES; k++) {
      const M = first + k * MINUTE;
      const n = k >= 59 ? PEAK_PER_MINUTE : BASE_PER_MINUTE;
      for (let i = 0; i < n; i++) row(k, M);
      // the minute has ended (the watermark passed its end) but is not closed yet (5 s allowed lateness)
      await flush(M + MINUTE + 1000);
      const end = M + MINUTE, from = end - 60 * MINUTE, hourFrom = Math.floor(M / 3_600_000) * 3_600_000;
      if (k < 58) continue;
      // the evaluator reads the window ahead as soon as the minute ended (the first read fills the window)
      const a = await measure(() => win.read(from, hourFrom, end));
      // rows of the minute arriving within its lateness, then the close
      const late = Math.round(n * LATE_SHARE);
      for (let i = 0; i < late; i++) row(k, M, new Date(M + MINUTE + 2000).toISOString());
      await flush(M + MINUTE + 5000);
      let got: Awaited<ReturnType<WindowSums['read']>> | null = null;
      const c = await measure(async () => { got = await win.read(from, hourFrom, end); });
      if (k < 59) continue;
      wall.push(c.wall);
      cpu.push(c.cpu);
      rcpu.push(c.rcpu);
      ahead.push(a.wall);
      aheadCpu.push(a.cpu);
      aheadRcpu.push(a.rcpu);
      const f0 = performance.now();
      const fullRead = await reader.totalsByMerchant(from, end, '1m');
      full.push(performance.now() - f0);
      // the read at the close must equal a full read of the window (exactness through the late rows)
      for (const [m, t] of fullRead) {
        const w = got!.window.get(m);
        if (!w || w.approvals !== t.approvals || w.approvedAmount !== t.approvedAmount || w.cancels !== t.cancels || w.canceledAmount !== t.canceledAmount) {
          throw new Error(`window read at the close differs from a full read for merchant ${m}`);
        }
      }
      if (got!.window.size !== fullRead.size) throw new Error('window read at the close differs from a full read (merchant count)');
      console.error(`   peak minute ${k - 58}: read ahead ${a.wall.toFixed(0)} ms (process CPU ${a.cpu.toFixed(0)}, Redis CPU ${a.rcpu.toFixed(0)}); ` +
        `${late} late rows, read at the close ${c.wall.toFixed(0)} ms (process CPU ${c.cpu.toFixed(0)}, Redis CPU ${c.rcpu.toFixed(0)}; ${got!.deltas} of ${got!.slicesRead} slices as deltas); full read ${full.at(-1)!.toFixed(0)} ms`);
    }
    const med = (xs: number[]) => Math.round(quantile(xs, 0.5) * 10) / 10;
    return {
      window_read_ms_5000tps: med(wall),
      window_read_cpu_ms_5000tps: med(cpu),
      window_read_redis_cpu_ms_5000tps: med(rcpu),
      window_full_read_ms_5000tps: med(full),
      window_read_ahead_ms_5000tps: med(ahead),
      window_read_ahead_cpu_ms_5000tps: med(aheadCpu),
      window_read_ahead_redis_cpu_ms_5000tps: med(aheadRcpu),
      window_read_ratio_to_full_read: Math.round((med(wall) / med(full)) * 1000) / 1000,
    };
  } finally {
    await dropKeys(redis, `${prefix}:*`).catch(() => {});
    redis.disconnect();
  }
}
