/**
 * Aggregator benchmark (`npx tsx bench/aggregator.ts`, or part of `npm run bench`). Figures:
 * - replay_changes_per_s: ≥ 1M reference-workload change events in a fresh 12-partition topic, rebuilt by
 *   `riskmon replay --from-lsn <oldest>` into an empty key prefix (the store's rebuild: whole range summed in memory,
 *   final values written); changes / the command's own seconds. replay_process_cpu_s and replay_redis_cpu_s say
 *   which side bounds it (replay_*_bound_changes_per_s: the rate each alone would allow); replay_peak_rss_bytes.
 * - aggregator_catchup_changes_per_s: the same topic consumed by a fresh `riskmon aggregate` from offset 0 until
 *   every partition's offset in Redis reaches the end (the live path: per-chunk Lua apply); replay_mismatched_merchants
 *   compares its buckets with the replay's (0 = equal). aggregator_peak_rss_bytes: that process's peak RSS.
 * - redis_write_ceiling_ops_per_s / redis_hset_ceiling_ops_per_s (redis-benchmark, pipelined) and
 *   lua_apply_ceiling_changes_per_s (the Lua apply alone on pre-planned chunks): Redis' ceilings.
 * - partition_skew: busiest / mean partition (messages) of those events, hot merchants keyed merchant#shard.
 * - rules_window_read_ms: totalsByMerchant over the last 60 minutes (all merchants) — median of 5.
 * - rules_baseline_read_ms: totalsByMerchant over 7 local days at 1d (every merchant's day rollups) — median of 3.
 * - redis_memory_8d_bytes: used_memory of a private Redis (redis-server on a free port; the shared one when there
 *   is none) after 8 days of the reference workload (3M transactions a day, 100,000 merchants) applied through the
 *   aggregator's own plan + Lua apply with today's wall clock, so TTLs drop what the tiers would have dropped.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Admin } from 'kafkajs';
import { createKafka, createTopics, kafkaConfigOf, type Kafka } from '../lib/kafka/index.ts';
import { connections, readConfig } from '../lib/config.ts';
import { createRedis, pipelined, scanKeys, type RedisClient } from '../lib/redis.ts';
import { encodeEvent, heartbeat, type RowChange } from '../lib/events.ts';
import { formatLsn } from '../lib/lsn.ts';
import { freePort } from '../lib/net.ts';
import { referenceMapping, type Fact } from '../lib/mapping.ts';
import { messageKey, partitionOfKey } from '../lib/partition.ts';
import { DAY, HOUR, MINUTE, minuteStart } from '../lib/time.ts';
import { curveAtMinuteOfDay, hotCount, merchantProfile, merchantWeights, sampleAmount, sampleCancelAmount } from '../scripts/generate/distribution.ts';
import { AliasTable, Rng } from '../scripts/generate/random.ts';
import { addFacts, Applier, candidateCache, createBucketReader, DayClock, emptyPlan, type Plan } from '../aggregator/store/index.ts';
import { dropKeys, runRiskmon, spawnRiskmon } from '../test/harness/index.ts';
import { brokerPids, cpuTicks, CpuWindow, perMillion, redisWriteCeiling } from './peer.ts';

const PARTITIONS = 12;
const SHARDS = 8;
const MERCHANTS = 100_000;
const TX_PER_DAY = 3_000_000;
const TZ = 'Asia/Seoul';

/** Reference-workload transactions: merchant by the generator's weights, time by its daily curve. */
/** A workload's size: the reference one (100,000 merchants, 3M transactions a day) unless told. */
export interface WorkloadScale { merchants: number; txPerDay: number }
const REFERENCE: WorkloadScale = { merchants: MERCHANTS, txPerDay: TX_PER_DAY };

class Workload {
  readonly rng = new Rng(20261121);
  readonly alias: AliasTable;
  readonly hot: Set<string>;
  readonly profiles = new Map<number, ReturnType<typeof merchantProfile>>();

  constructor(readonly scale: WorkloadScale = REFERENCE) {
    this.alias = new AliasTable(merchantWeights(scale.merchants));
    this.hot = new Set(Array.from({ length: hotCount(scale.merchants) }, (_, i) => String(i + 1)));
  }

  profile(id: number) {
    let p = this.profiles.get(id);
    if (!p) this.profiles.set(id, (p = merchantProfile(id)));
    return p;
  }

  #id = 1;

  /** Calls `fn` for every transaction (and its cancel) in [from, to), in time order per minute. */
  run(from: number, to: number, fn: (t: { merchant: number; id: number; amount: number; at: number; cancel: number | null; cancelAt: number }) => void): void {
    for (let m = minuteStart(from); m < to; m += MINUTE) {
      const local = Math.floor((((m + 9 * HOUR) % DAY) + DAY) % DAY / MINUTE);
      const n = Math.round((this.scale.txPerDay / 1440) * curveAtMinuteOfDay(local));
      for (let i = 0; i < n; i++) {
        const merchant = this.alias.sample(this.rng) + 1;
        const p = this.profile(merchant);
        const amount = sampleAmount(this.rng, p.mu, p.sigma);
        const cancel = this.rng.next() < p.cancelRate ? sampleCancelAmount(this.rng, amount) : null;
        fn({ merchant, id: this.#id++, amount, at: m + this.rng.int(60_000), cancel, cancelAt: m + this.rng.int(120) * MINUTE });
      }
    }
  }
}



export async function privateRedis(): Promise<{ url: string; stop: () => void } | null> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory', '0'], { stdio: 'ignore' });
  let failed = false;
  child.on('error', () => { failed = true; });
  let ok = false;
  for (let i = 0; i < 50 && !failed && !ok; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => { sock.end(); resolve(true); }).on('error', () => resolve(false));
    });
  }
  if (!ok) { child.kill(); return null; }
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Replay and live-path catch-up on one produced topic (RISKMON_BENCH_AGG_CHANGES: its size, default ≥ 1,030,000). */
export async function throughput(env: NodeJS.ProcessEnv, out: Record<string, number>): Promise<void> {
  const kafka = createKafka(kafkaConfigOf(env.KAFKA_BROKERS!), { clientId: 'bench-agg' });
  // RISKMON_BENCH_AGG_TOPIC: produce into this topic once and keep it, so repeated runs (profiling) skip producing
  const keep = env.RISKMON_BENCH_AGG_TOPIC;
  const topic = keep ?? `bench_agg_${Date.now().toString(36)}`;
  const prefix = `bench_${Date.now().toString(36)}`;
  const admin = kafka.admin();
  await admin.connect();
  let total: number;
  const now = Date.now(); // end of the produced stretch (a reused topic's reads look at the last hour of now)
  if (keep && (await admin.listTopics()).includes(keep)) {
    const offs = await admin.fetchTopicOffsets(topic);
    const counts = offs.map((o) => Number(o.high) - Number(o.low) - 1); // less the closing heartbeat
    total = counts.reduce((a, b) => a + b, 0);
    out.partition_skew = Math.max(...counts) / (total / PARTITIONS);
    console.error(`   reusing ${topic}: ${total} changes`);
  } else {
    total = await produce(kafka, admin, topic, now, out, Number(env.RISKMON_BENCH_AGG_CHANGES ?? 1_030_000));
  }
  const replayPrefix = `${prefix}_r`;
  await replayRun(env, topic, replayPrefix, out);
  // RISKMON_BENCH_AGG_LIVE=0: the replay alone (profiling it)
  if (env.RISKMON_BENCH_AGG_LIVE !== '0') {
    await consume(env, admin, topic, prefix, total, now, out);
    await compareReplay(env, prefix, replayPrefix, now, out);
  } else {
    const redis = createRedis(readConfig(connections('redisUrl'), env));
    await dropKeys(redis, `${replayPrefix}:*`);
    redis.disconnect();
  }
  if (!keep) await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
}

async function produce(kafka: Kafka, admin: Admin, topic: string, now: number, out: Record<string, number>, changes = 1_030_000, scale = REFERENCE): Promise<number> {
  // lib/kafka's createTopics waits out what a multi-broker cluster answers before the new leaders are known
  await createTopics(admin, [{ topic, numPartitions: PARTITIONS }], { replication: 0 });
  const producer = kafka.producer();
  await producer.connect();
  // ≥ `changes` changes of a 3M/day reference day, each payment and cancel its own transaction
  const w = new Workload(scale);
  let lsn = 0x1000000n;
  const perPartition: string[][] = Array.from({ length: PARTITIONS }, () => []);
  const keysOf: string[][] = Array.from({ length: PARTITIONS }, () => []);
  let total = 0;
  const counts = new Array(PARTITIONS).fill(0);
  const flush = async (force = false) => {
    const pending = perPartition.reduce((n, a) => n + a.length, 0);
    if (!force && pending < 10_000) return;
    await producer.send({ topic, acks: 1, messages: perPartition.flatMap((vals, p) => vals.map((value, i) => ({ partition: p, key: keysOf[p][i], value }))) });
    for (let p = 0; p < PARTITIONS; p++) { perPartition[p] = []; keysOf[p] = []; }
  };
  const push = (e: RowChange) => {
    const m = String((e.row ?? e.old)!.merchant_id);
    const key = messageKey(m, w.hot.has(m), String((e.row ?? e.old)![e.table === 'public.payments' ? 'payment_id' : 'cancel_id']), SHARDS);
    const p = partitionOfKey(key, PARTITIONS);
    perPartition[p].push(encodeEvent(e));
    keysOf[p].push(key);
    counts[p]++;
    total++;
  };
  // the most recent stretch of the reference day holding ≥ `changes` changes (payments + ~3% cancels)
  let from = minuteStart(now);
  for (let expected = 0; expected < changes; from -= MINUTE) {
    expected += (scale.txPerDay / 1440) * curveAtMinuteOfDay(Math.floor((((from + 9 * HOUR) % DAY) + DAY) % DAY / MINUTE)) * 1.03;
  }
  // Published in commit order, minute by minute: every event made at minute m commits at m or later, so the events
  // committed before m are complete once m is made (memory stays bounded however long the stretch).
  const byCommitMinute = new Map<number, { commit: number; e: RowChange }[]>();
  const t0 = Date.now();
  const publishBefore = async (m: number) => {
    for (const cm of [...byCommitMinute.keys()].filter((k) => k < m).sort((a, b) => a - b)) {
      for (const { commit, e } of byCommitMinute.get(cm)!.sort((a, b) => a.commit - b.commit)) {
        lsn += 0x80n;
        e.lsn = formatLsn(lsn);
        e.commitTs = new Date(commit).toISOString();
        push(e);
        await flush();
      }
      byCommitMinute.delete(cm);
    }
  };
  const add = (commit: number, e: RowChange) => {
    const cm = minuteStart(commit);
    let list = byCommitMinute.get(cm);
    if (!list) byCommitMinute.set(cm, (list = []));
    list.push({ commit, e });
  };
  for (let m = from; m < now; m += MINUTE) {
    w.run(m, Math.min(m + MINUTE, now), (t) => {
      const late = w.rng.next() < 0.02 ? w.rng.int(120_000) : w.rng.int(2000);
      add(t.at + late, { v: 1, lsn: '', seq: 0, commitTs: '', xid: 1, table: 'public.payments', op: 'insert', old: null,
        row: { payment_id: String(t.id), merchant_id: String(t.merchant), amount: String(t.amount), approved_at: new Date(t.at).toISOString() } });
      if (t.cancel !== null && t.cancelAt < now) {
        add(t.cancelAt + w.rng.int(2000), { v: 1, lsn: '', seq: 0, commitTs: '', xid: 1, table: 'public.payment_cancels', op: 'insert', old: null,
          row: { cancel_id: String(t.id), payment_id: String(t.id), merchant_id: String(t.merchant), amount: String(t.cancel), canceled_at: new Date(t.cancelAt).toISOString() } });
      }
    });
    await publishBefore(m);
  }
  await publishBefore(Infinity);
  const hbLsn = formatLsn(lsn + 0x80n);
  for (let p = 0; p < PARTITIONS; p++) { perPartition[p].push(encodeEvent(heartbeat(hbLsn, new Date(now).toISOString()))); keysOf[p].push('hb'); }
  await flush(true);
  await producer.disconnect();
  console.error(`   produced ${total} changes in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  out.partition_skew = Math.max(...counts) / (total / PARTITIONS);
  return total;
}

async function consume(env: NodeJS.ProcessEnv, admin: Admin, topic: string, prefix: string, total: number, now: number, out: Record<string, number>): Promise<void> {
  // from the environment as the aggregator reads it: RISKMON_REDIS_MODE=cluster|sentinel measures those topologies
  const redis = createRedis(readConfig(connections('redisUrl'), env), { maxRetriesPerRequest: null });
  const childEnv = {
    ...env, RISKMON_TOPIC: topic, RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_HOT_SHARDS: String(SHARDS),
    RISKMON_REDIS_PREFIX: prefix, RISKMON_GROUP: `${prefix}_group`, RISKMON_DLQ_TOPIC: `${topic}_dlq`, RISKMON_LOG_LEVEL: 'warn', RISKMON_TZ: TZ,
  };
  const offs = await admin.fetchTopicOffsets(topic);
  const target = offs.map((o) => o.high);
  const t1 = Date.now();
  // RISKMON_BENCH_NODE_ARGS: extra node options for the aggregator process, e.g. --cpu-prof
  const nodeArgs = env.RISKMON_BENCH_NODE_ARGS ? env.RISKMON_BENCH_NODE_ARGS.split(' ') : [];
  const child = spawnRiskmon(['aggregate'], { env: childEnv, nodeArgs, stdout: 'ignore', stderr: 'inherit' });
  let hwm = 0;
  const readHwm = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) hwm = Math.max(hwm, Number(m[1]) * 1024);
    } catch { /* exited */ }
  };
  for (;;) {
    readHwm();
    const stored = await Promise.all(offs.map((o) => redis.get(`${prefix}:{p${o.partition}}:off`)));
    if (stored.every((s, i) => s === target[i])) break;
    if (child.exitCode !== null) throw new Error('aggregator exited early');
    await new Promise((r) => setTimeout(r, 100));
  }
  const secs = (Date.now() - t1) / 1000;
  readHwm();
  child.kill('SIGTERM');
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  out.aggregator_catchup_changes_per_s = Math.round(total / secs);
  out.aggregator_peak_rss_bytes = hwm;
  console.error(`   live path: applied ${total} changes in ${secs.toFixed(1)} s (incl. process start and group join)`);

  const reader = createBucketReader(redis, { prefix, partitions: PARTITIONS, hotShards: SHARDS, tz: TZ });
  const end = minuteStart(now) - MINUTE;
  const times: number[] = [];
  let merchants = 0;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    merchants = (await reader.totalsByMerchant(end - 60 * MINUTE, end, '1m')).size;
    times.push(performance.now() - t);
  }
  out.rules_window_read_ms = Math.round(median(times) * 10) / 10;
  out.rules_window_merchants = merchants;
  console.error(`   rules window read (60 min, ${merchants} merchants): ${out.rules_window_read_ms} ms`);
  const day = new DayClock(TZ).dayStart(now);
  const base: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    merchants = (await reader.totalsByMerchant(day - 7 * DAY, day + DAY, '1d')).size;
    base.push(performance.now() - t);
  }
  out.rules_baseline_read_ms = Math.round(median(base));
  out.rules_baseline_merchants = merchants;
  console.error(`   rules baseline read (7 days at 1d, ${merchants} merchants): ${out.rules_baseline_read_ms} ms`);
  redis.disconnect();
}

const childEnvOf = (env: NodeJS.ProcessEnv, topic: string, prefix: string): NodeJS.ProcessEnv => ({
  ...env, RISKMON_TOPIC: topic, RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_HOT_SHARDS: String(SHARDS),
  RISKMON_REDIS_PREFIX: prefix, RISKMON_GROUP: `${prefix}_group`, RISKMON_DLQ_TOPIC: `${topic}_dlq`, RISKMON_LOG_LEVEL: 'warn', RISKMON_TZ: TZ,
});

/** Peak RSS (VmHWM) and CPU ticks of a child, polled until it exits. */
function watchHwm(pid: number): { stop: () => number; ticks: () => number } {
  let hwm = 0, ticks = 0;
  const read = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) hwm = Math.max(hwm, Number(m[1]) * 1024);
      ticks = Math.max(ticks, cpuTicks(pid));
    } catch { /* exited */ }
  };
  const t = setInterval(read, 50);
  return { stop: () => { clearInterval(t); return hwm; }, ticks: () => ticks };
}

/** CPU ticks (1/100 s) of the Redis server (INFO's process_id; 0 when it is not on this machine). */
/** The Redis server's pid (INFO server), or null when it does not say. */
async function redisPidOf(redis: RedisClient): Promise<number | null> {
  return Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? 0) || null;
}

/**
 * `riskmon replay --from-lsn <oldest>` into an empty key prefix: the whole topic rebuilt (the bucket store's rebuild
 * path: whole range summed in memory, final values written). replay_changes_per_s = changes / the command's own
 * seconds (lock → offsets stored: both scans of the topic, the reset, the writes; not the process start).
 */
async function replayRun(env: NodeJS.ProcessEnv, topic: string, prefix: string, out: Record<string, number>, suffix = ''): Promise<void> {
  const childEnv = childEnvOf(env, topic, prefix);
  const probe = await runRiskmon(['replay', '--from-lsn', '0/1'], childEnv);
  const oldest = /holds is (\S+);/.exec(probe.stderr)?.[1];
  if (!oldest) throw new Error(`replay bench: could not learn the oldest LSN: ${probe.stderr}`);
  const nodeArgs = env.RISKMON_BENCH_REPLAY_NODE_ARGS ? env.RISKMON_BENCH_REPLAY_NODE_ARGS.split(' ') : [];
  const redis = createRedis(readConfig(connections('redisUrl'), env));
  const redisPid = await redisPidOf(redis);
  // Redis', the broker's and the machine's CPU over one window (the replay process's from /proc as it runs: it has
  // exited when the window ends)
  const window = new CpuWindow({ redis: redisPid ? [redisPid] : [], broker: brokerPids(env.KAFKA_BROKERS!) });
  const t0 = Date.now();
  const child = spawnRiskmon(['replay', '--from-lsn', oldest], { env: childEnv, nodeArgs, stdout: 'pipe', stderr: 'inherit' });
  window.add('process', [child.pid!]);
  const hwm = watchHwm(child.pid!);
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const peak = hwm.stop();
  const cpu = window.end();
  const redisCpu = cpu.cpuS.redis;
  redis.disconnect();
  if (code !== 0) throw new Error(`riskmon replay exited ${code}`);
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { changes: number; seconds: number; stages: { scan: number; reset: number; rebuild: number } };
  const set = (k: string, v: number) => { out[`replay_${k}${suffix}`] = v; };
  set('changes', r.changes);
  set('scan_seconds', r.stages.scan);
  set('rebuild_seconds', r.stages.rebuild);
  set('changes_per_s', Math.round(r.changes / r.seconds));
  set('seconds', r.seconds);
  set('peak_rss_bytes', peak);
  // where the time goes: the replay process's CPU and Redis' CPU per change, and the rate each alone would allow
  const nodeCpu = hwm.ticks() / 100;
  set('process_cpu_s', nodeCpu);
  set('process_cpu_s_per_1m_changes', Math.round((nodeCpu / r.changes) * 1e6 * 100) / 100);
  set('redis_cpu_s', redisCpu);
  if (nodeCpu > 0) set('process_bound_changes_per_s', Math.round(r.changes / nodeCpu));
  if (redisCpu > 0) set('redis_bound_changes_per_s', Math.round(r.changes / redisCpu));
  // every CPU second of the window per million changes, and how busy the machine's cores were (process start included)
  set('cpu_s_per_1m_changes_process', perMillion(nodeCpu, r.changes));
  set('cpu_s_per_1m_changes_redis', perMillion(redisCpu, r.changes));
  set('cpu_s_per_1m_changes_broker', perMillion(cpu.cpuS.broker, r.changes));
  set('cpu_s_per_1m_changes_total', perMillion(nodeCpu + redisCpu + cpu.cpuS.broker, r.changes));
  set('cpu_s_per_1m_changes_machine', perMillion(cpu.machineCpuS, r.changes));
  set('machine_busy_pct', cpu.machineBusyPct);
  if (!suffix) out.aggregator_peak_rss_bytes = Math.max(out.aggregator_peak_rss_bytes ?? 0, peak);
  console.error(`   replay${suffix}: ${r.changes} changes in ${r.seconds.toFixed(1)} s (stages ${JSON.stringify(r.stages)}; ${((Date.now() - t0) / 1000).toFixed(1)} s with process start), peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB; CPU: replay process ${nodeCpu.toFixed(1)} s, Redis ${redisCpu.toFixed(1)} s, broker ${cpu.cpuS.broker.toFixed(1)} s, machine ${cpu.machineCpuS.toFixed(1)} s (${cpu.machineBusyPct}% busy over ${cpu.seconds.toFixed(1)} s; the most of the rest: ${cpu.others.join(', ')})`);
}

/**
 * How the replay's cost grows with the backlog (`npm run bench -- --only growth`): the reference workload's most
 * recent 1×, 4× and 16× GROWTH_BASE changes, each in its own topic, replayed from its oldest LSN into an empty prefix.
 * Per size: replay_changes_per_s_<n>x, replay_process_cpu_s_per_1m_changes_<n>x, replay_peak_rss_bytes_<n>x, the
 * Redis CPU and the stages. A longer backlog reaches further back: more of it is older than the window index keeps
 * (fewer fields per change) and, past RISKMON_MINUTE_TTL_DAYS, than the minute tier keeps.
 */
const GROWTH_BASE = 250_000;

export async function benchGrowth(env: NodeJS.ProcessEnv = process.env): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const base = Number(env.RISKMON_BENCH_GROWTH_BASE ?? GROWTH_BASE);
  const kafka = createKafka(kafkaConfigOf(env.KAFKA_BROKERS!), { clientId: 'bench-growth' });
  const admin = kafka.admin();
  await admin.connect();
  const redis = new Redis(env.REDIS_URL!);
  try {
    for (const n of [1, 4, 16]) {
      const topic = `bench_growth_${n}x_${Date.now().toString(36)}`;
      const prefix = `bench_g${n}_${Date.now().toString(36)}`;
      const sink: Record<string, number> = {};
      await produce(kafka, admin, topic, Date.now(), sink, n * base);
      try {
        await replayRun(env, topic, prefix, out, `_${n}x`);
      } finally {
        await admin.deleteTopics({ topics: [topic] }).catch(() => {});
        await dropKeys(redis, `${prefix}:*`);
      }
    }
  } finally {
    redis.disconnect();
    await admin.disconnect();
  }
  return out;
}

/**
 * The replay rate at a workload's size (bench/growth-10x.ts): the most recent `changes` changes of that workload in a
 * fresh topic, replayed from its oldest LSN into an empty prefix as `replay_changes_per_s` is; figures get `suffix`.
 */
export async function replayAtScale(env: NodeJS.ProcessEnv, scale: WorkloadScale, changes: number, out: Record<string, number>, suffix: string): Promise<void> {
  const kafka = createKafka(kafkaConfigOf(env.KAFKA_BROKERS!), { clientId: 'bench-replay-scale' });
  const admin = kafka.admin();
  await admin.connect();
  const redis = new Redis(env.REDIS_URL!);
  const stamp = Date.now().toString(36);
  const topic = `bench_replay${suffix}_${stamp}`, prefix = `bench_rs${suffix}_${stamp}`;
  try {
    await produce(kafka, admin, topic, Date.now(), {}, changes, scale);
    await replayRun(env, topic, prefix, out, suffix);
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await dropKeys(redis, `${prefix}:*`).catch(() => {});
    redis.disconnect();
    await admin.disconnect();
  }
}

/** The replay's buckets against the live path's (same topic): the last hour per minute, the day per merchant. */
async function compareReplay(env: NodeJS.ProcessEnv, live: string, replayed: string, now: number, out: Record<string, number>): Promise<void> {
  const redis = createRedis(readConfig(connections('redisUrl'), env));
  const opts = { partitions: PARTITIONS, hotShards: SHARDS, tz: TZ };
  const a = createBucketReader(redis, { prefix: live, ...opts });
  const b = createBucketReader(redis, { prefix: replayed, ...opts });
  const end = minuteStart(now) - MINUTE;
  const day = new DayClock(TZ).dayStart(now);
  let diffs = 0, compared = 0;
  for (const [from, to, step] of [[end - 60 * MINUTE, end, '1m'], [day - DAY, day + DAY, '1d']] as const) {
    const [x, y] = await Promise.all([a.totalsByMerchant(from, to, step), b.totalsByMerchant(from, to, step)]);
    for (const [m, t] of x) {
      compared++;
      const u = y.get(m);
      if (!u || u.approvals !== t.approvals || u.approvedAmount !== t.approvedAmount || u.cancels !== t.cancels || u.canceledAmount !== t.canceledAmount) diffs++;
    }
    diffs += [...y.keys()].filter((m) => !x.has(m)).length;
  }
  out.replay_mismatched_merchants = diffs;
  console.error(`   replay vs live path: ${compared} merchant totals compared, ${diffs} differ`);
  // clean up this run's keys (shared stack)
  // on a cluster every master, each key on its own slot
  for (const prefix of [live, replayed]) await scanKeys(redis, `${prefix}:*`, async (ks) => { await pipelined(redis, ks.map((k) => ['unlink', k])); });
  redis.disconnect();
}

async function memory8d(env: NodeJS.ProcessEnv, out: Record<string, number>): Promise<void> {
  const own = await privateRedis();
  const redis = new Redis(own?.url ?? env.REDIS_URL!);
  const prefix = 'rm';
  const before = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  const applier = new Applier(redis, prefix);
  const clock = new DayClock(TZ);
  const now = Date.now();
  const candidates = candidateCache(PARTITIONS, SHARDS);
  const w = new Workload();
  const t0 = Date.now();
  let facts = 0;
  // one simulated hour at a time: pre-aggregated per partition, as the aggregator's chunks are
  for (let h = now - 8 * DAY; h < now; h += HOUR) {
    if ((now - h) % DAY < HOUR) console.error(`   8 days: day ${Math.round(8 - (now - h) / DAY) + 1}, ${facts} facts so far, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const byPartition = referenceFacts(w, h, Math.min(now, h + HOUR), now);
    await Promise.all(byPartition.map(async (fs, p) => {
      const plan = referencePlan(fs, { prefix, partition: p, clock, candidates, now, watermark: Math.min(now, h + HOUR) });
      facts += fs.length;
      for (const part of split(plan, 4000)) {
        const r = await applier.apply(p, part, { mode: 'replay', first: '0', next: '', windowKeepMinutes: 240 });
        if (r.status !== 'ok') throw new Error(`apply: ${JSON.stringify(r)}`);
      }
    }));
  }
  const info = await redis.info('memory');
  const used = Number(/used_memory:(\d+)/.exec(info)![1]);
  out.redis_memory_8d_bytes = used - (own ? 0 : before);
  out.redis_keys_8d = await redis.dbsize();
  console.error(`   8 days: ${facts} facts in ${((Date.now() - t0) / 1000).toFixed(0)} s; used_memory ${(used / 2 ** 20).toFixed(1)} MiB, ${out.redis_keys_8d} keys${own ? ' (private redis-server)' : ' (shared Redis: delta)'}`);
  if (own) { redis.disconnect(); own.stop(); } else {
    await dropKeys(redis, `${prefix}:*`);
    redis.disconnect();
  }
}

/** The reference workload's facts of [from, to) per partition, keyed as the cdc keys them; cancels made before `now`. */
function referenceFacts(w: Workload, from: number, to: number, now: number, { cancels = true } = {}): Fact[][] {
  const byPartition: Fact[][] = Array.from({ length: PARTITIONS }, () => []);
  w.run(from, to, (t) => {
    const m = String(t.merchant);
    const p = partitionOfKey(messageKey(m, w.hot.has(m), String(t.id), SHARDS), PARTITIONS);
    byPartition[p].push({ merchantId: m, kind: 'approval', minuteMs: minuteStart(t.at), sign: 1, amount: BigInt(t.amount) });
    if (cancels && t.cancel !== null && t.cancelAt < now) byPartition[p].push({ merchantId: m, kind: 'cancel', minuteMs: minuteStart(t.cancelAt), sign: 1, amount: BigInt(t.cancel) });
  });
  return byPartition;
}

/** One partition's facts planned as the aggregator plans them (production TTLs and window), at `watermark`. */
export function referencePlan(fs: Fact[], c: { prefix: string; partition: number; clock: DayClock; candidates: ReturnType<typeof candidateCache>; now: number; watermark: number }): Plan {
  const plan = emptyPlan();
  addFacts(plan, fs, {
    prefix: c.prefix, partition: c.partition, partitions: PARTITIONS, hotShards: SHARDS, mapping: referenceMapping, clock: c.clock,
    retention: { minuteTtlMs: 2 * DAY, hourTtlMs: 36 * DAY, dayTtlMs: 400 * DAY }, windowKeepMinutes: 240,
    allowedLatenessMs: 5000, now: c.now, watermark: c.watermark, candidates: c.candidates,
  }, c.watermark);
  plan.watermark = c.watermark;
  return plan;
}

/** A plan cut into plans of at most `n` hash keys each (one Lua call each). */
export function split(plan: Plan, n: number): Plan[] {
  const out: Plan[] = [];
  let cur = emptyPlan();
  for (const [k, v] of plan.hashes) {
    if (cur.hashes.size >= n) { out.push(cur); cur = emptyPlan(); }
    cur.hashes.set(k, v);
    cur.expires.set(k, plan.expires.get(k)!);
  }
  cur.merchants = plan.merchants;
  cur.foreign = plan.foreign;
  cur.watermark = plan.watermark;
  out.push(cur);
  return out;
}

/**
 * The Redis side's ceilings, in the same run: redis-benchmark pipelining the live path's per-field HINCRBY (and the
 * replay's HSET), and the Lua apply's own: pre-planned chunks of reference-workload facts (4,000 per chunk, as the
 * consumer's, 12 partitions, 4 in flight) applied through Applier with nothing else in the process — changes/s.
 */
async function redisCeilings(env: NodeJS.ProcessEnv, out: Record<string, number>): Promise<void> {
  const redis = new Redis(env.REDIS_URL!);
  const prefix = `bench_ceil_${Date.now().toString(36)}`;
  try {
    Object.assign(out, redisWriteCeiling(env.REDIS_URL!, prefix));
    await dropKeys(redis, `${prefix}:*`);
    const clock = new DayClock(TZ);
    const now = Date.now();
    const candidates = candidateCache(PARTITIONS, SHARDS);
    // the busiest reference hour (~250,000 facts), approvals only
    const from = minuteStart(now) - 2 * HOUR;
    const byPartition = referenceFacts(new Workload(), from, from + HOUR, now, { cancels: false });
    const plans: { p: number; plan: Plan; n: number }[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      for (let i = 0; i < byPartition[p].length; i += 4000) {
        const fs = byPartition[p].slice(i, i + 4000);
        plans.push({ p, plan: referencePlan(fs, { prefix, partition: p, clock, candidates, now, watermark: now }), n: fs.length });
      }
    }
    const applier = new Applier(redis, prefix);
    const total = plans.reduce((a, x) => a + x.n, 0);
    const queue = [...plans];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let x = queue.shift(); x; x = queue.shift()) {
        const r = await applier.apply(x.p, x.plan, { mode: 'replay', first: '0', next: '', windowKeepMinutes: 240 });
        if (r.status !== 'ok') throw new Error(`apply: ${JSON.stringify(r)}`);
      }
    }));
    out.lua_apply_ceiling_changes_per_s = Math.round(total / ((performance.now() - t0) / 1000));
    console.error(`   Redis ceilings: HINCRBY ${out.redis_write_ceiling_ops_per_s} ops/s, HSET ${out.redis_hset_ceiling_ops_per_s} ops/s pipelined; Lua apply ${out.lua_apply_ceiling_changes_per_s} changes/s (${total} pre-planned)`);
  } finally {
    await dropKeys(redis, `${prefix}:*`);
    redis.disconnect();
  }
}

export async function benchAggregator(env: NodeJS.ProcessEnv = process.env): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  // RISKMON_BENCH_AGG_CEILINGS=0: without the Redis ceilings (profiling the replay alone, with the two below)
  if (env.RISKMON_BENCH_AGG_CEILINGS !== '0') await redisCeilings(env, out);
  await throughput(env, out);
  // the 8-day memory run takes ~10–20 min on a busy 2-core machine; RISKMON_BENCH_AGG_MEMORY=0 skips it
  if (env.RISKMON_BENCH_AGG_MEMORY !== '0') await memory8d(env, out);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { stackUp } = await import('../scripts/stack/index.ts');
  const env = { ...process.env, ...(process.env.KAFKA_BROKERS && process.env.REDIS_URL ? {} : await stackUp({ log: (l) => console.error(l) })) };
  console.log(JSON.stringify(await benchAggregator(env), null, 2));
  process.exit(0);
}
