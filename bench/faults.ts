/**
 * How long riskmon is blind after each fault (`npm run bench -- --only faults`, not in a plain run: it starts its
 * own stacks). On a dedicated stack under .riskmon/bench-faults/ — its own PostgreSQL (restartable), the replicated
 * topology's three KRaft brokers (RF 3, min.insync.replicas 2) and Redis Cluster — `riskmon cdc`, `aggregate` and
 * `alerting` run as child processes under a light steady load, while a probe transaction every 200 ms inserts one
 * payment for one probe merchant per partition and waits until every one of them is in its minute bucket.
 *
 * Faults (RISKMON_BENCH_FAULTS, comma-separated; default all), each RISKMON_BENCH_FAULTS_REPS (5) times:
 *   kafka_leader  kill -9 of the broker leading partition 0, started again after the recovery is measured;
 *   redis_master  kill -9 of a Redis Cluster master (its replica takes over), started again afterwards;
 *   cdc | aggregator | alerting  kill -9 of that process, started again at once (as a supervisor would);
 *   postgres      an immediate PostgreSQL restart (pg_ctl -m immediate).
 *
 * recovery_s_<fault>_median / _max: seconds from the fault until commit → bucket is back under 1 s — the completion
 * of the first probe after the fault from which on every probe completed within 1 s (a probe that failed, e.g. its
 * INSERT while PostgreSQL was down, counts as slow). alert_fired_<fault>: at each fault a probe merchant with a week
 * of history gets a cancel surge that must raise an alert; the share of those alerts that reached the Slack webhook
 * (checked once all faults are done). recovery_cap_hits_<fault>: repetitions that had not recovered within
 * RISKMON_BENCH_FAULTS_CAP_S (180) s. exits_<command>: how often a child exited by itself (it is started again
 * after 1 s, as a supervisor would). Knobs: RISKMON_BENCH_FAULTS_TPS (200, the steady load), _LOG_LEVEL (warn; the
 * children's logs are under .riskmon/bench-faults/logs), _KEEP=1 leaves both stacks running for the next run.
 */
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createBucketReader } from '../aggregator/store/index.ts';
import { connections, readConfig } from '../lib/config.ts';
import { createKafka, kafkaConfigOf } from '../lib/kafka/index.ts';
import { migrate } from '../lib/migrate.ts';
import { partitionOfKey } from '../lib/partition.ts';
import { createRedis } from '../lib/redis.ts';
import { DAY, dayStart, MINUTE, minuteStart } from '../lib/time.ts';
import { baselineDayStarts } from '../alerting/index.ts';
import { nodePorts, replicatedDown, replicatedUp, startNode, stopNode } from '../scripts/stack/replicated.ts';
import { restartService, stackDown, stackUp, withDatabase } from '../scripts/stack/index.ts';
import { FakeSlack, runEnv, sleep, spawnRiskmon, stopChild, streaming, waitFor } from '../test/harness/index.ts';
import { withTimeout } from '../lib/timeout.ts';
import { quantile } from './util.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TZ = 'Asia/Seoul';
const PARTITIONS = 6;
const MERCHANTS = 2_000;
const FAULTS = ['kafka_leader', 'redis_master', 'cdc', 'aggregator', 'alerting', 'postgres'] as const;
type Fault = typeof FAULTS[number];
const ALERT_MERCHANTS = Array.from({ length: 60 }, (_, i) => 900_001 + i);
const iso = (ms: number) => new Date(ms).toISOString();
const r1 = (x: number) => Math.round(x * 10) / 10;

/** A probe: sent at `at`, done (visible in every bucket, or failed) at `done`. */
interface Probe { at: number; done: number; ok: boolean }

/** Seconds from the fault at `tf` until commit → bucket is under 1 s for good; null while not yet (pure). */
export function recoverySeconds(probes: readonly Probe[], tf: number, goodStreak = 10): number | null {
  const after = probes.filter((p) => p.at >= tf - 1000);
  let lastSlow = -1;
  after.forEach((p, i) => { if (!p.ok || p.done - p.at >= 1000) lastSlow = i; });
  const good = after.slice(lastSlow + 1);
  if (good.length < goodStreak) return null;
  return Math.max(0, good[0].done - tf) / 1000;
}

/** One merchant id per partition (not hot: the bench runs with RISKMON_HOT_FRACTION=0). */
function probeMerchants(): string[] {
  const out: string[] = [];
  for (let p = 0, m = 950_001; p < PARTITIONS; m++) if (partitionOfKey(String(m), PARTITIONS) === p) { out.push(String(m)); p++; }
  return out;
}

export async function benchFaults(env: NodeJS.ProcessEnv): Promise<Record<string, number>> {
  const REPS = Number(env.RISKMON_BENCH_FAULTS_REPS ?? 5);
  const TPS = Number(env.RISKMON_BENCH_FAULTS_TPS ?? 200);
  const CAP_S = Number(env.RISKMON_BENCH_FAULTS_CAP_S ?? 180);
  const which = (env.RISKMON_BENCH_FAULTS ?? FAULTS.join(',')).split(',').filter(Boolean) as Fault[];
  for (const f of which) if (!FAULTS.includes(f)) throw new Error(`RISKMON_BENCH_FAULTS: unknown fault "${f}" (known: ${FAULTS.join(', ')})`);
  const log = (l: string) => console.error(`   ${l}`);
  const base = path.join(ROOT, '.riskmon', 'bench-faults');
  const stackDir = path.join(base, 'single');
  const repDir = path.join(base, 'replicated');
  const stack = await stackUp({ dir: stackDir, env: {}, log: () => {} });
  const rep = await replicatedUp(repDir, { parts: ['kafka', 'cluster'], log });
  const stamp = `faults_${Date.now().toString(36)}`;
  const url = stack.PG_URL;
  // a fresh risk database per run: alert state left by an earlier run (a merchant still firing) would hide alerts
  const riskUrl = withDatabase(stack.PG_URL, `${stamp}_risk`);
  {
    const a = new pg.Client({ connectionString: withDatabase(stack.PG_URL, 'postgres') });
    await a.connect();
    try { await a.query(`CREATE DATABASE ${stamp}_risk`); } finally { await a.end(); }
  }
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env, PG_URL: url, RISK_PG_URL: riskUrl, KAFKA_BROKERS: rep.KAFKA_BROKERS!, REDIS_URL: rep.REDIS_CLUSTER_URL!,
    RISKMON_REDIS_MODE: 'cluster', RISKMON_TOPIC_REPLICATION: '3', ...runEnv(stamp), RISKMON_TZ: TZ, RISKMON_PARTITIONS: String(PARTITIONS),
    RISKMON_HOT_FRACTION: '0', RISKMON_LOG_LEVEL: env.RISKMON_BENCH_FAULTS_LOG_LEVEL ?? 'warn', RISKMON_PUBLIC_URL: 'http://localhost:8080',
  };
  const slackAt = new Map<string, number>();
  const slack = new FakeSlack({ onRequest: ({ at, text }) => { for (const m of text.matchAll(/merchants\/(\d+)/g)) if (!slackAt.has(m[1])) slackAt.set(m[1], at); } });
  await slack.start();
  childEnv.RISKMON_SLACK_WEBHOOK_URL = slack.url;
  const children = new Map<string, ChildProcess>();
  const logDir = path.join(base, 'logs');
  // A child that exits by itself is started again after 1 s, as the supervisor production runs under does (compose:
  // restart: unless-stopped); such exits are counted (exits_<command>) and logged.
  const exits: Record<string, number> = {};
  const start = (cmd: 'cdc' | 'aggregate' | 'alerting') => {
    const child = spawnRiskmon([cmd], { env: childEnv, stdout: 'ignore', logFile: path.join(logDir, `${stamp}-${cmd}.log`) });
    children.set(cmd, child);
    child.on('exit', (code, signal) => {
      if (!running || children.get(cmd) !== child) return; // stopped, or killed and replaced by a fault
      exits[cmd] = (exits[cmd] ?? 0) + 1;
      console.error(`   ${cmd} exited by itself (${signal ?? `code ${code}`}) at ${iso(Date.now())}: started again in 1 s`);
      setTimeout(() => { if (running && children.get(cmd) === child) start(cmd); }, 1000);
    });
  };
  const redis = createRedis(readConfig(connections('redisUrl'), childEnv), { maxRetriesPerRequest: null });
  const kafka = createKafka(kafkaConfigOf(rep.KAFKA_BROKERS!), { clientId: 'bench-faults' });
  const admin = kafka.admin();
  let running = true;
  const out: Record<string, number> = {};
  try {
    await (await import('node:fs/promises')).mkdir(logDir, { recursive: true });
    await migrate(url, 'source');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const probesM = probeMerchants();
    await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'm' || g FROM generate_series(1, ${MERCHANTS}) g ON CONFLICT DO NOTHING`);
    await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'probe ' || g FROM unnest($1::bigint[]) g ON CONFLICT DO NOTHING`, [[...ALERT_MERCHANTS, ...probesM.map(Number)]]);
    const idBase = Number((await db.query('SELECT coalesce(max(payment_id), 0)::bigint + 1 AS n FROM payments')).rows[0].n);
    let nextId = idBase + 1_000_000;
    // a week of history for the alert merchants: 200 approvals and 4 cancels a day (a 2% cancel rate)
    const days = baselineDayStarts(dayStart(Date.now(), TZ), 7, TZ);
    const rows: string[] = [];
    const cancels: string[] = [];
    for (const m of ALERT_MERCHANTS) for (const d of days) for (let k = 0; k < 200; k++) {
      const id = nextId++;
      rows.push(`(${id},${m},10000,'${iso(d + 3_600_000 + k * MINUTE)}')`);
      if (k < 4) cancels.push(`(${nextId++},${id},${m},10000,'${iso(d + 3_600_000 + k * MINUTE + 1000)}')`);
    }
    await db.end();

    const sql = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
      c.on('error', () => {});
      await c.connect();
      try { return await fn(c); } finally { await c.end().catch(() => {}); }
    };
    start('cdc');
    start('aggregate');
    await admin.connect();
    // the history must be written after the slot exists (the cdc creates it), or the stream never carries it
    await waitFor(() => sql((c) => streaming(c, stamp)), { timeoutMs: 180_000, intervalMs: 250, message: 'the cdc did not start streaming within 180 s' });
    const reader = createBucketReader(redis, { prefix: stamp, partitions: PARTITIONS, hotShards: 8, tz: TZ });
    await sql(async (c) => {
      await c.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ${rows.join(',')}`);
      await c.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at) VALUES ${cancels.join(',')}`);
    });
    const last = String(ALERT_MERCHANTS[ALERT_MERCHANTS.length - 1]);
    for (const t1 = Date.now(); ;) {
      const tot = (await reader.totals([last], days[0], days[days.length - 1] + DAY)).get(last);
      if (tot && tot.approvals === 1400 && tot.cancels === 28) break;
      if (Date.now() - t1 > 180_000) throw new Error('the alert merchants\' history did not reach Redis within 180 s');
      await sleep(250);
    }
    start('alerting');
    log(`pipeline up: ${stamp}; load ${TPS} TPS; probes on merchants ${probesM.join(',')}`);

    // ---- steady load: one multi-row transaction every 50 ms, reconnecting after a PostgreSQL restart -----------
    const load = (async () => {
      let c: pg.Client | null = null;
      while (running) {
        const t = Date.now();
        try {
          if (!c) { c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 }); c.on('error', () => {}); await c.connect(); }
          const n = Math.max(1, Math.round(TPS / 20));
          const vals = Array.from({ length: n }, () => `(${nextId++},${1 + (nextId % MERCHANTS)},1000,now())`);
          await c.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ${vals.join(',')}`);
        } catch { await c?.end().catch(() => {}); c = null; await sleep(200); }
        await sleep(Math.max(0, 50 - (Date.now() - t)));
      }
      await c?.end().catch(() => {});
    })();

    // ---- probes ----------------------------------------------------------------------------------------------
    const probes: Probe[] = [];
    const seen = new Map<string, number>();
    const prober = (async () => {
      let c: pg.Client | null = null;
      while (running) {
        const at = Date.now();
        try {
          if (!c) { c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 }); c.on('error', () => {}); await c.connect(); }
          const minute = minuteStart(at);
          const want = (seen.get(String(minute)) ?? 0) + 1;
          const first = nextId;
          nextId += probesM.length + 1; // before the await: the load takes ids meanwhile
          await c.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at) SELECT $1::bigint + i, m, 1000, $3
            FROM unnest($2::bigint[]) WITH ORDINALITY AS u(m, i)`, [first, probesM.map(Number), iso(at)]);
          seen.set(String(minute), want);
          for (;;) {
            // bounded: a read stuck on a Redis node that died must not stop the probing
            const got = await within(5_000, Promise.all(probesM.map(async (m) => (await reader.series(m, minute, minute + MINUTE, '1m'))[0]?.approvals ?? 0)));
            if (got.every((n) => n >= want)) { probes.push({ at, done: Date.now(), ok: true }); break; }
            if (!running || Date.now() - at > CAP_S * 1000) { probes.push({ at, done: Date.now(), ok: false }); break; }
            await sleep(5);
          }
        } catch {
          probes.push({ at, done: Date.now(), ok: false });
          await c?.end().catch(() => {}); c = null;
          await sleep(200);
        }
        await sleep(Math.max(0, 200 - (Date.now() - at)));
      }
      await c?.end().catch(() => {});
    })();

    const steady = async () => {
      // 5 s of probes under 1 s before each fault
      for (const t = Date.now(); Date.now() - t < 300_000;) {
        // probes are sequential (the next one after the last is visible): 5 s holds 5 to 25 of them
        const recent = probes.filter((p) => p.at > Date.now() - 5_000);
        if (recent.length >= 5 && recent.every((p) => p.ok && p.done - p.at < 1000)) return;
        if ((Date.now() - t) % 30_000 < 500) log(`not settled yet: last probes ${recent.map((p) => (p.ok ? p.done - p.at : 'failed')).join(' ')} ms`);
        await sleep(500);
      }
      throw new Error('the pipeline did not settle (probes under 1 s for 5 s) within 300 s');
    };
    let alertIdx = 0;
    const surges: { fault: Fault; merchant: string; at: number }[] = [];
    const surge = async (fault: Fault) => {
      const m = String(ALERT_MERCHANTS[alertIdx++ % ALERT_MERCHANTS.length]);
      const M = minuteStart(Date.now());
      const pays: string[] = [], cans: string[] = [];
      for (let k = 0; k < 25; k++) {
        const id = nextId++;
        pays.push(`(${id},${m},10000,'${iso(Math.min(Date.now(), M + k * 100))}')`);
        if (k < 10) cans.push(`(${nextId++},${id},${m},10000,'${iso(Math.min(Date.now(), M + k * 100 + 50))}')`);
      }
      // Written again while the fault keeps PostgreSQL away (up to 60 s); a duplicate key means an earlier try's
      // COMMIT went through unanswered. Rows dated in an earlier minute than the commit are late rows: still counted.
      for (let t0 = Date.now(); ; await sleep(500)) {
        try {
          await sql(async (c) => {
            await c.query('BEGIN');
            await c.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ${pays.join(',')}`);
            await c.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at) VALUES ${cans.join(',')}`);
            await c.query('COMMIT');
          });
          break;
        } catch (err) {
          if ((err as { code?: string }).code === '23505') break;
          if (Date.now() - t0 > 60_000) throw err;
        }
      }
      surges.push({ fault, merchant: m, at: M });
    };

    const leaderOf0 = async () => {
      const md = await admin.fetchTopicMetadata({ topics: [stamp] });
      return md.topics[0].partitions.find((p) => p.partitionId === 0)!.leader;
    };
    const fullIsr = async () => {
      for (const t = Date.now(); Date.now() - t < 120_000;) {
        const md = await admin.fetchTopicMetadata({ topics: [stamp] }).catch(() => null);
        if (md && md.topics[0].partitions.every((p) => p.isr.length === 3)) return;
        await sleep(1000);
      }
      log('warning: the restarted broker did not rejoin every ISR within 120 s');
    };
    const redisMaster = async (): Promise<number> => {
      const ports = await nodePorts(repDir, 'cluster');
      for (let i = 0; i < ports.length; i++) {
        const role = await onPort(ports[i], (r) => r.call('ROLE')).catch(() => null) as [string] | null;
        if (role?.[0] === 'master') return i;
      }
      throw new Error('no Redis Cluster master answers');
    };
    const clusterOk = async () => {
      const ports = await nodePorts(repDir, 'cluster');
      for (const t = Date.now(); Date.now() - t < 60_000;) {
        const infos = await Promise.all(ports.map((p) => onPort(p, (r) => r.call('CLUSTER', 'INFO')).catch(() => '')));
        if (infos.every((i) => /cluster_state:ok/.test(String(i)))) return;
        await sleep(500);
      }
    };

    const act: Record<Fault, () => Promise<() => Promise<void>>> = {
      kafka_leader: async () => {
        const node = (await leaderOf0()) - 1; // node.id = index + 1
        await stopNode(repDir, 'kafka', node, { hard: true });
        return async () => { await startNode(repDir, 'kafka', node); await fullIsr(); };
      },
      redis_master: async () => {
        const i = await redisMaster();
        await stopNode(repDir, 'cluster', i, { hard: true });
        return async () => { await startNode(repDir, 'cluster', i); await clusterOk(); };
      },
      cdc: async () => { children.get('cdc')!.kill('SIGKILL'); start('cdc'); return async () => {}; },
      aggregator: async () => { children.get('aggregate')!.kill('SIGKILL'); start('aggregate'); return async () => {}; },
      alerting: async () => { children.get('alerting')!.kill('SIGKILL'); start('alerting'); return async () => {}; },
      postgres: async () => { await restartService(stackDir, 'pg', { hard: true }); return async () => {}; },
    };

    for (const fault of which) {
      const recs: number[] = [];
      log(`${fault}: ${REPS} repetitions`);
      let capped = 0;
      for (let r = 0; r < REPS; r++) {
        await steady();
        const tf = Date.now();
        const surged = surge(fault).catch((err) => log(`surge for ${fault} failed: ${err.message}`));
        const restore = await act[fault]();
        let rec: number | null = null;
        while ((rec = recoverySeconds(probes, tf)) === null && Date.now() - tf < CAP_S * 1000) await sleep(500);
        if (rec === null) { rec = CAP_S; capped++; }
        recs.push(rec);
        log(`${fault} #${r + 1} (at ${iso(tf)}, load ${os.loadavg()[0].toFixed(1)}): commit → bucket under 1 s again after ${rec.toFixed(1)} s`);
        await surged;
        await restore();
      }
      const sorted = [...recs].sort((a, b) => a - b);
      out[`recovery_s_${fault}_median`] = r1(quantile(sorted, 0.5));
      out[`recovery_s_${fault}_max`] = r1(sorted[sorted.length - 1]);
      out[`recovery_cap_hits_${fault}`] = capped;
      out[`load1_${fault}`] = Math.round(os.loadavg()[0] * 10) / 10;
      log(`${fault}: recovery median ${out[`recovery_s_${fault}_median`]} s, max ${out[`recovery_s_${fault}_max`]} s`);
    }
    // every surge's minute has to close (+5 s lateness) and be evaluated before its alert can be sent
    const deadline = Math.max(...surges.map((s) => minuteStart(s.at) + MINUTE)) + 90_000;
    while (Date.now() < deadline && !surges.every((s) => slackAt.has(s.merchant))) await sleep(1000);
    for (const fault of which) {
      const mine = surges.filter((s) => s.fault === fault);
      if (!mine.length) continue;
      out[`alert_fired_${fault}`] = Math.round((mine.filter((s) => slackAt.has(s.merchant)).length / mine.length) * 100) / 100;
      const delays = mine.filter((s) => slackAt.has(s.merchant)).map((s) => (slackAt.get(s.merchant)! - (minuteStart(s.at) + MINUTE)) / 1000);
      if (delays.length) out[`alert_after_minute_end_s_${fault}_max`] = r1(Math.max(...delays));
    }
    for (const cmd of ['cdc', 'aggregate', 'alerting']) out[`exits_${cmd}`] = exits[cmd] ?? 0;
    out.faults_repetitions = REPS;
    out.faults_load_tps = TPS;
    running = false;
    await Promise.all([load, prober]);
  } finally {
    running = false;
    for (const c of children.values()) await stopChild(c).catch(() => {});
    await admin.disconnect().catch(() => {});
    redis.disconnect();
    await slack.stop?.();
    if (!env.RISKMON_BENCH_FAULTS_KEEP) {
      await replicatedDown(repDir, { purge: true, log: () => {} });
      await stackDown(stackDir, { purge: true, log: () => {} });
    }
  }
  return out;
}

function within<T>(ms: number, p: Promise<T>): Promise<T> {
  return withTimeout(p, ms, () => new Error(`no answer within ${ms} ms`));
}

async function onPort<T>(port: number, fn: (r: import('ioredis').Redis) => Promise<T>): Promise<T> {
  const { Redis } = await import('ioredis');
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  r.on('error', () => {});
  await r.connect();
  try { return await fn(r); } finally { r.disconnect(); }
}
