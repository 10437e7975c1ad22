/**
 * Flink side by side (`npm run bench -- --only flink`; not in a plain run: it starts a JVM and takes ~10 minutes).
 *
 * One change topic in riskmon's format (docs/contracts.md), read by riskmon's aggregate-and-alert half and by a Flink
 * 2.2 DataStream job (bench/peer/flink: the same signing, per-merchant minute buckets and day totals,
 * cancel_rate_spike against its 7-day baseline, verdicts to Kafka exactly-once) on the same cores, one after the
 * other, then both live:
 *
 * 1. Backlog: BENCH days of the reference workload's shape (merchant weights, daily curve, amounts and cancel rates of
 *    scripts/generate) at RISKMON_BENCH_FLINK_MERCHANTS / _TX_PER_DAY (default 10,000 / 300,000: a tenth of the
 *    reference; 8 days), each payment and cancel its own transaction, 2% committed up to 2 minutes late, 0.5% of
 *    payments corrected by an UPDATE (a fifth of them moving the transaction time), 0.3% of cancels DELETEd,
 *    heartbeats every minute on every partition, cancel surges (×6) on a few merchants in the evaluated hours.
 * 2. riskmon: `riskmon aggregate` from offset 0 into a private Redis until its stored offsets reach the end, then the
 *    evaluation of every closed minute of the evaluated range (bench/flink-eval.ts: the backtest engine, the live
 *    evaluator's decideMinute). riskmon_agg_alert_catchup_events_per_s = row changes / (aggregate + evaluate) seconds;
 *    CPU = aggregator + Redis + evaluator processes (/proc); peak RSS = their peaks summed.
 * 3. Flink: the job in an embedded MiniCluster (java -Xmx1g, parallelism 2, hashmap state backend, checkpoints every
 *    5 s to local disk, exactly-once Kafka sink, watermark = commit time − 5 s, allowed lateness 1 hour) from the
 *    earliest offset until both keyed subtasks' watermark passes the backlog's closing heartbeat.
 * 4. Live: RISKMON_BENCH_FLINK_LIVE_MIN minutes (default 4) at the workload's rate in real time, heartbeats every
 *    second; each minute 5 merchants surge (25 cancels): Flink's alert latency = the breach verdict readable by a
 *    read_committed consumer − the heartbeat that closed the minute (commit ≥ minute end + 5 s). Late rows: 2% of
 *    live payments dated 1–5 hours back, and cancel batches of 3 merchants dated 2–3 hours back (a settlement file
 *    imported late), one dated 30 minutes back (inside Flink's allowed lateness).
 * 5. Truth: the rows' final state COPYed into a scratch PostgreSQL database; per-minute and per-day counts by SQL
 *    GROUP BY, judged by riskmon's rule function (bench/flink-compare.ts), alerts by riskmon's lifecycle; compared
 *    with riskmon's alerts (the evaluator over its buckets after the live phase) and Flink's (its newest verdict per
 *    merchant and minute, same lifecycle).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { createKafka, createTopics, kafkaConfigOf, type Kafka } from '../lib/kafka/index.ts';
import { encodeEvent, heartbeat, type RowChange } from '../lib/events.ts';
import { formatLsn } from '../lib/lsn.ts';
import { messageKey, partitionOfKey } from '../lib/partition.ts';
import { DAY, HOUR, MINUTE, dayStart, minuteStart } from '../lib/time.ts';
import { baselineDayStarts, parseRules } from '../alerting/index.ts';
import { curveAtMinuteOfDay, hotCount, merchantProfile, merchantWeights, sampleAmount, sampleCancelAmount } from '../scripts/generate/distribution.ts';
import { AliasTable, Rng } from '../scripts/generate/random.ts';
import { runRiskmon, spawnRiskmon } from '../test/harness/index.ts';
import { requireBinary } from '../scripts/stack/host.ts';
import { privateRedis } from './aggregator.ts';
import { alertsOf, breachesFromCounts, compareAlerts, type Alert, type Counts } from './flink-compare.ts';
import { CLK_TCK, cpuTicks, perMillion } from './peer.ts';
import { quantile, scratchDatabase } from './util.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PARTITIONS = 12;
const SHARDS = 8;
const TZ = 'Asia/Seoul';
export const FLINK_VERSION = '2.2.0';

/** Resolves the Flink modules from Maven Central once (bench/peer/flink/pom.xml) and compiles the job with javac. */
export function ensureFlinkJob(env: NodeJS.ProcessEnv = process.env): { classpath: string } {
  const dir = path.join(ROOT, '.riskmon', 'cache', `peer-flink-${FLINK_VERSION}`);
  const jars = path.join(dir, 'lib');
  if (!fs.existsSync(path.join(jars, '.complete'))) {
    const mvn = requireBinary('mvn', 'maven', env);
    const tmp = `${jars}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    const args = ['-q', '-B', '-f', path.join(ROOT, 'bench', 'peer', 'flink', 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`];
    let r = spawnSync(mvn, ['-o', ...args], { encoding: 'utf8' });
    if (r.status !== 0) r = spawnSync(mvn, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`Maven could not resolve bench/peer/flink/pom.xml (Flink ${FLINK_VERSION}):\n${r.stdout}${r.stderr}`);
    fs.writeFileSync(path.join(tmp, '.complete'), `${FLINK_VERSION}\n`);
    fs.rmSync(jars, { recursive: true, force: true });
    fs.renameSync(tmp, jars);
  }
  const src = path.join(ROOT, 'bench', 'peer', 'flink', 'src', 'main', 'java', 'riskmon', 'flinkpeer');
  const classes = path.join(dir, 'classes');
  fs.rmSync(classes, { recursive: true, force: true });
  const javac = requireBinary('javac', 'openjdk-17-jdk-headless', env);
  const r = spawnSync(javac, ['-d', classes, '-cp', `${jars}/*`, ...fs.readdirSync(src).filter((f) => f.endsWith('.java')).map((f) => path.join(src, f))], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`javac failed on bench/peer/flink:\n${r.stderr}`);
  return { classpath: `${classes}:${jars}/*` };
}

/** Peak RSS (VmHWM) and CPU ticks of a process, sampled every 100 ms (kept after it exits). */
const watches = new Set<NodeJS.Timeout>();

function watch(pid: number): { stop(): void; hwm(): number; ticks(): number } {
  let hwm = 0, ticks = 0;
  const read = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) hwm = Math.max(hwm, Number(m[1]) * 1024);
      ticks = Math.max(ticks, cpuTicks(pid));
    } catch { /* exited */ }
  };
  read();
  const t = setInterval(read, 100);
  watches.add(t);
  return { stop: () => { read(); clearInterval(t); watches.delete(t); }, hwm: () => hwm, ticks: () => ticks };
}

/** Rows as the source holds them at the end (final state after UPDATEs and DELETEs): what the SQL truth reads. */
class SourceRows {
  pay = { merchant: [] as number[], amount: [] as number[], at: [] as number[] };
  can = { merchant: [] as number[], amount: [] as number[], at: [] as number[], payment: [] as number[], deleted: new Set<number>() };
  payment(merchant: number, amount: number, at: number): number { this.pay.merchant.push(merchant); this.pay.amount.push(amount); this.pay.at.push(at); return this.pay.at.length; }
  cancel(merchant: number, amount: number, at: number, payment: number): number {
    this.can.merchant.push(merchant); this.can.amount.push(amount); this.can.at.push(at); this.can.payment.push(payment); return this.can.at.length;
  }
}

interface Emit { commit: number; e: RowChange }

/** The workload: row changes in commit order, keyed and partitioned as riskmon's cdc does. */
class Workload {
  readonly rng = new Rng(20261207);
  readonly alias: AliasTable;
  readonly hot: Set<string>;
  readonly profiles = new Map<number, ReturnType<typeof merchantProfile>>();
  readonly rows = new SourceRows();
  /** merchant → [from, to) of a cancel surge (×6) */
  readonly surges = new Map<number, [number, number]>();
  constructor(readonly merchants: number, readonly txPerDay: number) {
    this.alias = new AliasTable(merchantWeights(merchants));
    this.hot = new Set(Array.from({ length: hotCount(merchants) }, (_, i) => String(i + 1)));
  }
  profile(id: number) { let p = this.profiles.get(id); if (!p) this.profiles.set(id, (p = merchantProfile(id))); return p; }
  perMinute(m: number): number { return (this.txPerDay / 1440) * curveAtMinuteOfDay(Math.floor((((m + 9 * HOUR) % DAY) + DAY) % DAY / MINUTE)); }

  payRow(id: number, merchant: number, amount: number, at: number) {
    return { payment_id: String(id), merchant_id: String(merchant), amount: String(amount), approved_at: new Date(at).toISOString() };
  }
  cancelRow(id: number, payment: number, merchant: number, amount: number, at: number) {
    return { cancel_id: String(id), payment_id: String(payment), merchant_id: String(merchant), amount: String(amount), canceled_at: new Date(at).toISOString() };
  }
  ev(table: string, op: 'insert' | 'update' | 'delete', row: RowChange['row'], old: RowChange['old']): RowChange {
    return { v: 1, lsn: '', seq: 0, commitTs: '', xid: 1, table, op, row, old };
  }

  /** One transaction of minute-start `m` (or at `at` when given) with everything it causes before `end`. */
  tx(m: number, end: number, add: (x: Emit) => void, o: { at?: number; merchant?: number; commit?: number } = {}): void {
    const merchant = o.merchant ?? this.alias.sample(this.rng) + 1;
    const p = this.profile(merchant);
    const amount = sampleAmount(this.rng, p.mu, p.sigma);
    const at = o.at ?? m + this.rng.int(60_000);
    const commit = o.commit ?? at + (this.rng.next() < 0.02 ? this.rng.int(120_000) : this.rng.int(2000));
    const id = this.rows.payment(merchant, amount, at);
    add({ commit, e: this.ev('public.payments', 'insert', this.payRow(id, merchant, amount, at), null) });
    if (this.rng.next() < 0.005) { // a correction: the amount, and for a fifth the transaction time
      const at2 = this.rng.next() < 0.2 ? at + (1 + this.rng.int(3)) * MINUTE : at;
      const amount2 = Math.max(10, Math.round(amount * 0.9));
      const c2 = commit + 1000 + this.rng.int(30 * MINUTE);
      if (c2 < end) {
        this.rows.pay.amount[id - 1] = amount2; this.rows.pay.at[id - 1] = at2;
        add({ commit: c2, e: this.ev('public.payments', 'update', this.payRow(id, merchant, amount2, at2), this.payRow(id, merchant, amount, at)) });
      }
    }
    const s = this.surges.get(merchant);
    const surging = s !== undefined && at >= s[0] && at < s[1];
    if (this.rng.next() < p.cancelRate * (surging ? 6 : 1)) {
      const cAt = surging ? at + this.rng.int(3) * MINUTE + this.rng.int(60_000) : at + this.rng.int(120) * MINUTE;
      const cCommit = cAt + this.rng.int(2000);
      if (cCommit < end && cAt < end) {
        const cAmount = sampleCancelAmount(this.rng, amount);
        const cid = this.rows.cancel(merchant, cAmount, cAt, id);
        const row = this.cancelRow(cid, id, merchant, cAmount, cAt);
        add({ commit: cCommit, e: this.ev('public.payment_cancels', 'insert', row, null) });
        if (this.rng.next() < 0.003) {
          const dCommit = cCommit + 1000 + this.rng.int(HOUR);
          if (dCommit < end) { this.rows.can.deleted.add(cid); add({ commit: dCommit, e: this.ev('public.payment_cancels', 'delete', null, row) }); }
        }
      }
    }
  }
}

/** Publishes change events in commit order, minute by minute, with a heartbeat per minute on every partition. */
class Publisher {
  lsn = 0x1000000n;
  events = 0;
  readonly pending = new Map<number, Emit[]>();
  readonly buf: { partition: number; key: string; value: string }[] = [];
  constructor(readonly kafka: Kafka, readonly producer: ReturnType<Kafka['producer']>, readonly topic: string, readonly w: Workload) {}
  add = (x: Emit) => { const cm = minuteStart(x.commit); let l = this.pending.get(cm); if (!l) this.pending.set(cm, (l = [])); l.push(x); };
  push(e: RowChange): void {
    this.lsn += 0x80n;
    e.lsn = formatLsn(this.lsn);
    const row = (e.row ?? e.old)!;
    const m = String(row.merchant_id);
    const key = messageKey(m, this.w.hot.has(m), String(row[e.table === 'public.payments' ? 'payment_id' : 'cancel_id']), SHARDS);
    this.buf.push({ partition: partitionOfKey(key, PARTITIONS), key, value: encodeEvent(e) });
    this.events++;
  }
  async flush(force = false): Promise<void> {
    if (!force && this.buf.length < 20_000) return;
    const msgs = this.buf.splice(0);
    if (msgs.length) await this.producer.send({ topic: this.topic, acks: 1, messages: msgs });
  }
  /** Everything committed before `m`, in commit order, then a heartbeat at `m` (the source's clock) on every partition. */
  async publishBefore(m: number, hbAt = m): Promise<string> {
    for (const cm of [...this.pending.keys()].filter((k) => k < m).sort((a, b) => a - b)) {
      const list = this.pending.get(cm)!.sort((a, b) => a.commit - b.commit);
      const later = list.findIndex((x) => x.commit >= m);
      if (later >= 0) this.pending.set(cm, list.splice(later)); else this.pending.delete(cm);
      for (const { commit, e } of list) {
        e.commitTs = new Date(commit).toISOString();
        this.push(e);
        await this.flush();
      }
    }
    // one heartbeat (one LSN) written to every partition, as the cdc writes them
    this.lsn += 0x80n;
    const lsn = formatLsn(this.lsn);
    for (let p = 0; p < PARTITIONS; p++) this.buf.push({ partition: p, key: 'hb', value: encodeEvent(heartbeat(lsn, new Date(hbAt).toISOString())) });
    return lsn;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchFlink(env: NodeJS.ProcessEnv = process.env): Promise<Record<string, number>> {
  const MERCHANTS = Number(env.RISKMON_BENCH_FLINK_MERCHANTS ?? 10_000);
  const TX_PER_DAY = Number(env.RISKMON_BENCH_FLINK_TX_PER_DAY ?? 300_000);
  const DAYS = Number(env.RISKMON_BENCH_FLINK_DAYS ?? 8);
  const LIVE_MIN = Number(env.RISKMON_BENCH_FLINK_LIVE_MIN ?? 4);
  const LATENESS = Number(env.RISKMON_BENCH_FLINK_LATENESS_MS ?? HOUR);
  const CHECKPOINT = Number(env.RISKMON_BENCH_FLINK_CHECKPOINT_MS ?? 5000);
  const BACKEND = env.RISKMON_BENCH_FLINK_STATE_BACKEND ?? 'hashmap';
  const EVAL_HOURS = 6;
  const out: Record<string, number> = {};
  const stamp = `${Date.now().toString(36)}`;
  const topic = `bench_flink_${stamp}`;
  const alertsTopic = `${topic}_alerts`;
  const prefix = `bf_${stamp}`;
  const kafka = createKafka(kafkaConfigOf(env.KAFKA_BROKERS!), { clientId: 'bench-flink' });
  const admin = kafka.admin();
  await admin.connect();
  await createTopics(admin, [{ topic, numPartitions: PARTITIONS }, { topic: alertsTopic, numPartitions: 1 }], { replication: 0 });
  const producer = kafka.producer();
  await producer.connect();
  const job = ensureFlinkJob(env);
  const redisOwn = await privateRedis();
  if (!redisOwn) throw new Error('flink bench: could not start a private redis-server (is redis-server on PATH?)');
  const redis = new Redis(redisOwn.url);
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))![1]);
  const redisWatch = watch(redisPid);
  const children: ChildProcess[] = [];
  let stopAlerts: (() => Promise<void>) | null = null;
  const scratch = await scratchDatabase(env.PG_URL!, `bench_flink_${stamp}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'riskmon-flink-'));
  try {
    // ---- 1. the backlog ----
    const w = new Workload(MERCHANTS, TX_PER_DAY);
    const now0 = minuteStart(Date.now());
    const evalFrom = now0 - EVAL_HOURS * HOUR;
    if (dayStart(evalFrom, TZ) !== dayStart(now0 + (LIVE_MIN + 2) * MINUTE, TZ)) console.error('   note: the evaluated range crosses local midnight');
    // cancel surges (×6, 30 minutes) on 6 of the busier merchants inside the evaluated hours
    const busy = Math.max(10, Math.floor(hotCount(MERCHANTS) / 3));
    for (let i = 0; i < 6; i++) w.surges.set(busy + i, [evalFrom + (30 + i * 50) * MINUTE, evalFrom + (60 + i * 50) * MINUTE]);
    const pub = new Publisher(kafka, producer, topic, w);
    const t0 = Date.now();
    for (let m = now0 - DAYS * DAY; m < now0; m += MINUTE) {
      const n = Math.round(w.perMinute(m));
      for (let i = 0; i < n; i++) w.tx(m, now0, pub.add);
      await pub.publishBefore(m);
    }
    // the closing heartbeat: every row committed before now0 precedes it
    const doneLsn = await pub.publishBefore(now0 + 1);
    await pub.flush(true);
    const backlogEvents = pub.events;
    const ends = await admin.fetchTopicOffsets(topic);
    console.error(`   backlog: ${backlogEvents} row changes over ${DAYS} days (${MERCHANTS} merchants, ${TX_PER_DAY}/day) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    out.flink_bench_backlog_events = backlogEvents;
    out.flink_bench_merchants = MERCHANTS;
    out.flink_bench_tx_per_day = TX_PER_DAY;

    // ---- 2. riskmon: aggregate from offset 0, then evaluate the range ----
    const aggEnv = {
      ...env, REDIS_URL: redisOwn.url, RISKMON_TOPIC: topic, RISKMON_PARTITIONS: String(PARTITIONS), RISKMON_HOT_SHARDS: String(SHARDS),
      RISKMON_REDIS_PREFIX: prefix, RISKMON_GROUP: `${prefix}_group`, RISKMON_DLQ_TOPIC: `${topic}_dlq`, RISKMON_LOG_LEVEL: 'warn', RISKMON_TZ: TZ,
    };
    const r0 = Date.now();
    const redisTicks0 = cpuTicks(redisPid);
    const agg = spawnRiskmon(['aggregate'], { env: aggEnv, stdout: 'ignore', stderr: 'inherit' });
    children.push(agg);
    const aggWatch = watch(agg.pid!);
    await waitOffsets(redis, prefix, ends.map((o) => ({ partition: o.partition, high: o.high })), agg);
    const aggSecs = (Date.now() - r0) / 1000;
    const aggTicks = aggWatch.ticks();
    const ev = await evaluate(env, redisOwn.url, prefix, evalFrom, now0);
    const riskmonSecs = aggSecs + ev.wallS;
    const riskmonCpu = (aggTicks + (cpuTicks(redisPid) - redisTicks0)) / CLK_TCK + ev.cpuS;
    out.riskmon_agg_alert_catchup_events_per_s = Math.round(backlogEvents / riskmonSecs);
    out.riskmon_agg_catchup_seconds = Math.round(aggSecs * 10) / 10;
    out.riskmon_eval_seconds = Math.round(ev.wallS * 10) / 10;
    out.riskmon_cpu_s_per_1m_events = perMillion(riskmonCpu, backlogEvents);
    out.riskmon_eval_minutes = ev.minutes;
    console.error(`   riskmon: aggregated in ${aggSecs.toFixed(1)} s, evaluated ${ev.minutes} minutes in ${ev.wallS.toFixed(1)} s (${ev.alerts.length} alerts); CPU ${riskmonCpu.toFixed(1)} s (aggregator ${(aggTicks / CLK_TCK).toFixed(1)}, Redis ${((cpuTicks(redisPid) - redisTicks0) / CLK_TCK).toFixed(1)}, evaluator ${ev.cpuS.toFixed(1)})`);

    // ---- 2b. riskmon's rebuild path on the same backlog: `riskmon replay` into a fresh prefix, then the same evaluation ----
    {
      const rPrefix = `${prefix}_r`;
      const rEnv = { ...aggEnv, RISKMON_REDIS_PREFIX: rPrefix, RISKMON_GROUP: `${rPrefix}_group` };
      const probe = await runRiskmon(['replay', '--from-lsn', '0/1'], rEnv);
      const oldest = /holds is (\S+);/.exec(probe.stderr)?.[1];
      if (!oldest) throw new Error(`flink bench: could not learn the topic's oldest LSN: ${probe.stderr.slice(-1000)}`);
      const redisT0 = cpuTicks(redisPid);
      const p0 = Date.now();
      const rep = spawnRiskmon(['replay', '--from-lsn', oldest], { env: rEnv, stdout: 'ignore', stderr: 'inherit' });
      children.push(rep);
      const repWatch = watch(rep.pid!);
      const code = await new Promise<number | null>((r) => (rep.exitCode !== null ? r(rep.exitCode) : rep.once('exit', r)));
      repWatch.stop();
      if (code !== 0) throw new Error(`riskmon replay exited ${code}`);
      const repSecs = (Date.now() - p0) / 1000;
      const evR = await evaluate(env, redisOwn.url, rPrefix, evalFrom, now0);
      const cpu = (repWatch.ticks() + cpuTicks(redisPid) - redisT0) / CLK_TCK + evR.cpuS;
      out.riskmon_replay_alert_catchup_events_per_s = Math.round(backlogEvents / (repSecs + evR.wallS));
      out.riskmon_replay_seconds = Math.round(repSecs * 10) / 10;
      out.riskmon_replay_cpu_s_per_1m_events = perMillion(cpu, backlogEvents);
      out.riskmon_replay_peak_rss_bytes = repWatch.hwm();
      out.riskmon_replay_alerts_equal_aggregate = compareAlerts(ev.alerts.map(([merchant, firedAt]) => ({ merchant, firedAt })), evR.alerts.map(([merchant, firedAt]) => ({ merchant, firedAt }))).equal ? 1 : 0;
      console.error(`   riskmon replay: rebuilt in ${repSecs.toFixed(1)} s (process start included), evaluated in ${evR.wallS.toFixed(1)} s; CPU ${cpu.toFixed(1)} s; peak RSS ${(repWatch.hwm() / 2 ** 20).toFixed(0)} MiB`);
      await scanDrop(redis, `${rPrefix}:*`);
    }

    // ---- 3. Flink: the same backlog ----
    const java = requireBinary('java', 'openjdk-17-jre-headless', env);
    const log4j = path.join(tmp, 'log4j.properties');
    fs.writeFileSync(log4j, 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n');
    const f0 = Date.now();
    const flink = spawn(java, ['-Xmx1g', '-XX:+UseG1GC', `-Dlog4j.configuration=file:${log4j}`, '-cp', job.classpath, 'riskmon.flinkpeer.CancelRateJob',
      `brokers=${env.KAFKA_BROKERS}`, `topic=${topic}`, `alerts=${alertsTopic}`, `group=${prefix}_flink`, `evalFrom=${evalFrom}`, `doneLsn=${doneLsn}`,
      'parallelism=2', `stateBackend=${BACKEND}`, `checkpointMs=${CHECKPOINT}`, `checkpointDir=${path.join(tmp, 'checkpoints')}`,
      `allowedLatenessMs=${LATENESS}`, 'outOfOrdernessMs=5000', `tz=${TZ}`], { stdio: ['ignore', 'pipe', fs.openSync(path.join(tmp, 'flink.log'), 'a')] });
    children.push(flink);
    const flinkWatch = watch(flink.pid!);
    const caught = new Map<string, number>();
    let flinkOut = '';
    flink.stdout!.on('data', (d) => {
      flinkOut += d;
      for (const m of String(d).matchAll(/CAUGHT_UP (\d+) (\d+) dropped (\d+) rejudged (\d+)/g)) caught.set(m[1], Number(m[2]));
    });
    const alerts = await alertsConsumer(kafka, alertsTopic);
    stopAlerts = alerts.stop;
    while (caught.size < 2) {
      if (flink.exitCode !== null) throw new Error(`the Flink job exited (${flink.exitCode}): ${fs.readFileSync(path.join(tmp, 'flink.log'), 'utf8').slice(-3000)}`);
      if (Date.now() - f0 > 30 * MINUTE) throw new Error('the Flink job did not catch up within 30 minutes');
      await sleep(50);
    }
    const flinkSecs = (Math.max(...caught.values()) - f0) / 1000;
    const flinkCpu = flinkWatch.ticks() / CLK_TCK;
    out.flink_catchup_events_per_s = Math.round(backlogEvents / flinkSecs);
    out.flink_catchup_seconds = Math.round(flinkSecs * 10) / 10;
    out.flink_cpu_s_per_1m_events = perMillion(flinkCpu, backlogEvents);
    console.error(`   Flink: caught up in ${flinkSecs.toFixed(1)} s (from the JVM's spawn), CPU ${flinkCpu.toFixed(1)} s, RSS ${(flinkWatch.hwm() / 2 ** 20).toFixed(0)} MiB`);

    // ---- 4. live ----
    const liveStart = minuteStart(Date.now()) + MINUTE;
    const closeAt = new Map<number, number>(); // minute → wall time of the heartbeat that closed it
    const surgeOf = new Map<string, number>(); // merchant → its surge minute
    const surged = new Set<number>();
    let surgeNext = busy + 10;
    const lateBatches = [2 * HOUR + 5 * MINUTE, 2 * HOUR + 40 * MINUTE, 3 * HOUR - 10 * MINUTE].map((ago, i) => ({ merchant: busy + 6 + i, ago }));
    lateBatches.push({ merchant: busy + 9, ago: 30 * MINUTE });
    const liveEnd = liveStart + LIVE_MIN * MINUTE;
    let lastClosed = 0;
    let lateRows = lateBatches.length * 50; // the batches' rows, and the 2% below
    // every row committed between the backlog's end and the live phase's start: the workload's rate, dated now
    for (let t = Date.now(); t < liveEnd + 70_000 + CHECKPOINT * 2; t = Date.now()) {
      const m = minuteStart(t);
      if (m < liveEnd) {
        // this second's share of the minute's transactions, 2% of them dated 1–5 hours back
        const n = w.perMinute(m) / 60;
        const k = Math.floor(n) + (w.rng.next() < n % 1 ? 1 : 0);
        for (let i = 0; i < k; i++) {
          const late = w.rng.next() < 0.02;
          if (late) lateRows++;
          const at = late ? t - HOUR - w.rng.int(4 * HOUR) : t - w.rng.int(1000);
          w.tx(m, liveEnd, pub.add, { at, commit: t });
        }
        if (m >= liveStart && !surged.has(m)) {
          surged.add(m);
          for (let j = 0; j < 5; j++) { // this minute's surges: 25 approvals and 25 cancels
            const merchant = surgeNext++;
            surgeOf.set(String(merchant), m);
            for (let c = 0; c < 25; c++) {
              const at = m + w.rng.int(Math.max(1, Math.min(40_000, t - m)));
              const id = w.rows.payment(merchant, 10_000, at);
              pub.add({ commit: t, e: w.ev('public.payments', 'insert', w.payRow(id, merchant, 10_000, at), null) });
              const cid = w.rows.cancel(merchant, 10_000, at, id);
              pub.add({ commit: t, e: w.ev('public.payment_cancels', 'insert', w.cancelRow(cid, id, merchant, 10_000, at), null) });
            }
          }
          if (m === liveStart) { // late cancel batches
            for (const b of lateBatches) {
              const bm = minuteStart(t - b.ago);
              for (let c = 0; c < 25; c++) {
                const at = bm + w.rng.int(60_000);
                const id = w.rows.payment(b.merchant, 10_000, at);
                pub.add({ commit: t, e: w.ev('public.payments', 'insert', w.payRow(id, b.merchant, 10_000, at), null) });
                const cid = w.rows.cancel(b.merchant, 10_000, at, id);
                pub.add({ commit: t, e: w.ev('public.payment_cancels', 'insert', w.cancelRow(cid, id, b.merchant, 10_000, at), null) });
              }
            }
          }
        }
      }
      await pub.publishBefore(t + 1, t);
      await pub.flush(true);
      // minutes closed by this heartbeat (commit ≥ minute end + 5 s)
      for (let c = Math.max(lastClosed, liveStart); c + MINUTE + 5000 <= t; c += MINUTE) { closeAt.set(c, Date.now()); lastClosed = c + MINUTE; }
      await sleep(Math.max(0, 1000 - (Date.now() - t)));
    }
    const liveEvents = pub.events - backlogEvents;
    out.flink_bench_live_events = liveEvents;
    out.flink_bench_live_late_rows = lateRows;
    await sleep(CHECKPOINT * 2 + 3000);
    const latencies: number[] = [];
    for (const [merchant, m] of surgeOf) {
      const v = alerts.first.get(`${merchant}@${m}`);
      const c = closeAt.get(m);
      if (v !== undefined && c !== undefined) latencies.push(v - c);
    }
    out.flink_alert_latency_p99_ms = Math.round(quantile(latencies, 0.99));
    out.flink_alert_latency_p50_ms = Math.round(quantile(latencies, 0.5));
    out.flink_alert_latency_samples = latencies.length;
    out.flink_alert_latency_surges = surgeOf.size;
    flinkWatch.stop();
    out.flink_peak_rss_bytes = flinkWatch.hwm();
    out.flink_cpu_s_total = Math.round((flinkWatch.ticks() / CLK_TCK) * 10) / 10;
    console.error(`   Flink live: ${latencies.length} of ${surgeOf.size} surge alerts, p50 ${out.flink_alert_latency_p50_ms} / p99 ${out.flink_alert_latency_p99_ms} ms (close → committed verdict); ${[...flinkOut.matchAll(/^DROPPED /gm)].length} late facts dropped so far`);
    flink.kill('SIGTERM');
    await alerts.stop();
    stopAlerts = null;

    // riskmon's alerts over its buckets after the live phase
    const endOffs = await admin.fetchTopicOffsets(topic);
    await waitOffsets(redis, prefix, endOffs.map((o) => ({ partition: o.partition, high: o.high })), agg);
    aggWatch.stop();
    agg.kill('SIGTERM');
    const evalTo = liveEnd;
    const evFinal = await evaluate(env, redisOwn.url, prefix, evalFrom, evalTo);
    redisWatch.stop();
    out.riskmon_peak_rss_bytes = aggWatch.hwm() + redisWatch.hwm() + Math.max(ev.hwm, evFinal.hwm);
    out.riskmon_peak_rss_bytes_aggregator = aggWatch.hwm();
    out.riskmon_peak_rss_bytes_redis = redisWatch.hwm();
    out.riskmon_peak_rss_bytes_evaluator = Math.max(ev.hwm, evFinal.hwm);

    // ---- 5. SQL truth ----
    const rules = parseRules({ volume_drop: { enabled: false }, volume_spike: { enabled: false } });
    const truth = await sqlTruth(scratch.url, w.rows, evalFrom, evalTo, rules);
    const flinkBreaches = new Map<string, number[]>();
    for (const [k, v] of alerts.latest) {
      if (!v) continue;
      const [merchant, m] = k.split('@');
      let l = flinkBreaches.get(merchant);
      if (!l) flinkBreaches.set(merchant, (l = []));
      l.push(Number(m));
    }
    const flinkAlerts = alertsOf(flinkBreaches, evalFrom, evalTo, rules.lifecycle.resolveAfterMinutes);
    const riskmonAlerts: Alert[] = evFinal.alerts.map(([merchant, firedAt]) => ({ merchant, firedAt }));
    const fc = compareAlerts(truth.alerts, flinkAlerts);
    const rc = compareAlerts(truth.alerts, riskmonAlerts);
    out.sql_alerts = truth.alerts.length;
    out.flink_alerts = flinkAlerts.length;
    out.riskmon_alerts = riskmonAlerts.length;
    out.flink_alerts_equal_sql = fc.equal ? 1 : 0;
    out.flink_alerts_missing = fc.missing.length;
    out.flink_alerts_extra = fc.extra.length;
    out.alerts_equal_sql = rc.equal ? 1 : 0;
    out.riskmon_alerts_missing = rc.missing.length;
    out.riskmon_alerts_extra = rc.extra.length;
    out.flink_late_facts_dropped = [...flinkOut.matchAll(/^DROPPED /gm)].length;
    const show = (xs: Alert[]) => xs.slice(0, 8).map((a) => `${a.merchant}@${new Date(a.firedAt).toISOString().slice(11, 16)}`).join(', ');
    console.error(`   alerts over ${((evalTo - evalFrom) / MINUTE)} minutes: SQL ${truth.alerts.length}, riskmon ${riskmonAlerts.length} (missing ${show(rc.missing)}; extra ${show(rc.extra)}), Flink ${flinkAlerts.length} (missing ${show(fc.missing)}; extra ${show(fc.extra)})`);
    out.flink_allowed_lateness_ms = LATENESS;
    out.flink_checkpoint_ms = CHECKPOINT;
    out.flink_parallelism = 2;
    return out;
  } finally {
    for (const t of watches) clearInterval(t);
    watches.clear();
    if (stopAlerts) await stopAlerts().catch(() => {});
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    redis.disconnect();
    redisOwn.stop();
    await producer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [topic, alertsTopic, `${topic}_dlq`] }).catch(() => {});
    await admin.disconnect();
    await scratch.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Deletes a prefix's keys (the replay's copy, once measured: memory stays the aggregator's). */
async function scanDrop(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

async function waitOffsets(redis: Redis, prefix: string, ends: { partition: number; high: string }[], child: ChildProcess): Promise<void> {
  for (;;) {
    const stored = await Promise.all(ends.map((o) => redis.get(`${prefix}:{p${o.partition}}:off`)));
    if (stored.every((s, i) => s === ends[i].high)) return;
    if (child.exitCode !== null) throw new Error('the aggregator exited early');
    await sleep(50);
  }
}

/** bench/flink-eval.ts as a child: wall seconds (spawn to exit), CPU and peak RSS from /proc, its alerts. */
async function evaluate(env: NodeJS.ProcessEnv, redisUrl: string, prefix: string, from: number, to: number) {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'flink-eval.ts')], {
    cwd: ROOT,
    env: { ...env, REDIS_URL: redisUrl, BENCH_PREFIX: prefix, BENCH_FROM: String(from), BENCH_TO: String(to), BENCH_TZ: TZ, RISKMON_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const wt = watch(child.pid!);
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  wt.stop();
  if (code !== 0) throw new Error(`bench/flink-eval.ts exited ${code}`);
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { minutes: number; evaluations: number; alerts: [string, number][] };
  return { ...r, wallS: (Date.now() - t0) / 1000, cpuS: wt.ticks() / CLK_TCK, hwm: wt.hwm() };
}

/** A read_committed consumer of Flink's verdicts: the first arrival of each breach and the newest verdict per key. */
async function alertsConsumer(kafka: Kafka, topic: string) {
  const first = new Map<string, number>();
  const latest = new Map<string, boolean>();
  const consumer = kafka.consumer({ groupId: `${topic}_reader`, readUncommitted: false, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const v = JSON.parse(message.value!.toString()) as { merchant: string; minute: number; breach: boolean };
      const k = `${v.merchant}@${v.minute}`;
      if (v.breach && !first.has(k)) first.set(k, Date.now());
      latest.set(k, v.breach);
    },
  });
  return { first, latest, stop: () => consumer.disconnect() };
}

/** The rows' final state COPYed into a scratch database; counts by SQL GROUP BY; judged and alerted as riskmon does. */
async function sqlTruth(url: string, rows: SourceRows, from: number, to: number, rules: ReturnType<typeof parseRules>): Promise<{ alerts: Alert[] }> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query(`CREATE TABLE payments (payment_id bigint, merchant_id bigint, amount bigint, approved_at timestamptz);
      CREATE TABLE payment_cancels (cancel_id bigint, payment_id bigint, merchant_id bigint, amount bigint, canceled_at timestamptz)`);
    const copy = async (sql: string, lines: () => Generator<string>) => {
      const stream = db.query(copyStreams.from(sql));
      let buf = '';
      for (const l of lines()) { buf += l; if (buf.length > 1 << 20) { if (!stream.write(buf)) await new Promise((r) => stream.once('drain', r)); buf = ''; } }
      await new Promise<void>((resolve, reject) => { stream.once('finish', resolve); stream.once('error', reject); stream.end(buf); });
    };
    const p = rows.pay, c = rows.can;
    await copy('COPY payments FROM STDIN', function* () { for (let i = 0; i < p.at.length; i++) yield `${i + 1}\t${p.merchant[i]}\t${p.amount[i]}\t${new Date(p.at[i]).toISOString()}\n`; });
    await copy('COPY payment_cancels FROM STDIN', function* () { for (let i = 0; i < c.at.length; i++) if (!c.deleted.has(i + 1)) yield `${i + 1}\t${c.payment[i]}\t${c.merchant[i]}\t${c.amount[i]}\t${new Date(c.at[i]).toISOString()}\n`; });
    const W = rules.windowMinutes;
    const minutes = new Map<string, Map<number, Counts>>();
    const baselines = new Map<string, Map<number, Counts>>();
    const bump = (into: Map<string, Map<number, Counts>>, merchant: string, k: number, kind: 'approvals' | 'cancels', n: number) => {
      let mm = into.get(merchant);
      if (!mm) into.set(merchant, (mm = new Map()));
      let x = mm.get(k);
      if (!x) mm.set(k, (x = { approvals: 0, cancels: 0 }));
      x[kind] += n;
    };
    const q = async (table: string, col: string, kind: 'approvals' | 'cancels') => {
      const mr = await db.query(`SELECT merchant_id::text AS m, (extract(epoch FROM date_trunc('minute', ${col})) * 1000)::bigint AS t, count(*)::int AS n
        FROM ${table} WHERE ${col} >= $1 AND ${col} < $2 GROUP BY 1, 2`, [new Date(from - (W - 1) * MINUTE), new Date(to)]);
      for (const r of mr.rows) bump(minutes, r.m, Number(r.t), kind, r.n);
      const first = baselineDayStarts(dayStart(from, TZ), rules.baselineDays, TZ)[0];
      const dr = await db.query(`SELECT merchant_id::text AS m, (${col} AT TIME ZONE '${TZ}')::date::text AS d, count(*)::int AS n
        FROM ${table} WHERE ${col} >= $1 AND ${col} < $2 GROUP BY 1, 2`, [new Date(first), new Date(dayStart(to, TZ))]);
      for (const r of dr.rows) bump(baselines, r.m, dayStart(Date.parse(`${r.d}T12:00:00+09:00`), TZ), kind, r.n);
    };
    await q('payments', 'approved_at', 'approvals');
    await q('payment_cancels', 'canceled_at', 'cancels');
    const breaches = breachesFromCounts({ minutes, baselines, from, to, rules, baselineDaysOf: (m) => baselineDayStarts(dayStart(m, TZ), rules.baselineDays, TZ) });
    return { alerts: alertsOf(breaches, from, to, rules.lifecycle.resolveAfterMinutes) };
  } finally { await db.end(); }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { stackUp } = await import('../scripts/stack/index.ts');
  const env = { ...process.env, ...(process.env.KAFKA_BROKERS && process.env.REDIS_URL ? {} : await stackUp({ log: (l) => console.error(l) })) };
  console.log(JSON.stringify(await benchFlink(env), null, 2));
  process.exit(0);
}
