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
import { BucketWriter, createBucketReader } from '../aggregator/store/index.ts';
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

/** Scale of the window part (defaults: the reference workload at its 5,000 TPS peak); bench/growth-10x.ts asks 10×. */
export interface WindowScale { merchants: number; basePerMinute: number; peakPerMinute: number; peakMinutes: number }

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
    const row = (k: number, M: number, commit?: string) => {
      const m = String(rnd() < 0.5 ? 1 + Math.floor(rnd() * hot) : hot + 1 + Math.floor(rnd() * (MERCHANTS - hot)));
      if (rnd() < 0.02) writer.cancel(m, 20_000, M + Math.floor(rnd() * MINUTE), commit);
      else writer.approval(m, 10_000 + Math.floor(rnd() * 90_000), M + Math.floor(rnd() * MINUTE), commit);
    };
    for (let k = 0; k < 59 + PEAK_MINUTES; k++) {
      const M = first + k * MINUTE;
      const n = k >= 59 ? PEAK_PER_MINUTE : BASE_PER_MINUTE;
      for (let i = 0; i < n; i++) row(k, M);
      // the minute has ended (the watermark passed its end) but is not closed yet (5 s allowed lateness)
      writer.cdc.heartbeats(new Date(M + MINUTE + 1000).toISOString());
      await writer.flush();
      const end = M + MINUTE, from = end - 60 * MINUTE, hourFrom = Math.floor(M / 3_600_000) * 3_600_000;
      if (k < 58) continue;
      // the evaluator reads the window ahead as soon as the minute ended (the first read fills the window)
      const a = await measure(() => win.read(from, hourFrom, end));
      // rows of the minute arriving within its lateness, then the close
      const late = Math.round(n * LATE_SHARE);
      for (let i = 0; i < late; i++) row(k, M, new Date(M + MINUTE + 2000).toISOString());
      writer.cdc.heartbeats(new Date(M + MINUTE + 5000).toISOString());
      await writer.flush();
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
