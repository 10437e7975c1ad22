/**
 * CDC benchmark. A fresh database gets two pgoutput slots at the same WAL position, then a backlog of
 * ≥ 1,000,000 single-row transactions. Figures:
 * - cdc_catchup_changes_per_s: `riskmon cdc` (child process) draining the backlog into Kafka, until the slot's
 *   confirmed position (which the cdc reports only after Kafka acknowledged) passes the end of the backlog;
 * - pg_recvlogical_changes_per_s: pg_recvlogical decoding the same backlog from the other slot to /dev/null;
 * - cdc_catchup_ratio_to_pg_recvlogical: the honest figure (both are bound by the walsender on a shared machine);
 * - cdc_publish_p50_ms / p99_ms: commit → Kafka acknowledgement at a fixed rate, 5,000 TPS by default
 *   (RISKMON_BENCH_CDC_TPS); cdc_publish_tps is the rate the writers reached;
 * - cdc_peak_rss_bytes: the cdc process's peak RSS over the run.
 * Runnable alone: `npx tsx bench/cdc.ts` (PG_URL and KAFKA_BROKERS from the environment).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { freePort } from '../lib/net.ts';
import { cdcPublishHistogram, histogramQuantile, histogramSince } from './util.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../lib/migrate.ts';
import os from 'node:os';
import { spawnRiskmon } from '../test/harness/index.ts';
import { createKafka, kafkaConfigOf } from '../lib/kafka/index.ts';
import type { Kafka } from 'kafkajs';
import { brokerPids, cpuTicks, CpuWindow, perMillion, type CpuUse, DEBEZIUM_VERSION, debeziumLatencies, meanRecordBytes, nullReader, p, partitionOffsets, producerCeiling, startDebezium, topicRecords } from './peer.ts';

const BACKLOG = Number(process.env.RISKMON_BENCH_CDC_BACKLOG ?? 1_000_000);

function dbUrl(base: string, name: string): string {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

function recvlogicalBin(): string {
  for (const d of ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/local/pgsql/bin']) {
    if (existsSync(path.join(d, 'pg_recvlogical'))) return path.join(d, 'pg_recvlogical');
  }
  return 'pg_recvlogical';
}

/** A fresh database with slots at one WAL position, then `n` single-row transactions; `target` is the WAL end. */
interface Backlog { name: string; url: string; db: pg.Client; target: string; genS: number; drop(): Promise<void> }

async function makeBacklog(pgUrl: string, name: string, n: number, slots: string[]): Promise<Backlog> {
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = dbUrl(pgUrl, name);
  const db = new pg.Client({ connectionString: url });
  const drop = async () => {
    await db.end().catch(() => {});
    // drop the slots and the database; the topics stay until retention (names start with bench_cdc_)
    await admin.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [name]).catch(() => {});
    await new Promise((r) => setTimeout(r, 1000));
    await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [name]).catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await admin.end();
  };
  try {
    await db.connect();
    await migrate(url, 'source');
    await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'm' || g FROM generate_series(1, 10000) g`);
    for (const s of slots) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [`${name}_${s}`]);
    await db.query(`CREATE PROCEDURE bench_gen(first bigint, n int) LANGUAGE plpgsql AS $$
      BEGIN
        FOR i IN 0..n - 1 LOOP
          INSERT INTO payments VALUES (first + i, 1 + (first + i) % 10000, 1000 + (first + i) % 5000, now());
          COMMIT;
        END LOOP;
      END $$`);
    const t0 = Date.now();
    const parallel = 2;
    await Promise.all(Array.from({ length: parallel }, async (_, k) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('SET synchronous_commit = off');
      await c.query('CALL bench_gen($1, $2)', [1 + k * Math.ceil(n / parallel), Math.ceil(n / parallel)]);
      await c.end();
    }));
    const target = (await db.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l as string;
    return { name, url, db, target, genS: (Date.now() - t0) / 1000, drop };
  } catch (err) {
    await drop();
    throw err;
  }
}

/** A running `riskmon cdc` that drained a backlog: its catch-up time, its CPU and the walsender's over it. */
interface CatchUp { cdc: ChildProcess; metricsPort: number; seconds: number; cpuTicks: number; walsenderPct: number; cpu: CpuUse; peakRss(): number; stopRss(): void }

/**
 * Starts `riskmon cdc` on the backlog's `_cdc` slot and waits until the slot's confirmed position passes the backlog's
 * end. Time and CPU (the cdc's and its walsender's, /proc/<pid>/stat) count from the moment its walsender streams.
 */
async function catchUp(b: Backlog, brokers: string, env: NodeJS.ProcessEnv = process.env): Promise<CatchUp> {
  const { name, url, db, target } = b;
  const metricsPort = await freePort();
  // RISKMON_BENCH_CDC_NODE_ARGS: extra node flags for the cdc child (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`).
  const nodeArgs = (process.env.RISKMON_BENCH_CDC_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const cdc = spawnRiskmon(['cdc'], {
    nodeArgs, stdout: process.env.RISKMON_BENCH_CDC_LOG_LEVEL ? 'inherit' : 'ignore', stderr: 'inherit',
    env: {
      ...env, PG_URL: url, KAFKA_BROKERS: brokers, RISKMON_TOPIC: name, RISKMON_DLQ_TOPIC: `${name}.dlq`,
      RISKMON_SLOT: `${name}_cdc`, RISKMON_BACKFILL_DAYS: '0', RISKMON_METRICS_PORT: String(metricsPort), RISKMON_LOG_LEVEL: process.env.RISKMON_BENCH_CDC_LOG_LEVEL ?? 'warn', RISKMON_RETENTION_MS: String(8 * 86_400_000 + 3_600_000),
    },
  });
  let peakRss = 0;
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, rssOf(cdc.pid!)); }, 200);
  const slotState = async () => (await db.query(
    `SELECT s.active_pid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_stat_replication r WHERE r.pid = s.active_pid) AS streaming,
            confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots s WHERE slot_name = $1`, [`${name}_cdc`, target])).rows[0];
  while (!(await slotState()).streaming) {
    if (cdc.exitCode !== null) throw new Error(`riskmon cdc exited (${cdc.exitCode}) before streaming`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const c0 = Date.now();
  const wsPid = (await db.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [`${name}_cdc`])).rows[0]?.active_pid as number | null;
  const ws0 = wsPid ? cpuTicks(wsPid) : 0;
  const cdc0 = cpuTicks(cdc.pid!);
  // the same window for the broker and the whole machine (where the cores went)
  const window = new CpuWindow({ cdc: [cdc.pid!], walsender: wsPid ? [wsPid] : [], broker: brokerPids(brokers) });
  while (!(await slotState()).done) await new Promise((r) => setTimeout(r, 50));
  const cpu = window.end();
  const seconds = (Date.now() - c0) / 1000;
  return {
    cdc, metricsPort, seconds, cpu, cpuTicks: cpuTicks(cdc.pid!) - cdc0,
    walsenderPct: wsPid ? Math.round((cpuTicks(wsPid) - ws0) / seconds) : NaN,
    peakRss: () => Math.max(peakRss, rssOf(cdc.pid!)), stopRss: () => clearInterval(rssTimer),
  };
}

/**
 * A catch-up's CPU accounting as figures `<prefix>_cpu_s_per_1m_changes_<process>` (each process group's CPU seconds
 * per million changes, `_total` their sum, `_machine` every core's busy seconds: the processes plus everything else)
 * and `<prefix>_machine_busy_pct` (busy share of all cores over the catch-up); printed as a line.
 */
function catchUpCpu(prefix: string, use: CpuUse, changes: number): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [name, s] of Object.entries(use.cpuS)) { out[`${prefix}_cpu_s_per_1m_changes_${name}`] = perMillion(s, changes); total += s; }
  out[`${prefix}_cpu_s_per_1m_changes_total`] = perMillion(total, changes);
  out[`${prefix}_cpu_s_per_1m_changes_machine`] = perMillion(use.machineCpuS, changes);
  out[`${prefix}_machine_busy_pct`] = use.machineBusyPct;
  const pct = Object.entries(use.cpuS).map(([name, s]) => `${name} ${Math.round((s / use.seconds) * 100)}%`).join(', ');
  console.error(`   ${prefix}: ${use.seconds.toFixed(1)} s, CPU (% of one core) ${pct}; machine ${use.machineBusyPct}% busy of ${os.cpus().length} cores (${use.machineCpuS.toFixed(1)} CPU s: ${use.machineSplit}; the most of the rest: ${use.others.join(', ')}); CPU s per 1M changes ${JSON.stringify(out)}`);
  return out;
}

/** Stops the cdc and waits (up to 15 s) for it to exit (a --cpu-prof child writes its profile on exit). */
async function stopCdc(cdc: ChildProcess): Promise<void> {
  if (cdc.exitCode !== null) return;
  const exited = new Promise((r) => cdc.once('exit', r));
  cdc.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
}

/** Which of the peer and the ceilings run after the cdc on the same backlog. */
export interface PeerParts { nullReader: boolean; debezium: boolean; ceiling: boolean }
const ALL_PEERS: PeerParts = { nullReader: true, debezium: true, ceiling: true };
const NO_PEERS: PeerParts = { nullReader: false, debezium: false, ceiling: false };

/**
 * `backlog` / `peer`: a smaller backlog, and which of the peer and ceilings run (bench/topology.ts runs it on two
 * stacks: no peer on the single one, Debezium and the producer tool on the replicated one).
 */
export async function benchCdc(env: NodeJS.ProcessEnv & { PG_URL: string; KAFKA_BROKERS: string }, { backlog = BACKLOG, peer = PEER }: { backlog?: number; peer?: boolean | PeerParts } = {}): Promise<Record<string, number>> {
  const parts = peer === true ? ALL_PEERS : peer === false ? NO_PEERS : peer;
  const withPeer = parts.nullReader || parts.debezium || parts.ceiling;
  const name = `bench_cdc_${Date.now().toString(36)}`;
  // the peer and the read-side ceiling read the same backlog from slots of their own at the same position
  const b = await makeBacklog(env.PG_URL, name, backlog, ['cdc', 'recv', ...(parts.nullReader ? ['null'] : []), ...(parts.debezium ? ['dbz'] : [])]);
  const { url, db, target } = b;
  let cdc: ChildProcess | null = null;
  try {
    const c = await catchUp(b, env.KAFKA_BROKERS, { ...process.env, ...env });
    cdc = c.cdc;
    const catchUpFigures = catchUpCpu('cdc_catchup', c.cpu, backlog);

    // publish latency at a fixed rate (default 5,000 TPS for 15 s from 16 connections); the rate reached is reported
    const h0 = await cdcPublishHistogram(c.metricsPort);
    const rh0 = await cdcPublishHistogram(c.metricsPort, 'receive');
    const reachedTps = await writeAtRate(url, 50_000_000);
    await new Promise((r) => setTimeout(r, 1500));
    const h1 = await cdcPublishHistogram(c.metricsPort);
    const delta = histogramSince(h1, h0);
    const rh1 = await cdcPublishHistogram(c.metricsPort, 'receive');
    const received = histogramSince(rh1, rh0);
    const peakRss = c.peakRss();
    c.stopRss();
    // Let it exit before pg_recvlogical runs (no CPU contention).
    await stopCdc(cdc);

    // pg_recvlogical on the same backlog
    const r0 = Date.now();
    const res = spawnSync(recvlogicalBin(), ['-d', url, `--slot=${name}_recv`, '--start', `--endpos=${target}`,
      '-o', 'proto_version=1', '-o', 'publication_names=riskmon_pub', '-f', '/dev/null', '--no-loop'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const recvS = (Date.now() - r0) / 1000;
    if (res.status !== 0) throw new Error(`pg_recvlogical failed: ${res.stderr?.toString()}`);

    const peerFigures = withPeer ? await benchPeer(env, url, db, name, target, backlog, parts) : {};

    const figures = {
      ...peerFigures,
      ...catchUpFigures,
      walsender_cpu_pct_riskmon_cdc: c.walsenderPct,
      cdc_catchup_changes_per_s: Math.round(backlog / c.seconds),
      pg_recvlogical_changes_per_s: Math.round(backlog / recvS),
      cdc_catchup_ratio_to_pg_recvlogical: Math.round((recvS / c.seconds) * 100) / 100,
      cdc_publish_p50_ms: Math.round(histogramQuantile(delta, 0.5) * 1000 * 10) / 10,
      cdc_publish_p99_ms: Math.round(histogramQuantile(delta, 0.99) * 1000 * 10) / 10,
      cdc_receive_p99_ms: Math.round(histogramQuantile(received, 0.99) * 1000 * 10) / 10,
      cdc_publish_tps: reachedTps,
      cdc_peak_rss_bytes: peakRss,
      cdc_backlog_changes: backlog,
      cdc_backlog_generate_s: Math.round(b.genS * 10) / 10,
    };
    return figures;
  } finally {
    cdc?.kill('SIGKILL');
    await b.drop();
  }
}

/**
 * How the cdc's catch-up grows (issue 16): a fresh backlog of 1×, 4× and 16× RISKMON_BENCH_CDC_GROWTH_BASE changes
 * (default 50,000), each drained by a fresh `riskmon cdc`. Per scale: changes/s, the cdc's peak RSS, its CPU seconds
 * per million changes and the walsender's CPU (% of a core). Flat per change = changes/s and CPU per change equal
 * across scales, RSS not growing with the backlog.
 */
export async function benchCdcGrowth(env: { PG_URL: string; KAFKA_BROKERS: string }): Promise<Record<string, number>> {
  const base = Number(process.env.RISKMON_BENCH_CDC_GROWTH_BASE ?? 50_000);
  if (!Number.isInteger(base) || base < 1000) throw new Error(`RISKMON_BENCH_CDC_GROWTH_BASE must be an integer ≥ 1000 (got ${process.env.RISKMON_BENCH_CDC_GROWTH_BASE}); 16× it is generated`);
  const tick = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;
  const out: Record<string, number> = { cdc_growth_base_changes: base };
  for (const k of [1, 4, 16]) {
    const n = base * k;
    const b = await makeBacklog(env.PG_URL, `bench_cdc_${Date.now().toString(36)}_${k}x`, n, ['cdc']);
    let cdc: ChildProcess | null = null;
    try {
      const c = await catchUp(b, env.KAFKA_BROKERS);
      cdc = c.cdc;
      out[`cdc_catchup_changes_per_s_${k}x`] = Math.round(n / c.seconds);
      out[`cdc_peak_rss_bytes_${k}x`] = c.peakRss();
      out[`cdc_cpu_s_per_1m_changes_${k}x`] = Math.round((c.cpuTicks / tick / n) * 1e6 * 10) / 10;
      out[`walsender_cpu_pct_cdc_${k}x`] = c.walsenderPct;
      out[`load1_cdc_growth_${k}x`] = Math.round(os.loadavg()[0] * 100) / 100;
      c.stopRss();
      await stopCdc(cdc);
      console.error(`   ${k}× (${n.toLocaleString('en-US')} changes): ${out[`cdc_catchup_changes_per_s_${k}x`]} changes/s, peak RSS ${(out[`cdc_peak_rss_bytes_${k}x`] / 2 ** 20).toFixed(0)} MiB, ${out[`cdc_cpu_s_per_1m_changes_${k}x`]} CPU s per 1M changes, load ${os.loadavg()[0].toFixed(2)}`);
    } finally {
      cdc?.kill('SIGKILL');
      await b.drop();
    }
  }
  return out;
}

const RATE = Number(process.env.RISKMON_BENCH_CDC_TPS ?? 5000);
const PEER = process.env.RISKMON_BENCH_PEER !== '0';

/** Single-row INSERT transactions at RATE per second for 15 s from 16 connections; returns the rate reached. */
async function writeAtRate(url: string, firstId: number): Promise<number> {
  const seconds = 15, conns = 16;
  const l0 = Date.now();
  let id = firstId;
  await Promise.all(Array.from({ length: conns }, async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const start = Date.now();
    for (let i = 0; i < (RATE / conns) * seconds; i++) {
      const due = start + (i * 1000 * conns) / RATE;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const pid = id++;
      await c.query('INSERT INTO payments VALUES ($1, $2, 1000, now())', [pid, 1 + (pid % 10000)]);
    }
    await c.end();
  }));
  return Math.round((RATE * seconds) / ((Date.now() - l0) / 1000));
}

/**
 * The ceilings and the peer on the same backlog (bench/peer.ts): the null reader, Debezium's catch-up and its commit →
 * Kafka latency at RATE, and Kafka's producer tool with records of riskmon's size (those the cdc just wrote).
 */
async function benchPeer(env: { KAFKA_BROKERS: string }, url: string, db: pg.Client, name: string, target: string, backlog: number, parts: PeerParts): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (parts.nullReader) {
    console.error('   null reader (pg-logical-replication, no Kafka) on the same backlog');
    Object.assign(out, await nullReader(url, db, `${name}_null`, target, backlog));
    console.error(`   null reader: ${out.null_reader_changes_per_s} changes/s, walsender ${out.walsender_cpu_pct_null_reader}% CPU, machine ${out.null_reader_machine_busy_pct}% busy, CPU s per 1M changes: reader ${out.null_reader_cpu_s_per_1m_changes_reader}, walsender ${out.null_reader_cpu_s_per_1m_changes_walsender}`);
  }
  // RISKMON_BENCH_PEER=null-reader: the read-side ceiling alone (no Debezium, no producer tool: a quicker run)
  if (process.env.RISKMON_BENCH_PEER === 'null-reader') return out;
  const kafka = createKafka(kafkaConfigOf(env.KAFKA_BROKERS), { clientId: 'bench-peer' });
  if (parts.debezium) Object.assign(out, await benchDebezium(env, kafka, url, db, name, backlog));
  if (parts.ceiling) {
    const bytes = await meanRecordBytes(kafka, name);
    Object.assign(out, await producerCeiling(kafka, env.KAFKA_BROKERS, { topic: `${name}_ceiling`, partitions: 12, records: backlog, bytes }));
    console.error(`   Kafka producer ceiling (${bytes}-byte records, acks=all): ${out.kafka_producer_ceiling_records_per_s} records/s`);
  }
  return out;
}

/**
 * Debezium on the backlog from its own slot: catch-up changes/s and its CPU, then commit → Kafka at RATE (the same
 * fixed-rate phase the cdc had). Its topic has the brokers' default replication factor (3 on the replicated
 * stack), its producer acks=all and idempotent, as riskmon's.
 */
async function benchDebezium(env: { KAFKA_BROKERS: string }, kafka: Kafka, url: string, db: pg.Client, name: string, backlog: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const dbz = await startDebezium({
    url, slot: `${name}_dbz`, publication: 'riskmon_pub', brokers: env.KAFKA_BROKERS, prefix: `${name}_dbz`,
    dir: path.join(os.tmpdir(), `${name}_dbz`), kafka, partitions: 12,
  });
  try {
    const active = async () => (await db.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [`${name}_dbz`])).rows[0]?.active_pid as number | null;
    const deadline = Date.now() + 180_000;
    while (!(await active())) {
      if (dbz.child.exitCode !== null || Date.now() > deadline) throw new Error(`Debezium did not start streaming (log: ${path.join(os.tmpdir(), `${name}_dbz`, 'connect.log')})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = Date.now();
    const dbzCpu = new CpuWindow({ worker: [dbz.child.pid!], walsender: [(await active())!], broker: brokerPids(env.KAFKA_BROKERS) });
    let rss = 0;
    const rssTimer = setInterval(() => { rss = Math.max(rss, rssOf(dbz.child.pid!)); }, 200);
    while ((await topicRecords(kafka, dbz.topic)) < backlog) {
      if (dbz.child.exitCode !== null || Date.now() - t0 > 900_000) throw new Error('Debezium stopped before the end of the backlog');
      await new Promise((r) => setTimeout(r, 100));
    }
    const dbzS = (Date.now() - t0) / 1000;
    out.debezium_catchup_changes_per_s = Math.round(backlog / dbzS);
    Object.assign(out, catchUpCpu('debezium_catchup', dbzCpu.end(), backlog));
    console.error(`   Debezium ${DEBEZIUM_VERSION}: ${out.debezium_catchup_changes_per_s} changes/s catching up`);
    // what riskmon's latency phase wrote after the backlog too, then the same fixed-rate phase for Debezium
    const expected = backlog + RATE * 15;
    while ((await topicRecords(kafka, dbz.topic)) < expected && Date.now() - t0 < 900_000) await new Promise((r) => setTimeout(r, 200));
    const from = await partitionOffsets(kafka, dbz.topic);
    out.debezium_publish_tps = await writeAtRate(url, 60_000_000);
    await new Promise((r) => setTimeout(r, 3000));
    const lat = await debeziumLatencies(kafka, dbz.topic, from);
    clearInterval(rssTimer);
    out.debezium_commit_to_kafka_p50_ms = p(lat, 0.5);
    out.debezium_commit_to_kafka_p99_ms = p(lat, 0.99);
    out.debezium_latency_samples = lat.length;
    out.debezium_rss_peak_bytes = rss;
    console.error(`   Debezium commit → Kafka at ${out.debezium_publish_tps} TPS: p50 ${out.debezium_commit_to_kafka_p50_ms} ms, p99 ${out.debezium_commit_to_kafka_p99_ms} ms (${lat.length} records)`);
  } finally {
    await dbz.stop();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [dbz.topic] }).catch(() => {});
    await admin.disconnect();
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { PG_URL, KAFKA_BROKERS } = process.env;
  if (!PG_URL || !KAFKA_BROKERS) {
    process.stderr.write('bench/cdc.ts needs PG_URL and KAFKA_BROKERS (eval "$(npm run -s stack -- env)")\n');
    process.exit(2);
  }
  const figures = await benchCdc({ PG_URL, KAFKA_BROKERS });
  for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
}
