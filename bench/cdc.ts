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
import { cdcPublishHistogram, histogramQuantile } from './util.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../lib/migrate.ts';
import { spawnRiskmon } from '../test/harness/index.ts';

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

export async function benchCdc(env: { PG_URL: string; KAFKA_BROKERS: string }): Promise<Record<string, number>> {
  const name = `bench_cdc_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: env.PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = dbUrl(env.PG_URL, name);
  const db = new pg.Client({ connectionString: url });
  let cdc: ChildProcess | null = null;
  try {
    await db.connect();
    await migrate(url, 'source');
    await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'm' || g FROM generate_series(1, 10000) g`);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [`${name}_cdc`]);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [`${name}_recv`]);
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
      await c.query('CALL bench_gen($1, $2)', [1 + k * Math.ceil(BACKLOG / parallel), Math.ceil(BACKLOG / parallel)]);
      await c.end();
    }));
    const target = (await db.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l as string;
    const genS = (Date.now() - t0) / 1000;

    // cdc catch-up
    const metricsPort = await freePort();
    // RISKMON_BENCH_CDC_NODE_ARGS: extra node flags for the cdc child (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`).
    const nodeArgs = (process.env.RISKMON_BENCH_CDC_NODE_ARGS ?? '').split(' ').filter(Boolean);
    cdc = spawnRiskmon(['cdc'], {
      nodeArgs, stdout: process.env.RISKMON_BENCH_CDC_LOG_LEVEL ? 'inherit' : 'ignore', stderr: 'inherit',
      env: {
        ...process.env, PG_URL: url, KAFKA_BROKERS: env.KAFKA_BROKERS, RISKMON_TOPIC: name, RISKMON_DLQ_TOPIC: `${name}.dlq`,
        RISKMON_SLOT: `${name}_cdc`, RISKMON_METRICS_PORT: String(metricsPort), RISKMON_LOG_LEVEL: process.env.RISKMON_BENCH_CDC_LOG_LEVEL ?? 'warn', RISKMON_RETENTION_MS: String(8 * 86_400_000 + 3_600_000),
      },
    });
    let peakRss = 0;
    const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, rssOf(cdc!.pid!)); }, 200);
    const slotState = async () => (await db.query(
      `SELECT s.active_pid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_stat_replication r WHERE r.pid = s.active_pid) AS streaming,
              confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots s WHERE slot_name = $1`, [`${name}_cdc`, target])).rows[0];
    while (!(await slotState()).streaming) await new Promise((r) => setTimeout(r, 20));
    const c0 = Date.now();
    while (!(await slotState()).done) await new Promise((r) => setTimeout(r, 50));
    const cdcS = (Date.now() - c0) / 1000;

    // publish latency at a fixed rate (default 5,000 TPS for 15 s from 16 connections); the rate reached is reported
    const h0 = await cdcPublishHistogram(metricsPort);
    const rate = Number(process.env.RISKMON_BENCH_CDC_TPS ?? 5000), seconds = 15, conns = 16;
    const l0 = Date.now();
    let id = 50_000_000;
    await Promise.all(Array.from({ length: conns }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const start = Date.now();
      for (let i = 0; i < (rate / conns) * seconds; i++) {
        const due = start + (i * 1000 * conns) / rate;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const pid = id++;
        await c.query('INSERT INTO payments VALUES ($1, $2, 1000, now())', [pid, 1 + (pid % 10000)]);
      }
      await c.end();
    }));
    const reachedTps = Math.round((rate * seconds) / ((Date.now() - l0) / 1000));
    await new Promise((r) => setTimeout(r, 1500));
    const h1 = await cdcPublishHistogram(metricsPort);
    const delta = new Map([...h1].map(([le, c]) => [le, c - (h0.get(le) ?? 0)]));
    clearInterval(rssTimer);
    // Let it exit before pg_recvlogical runs (no CPU contention; a --cpu-prof child writes its profile on exit).
    const exited = new Promise((r) => cdc!.once('exit', r));
    cdc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);

    // pg_recvlogical on the same backlog
    const r0 = Date.now();
    const res = spawnSync(recvlogicalBin(), ['-d', url, `--slot=${name}_recv`, '--start', `--endpos=${target}`,
      '-o', 'proto_version=1', '-o', 'publication_names=riskmon_pub', '-f', '/dev/null', '--no-loop'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const recvS = (Date.now() - r0) / 1000;
    if (res.status !== 0) throw new Error(`pg_recvlogical failed: ${res.stderr?.toString()}`);

    const figures = {
      cdc_catchup_changes_per_s: Math.round(BACKLOG / cdcS),
      pg_recvlogical_changes_per_s: Math.round(BACKLOG / recvS),
      cdc_catchup_ratio_to_pg_recvlogical: Math.round((recvS / cdcS) * 100) / 100,
      cdc_publish_p50_ms: Math.round(histogramQuantile(delta, 0.5) * 1000 * 10) / 10,
      cdc_publish_p99_ms: Math.round(histogramQuantile(delta, 0.99) * 1000 * 10) / 10,
      cdc_publish_tps: reachedTps,
      cdc_peak_rss_bytes: peakRss,
      cdc_backlog_changes: BACKLOG,
      cdc_backlog_generate_s: Math.round(genS * 10) / 10,
    };
    return figures;
  } finally {
    cdc?.kill('SIGKILL');
    await db.end().catch(() => {});
    // drop the slots and the database; the topics stay until retention (names start with bench_cdc_)
    await admin.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [name]).catch(() => {});
    await new Promise((r) => setTimeout(r, 1000));
    await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [name]).catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
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
