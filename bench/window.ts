/**
 * The evaluator's 60-minute window read at the 5,000 TPS peak (alerting/window.ts over the store's reader), without
 * the rest of the pipeline: 59 minutes of 20,000 payments, then minutes of 300,000 (5,000 TPS) over 100,000
 * merchants, the top 1% carrying half, written through the aggregator's apply path (the store's test writer). After
 * each peak minute closes, the window is read as the evaluator reads it, and timed:
 *
 * - window_read_ms_5000tps                wall time of one read (median of the peak minutes)
 * - window_read_cpu_ms_5000tps            this process's CPU for it (decoding the closed minute, the running sums)
 * - window_read_redis_cpu_ms_5000tps      Redis's CPU for it (fingerprints, the closed minute's hashes)
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
    for (let k = 0; k < 59 + PEAK_MINUTES; k++) {
      const M = first + k * MINUTE;
      const n = k >= 59 ? PEAK_PER_MINUTE : BASE_PER_MINUTE;
      for (let i = 0; i < n; i++) {
        const m = String(rnd() < 0.5 ? 1 + Math.floor(rnd() * hot) : hot + 1 + Math.floor(rnd() * (MERCHANTS - hot)));
        if (rnd() < 0.02) writer.cancel(m, 20_000, M + Math.floor(rnd() * MINUTE));
        else writer.approval(m, 10_000 + Math.floor(rnd() * 90_000), M + Math.floor(rnd() * MINUTE));
      }
      writer.cdc.heartbeats(new Date(M + MINUTE + 5000).toISOString());
      await writer.flush();
      const end = M + MINUTE, from = end - 60 * MINUTE, hourFrom = Math.floor(M / 3_600_000) * 3_600_000;
      if (k < 58) continue;
      const c0 = cpuMs(), r0 = await redisCpuMs(), t0 = performance.now();
      await win.read(from, hourFrom, end);
      const t1 = performance.now(), c1 = cpuMs(), r1 = await redisCpuMs();
      if (k < 59) continue; // the first read fills the window
      wall.push(t1 - t0);
      cpu.push(c1 - c0);
      rcpu.push(r1 - r0);
      const f0 = performance.now();
      await reader.totalsByMerchant(from, end, '1m');
      full.push(performance.now() - f0);
      console.error(`   peak minute ${k - 58}: window read ${(t1 - t0).toFixed(0)} ms (process CPU ${(c1 - c0).toFixed(0)} ms, Redis CPU ${(r1 - r0).toFixed(0)} ms); full read ${full.at(-1)!.toFixed(0)} ms`);
    }
    const med = (xs: number[]) => Math.round(quantile(xs, 0.5) * 10) / 10;
    return {
      window_read_ms_5000tps: med(wall),
      window_read_cpu_ms_5000tps: med(cpu),
      window_read_redis_cpu_ms_5000tps: med(rcpu),
      window_full_read_ms_5000tps: med(full),
      window_read_ratio_to_full_read: Math.round((med(wall) / med(full)) * 1000) / 1000,
    };
  } finally {
    await dropKeys(redis, `${prefix}:*`).catch(() => {});
    redis.disconnect();
  }
}
