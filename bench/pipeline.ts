/**
 * The whole system under live load, as an operator runs it: `riskmon cdc`, `riskmon aggregate` and `riskmon
 * alerting` as child processes (their own database, slot, topic, group and Redis prefix), a local HTTP server as
 * the Slack webhook, and the reference live generator (100,000 merchants, one autocommit INSERT per row). Then the
 * SQL GROUP BY poller (bench/poller.ts) on the same source after 1, 4 and 8 days of history. Figures:
 *
 * - riskmon_source_cpu_ms_per_min[_35tps|_peak]: CPU (user+system, /proc) of the slot's walsender — all the source
 *   spends for riskmon — per minute, at the 35 TPS daily mean and at the peak rate (5,000 TPS); _idle with no load on
 *   this database (the walsender decodes the WAL of the whole server, so other databases' writes count too).
 * - commit_to_bucket_p50_ms / _p99_ms: at the peak rate, a dedicated probe loop inserts one payment (its own
 *   autocommit transaction) for a probe merchant (ids 900101…, outside the workload's) every 100 ms and polls the
 *   merchant's minute bucket through createBucketReader until the count includes it; measured from *before* the
 *   INSERT is sent (an upper bound of the commit time) to the first poll that sees it (polls every 2 ms).
 *   commit_to_kafka_p50_ms / _p99_ms: the cdc's share, from its own histogram (source commit timestamp → Kafka
 *   acknowledgement) over the same phase. kafka_to_aggregator_* / kafka_to_bucket_*: the aggregator's share, from
 *   its histograms (record timestamp = the cdc's produce time → batch handed over / chunk applied).
 * - <process>_cpu_pct_peak / _runq_wait_pct_peak: CPU and run-queue wait (schedstat, all threads) of the walsender,
 *   the bench itself, cdc, aggregator and alerting over the peak phase, % of a core (printed for every phase).
 * - source_max_tps_with_riskmon / live_kept_up_at_tps: the live generator asked for 20,000 TPS on 64 connections
 *   for the run while riskmon runs on the same 2 cores: the rate the source achieved, and that rate again if riskmon
 *   kept up (slot lag and consumer lag bounded: in the last 10 s the probes' p99 ≤ 2 s, slot lag ≤ 16 MiB and the
 *   aggregator's consumer lag ≤ 2 s of input) — else the peak rate if it kept up there, else 0.
 *   (`source_max_tps`, the source alone, is bench/generate.ts's.)
 * - pipeline_alert_latency_p99_ms (+ _slack_, _ws_, _samples): during the live runs, once a minute 12 probe merchants
 *   with 7 days of history at a 2% cancel rate get 25 approvals and 10 cancels each; from the moment the watermark
 *   (read from Redis every 5 ms) closes that minute (M + 60 s + 5 s lateness) to each merchant's Slack request and
 *   pub/sub message that every API instance forwards to its WebSocket clients (the larger of the two per sample).
 *   12 samples per live minute (≥ 30 over the run; those of one minute share its close, so they are not independent).
 * - cdc|aggregator|alerting_peak_rss_bytes: VmHWM of each child over the whole run (peak load included).
 * - poller_*: measurePoller after 1, 4 and 8 days of reference history (RISKMON_BENCH_POLLER_TX_PER_DAY, default
 *   3M a day) — suffixes _1d/_4d/_8d; poller_source_cpu_ms_per_min is the naive variant at 8 days;
 *   poller_detection_latency_p99_ms = 59.4 s (p99 of the up-to-60-s schedule phase) + one naive run's wall time.
 *
 * Alone: `npm run bench -- --only pipeline` (starts or reuses the dev stack). Scale knobs (for development):
 * RISKMON_BENCH_PIPELINE_RUN_S (60), RISKMON_BENCH_PEAK_TPS (5000), RISKMON_BENCH_MAX_TPS (20000),
 * RISKMON_BENCH_POLLER_TX_PER_DAY (3000000), RISKMON_BENCH_POLLER_DAYS (1,4,8; empty = skip the poller);
 * RISKMON_BENCH_PIPELINE_PROBES_OUT=PREFIX writes each phase's probes ({at, ms}) to PREFIX.<phase>.json (is the tail
 * spread evenly, or a few stalls?).
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { freePort } from '../lib/net.ts';
import { cdcPublishHistogram, histogramQuantile, histogramSince, metricHistogram, quantile } from './util.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connections, readConfig } from '../lib/config.ts';
import { createRedis, duplicateRedis } from '../lib/redis.ts';
import { createKafka, kafkaConfigOf } from '../lib/kafka/index.ts';
import pg from 'pg';
import { createBucketReader } from '../aggregator/store/index.ts';
import { baselineDayStarts } from '../alerting/index.ts';
import { alertsChannel } from '../lib/alert-message.ts';
import { migrate } from '../lib/migrate.ts';
import { DAY, dayStart, MINUTE, minuteStart } from '../lib/time.ts';
import { backfill, ensureMerchants, live } from '../scripts/generate/index.ts';
import { ensureIdState, reserveIds } from '../scripts/generate/ids.ts';
import { withDatabase } from '../scripts/stack/index.ts';
import { backendCpuMs, measurePoller } from './poller.ts';
import { dropKeys, dropSlot, FakeSlack, runEnv, sleep, spawnRiskmon, stopChild } from '../test/harness/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TZ = 'Asia/Seoul';
const MERCHANTS = 100_000;
const PARTITIONS = 12;
const ALERT_PROBES = Array.from({ length: 60 }, (_, i) => 900_001 + i);
/** Probe merchants surging in the same minute: ≥ 30 samples over the run's few live minutes. */
const ALERT_PER_MINUTE = 12;
const COMMIT_PROBES = Array.from({ length: 20 }, (_, i) => 900_101 + i);

const iso = (ms: number) => new Date(ms).toISOString();
const num = (env: NodeJS.ProcessEnv, k: string, d: number) => (env[k] ? Number(env[k]) : d);
const r1 = (x: number) => Math.round(x * 10) / 10;

function hwm(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

/** ms a process's threads spent runnable, waiting for a core (schedstat's second field, ns). */
function runQueueWaitMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]); } catch { /* thread gone */ }
  }
  return ns / 1e6;
}

/** Samples taken once a second while a phase runs. */
interface Sample { at: number; slotLagBytes: number; consumerLag: number }

export async function benchPipeline(env: NodeJS.ProcessEnv): Promise<Record<string, number>> {
  const RUN_S = num(env, 'RISKMON_BENCH_PIPELINE_RUN_S', 60);
  const PEAK = num(env, 'RISKMON_BENCH_PEAK_TPS', 5000);
  const MAX = num(env, 'RISKMON_BENCH_MAX_TPS', 20_000);
  const HIST_TX = num(env, 'RISKMON_BENCH_POLLER_TX_PER_DAY', 3_000_000);
  const HIST_DAYS = (env.RISKMON_BENCH_POLLER_DAYS ?? '1,4,8').split(',').filter(Boolean).map(Number);
  if (!env.PG_URL || !env.RISK_PG_URL || !env.KAFKA_BROKERS || !env.REDIS_URL) throw new Error('PG_URL, RISK_PG_URL, KAFKA_BROKERS and REDIS_URL must be set (eval "$(npm run -s stack -- env)")');

  const stamp = `bench_pipe_${Date.now().toString(36)}`;
  const adminUrl = withDatabase(env.PG_URL, 'postgres');
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${stamp}`);
  await admin.query(`CREATE DATABASE ${stamp}_risk`);
  const url = withDatabase(env.PG_URL, stamp);
  const riskUrl = withDatabase(env.PG_URL, `${stamp}_risk`);
  const out: Record<string, number> = {};
  const children = new Map<string, ChildProcess>();
  const redis = createRedis(readConfig(connections('redisUrl'), env)); // RISKMON_REDIS_MODE from env (bench/topology.ts)
  const sub = duplicateRedis(redis);
  const db = new pg.Client({ connectionString: url });
  const slackAt = new Map<string, number>();
  const wsAt = new Map<string, number>();
  const slack = new FakeSlack({
    onRequest: ({ at, text }) => { for (const m of text.matchAll(/merchants\/(\d+)/g)) if (!slackAt.has(m[1])) slackAt.set(m[1], at); },
  });
  try {
    await migrate(url, 'source');
    await ensureMerchants(url, MERCHANTS);
    await db.connect();
    await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'bench probe ' || g FROM generate_series(900001, 900200) g ON CONFLICT DO NOTHING`);
    await ensureIdState(db);
    let nextId = await reserveIds(db, 1_000_000);

    await slack.start();
    await sub.subscribe(alertsChannel(stamp));
    sub.on('message', (_c, raw) => {
      const msg = JSON.parse(raw) as { transition?: string; alert?: { merchantId?: string } };
      const m = msg.alert?.merchantId;
      if (msg.transition === 'fired' && m && !wsAt.has(m)) wsAt.set(m, Date.now());
    });
    const aggMetrics = await freePort();
    const cdcMetrics = await freePort();
    const alertMetrics = await freePort();
    const childEnv: NodeJS.ProcessEnv = {
      ...env, PG_URL: url, RISK_PG_URL: riskUrl, ...runEnv(stamp), RISKMON_TZ: TZ, RISKMON_PARTITIONS: String(PARTITIONS),
      RISKMON_LOG_LEVEL: 'warn', RISKMON_PUBLIC_URL: 'http://localhost:8080',
      RISKMON_SLACK_WEBHOOK_URL: slack.url,
    };
    const start = (cmd: string, extra: NodeJS.ProcessEnv = {}, logFile?: string) => {
      // RISKMON_BENCH_PIPELINE_NODE_ARGS: node flags for the cdc and aggregator children (e.g. --cpu-prof --cpu-prof-dir=DIR)
      const nodeArgs = cmd === 'alerting' ? [] : (env.RISKMON_BENCH_PIPELINE_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const child = spawnRiskmon([cmd], {
        env: { ...childEnv, ...extra }, stdout: 'ignore', nodeArgs, logFile,
        onFailure: (code, tail) => { if (children.get(cmd) === child) console.error(`   riskmon ${cmd} exited ${code}: ${tail}`); },
      });
      children.set(cmd, child);
    };
    start('cdc', { RISKMON_METRICS_PORT: String(cdcMetrics) });
    start('aggregate', { RISKMON_METRICS_PORT: String(aggMetrics) });
    const t0 = Date.now();
    let walsender = 0;
    while (!walsender) {
      if (Date.now() - t0 > 120_000) throw new Error('the cdc did not start streaming within 120 s');
      await sleep(200);
      const r = await db.query(`SELECT r.pid FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
        WHERE s.slot_name = $1 AND r.state = 'streaming'`, [stamp]);
      walsender = r.rows[0]?.pid ?? 0;
    }
    console.error(`   cdc streaming (walsender pid ${walsender}) after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // ---- 7 days of history for the alert probes: 200 approvals and 4 cancels a day each (a 2% cancel rate) ----
    const reader = createBucketReader(redis, { prefix: stamp, partitions: PARTITIONS, hotShards: 8, tz: TZ });
    const now0 = Date.now();
    const days = baselineDayStarts(dayStart(now0, TZ), 7, TZ);
    const rows: string[] = [];
    const cancels: string[] = [];
    for (const m of ALERT_PROBES) {
      for (const d of days) {
        for (let k = 0; k < 200; k++) {
          const id = nextId++;
          rows.push(`(${id},${m},10000,'${iso(d + HOUR_MS + k * MINUTE)}')`);
          if (k < 4) cancels.push(`(${nextId++},${id},${m},10000,'${iso(d + HOUR_MS + k * MINUTE + 1000)}')`);
        }
      }
    }
    await db.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ${rows.join(',')}`);
    await db.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at) VALUES ${cancels.join(',')}`);
    const last = String(ALERT_PROBES[ALERT_PROBES.length - 1]);
    for (const t1 = Date.now(); ;) {
      const tot = (await reader.totals([last], days[0], days[days.length - 1] + DAY)).get(last);
      if (tot && tot.approvals === 1400 && tot.cancels === 28) break;
      if (Date.now() - t1 > 120_000) throw new Error(`probe history did not reach Redis within 120 s: ${tot?.approvals ?? 0} approvals, ${tot?.cancels ?? 0} cancels of 1400 and 28`);
      await sleep(200);
    }
    // the alerting log (info: each minute with transitions, with its stages) is kept for a look at single minutes
    const alertingLog = path.join(os.tmpdir(), `${stamp}-alerting.log`);
    start('alerting', { RISKMON_METRICS_PORT: String(alertMetrics), RISKMON_LOG_LEVEL: 'info' }, alertingLog);
    console.error(`   alerting log: ${alertingLog}`);

    // ---- probes -------------------------------------------------------------------------------------------------
    let probeEvery = 1000;
    const probes: { at: number; ms: number }[] = [];
    let probing = true;
    const seen = new Map<string, number>(); // `${merchant}@${minute}` → payments sent
    const commitProbes = (async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        for (let i = 0; probing; i++) {
          const started = performance.now();
          const m = String(COMMIT_PROBES[i % COMMIT_PROBES.length]);
          const sent = Date.now();
          const minute = minuteStart(sent);
          const k = `${m}@${minute}`;
          const want = (seen.get(k) ?? 0) + 1;
          seen.set(k, want);
          await c.query('INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ($1, $2, 1000, $3)', [nextId++, m, iso(sent)]);
          for (;;) {
            const p = await reader.series(m, minute, minute + MINUTE, '1m');
            if ((p[0]?.approvals ?? 0) >= want) { probes.push({ at: sent, ms: Date.now() - sent }); break; }
            if (Date.now() - sent > 60_000) { probes.push({ at: sent, ms: 60_000 }); break; }
            await sleep(2);
          }
          const wait = probeEvery - (performance.now() - started);
          if (wait > 0) await sleep(wait);
        }
      } finally { await c.end(); }
    })();

    const alertSamples: { slack: number; ws: number }[] = [];
    let alertIdx = 0;
    const alertProbes = (async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        while (probing && alertIdx < ALERT_PROBES.length) {
          // The surge's rows go in during the first half of the current minute, with times inside it.
          let M = minuteStart(Date.now());
          if (Date.now() - M > 30_000) { await sleep(M + MINUTE - Date.now() + 200); M += MINUTE; }
          if (!probing) break;
          const ms = ALERT_PROBES.slice(alertIdx, alertIdx + ALERT_PER_MINUTE).map(String);
          alertIdx += ms.length;
          const pays: string[] = [];
          const cans: string[] = [];
          for (const m of ms) {
            for (let k = 0; k < 25; k++) {
              const id = nextId++;
              pays.push(`(${id},${m},10000,'${iso(Math.min(Date.now(), M + k * 100))}')`);
              if (k < 10) cans.push(`(${nextId++},${id},${m},10000,'${iso(Math.min(Date.now(), M + k * 100 + 50))}')`);
            }
          }
          await c.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ${pays.join(',')}`);
          await c.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at) VALUES ${cans.join(',')}`);
          const closeAt = M + MINUTE + 5000;
          let closed = 0;
          while (!closed) {
            const w = await reader.watermark();
            if (w !== null && w >= closeAt) closed = Date.now(); else await sleep(5);
            if (Date.now() - closeAt > 120_000) break;
          }
          if (!closed) { console.error(`   alert probes ${ms[0]}…: minute ${iso(M)} not closed within 120 s`); continue; }
          const deadline = Date.now() + 30_000;
          const all = () => ms.every((m) => slackAt.has(m) && wsAt.has(m));
          while (!all() && Date.now() < deadline) await sleep(2);
          for (const m of ms) {
            if (!slackAt.has(m) || !wsAt.has(m)) { console.error(`   alert probe ${m}: no alert within 30 s of the close (slack ${slackAt.has(m)}, ws ${wsAt.has(m)})`); continue; }
            alertSamples.push({ slack: slackAt.get(m)! - closed, ws: wsAt.get(m)! - closed });
          }
          const worst = Math.max(...ms.filter((m) => slackAt.has(m) && wsAt.has(m)).map((m) => Math.max(slackAt.get(m)!, wsAt.get(m)!) - closed));
          console.error(`   alerts of ${ms.length} merchants for minute ${iso(M)}: close → Slack and pub/sub ≤ ${worst} ms`);
        }
      } finally { await c.end(); }
    })();

    const consumerLag = async () => {
      try {
        const text = await (await fetch(`http://127.0.0.1:${aggMetrics}/metrics`)).text();
        let sum = 0;
        for (const m of text.matchAll(/^riskmon_aggregator_consumer_lag\{[^}]*\} (\S+)$/gm)) sum += Number(m[1]);
        return sum;
      } catch { return NaN; }
    };

    const aggLatency = async () => ({
      receive: await metricHistogram(aggMetrics, 'riskmon_aggregator_receive_latency_seconds').catch(() => new Map<number, number>()),
      applied: await metricHistogram(aggMetrics, 'riskmon_aggregator_applied_latency_seconds').catch(() => new Map<number, number>()),
    });
    /**
     * Per process — each riskmon child, the walsender, the bench itself (generator and probes) — CPU ms (user +
     * system) and ms spent runnable but waiting for a core (run-queue wait, /proc/<pid>/task/<tid>/schedstat, all threads).
     */
    const childCpu = (): Record<string, { cpu: number; wait: number }> => {
      const pids: [string, number | undefined][] = [['walsender', walsender], ['bench', process.pid], ...[...children].map(([n, c]) => [n, c.pid] as [string, number | undefined])];
      const o: Record<string, { cpu: number; wait: number }> = {};
      for (const [name, pid] of pids) {
        if (!pid) continue;
        try { o[name] = { cpu: backendCpuMs(pid), wait: runQueueWaitMs(pid) }; } catch { /* exited */ }
      }
      return o;
    };

    /** One live phase: the generator at `tps` for RUN_S, sampling lags and the walsender's CPU. */
    const phase = async (label: string, tps: number, connections: number) => {
      const h0 = await cdcPublishHistogram(cdcMetrics).catch(() => new Map<number, number>()); // no metrics: the figure is NaN
      const r0 = await cdcPublishHistogram(cdcMetrics, 'receive').catch(() => new Map<number, number>());
      const a0 = await metricHistogram(aggMetrics, 'riskmon_aggregator_apply_seconds').catch(() => new Map<number, number>());
      const k0 = await aggLatency();
      const cpu0 = backendCpuMs(walsender);
      const child0 = childCpu();
      const p0 = probes.length;
      const samples: Sample[] = [];
      const run = await live(url, { tps, durationS: RUN_S, connections, seed: 7, merchants: MERCHANTS });
      let on = true;
      const sampler = (async () => {
        while (on) {
          const lag = await db.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS b FROM pg_replication_slots WHERE slot_name = $1`, [stamp]);
          samples.push({ at: Date.now(), slotLagBytes: lag.rows[0]?.b ?? NaN, consumerLag: await consumerLag() });
          await sleep(1000);
        }
      })();
      const st = await run.done;
      on = false;
      await sampler;
      const cpuPerMin = ((backendCpuMs(walsender) - cpu0) / st.seconds) * 60;
      const child1 = childCpu();
      const pct = (k: string, f: 'cpu' | 'wait') => Math.round((child1[k][f] - (child0[k]?.[f] ?? 0)) / st.seconds / 10);
      const childPct = Object.fromEntries(Object.keys(child1).map((k) => [k, { cpu: pct(k, 'cpu'), wait: pct(k, 'wait') }]));
      const mine = probes.slice(p0).filter((p) => p.at < Date.now());
      const tEnd = Date.now();
      const tail = samples.filter((s) => s.at >= tEnd - 10_000);
      const tailProbes = mine.filter((p) => p.at >= tEnd - 12_000).map((p) => p.ms);
      const maxSlot = Math.max(0, ...tail.map((s) => s.slotLagBytes));
      const maxCons = Math.max(0, ...tail.map((s) => s.consumerLag));
      const keptUp = quantile(tailProbes, 0.99) <= 2000 && maxSlot <= 16 * 2 ** 20 && maxCons <= 2 * st.achievedTps;
      const lat = mine.map((p) => p.ms);
      const h1 = await cdcPublishHistogram(cdcMetrics).catch(() => new Map<number, number>()); // no metrics: the figure is NaN
      const pub = histogramSince(h1, h0);
      const kafkaP99 = histogramQuantile(pub, 0.99) * 1000;
      // its read side: commit → the transaction reaching the cdc's router (walsender, socket, the cdc's queue)
      const r1h = await cdcPublishHistogram(cdcMetrics, 'receive').catch(() => new Map<number, number>());
      const receiveP99 = histogramQuantile(histogramSince(r1h, r0), 0.99) * 1000;
      // the aggregator's share: one apply (plan + Lua round trip) — the rest of commit → bucket is fetch wait and scheduling
      const a1 = await metricHistogram(aggMetrics, 'riskmon_aggregator_apply_seconds').catch(() => new Map<number, number>());
      const applies = histogramSince(a1, a0);
      const applyP50 = histogramQuantile(applies, 0.5) * 1000, applyP99 = histogramQuantile(applies, 0.99) * 1000;
      // Kafka → bucket from the aggregator's side (record timestamp = the cdc's produce time): to the batch handed
      // to eachBatch, and to its chunk applied
      const k1 = await aggLatency();
      const kq = (stage: 'receive' | 'applied', q: number) =>
        histogramQuantile(histogramSince(k1[stage], k0[stage]), q) * 1000;
      const toAgg = { receiveP50: kq('receive', 0.5), receiveP99: kq('receive', 0.99), appliedP50: kq('applied', 0.5), appliedP99: kq('applied', 0.99) };
      console.error(`   ${label}: asked ${tps} TPS, achieved ${Math.round(st.achievedTps)} over ${st.seconds.toFixed(0)} s (${st.errors} errors); walsender ${cpuPerMin.toFixed(0)} ms CPU/min; ` +
        `commit→bucket p50 ${quantile(lat, 0.5)} ms p99 ${quantile(lat, 0.99)} ms (${lat.length} probes), of which commit→Kafka p99 ${kafkaP99.toFixed(0)} ms (commit→cdc p99 ${receiveP99.toFixed(0)} ms), one apply p50 ${applyP50.toFixed(1)} p99 ${applyP99.toFixed(1)} ms; ` +
        `Kafka→aggregator p50 ${toAgg.receiveP50.toFixed(0)} p99 ${toAgg.receiveP99.toFixed(0)} ms, Kafka→applied p50 ${toAgg.appliedP50.toFixed(0)} p99 ${toAgg.appliedP99.toFixed(0)} ms; ` +
        `CPU / run-queue wait, % of a core: ${Object.entries(childPct).map(([k, v]) => `${k} ${v.cpu}/${v.wait}`).join(', ')}; last 10 s: slot lag ≤ ${(maxSlot / 2 ** 20).toFixed(1)} MiB, consumer lag ≤ ${maxCons}; kept up: ${keptUp}`);
      if (env.RISKMON_BENCH_PIPELINE_PROBES_OUT) writeFileSync(`${env.RISKMON_BENCH_PIPELINE_PROBES_OUT}.${label}.json`, JSON.stringify(mine));
      return { tps: st.achievedTps, cpuPerMin, lat, toAgg, childPct, keptUp, kafkaP50: histogramQuantile(pub, 0.5) * 1000, kafkaP99, receiveP99, applyP50, applyP99, maxSlotLag: Math.max(0, ...samples.map((s) => s.slotLagBytes)), maxConsumerLag: Math.max(0, ...samples.map((s) => s.consumerLag)) };
    };

    // Let the alerting evaluator load its baselines; meanwhile, what the walsender spends with no load on this
    // database (keepalives, heartbeats, and decoding the WAL other databases on a shared server write).
    const idle0 = backendCpuMs(walsender);
    const idleT = performance.now();
    await sleep(20_000);
    out.riskmon_source_cpu_ms_per_min_idle = Math.round(((backendCpuMs(walsender) - idle0) / (performance.now() - idleT)) * 60_000);
    probeEvery = 1000; // ≤ 1 extra TPS beside the 35
    const mean = await phase('mean', 35, 4);
    probeEvery = 100;
    const peak = await phase('peak', PEAK, 32);
    const max = await phase('max', MAX, 64);
    probing = false;
    await commitProbes;
    await alertProbes;

    out.riskmon_source_cpu_ms_per_min = Math.round(mean.cpuPerMin);
    out.riskmon_source_cpu_ms_per_min_35tps = Math.round(mean.cpuPerMin);
    out.riskmon_source_cpu_ms_per_min_peak = Math.round(peak.cpuPerMin);
    out.commit_to_bucket_p50_ms = quantile(peak.lat, 0.5);
    out.commit_to_bucket_p99_ms = quantile(peak.lat, 0.99);
    out.commit_to_bucket_at_tps = Math.round(peak.tps);
    out.commit_to_bucket_samples = peak.lat.length;
    // The cdc's share of it (its histogram: source commit timestamp → Kafka acknowledgement), same phase.
    out.commit_to_kafka_p50_ms = r1(peak.kafkaP50);
    out.commit_to_kafka_p99_ms = r1(peak.kafkaP99);
    out.commit_to_cdc_p99_ms = r1(peak.receiveP99);
    out.aggregator_apply_p50_ms_peak = r1(peak.applyP50);
    out.aggregator_apply_p99_ms_peak = r1(peak.applyP99);
    // Kafka → bucket as the aggregator sees it (from the record's produce time), same phase
    out.kafka_to_aggregator_p50_ms = r1(peak.toAgg.receiveP50);
    out.kafka_to_aggregator_p99_ms = r1(peak.toAgg.receiveP99);
    out.kafka_to_bucket_p50_ms = r1(peak.toAgg.appliedP50);
    out.kafka_to_bucket_p99_ms = r1(peak.toAgg.appliedP99);
    for (const [k, v] of Object.entries(peak.childPct)) {
      out[`${k === 'aggregate' ? 'aggregator' : k}_cpu_pct_peak`] = v.cpu;
      out[`${k === 'aggregate' ? 'aggregator' : k}_runq_wait_pct_peak`] = v.wait;
    }
    out.commit_to_bucket_p99_ms_35tps = quantile(mean.lat, 0.99);
    out.commit_to_bucket_p99_ms_max = quantile(max.lat, 0.99);
    out.source_max_tps_with_riskmon = Math.round(max.tps);
    out.live_kept_up_at_tps = max.keptUp ? Math.round(max.tps) : peak.keptUp ? Math.round(peak.tps) : mean.keptUp ? Math.round(mean.tps) : 0;
    out.live_max_slot_lag_bytes = Math.round(max.maxSlotLag);
    out.live_max_consumer_lag = max.maxConsumerLag;
    if (alertSamples.length) {
      const both = alertSamples.map((s) => Math.max(s.slack, s.ws));
      out.pipeline_alert_latency_p99_ms = quantile(both, 0.99);
      out.pipeline_alert_latency_p50_ms = quantile(both, 0.5);
      out.pipeline_alert_latency_slack_p99_ms = quantile(alertSamples.map((s) => s.slack), 0.99);
      out.pipeline_alert_latency_ws_p99_ms = quantile(alertSamples.map((s) => s.ws), 0.99);
    }
    out.pipeline_alert_latency_samples = alertSamples.length;
    // where the evaluator's share goes: its per-stage histogram over the live minutes of the run
    const stages = await stageHistograms(alertMetrics).catch(() => new Map<string, Map<number, number>>());
    for (const [stage, h] of stages) {
      out[`pipeline_eval_${stage}_p50_ms`] = r1(histogramQuantile(h, 0.5) * 1000);
      out[`pipeline_eval_${stage}_p99_ms`] = r1(histogramQuantile(h, 0.99) * 1000);
    }
    out.cdc_peak_rss_bytes = hwm(children.get('cdc')?.pid);
    out.aggregator_peak_rss_bytes = hwm(children.get('aggregate')?.pid);
    out.alerting_peak_rss_bytes = hwm(children.get('alerting')?.pid);

    // ---- the poller on the same source: riskmon stops (and its slot goes, so the history's WAL is not kept) ----
    await stopChildren(children);
    await dropSlot(admin, stamp, { terminate: true });
    if (HIST_DAYS.length) {
      const end = Date.now();
      let loaded = 0;
      for (const d of HIST_DAYS) {
        // history is added oldest-first behind what is there: [end - d days, end - loaded days)
        const t1 = Date.now();
        const bf = await backfill(url, { days: d - loaded, end: end - loaded * DAY, seed: 100 + d, merchants: MERCHANTS, txPerDay: HIST_TX, tz: TZ, connections: 2 });
        loaded = d;
        console.error(`   history ${d} d at ${HIST_TX} tx/day: +${bf.rows} rows in ${((Date.now() - t1) / 1000).toFixed(0)} s`);
        const f = await measurePoller(url, TZ, 3);
        for (const [k, v] of Object.entries(f)) if (k !== 'poller_source_cpu_ms_per_min') out[`${k}_${d}d`] = Math.round(v);
        console.error(`   poller at ${d} d: naive ${Math.round(f.poller_naive_source_cpu_ms_per_min)} ms CPU (${Math.round(f.poller_naive_wall_ms_per_min)} ms wall), cached ${Math.round(f.poller_cached_source_cpu_ms_per_min)} ms CPU per minute; ${f.poller_history_rows} rows`);
      }
      const lastD = HIST_DAYS[HIST_DAYS.length - 1];
      out.poller_source_cpu_ms_per_min = out[`poller_naive_source_cpu_ms_per_min_${lastD}d`];
      out.poller_history_tx_per_day = HIST_TX;
      // A minute closes at a uniformly random phase of the once-a-minute schedule: p99 of the wait is 59.4 s.
      out.poller_detection_latency_p99_ms = Math.round(0.99 * 60_000 + out[`poller_naive_wall_ms_per_min_${lastD}d`]);
      out.poller_cached_detection_latency_p99_ms = Math.round(0.99 * 60_000 + out[`poller_cached_wall_ms_per_min_${lastD}d`]);
    }
    return out;
  } finally {
    await stopChildren(children);
    await slack.stop();
    sub.disconnect();
    await dropKeys(redis, `${stamp}:*`).catch(() => {});
    redis.disconnect();
    await db.end().catch(() => {});
    await dropSlot(admin, stamp, { terminate: true });
    await admin.query(`DROP DATABASE IF EXISTS ${stamp} WITH (FORCE)`).catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${stamp}_risk WITH (FORCE)`).catch(() => {});
    await admin.end();
    const kafka = createKafka(kafkaConfigOf(env.KAFKA_BROKERS!), { clientId: 'bench-pipeline' });
    const ka = kafka.admin();
    await ka.connect().then(() => ka.deleteTopics({ topics: [stamp, `${stamp}.dlq`] })).catch(() => {}).finally(() => ka.disconnect());
  }
}

const HOUR_MS = 3_600_000;

/** The alerting evaluator's `riskmon_evaluation_stage_seconds` histograms by stage (le → cumulative count). */
async function stageHistograms(port: number): Promise<Map<string, Map<number, number>>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, Map<number, number>>();
  for (const m of text.matchAll(/riskmon_evaluation_stage_seconds_bucket\{([^}]*)\} (\d+)/g)) {
    const le = /le="([^"]+)"/.exec(m[1])![1], stage = /stage="([^"]+)"/.exec(m[1])![1];
    if (!out.has(stage)) out.set(stage, new Map());
    out.get(stage)!.set(le === '+Inf' ? Infinity : Number(le), Number(m[2]));
  }
  return out;
}

async function stopChildren(children: Map<string, ChildProcess>): Promise<void> {
  await Promise.all([...children.values()].map((c) => stopChild(c)));
  children.clear();
}




if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { stackUp } = await import('../scripts/stack/index.ts');
  const env = { ...process.env, ...(process.env.PG_URL && process.env.KAFKA_BROKERS ? {} : await stackUp({ log: (l) => console.error(l) })) };
  console.log(JSON.stringify(await benchPipeline(env), null, 2));
  process.exit(0);
}
