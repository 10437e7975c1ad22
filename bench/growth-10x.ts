/**
 * Growth to 10× (`npm run bench -- --only growth-10x`): the reference workload (100,000 merchants, 3M tx/day) and ten
 * times it (1,000,000 merchants, 30M tx/day), each figure at both sizes in the same run, through the aggregator's
 * own apply path (plans from addFacts, the Lua apply) into a private Redis — never the shared one.
 *
 * - growth_{1x,10x}_redis_memory_8d_bytes: 8 days of buckets, TTLs as in production. 8 × 30M facts do not fit the
 *   time of a run on 2 cores, so the merchants are sampled: every K-th merchant by rank (K = 10 at 1×, 100 at 10×:
 *   the same ~2.4M transactions a size), all of its transactions of the 8 days (the generator's weights, daily curve,
 *   amounts, cancels) applied, and used_memory scaled by K. A merchant's bucket keys are its own (minute, hour and
 *   day keys per merchant and partition), so memory adds up over merchants; the all-merchants window index (4 hours,
 *   a hash per partition and minute) is scaled with them (its per-key overhead too: an overstatement). `_sampled_bytes`
 *   is what was measured: used_memory after the writes less the empty server's.
 * - growth_{1x,10x}_redis_cluster_memory_8d_bytes: the same writes into a fresh Redis Cluster of three masters (each with
 *   a replica; scripts/stack/replicated.ts), used_memory summed over the masters less theirs when empty: what
 *   spreading the partitions' hash tags over three servers costs (each pays its own base and per-key overhead).
 * - growth_{1x,10x}_window_read_ms: the evaluator's window read at the close of the peak minute, after its read ahead
 *   (`_window_read_ahead_ms`) and 1% late rows (bench/window.ts): 1×: 100,000
 *   merchants, 300,000 rows in each of 2 peak minutes (5,000 TPS); 10×: 1,000,000 merchants, 3,000,000 rows a peak
 *   minute (50,000 TPS). The 59 minutes before the peak carry 20,000 rows each at both sizes (the window's older
 *   minutes only cost their subtraction; writing 59 × 200,000 more rows does not fit the run). The rows go into the
 *   window index only (bench/window.ts `direct`: the store's planner and Lua apply, live mode), at both sizes.
 * - growth_{1x,10x}_alert_latency_p99_ms: bench/alerting.ts with 100,000 / 1,000,000 merchants active in the window.
 * - growth_{1x,10x}_backtest_minutes_per_s: bench/backtest.ts over the last 2 hours (not 23) at 3M / 30M tx a day,
 *   100,000 / 1,000,000 merchants, 7 baseline days, without its live phase.
 *   RISKMON_BENCH_GROWTH10X_BACKTEST_HOURS: other than 2.
 * - growth_{1x,10x}_replay_changes_per_s: `riskmon replay` (bench/aggregator.ts) of the most recent 500,000 changes
 *   (RISKMON_BENCH_GROWTH10X_REPLAY_CHANGES) of each size's workload, in a fresh topic, into the private Redis: at
 *   10× the same number of changes spans a tenth of the time over ten times the merchants.
 * - growth_{1x,10x}_exposure_*: bench/exposure.ts at 100,000 / 1,000,000 merchants (money at risk: the first minute's
 *   whole read against the minute every merchant's payout becomes paid).
 * RISKMON_BENCH_GROWTH10X_PARTS=memory,memory-cluster,window,alerting,exposure,backtest,replay picks parts.
 */
import { DayClock, Applier, candidateCache, type Plan } from '../aggregator/store/index.ts';
import type { Fact } from '../lib/mapping.ts';
import { messageKey, partitionOfKey } from '../lib/partition.ts';
import { DAY, HOUR, MINUTE, minuteStart } from '../lib/time.ts';
import { curveAtMinuteOfDay, hotCount, merchantProfile, merchantWeights, sampleAmount, sampleCancelAmount } from '../scripts/generate/distribution.ts';
import { AliasTable, Rng } from '../scripts/generate/random.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis, type Cluster } from 'ioredis';
import { createRedis, whenReady, type RedisClient } from '../lib/redis.ts';
import { replicatedDown, replicatedUp } from '../scripts/stack/replicated.ts';
import { privateRedis, referencePlan, split } from './aggregator.ts';

const PARTITIONS = 12;
const SHARDS = 8;
const TZ = 'Asia/Seoul';
const SIZES_FULL = [
  { label: '1x', merchants: 100_000, txPerDay: 3_000_000, sample: 10 },
  { label: '10x', merchants: 1_000_000, txPerDay: 30_000_000, sample: 100 },
] as const;

/** A private Redis to fill: one server, or a Redis Cluster of three masters (each with a replica). */
interface MemoryTarget { redis: RedisClient; usedMemory: () => Promise<number>; keys: () => Promise<number>; stop: () => Promise<void> }

const usedMemoryOf = async (r: Redis) => Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]);

async function standaloneTarget(): Promise<MemoryTarget> {
  const own = await privateRedis();
  if (!own) throw new Error('growth-10x: could not start a private redis-server');
  const redis = new Redis(own.url);
  return { redis, usedMemory: () => usedMemoryOf(redis), keys: () => redis.dbsize(), stop: async () => { redis.disconnect(); own.stop(); } };
}

/** A fresh Redis Cluster 3+3 in a folder of its own (scripts/stack/replicated.ts), purged when stopped: the masters' memory. */
async function clusterTarget(): Promise<MemoryTarget> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'riskmon-growth-cluster-'));
  const log = (l: string) => console.error(`   ${l}`);
  const env = await replicatedUp(dir, { parts: ['cluster'], log });
  const cluster = createRedis({ redisUrl: env.REDIS_CLUSTER_URL!.split(','), redisMode: 'cluster', redisSentinelName: '', redisCaFile: '', redisUsername: '', redisPassword: '' }, { maxRetriesPerRequest: null }) as Cluster;
  await whenReady(cluster);
  const sum = async (f: (r: Redis) => Promise<number>) => (await Promise.all(cluster.nodes('master').map(f))).reduce((a, b) => a + b, 0);
  // A master's used_memory counts its replication backlog (grown with the first writes, up to 1 MiB) and its
  // clients' buffers: measured once its replica has caught up, without them, so neither is scaled as data.
  const settled = async (r: Redis) => {
    for (let i = 0; i < 600; i++) {
      const info = await r.info('replication');
      const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
      const replica = /slave0:.*offset=(\d+)/.exec(info)?.[1];
      if (replica !== undefined && replica === offset) {
        const m = await r.info('memory');
        const f = (k: string) => Number(new RegExp(`${k}:(\\d+)`).exec(m)?.[1] ?? 0);
        return f('used_memory') - f('mem_replication_backlog') - f('mem_clients_slaves') - f('mem_clients_normal');
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`growth-10x: a cluster replica did not catch up with its master in 60 s`);
  };
  return {
    redis: cluster, usedMemory: () => sum(settled), keys: () => sum((r) => r.dbsize()),
    stop: async () => { cluster.disconnect(); await replicatedDown(dir, { purge: true, log }); },
  };
}

/** 8 days of every `sample`-th merchant's transactions through the apply path; used_memory of a private Redis (summed over a cluster's masters). */
async function sampledMemory(merchants: number, txPerDay: number, sample: number, cluster = false): Promise<{ bytes: number; keys: number; facts: number; seconds: number; share: number }> {
  const target = cluster ? await clusterTarget() : await standaloneTarget();
  const redis = target.redis;
  try {
    // the empty server's own memory is not the merchants': subtracted before scaling
    const empty = await target.usedMemory();
    const weights = merchantWeights(merchants);
    let total = 0, kept = 0;
    const ids: number[] = [], w: number[] = [];
    for (let i = 0; i < merchants; i++) {
      total += weights[i];
      // the last of every K ranks: the same quantiles of the size distribution at both sizes (rank 10, 20, … of
      // 100,000 and rank 100, 200, … of 1,000,000)
      if (i % sample === sample - 1) { ids.push(i + 1); w.push(weights[i]); kept += weights[i]; }
    }
    const alias = new AliasTable(w);
    const share = kept / total;
    const hot = new Set(Array.from({ length: hotCount(merchants) }, (_, i) => String(i + 1)));
    const profiles = new Map<number, ReturnType<typeof merchantProfile>>();
    const rng = new Rng(20261207 + merchants);
    const applier = new Applier(redis, 'rm');
    const clock = new DayClock(TZ);
    const candidates = candidateCache(PARTITIONS, SHARDS);
    const now = Date.now();
    const t0 = Date.now();
    let facts = 0, txId = 0;
    for (let h = now - 8 * DAY; h < now; h += HOUR) {
      const byPartition: Fact[][] = Array.from({ length: PARTITIONS }, () => []);
      for (let m = minuteStart(h); m < Math.min(now, h + HOUR); m += MINUTE) {
        const local = Math.floor((((m + 9 * HOUR) % DAY) + DAY) % DAY / MINUTE);
        const exact = (txPerDay / 1440) * curveAtMinuteOfDay(local) * share;
        const n = Math.floor(exact) + (rng.next() < exact % 1 ? 1 : 0);
        for (let i = 0; i < n; i++) {
          const id = ids[alias.sample(rng)];
          let p = profiles.get(id);
          if (!p) profiles.set(id, (p = merchantProfile(id)));
          const amount = sampleAmount(rng, p.mu, p.sigma);
          const at = m + rng.int(60_000);
          const mid = String(id);
          const part = partitionOfKey(messageKey(mid, hot.has(mid), String(++txId), SHARDS), PARTITIONS);
          byPartition[part].push({ merchantId: mid, kind: 'approval', minuteMs: minuteStart(at), sign: 1, amount: BigInt(amount) });
          if (rng.next() < p.cancelRate) {
            const cAt = at + rng.int(120) * MINUTE;
            if (cAt < now) byPartition[part].push({ merchantId: mid, kind: 'cancel', minuteMs: minuteStart(cAt), sign: 1, amount: BigInt(sampleCancelAmount(rng, amount)) });
          }
        }
      }
      const wm = Math.min(now, h + HOUR);
      await Promise.all(byPartition.map(async (fs, p) => {
        facts += fs.length;
        const plan: Plan = referencePlan(fs, { prefix: 'rm', partition: p, clock, candidates, now, watermark: wm });
        for (const part of split(plan, 4000)) {
          const r = await applier.apply(p, part, { mode: 'replay', first: '0', next: '', windowKeepMinutes: 240 });
          if (r.status !== 'ok') throw new Error(`apply: ${JSON.stringify(r)}`);
        }
      }));
    }
    const bytes = (await target.usedMemory()) - empty;
    return { bytes, keys: await target.keys(), facts, seconds: (Date.now() - t0) / 1000, share };
  } finally {
    await target.stop();
  }
}

export async function benchGrowth10x(env: NodeJS.ProcessEnv & { REDIS_URL: string; PG_URL: string; RISK_PG_URL: string; KAFKA_BROKERS: string }): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const parts = new Set((env.RISKMON_BENCH_GROWTH10X_PARTS ?? 'memory,memory-cluster,window,alerting,exposure,backtest,replay').split(','));
  // RISKMON_BENCH_GROWTH10X_DIVIDE=N: both sizes divided by N (a quick check that the part runs, not a figure)
  const div = Number(env.RISKMON_BENCH_GROWTH10X_DIVIDE ?? 1);
  const SIZES = SIZES_FULL.map((s) => ({ ...s, merchants: s.merchants / div, txPerDay: s.txPerDay / div }));
  const own = await privateRedis();
  if (!own) throw new Error('growth-10x: could not start a private redis-server');
  const privateEnv = { ...env, REDIS_URL: own.url };
  try {
    for (const [part, cluster, k] of [['memory', false, 'redis'], ['memory-cluster', true, 'redis_cluster']] as const) {
      if (!parts.has(part)) continue;
      for (const s of SIZES) {
        const r = await sampledMemory(s.merchants, s.txPerDay, s.sample, cluster);
        out[`growth_${s.label}_${k}_memory_8d_bytes`] = r.bytes * s.sample;
        out[`growth_${s.label}_${k}_memory_8d_sampled_bytes`] = r.bytes;
        out[`growth_${s.label}_${k}_keys_8d`] = r.keys * s.sample;
        out[`growth_${s.label}_${k}_memory_sample_tx_share`] = Math.round(r.share * 1e5) / 1e5;
        console.error(`   ${part} ${s.label}: 1 in ${s.sample} merchants (${(r.share * 100).toFixed(2)}% of the transactions), ${r.facts} facts in ${r.seconds.toFixed(0)} s → ${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${r.keys} keys; × ${s.sample} = ${(r.bytes * s.sample / 2 ** 20).toFixed(0)} MiB`);
      }
      out[`growth_10x_${k}_memory_ratio`] = Math.round((out[`growth_10x_${k}_memory_8d_bytes`] / out[`growth_1x_${k}_memory_8d_bytes`]) * 100) / 100;
    }
    if (parts.has('window')) {
      const { benchWindow } = await import('./window.ts');
      for (const s of SIZES) {
        const k = s.label === '1x' ? 1 : 10;
        const r = await benchWindow(privateEnv, { merchants: s.merchants, basePerMinute: 20_000 / div, peakPerMinute: (300_000 * k) / div, peakMinutes: 2, direct: true });
        out[`growth_${s.label}_window_read_ms`] = r.window_read_ms_5000tps;
        out[`growth_${s.label}_window_read_cpu_ms`] = r.window_read_cpu_ms_5000tps;
        out[`growth_${s.label}_window_read_redis_cpu_ms`] = r.window_read_redis_cpu_ms_5000tps;
        out[`growth_${s.label}_window_full_read_ms`] = r.window_full_read_ms_5000tps;
        out[`growth_${s.label}_window_read_ahead_ms`] = r.window_read_ahead_ms_5000tps;
        out[`growth_${s.label}_window_read_ahead_cpu_ms`] = r.window_read_ahead_cpu_ms_5000tps;
        out[`growth_${s.label}_window_read_ahead_redis_cpu_ms`] = r.window_read_ahead_redis_cpu_ms_5000tps;
        console.error(`   window ${s.label}: ${JSON.stringify(r)}`);
      }
    }
    if (parts.has('alerting')) {
      const { benchAlerting } = await import('./alerting.ts');
      for (const s of SIZES) {
        const r = await benchAlerting(privateEnv, { merchants: s.merchants });
        out[`growth_${s.label}_alert_latency_p99_ms`] = r.alert_latency_p99_ms;
        out[`growth_${s.label}_alert_latency_p50_ms`] = r.alert_latency_p50_ms;
        out[`growth_${s.label}_evaluation_ms_per_minute`] = r.evaluation_ms_per_minute_100k;
        out[`growth_${s.label}_evaluation_ms_first_minute`] = r.evaluation_ms_first_minute_100k;
        out[`growth_${s.label}_services_first_minute_ms`] = r.services_first_minute_ms;
        console.error(`   alerting ${s.label}: ${JSON.stringify(r)}`);
      }
    }
    if (parts.has('exposure')) {
      const { benchExposure } = await import('./exposure.ts');
      for (const s of SIZES) {
        const r = await benchExposure(privateEnv, { merchants: s.merchants });
        for (const k of ['first_minute_ms', 'first_minute_read', 'unread_minutes', 'full_read_ms', 'quiet_minute_ms', 'paid_minute_ms', 'paid_minute_shifted', 'paid_minute_read_now', 'read_ahead', 'paid_minute_read_whole']) out[`growth_${s.label}_exposure_${k}`] = r[`exposure_${k}`];
      }
    }
    if (parts.has('replay')) {
      const { replayAtScale } = await import('./aggregator.ts');
      const changes = Number(env.RISKMON_BENCH_GROWTH10X_REPLAY_CHANGES ?? 500_000) / div;
      for (const s of SIZES) {
        const r: Record<string, number> = {};
        await replayAtScale(privateEnv, { merchants: s.merchants, txPerDay: s.txPerDay }, changes, r, '');
        out[`growth_${s.label}_replay_changes_per_s`] = r.replay_changes_per_s;
        out[`growth_${s.label}_replay_changes`] = r.replay_changes;
        out[`growth_${s.label}_replay_process_cpu_s_per_1m_changes`] = r.replay_process_cpu_s_per_1m_changes;
        out[`growth_${s.label}_replay_redis_cpu_s`] = r.replay_redis_cpu_s;
        out[`growth_${s.label}_replay_peak_rss_bytes`] = r.replay_peak_rss_bytes;
      }
      out.growth_10x_replay_ratio_to_1x = Math.round((out.growth_10x_replay_changes_per_s / out.growth_1x_replay_changes_per_s) * 1000) / 1000;
    }
    if (parts.has('backtest')) {
      const { benchBacktest } = await import('./backtest.ts');
      const hours = Number(env.RISKMON_BENCH_GROWTH10X_BACKTEST_HOURS ?? 2);
      for (const s of SIZES) {
        const r = await benchBacktest(privateEnv, { txPerDay: s.txPerDay, merchants: s.merchants, hours, live: false });
        out[`growth_${s.label}_backtest_minutes_per_s`] = r.backtest_minutes_per_s;
        out[`growth_${s.label}_backtest_evaluations_per_minute`] = r.backtest_window_evaluations_per_minute;
        console.error(`   backtest ${s.label}: ${JSON.stringify(r)}`);
      }
      out.growth_10x_backtest_ratio_to_1x = Math.round((out.growth_10x_backtest_minutes_per_s / out.growth_1x_backtest_minutes_per_s) * 1000) / 1000;
    }
    return out;
  } finally {
    own.stop();
  }
}
