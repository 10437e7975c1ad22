/**
 * The history backfill of the first start (README "Onboarding"; docs/backfill.md): days of the reference workload
 * already in the source (written by COPY before riskmon exists), then `riskmon cdc`'s first start, timed from its
 * spawn to the store's backfill record saying `done` (every bucket of the range in Redis, before any streaming):
 * - history_backfill_rows_per_s       source rows taken in / those seconds (process start, preflight, slot creation
 *                                     and the snapshot included)
 * - history_backfill_seconds, history_backfill_rows
 * - history_backfill_source_cpu_s     CPU of the source's backends of that database (the backfill's connection and its
 *                                     parallel workers; /proc, sampled every 200 ms) over the backfill;
 *                                     `_source_cpu_pct` the same in % of one core
 * - debezium_snapshot_rows_per_s      the peer, same tables, same run: Debezium's PostgreSQL connector with
 *                                     snapshot.mode=initial into Kafka, from the worker's spawn to every row in its
 *                                     topics (RISKMON_BENCH_BACKFILL_PEER=0 leaves it out; needs java and Maven)
 * Size: RISKMON_BENCH_BACKFILL_DAYS (8) × RISKMON_BENCH_BACKFILL_TX_PER_DAY (3,000,000) over 100,000 merchants; a
 * quick run: RISKMON_BENCH_BACKFILL_DAYS=1 RISKMON_BENCH_BACKFILL_TX_PER_DAY=1000000.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { readBackfill } from '../aggregator/store/index.ts';
import { createKafka, kafkaConfigOf } from '../lib/kafka/index.ts';
import { migrate } from '../lib/migrate.ts';
import { backfill, ensureMerchants } from '../scripts/generate/index.ts';
import { withDatabase } from '../scripts/stack/index.ts';
import { dropKeys, runEnv, spawnRiskmon, stopChild, waitFor } from '../test/harness/index.ts';
import { CLK_TCK, cpuTicks, startDebezium, topicRecords } from './peer.ts';
import { scratchDatabase } from './util.ts';

/** CPU of every backend of one database (parallel workers included, each at its largest reading), sampled. */
class BackendCpu {
  readonly #seen = new Map<number, { first: number; last: number }>();
  readonly #timer: NodeJS.Timeout;
  constructor(db: pg.Client, database: string) {
    const sample = async () => {
      const r = await db.query('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]).catch(() => ({ rows: [] as { pid: number }[] }));
      for (const { pid } of r.rows) {
        const t = cpuTicks(pid);
        const s = this.#seen.get(pid);
        if (!s) this.#seen.set(pid, { first: t, last: t });
        else if (t > s.last) s.last = t;
      }
    };
    void sample();
    this.#timer = setInterval(() => void sample(), 200);
  }
  /** CPU seconds since the first sample (a backend first seen later counts from its start: its first ticks too). */
  end(): number {
    clearInterval(this.#timer);
    let ticks = 0;
    for (const s of this.#seen.values()) ticks += s.last;
    return ticks / CLK_TCK;
  }
}

export async function benchBackfill(env: NodeJS.ProcessEnv): Promise<Record<string, number>> {
  const base = env.PG_URL, brokers = env.KAFKA_BROKERS, redisUrl = env.REDIS_URL;
  if (!base || !brokers || !redisUrl) throw new Error('PG_URL, KAFKA_BROKERS and REDIS_URL must be set');
  const days = Number(env.RISKMON_BENCH_BACKFILL_DAYS ?? 8);
  const txPerDay = Number(env.RISKMON_BENCH_BACKFILL_TX_PER_DAY ?? 3_000_000);
  const name = `riskmon_bench_bf_${Date.now().toString(36)}`;
  const scratch = await scratchDatabase(withDatabase(base, 'postgres'), name);
  const url = scratch.url;
  const redis = new Redis(redisUrl);
  const db = new pg.Client({ connectionString: url });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'riskmon-bench-bf-'));
  const out: Record<string, number> = {};
  try {
    await migrate(url, 'source');
    await ensureMerchants(url, 100_000);
    const gen = await backfill(url, { days, seed: 3, txPerDay, connections: 2 });
    await db.connect();
    await db.query('VACUUM ANALYZE payments, payment_cancels'); // hint bits and statistics, for both readers alike
    const total = Number((await db.query('SELECT (SELECT count(*) FROM payments) + (SELECT count(*) FROM payment_cancels) AS n')).rows[0].n);
    console.error(`   history: ${total} rows (${gen.payments} payments, ${gen.cancels} cancels) written by COPY in ${gen.seconds.toFixed(1)} s`);

    const runName = name;
    const cdcEnv = { ...process.env, ...env, PG_URL: url, ...runEnv(runName), RISKMON_BACKFILL_DAYS: String(days + 1), RISKMON_LOG_LEVEL: 'info' };
    const log = path.join(dir, 'cdc.log');
    const cpu = new BackendCpu(db, name);
    const t0 = Date.now();
    const cdc = spawnRiskmon(['cdc'], { env: cdcEnv, logFile: log });
    try {
      const rec = await waitFor(async () => { const r = await readBackfill(redis, runName); return r?.state === 'done' ? r : null; },
        { timeoutMs: 3_600_000, intervalMs: 100, message: `the first start's backfill (log: ${log})` });
      const seconds = (Date.now() - t0) / 1000;
      const cpuS = cpu.end();
      out.history_backfill_rows = rec.rows;
      out.history_backfill_seconds = Math.round(seconds * 10) / 10;
      out.history_backfill_rows_per_s = Math.round(rec.rows / seconds);
      out.history_backfill_source_cpu_s = Math.round(cpuS * 10) / 10;
      out.history_backfill_source_cpu_pct = Math.round((cpuS / seconds) * 1000) / 10;
      console.error(`   riskmon first start: ${rec.rows} rows into buckets in ${seconds.toFixed(1)} s = ${out.history_backfill_rows_per_s} rows/s (the backfill alone ${rec.rowsPerSecond} rows/s); source backends ${cpuS.toFixed(1)} CPU s`);
      if (rec.rows !== total) console.error(`   (the source holds ${total} rows; ${total - rec.rows} lie outside the backfilled days)`);
      // where the backfill's time went (its own log line): waiting for the source, summing, writing to Redis
      const done = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"backfill done"')).pop();
      const ms = done ? (JSON.parse(done) as { ms?: Record<string, number> }).ms : undefined;
      if (ms) {
        for (const [k, v] of Object.entries(ms)) out[`history_backfill_${k}_ms`] = v;
        console.error(`   backfill time: source ${ms.source} ms, summing ${ms.sum} ms, writing ${ms.write} ms; the rest is the process start, preflight and the slot's snapshot`);
      }
    } finally {
      await stopChild(cdc);
    }

    if (env.RISKMON_BENCH_BACKFILL_PEER !== '0') {
      const kafka = createKafka(kafkaConfigOf(brokers), { clientId: 'bench-backfill' });
      const cpuD = new BackendCpu(db, name);
      const t1 = Date.now();
      const dbz = await startDebezium({ url, slot: `${name}_dbz`, publication: 'riskmon_pub', brokers, prefix: `${name}_dbz`, dir, kafka, partitions: 1, snapshotMode: 'initial' });
      try {
        const topics = [dbz.topic, `${name}_dbz.public.payment_cancels`];
        const count = async () => (await Promise.all(topics.map((t) => topicRecords(kafka, t).catch(() => 0)))).reduce((a, b) => a + b, 0);
        await waitFor(async () => {
          if (dbz.child.exitCode !== null) throw new Error(`Debezium exited (${dbz.child.exitCode}); see ${path.join(dir, 'connect.log')}`);
          return (await count()) >= total || null;
        }, { timeoutMs: 3_600_000, intervalMs: 500, message: 'Debezium\'s snapshot' });
        const seconds = (Date.now() - t1) / 1000;
        const cpuS = cpuD.end();
        out.debezium_snapshot_rows_per_s = Math.round(total / seconds);
        out.debezium_snapshot_seconds = Math.round(seconds * 10) / 10;
        out.debezium_snapshot_source_cpu_s = Math.round(cpuS * 10) / 10;
        out.history_backfill_vs_debezium = Math.round((out.history_backfill_rows_per_s / out.debezium_snapshot_rows_per_s) * 100) / 100;
        console.error(`   Debezium snapshot: ${total} rows into Kafka in ${seconds.toFixed(1)} s = ${out.debezium_snapshot_rows_per_s} rows/s; source backends ${cpuS.toFixed(1)} CPU s`);
      } catch (err) {
        console.error(`   Debezium snapshot not measured: ${(err as Error).message}`);
      } finally {
        await dbz.stop();
      }
    }
    return out;
  } finally {
    await db.end().catch(() => {});
    await dropKeys(redis, `${name}:*`).catch(() => {});
    await redis.quit().catch(() => {});
    await scratch.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
