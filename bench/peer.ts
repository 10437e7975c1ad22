/**
 * The peer and the ceilings the cdc and aggregator benchmarks measure riskmon against, in the same run, on the same
 * backlog, broker and cores (bench/README.md "Peer and ceilings"):
 * - the Debezium PostgreSQL connector (pgoutput) in a Kafka Connect standalone worker — riskmon's peer;
 * - a null reader: pg-logical-replication decoding the slot and dropping every message — the read-side ceiling
 *   (the walsender's streaming rate on this machine), with the walsender's CPU;
 * - Kafka's own producer performance tool (org.apache.kafka.tools.ProducerPerformance) with records of riskmon's
 *   size — the write-side ceiling of the broker;
 * - redis-benchmark pipelining the aggregator's command shape (HINCRBY on a bucket field) — Redis' ceiling.
 * The Java parts come from Maven Central through bench/peer/pom.xml, like the broker's own jars (scripts/stack).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kafka } from 'kafkajs';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import pg from 'pg';
import { createTopics } from '../lib/kafka/index.ts';
import { requireBinary } from '../scripts/stack/host.ts';
import { quantile } from './util.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const POM = path.join(ROOT, 'bench', 'peer', 'pom.xml');
export const DEBEZIUM_VERSION = '3.6.1.Final';
export const CONNECT_VERSION = '3.9.2';

/** Resolves Kafka Connect, Debezium and Kafka's tools once into .riskmon/cache (Maven keeps ~/.m2 too). */
export function ensurePeerJars(env: NodeJS.ProcessEnv = process.env): string {
  const jars = path.join(ROOT, '.riskmon', 'cache', `peer-connect-${CONNECT_VERSION}-debezium-${DEBEZIUM_VERSION}`);
  if (fs.existsSync(path.join(jars, '.complete'))) return jars;
  const mvn = requireBinary('mvn', 'maven', env);
  const tmp = `${jars}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const args = ['-q', '-B', '-f', POM, 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`];
  let r = spawnSync(mvn, ['-o', ...args], { encoding: 'utf8' });
  if (r.status !== 0) r = spawnSync(mvn, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`Maven could not resolve bench/peer/pom.xml (Kafka Connect ${CONNECT_VERSION}, Debezium ${DEBEZIUM_VERSION}):\n${r.stdout}${r.stderr}`);
  fs.writeFileSync(path.join(tmp, '.complete'), `${CONNECT_VERSION} ${DEBEZIUM_VERSION}\n`);
  fs.rmSync(jars, { recursive: true, force: true });
  fs.renameSync(tmp, jars);
  return jars;
}

/** user+system CPU ticks (1/100 s) of a process from /proc/<pid>/stat; 0 when it is gone. */
export function cpuTicks(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]); // fields 14 and 15 of proc(5)
  } catch { return 0; }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ). */
export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/**
 * The whole machine's CPU time from /proc/stat's first line, in ticks summed over every core: busy (user, nice,
 * system, irq, softirq, steal; guest time is inside user) and idle (idle, iowait).
 */
export function machineTicks(): { busy: number; idle: number; user: number; system: number; irq: number; steal: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8');
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f.slice(0, f.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  return { busy: user + nice + system + irq + softirq + (steal || 0), idle: idle + iowait, user: user + nice, system, irq: irq + softirq, steal: steal || 0 };
}

/** The pid of the process listening on a local TCP port (a broker's JVM), or null when none is visible here. */
export function listenerPid(port: number): number | null {
  const inodes = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/); // sl local rem st … inode (state 0A = LISTEN)
      if (c.length > 9 && c[3] === '0A' && parseInt(c[1].slice(c[1].lastIndexOf(':') + 1), 16) === port) inodes.add(c[9]);
    }
  }
  if (!inodes.size) return null;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let link = '';
      try { link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      if (link.startsWith('socket:[') && inodes.has(link.slice(8, -1))) return Number(pid);
    }
  }
  return null;
}

/** The local processes of the brokers in a KAFKA_BROKERS list (those listening on this machine). */
export function brokerPids(brokers: string): number[] {
  const pids = brokers.split(',').map((b) => listenerPid(Number(b.trim().slice(b.trim().lastIndexOf(':') + 1))));
  return [...new Set(pids.filter((x): x is number => x !== null))];
}

/** What a CpuWindow measured: CPU seconds of each named group of processes, and the whole machine's. */
export interface CpuUse {
  seconds: number;
  /** user+system CPU seconds per name over the window (NaN when a process of it was not known). */
  cpuS: Record<string, number>;
  /** busy / (busy + idle) of all cores over the window, percent. */
  machineBusyPct: number;
  /** busy CPU seconds of all cores over the window (everything: the named processes and the rest). */
  machineCpuS: number;
  /** The machine's busy seconds by kind: "user X, system Y, irq+softirq Z, steal W". */
  machineSplit: string;
  /** The other processes that used the most CPU over the window: "name(pid) seconds", largest first. */
  others: string[];
}

/** user+system ticks and command name of every process now (for naming where the rest of the machine went). */
function allTicks(): Map<number, { ticks: number; name: string }> {
  const out = new Map<number, { ticks: number; name: string }>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      out.set(Number(d), { ticks: Number(rest[11]) + Number(rest[12]), name: f.slice(f.indexOf('(') + 1, f.lastIndexOf(')')) });
    } catch { /* exited */ }
  }
  return out;
}

/**
 * CPU accounting over a window (from construction to `end()`): per named group of pids (/proc/<pid>/stat; a pid
 * known only later, e.g. a walsender, joins with `add`, counted from then) and the machine's busy share of all
 * cores (/proc/stat). A process must still run at `end()` (an exited one reads as 0 ticks).
 */
export class CpuWindow {
  readonly #t0 = Date.now();
  readonly #m0 = machineTicks();
  readonly #all0 = allTicks();
  readonly #groups = new Map<string, { pids: number[]; ticks0: number }>();

  constructor(groups: Record<string, number[]>) {
    for (const [name, pids] of Object.entries(groups)) this.add(name, pids);
  }

  add(name: string, pids: number[]): void {
    this.#groups.set(name, { pids, ticks0: pids.reduce((n, pid) => n + cpuTicks(pid), 0) });
  }

  end(): CpuUse {
    const m1 = machineTicks();
    const busy = m1.busy - this.#m0.busy, idle = m1.idle - this.#m0.idle;
    const cpuS: Record<string, number> = {};
    for (const [name, g] of this.#groups) cpuS[name] = g.pids.length ? (g.pids.reduce((n, pid) => n + cpuTicks(pid), 0) - g.ticks0) / CLK_TCK : NaN;
    const named = new Set([...this.#groups.values()].flatMap((g) => g.pids));
    const others = [...allTicks()].filter(([pid]) => !named.has(pid))
      .map(([pid, p]) => ({ pid, name: p.name, s: (p.ticks - (this.#all0.get(pid)?.ticks ?? 0)) / CLK_TCK }))
      .filter((o) => o.s > 0).sort((a, b) => b.s - a.s).slice(0, 6).map((o) => `${o.name}(${o.pid}) ${o.s.toFixed(2)}`);
    const d = (k: 'user' | 'system' | 'irq' | 'steal') => ((m1[k] - this.#m0[k]) / CLK_TCK).toFixed(1);
    return {
      others, machineSplit: `user ${d('user')}, system ${d('system')}, irq+softirq ${d('irq')}, steal ${d('steal')}`,
      seconds: (Date.now() - this.#t0) / 1000, cpuS,
      machineBusyPct: Math.round((busy / Math.max(1, busy + idle)) * 1000) / 10, machineCpuS: busy / CLK_TCK,
    };
  }
}

/** CPU seconds per million changes, two decimals. */
export const perMillion = (cpuS: number, changes: number) => Math.round((cpuS / changes) * 1e6 * 100) / 100;

/** The walsender serving a slot (null while none is streaming). */
async function walsenderPid(db: pg.Client, slot: string): Promise<number | null> {
  const r = await db.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
  return r.rows[0]?.active_pid ?? null;
}

/**
 * Null reader: pg-logical-replication with its pgoutput decoder reads the slot from its position to `target` and
 * drops every message (acknowledging as it goes): what streaming this backlog costs with nothing behind it.
 */
export async function nullReader(url: string, db: pg.Client, slot: string, target: string, changes: number): Promise<Record<string, number>> {
  const [hi, lo] = target.split('/').map((x) => BigInt(`0x${x}`));
  const end = (hi << 32n) | lo;
  const service = new LogicalReplicationService({ connectionString: url }, { acknowledge: { auto: false, timeoutSeconds: 0 } });
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['riskmon_pub'] });
  let n = 0;
  let c0 = 0, ws: number | null = null;
  const done = new Promise<number>((resolve) => {
    service.on('data', (lsn: string, msg: { tag: string }) => {
      if (msg.tag === 'insert' || msg.tag === 'update' || msg.tag === 'delete') n++;
      const [a, b] = lsn.split('/').map((x) => BigInt(`0x${x}`));
      // the slot was created just before the backlog: its first `changes` row changes are the backlog
      if (n >= changes || ((a << 32n) | b) >= end) resolve(Date.now());
      else if (n % 20_000 === 0) void service.acknowledge(lsn);
    });
  });
  service.on('error', () => {});
  void service.subscribe(plugin, slot).catch(() => {});
  for (let i = 0; i < 200 && ws === null; i++) { ws = await walsenderPid(db, slot); if (ws === null) await new Promise((r) => setTimeout(r, 25)); }
  c0 = ws ? cpuTicks(ws) : 0;
  const s0 = Date.now();
  // the reader is this process (nothing else runs in it meanwhile)
  const cpu = new CpuWindow({ reader: [process.pid], walsender: ws ? [ws] : [] });
  const tEnd = await done;
  const wsTicks = ws ? cpuTicks(ws) - c0 : 0;
  const use = cpu.end();
  console.error(`   null reader window: machine ${use.machineBusyPct}% busy (${use.machineCpuS.toFixed(1)} CPU s: ${use.machineSplit}; the most of the rest: ${use.others.join(', ')})`);
  await service.destroy().catch(() => {});
  const secs = (tEnd - s0) / 1000;
  const { reader, walsender } = use.cpuS;
  return {
    null_reader_changes_per_s: Math.round(changes / secs),
    walsender_cpu_pct_null_reader: Math.round(wsTicks / secs),
    null_reader_decoded_changes: n,
    null_reader_cpu_s_per_1m_changes_reader: perMillion(reader, changes),
    null_reader_cpu_s_per_1m_changes_walsender: perMillion(walsender, changes),
    null_reader_cpu_s_per_1m_changes_total: perMillion(reader + walsender, changes),
    null_reader_cpu_s_per_1m_changes_machine: perMillion(use.machineCpuS, changes),
    null_reader_machine_busy_pct: use.machineBusyPct,
  };
}

/** Walsender CPU while `fn` runs (percent of one core), for the slot `slot`. */
export async function withWalsenderCpu<T>(db: pg.Client, slot: string, fn: () => Promise<T>): Promise<{ result: T; pct: number }> {
  let ws: number | null = null;
  let c0 = 0;
  const t0 = Date.now();
  let samplerStop = false;
  const sampler = (async () => {
    while (!samplerStop && ws === null) {
      ws = await walsenderPid(db, slot);
      if (ws !== null) c0 = cpuTicks(ws); else await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const result = await fn();
  samplerStop = true;
  await sampler;
  const pct = ws ? Math.round((cpuTicks(ws) - c0) / ((Date.now() - t0) / 1000)) : NaN;
  return { result, pct };
}

export interface DebeziumRun {
  stop(): Promise<void>;
  topic: string;
  child: ChildProcess;
}

/**
 * A Kafka Connect standalone worker running the Debezium PostgreSQL connector on an existing pgoutput slot (no
 * snapshot: it streams the slot's backlog), tuned for throughput as Debezium's and Kafka's documentation
 * recommend: large batches and queue (max.batch.size 16384, max.queue.size 65536), a short poll interval (5 ms),
 * the producer batching (linger.ms 5, batch.size 512 KiB, compression none as riskmon's) with acks=all and
 * idempotence (as riskmon's cdc), JSON without schemas (the smallest of its standard envelopes).
 */
export async function startDebezium(o: {
  url: string; slot: string; publication: string; brokers: string; prefix: string; dir: string; kafka: Kafka; partitions: number;
  /** 'no_data' (default): stream the slot's backlog; 'initial': snapshot the tables first (bench/backfill.ts) */
  snapshotMode?: 'no_data' | 'initial';
}): Promise<DebeziumRun> {
  const jars = ensurePeerJars();
  const java = requireBinary('java', 'openjdk-17-jre-headless', process.env);
  await fsp.mkdir(o.dir, { recursive: true });
  const u = new URL(o.url);
  const topic = `${o.prefix}.public.payments`;
  // LogAppendTime: a record's timestamp is when the broker appended it — commit → Kafka is then timestamp − commit
  const admin = o.kafka.admin();
  await admin.connect();
  await createTopics(admin, [{ topic, numPartitions: o.partitions, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }], { replication: 0 });
  await admin.disconnect();
  const worker = path.join(o.dir, 'worker.properties');
  const connector = path.join(o.dir, 'connector.properties');
  const log4j = path.join(o.dir, 'log4j.properties');
  await fsp.writeFile(worker, [
    `bootstrap.servers=${o.brokers}`,
    'key.converter=org.apache.kafka.connect.json.JsonConverter', 'key.converter.schemas.enable=false',
    'value.converter=org.apache.kafka.connect.json.JsonConverter', 'value.converter.schemas.enable=false',
    `offset.storage.file.filename=${path.join(o.dir, 'offsets.dat')}`, 'offset.flush.interval.ms=1000',
    'producer.acks=all', 'producer.enable.idempotence=true', 'producer.linger.ms=5', 'producer.batch.size=524288',
    'producer.buffer.memory=134217728', 'producer.compression.type=none', 'producer.max.in.flight.requests.per.connection=5',
    'listeners=http://127.0.0.1:0', 'plugin.discovery=only_scan',
  ].join('\n') + '\n');
  await fsp.writeFile(connector, [
    `name=${o.prefix}`, 'connector.class=io.debezium.connector.postgresql.PostgresConnector', 'tasks.max=1',
    'plugin.name=pgoutput', `slot.name=${o.slot}`, `publication.name=${o.publication}`, 'publication.autocreate.mode=disabled',
    `database.hostname=${u.hostname}`, `database.port=${u.port}`, `database.user=${decodeURIComponent(u.username)}`,
    `database.password=${decodeURIComponent(u.password)}`, `database.dbname=${u.pathname.slice(1)}`,
    `topic.prefix=${o.prefix}`, 'table.include.list=public.payments,public.payment_cancels', `snapshot.mode=${o.snapshotMode ?? 'no_data'}`,
    'max.batch.size=16384', 'max.queue.size=65536', 'poll.interval.ms=5', 'tombstones.on.delete=false',
    // the cdc's heartbeats (pg_logical_emit_message, cdc/router.ts HEARTBEAT_PREFIX) are riskmon's own: left out,
    // or Debezium writes them to `<prefix>.message`, and where topics are not created automatically (the
    // replicated stack) its producer blocks on that topic's metadata for a minute per message
    'message.prefix.exclude.list=riskmon-heartbeat',
  ].join('\n') + '\n');
  await fsp.writeFile(log4j, 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n');
  const out = fs.openSync(path.join(o.dir, 'connect.log'), 'a');
  const child = spawn(java, ['-Xms256m', '-Xmx1g', '-XX:+UseG1GC', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`,
    '-cp', `${jars}/*`, 'org.apache.kafka.connect.cli.ConnectStandalone', worker, connector], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  return {
    topic, child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Records in a topic (sum of high − low over its partitions). */
export async function topicRecords(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally { await admin.disconnect(); }
}

/**
 * Commit → Kafka of Debezium's records written after `from` (per-partition offsets): broker append time (the topic
 * uses LogAppendTime) − the transaction's commit time in the envelope (source.ts_us, else ts_ms).
 */
export async function debeziumLatencies(kafka: Kafka, topic: string, from: Map<number, bigint>): Promise<number[]> {
  const { TopicReader } = await import('../lib/kafka/index.ts');
  const reader = await TopicReader.open(kafka, topic);
  const out: number[] = [];
  try {
    const marks = await reader.watermarks();
    for (const [p, { high }] of marks) {
      for (let o = from.get(p) ?? 0n; o < high;) {
        const msgs = (await reader.fetch(p, o, 4 << 20)).filter((m) => m.offset < high);
        if (!msgs.length) break;
        for (const m of msgs) {
          if (!m.value) continue;
          const v = JSON.parse(m.value.toString());
          const src = v.source ?? v.payload?.source;
          const commit = src?.ts_us !== undefined ? Number(src.ts_us) / 1000 : Number(src?.ts_ms);
          if (Number.isFinite(commit)) out.push(Number(m.timestamp) - commit);
        }
        o = msgs[msgs.length - 1].offset + 1n;
      }
    }
  } finally { await reader.close(); }
  return out;
}

export async function partitionOffsets(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  } finally { await admin.disconnect(); }
}

/** Mean value size (bytes) of up to 2,000 records of a topic's first partition with data. */
export async function meanRecordBytes(kafka: Kafka, topic: string): Promise<number> {
  const { TopicReader } = await import('../lib/kafka/index.ts');
  const reader = await TopicReader.open(kafka, topic);
  try {
    for (const [p, { low, high }] of await reader.watermarks()) {
      if (high <= low) continue;
      const msgs = (await reader.fetch(p, low, 1 << 20)).slice(0, 2000);
      const vals = msgs.filter((m) => m.value).map((m) => m.value!.length + (m.key?.length ?? 0));
      if (vals.length) return Math.round(vals.reduce((a, b) => a + b, 0) / vals.length);
    }
    return 300;
  } finally { await reader.close(); }
}

/**
 * Kafka's producer performance tool: `records` records of `bytes` bytes as fast as it can, acks=all and idempotent
 * like riskmon's cdc, into a fresh topic with riskmon's partition count. Returns records/s.
 */
export async function producerCeiling(kafka: Kafka, brokers: string, o: { topic: string; partitions: number; records: number; bytes: number }): Promise<Record<string, number>> {
  const jars = ensurePeerJars();
  const java = requireBinary('java', 'openjdk-17-jre-headless', process.env);
  const admin = kafka.admin();
  await admin.connect();
  await createTopics(admin, [{ topic: o.topic, numPartitions: o.partitions }], { replication: 0 });
  try {
    const r = spawnSync(java, ['-Xmx512m', '-cp', `${jars}/*`, 'org.apache.kafka.tools.ProducerPerformance',
      '--topic', o.topic, '--num-records', String(o.records), '--record-size', String(o.bytes), '--throughput', '-1',
      '--producer-props', `bootstrap.servers=${brokers}`, 'acks=all', 'enable.idempotence=true', 'linger.ms=5', 'batch.size=524288',
      'compression.type=none'], { encoding: 'utf8', maxBuffer: 16 << 20 });
    // the tool prints a line every 5 s and then the summary (the one with percentiles): the summary is the figure
    const m = [...r.stdout.matchAll(/(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency(?:, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th)?/g)].at(-1);
    if (r.status !== 0 || !m) throw new Error(`ProducerPerformance failed (${r.status}): ${r.stderr.slice(-2000)}${r.stdout.slice(-1000)}`);
    return { kafka_producer_ceiling_records_per_s: Math.round(Number(m[2])), kafka_producer_ceiling_record_bytes: o.bytes, kafka_producer_ceiling_p99_ms: Number(m[8] ?? NaN) };
  } finally {
    await admin.deleteTopics({ topics: [o.topic] }).catch(() => {});
    await admin.disconnect();
  }
}

/**
 * Redis' write ceiling for the aggregator's command shape: redis-benchmark pipelining (64 deep, 4 connections)
 * HINCRBY of a bucket field with hash-tagged random keys (the live path's per-field command), and HSET of the same
 * shape (the replay's), 1M requests each. Returns ops/s; the keys are dropped by the caller (`prefix`).
 */
export function redisWriteCeiling(redisUrl: string, prefix: string): Record<string, number> {
  const u = new URL(redisUrl);
  const bin = requireBinary('redis-benchmark', 'redis-tools', process.env);
  const run = (cmd: string[]) => {
    const r = spawnSync(bin, ['-h', u.hostname, '-p', u.port || '6379', '-n', '1000000', '-c', '4', '-P', '64', '-r', '100000', '-q', ...cmd], { encoding: 'utf8' });
    const m = /([\d.]+) requests per second/.exec(r.stdout);
    if (r.status !== 0 || !m) throw new Error(`redis-benchmark failed: ${r.stderr}${r.stdout.slice(-500)}`);
    return Math.round(Number(m[1]));
  };
  return {
    redis_write_ceiling_ops_per_s: run(['HINCRBY', `${prefix}:{p__rand_int__}:m:__rand_int__`, '__rand_int__', '1234']),
    redis_hset_ceiling_ops_per_s: run(['HSET', `${prefix}:{p__rand_int__}:h:__rand_int__`, '__rand_int__', '1234']),
  };
}

export const p = (xs: number[], q: number) => Math.round(quantile(xs, q) * 10) / 10;
