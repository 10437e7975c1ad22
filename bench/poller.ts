/**
 * The alternative a team would build without riskmon: a job that evaluates both rules every minute with SQL
 * GROUP BY queries against the source database (with sensible indexes). We measure, on the same data and
 * machine, what one evaluation costs the source (backend CPU time from /proc, buffers touched from EXPLAIN
 * BUFFERS, wall time) and how that grows with the days of history, and compare with riskmon's cost to the
 * source (the walsender of its replication slot), measured in bench/pipeline.ts.
 *
 * Two honest variants: `naive` recomputes the 7-day baselines every minute, as the rules are written;
 * `cached` computes baselines once a day and runs only the today/last-hour queries each minute (its once-a-day
 * baseline pass, about one naive evaluation, is not included: spread over 1,440 minutes it is small).
 * Queries run without parallel workers so that the backend's /proc CPU is all the CPU they cost.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { dayStart, DAY, HOUR, MINUTE, minuteStart } from '../lib/time.ts';

export const WINDOW_SQL = `
  WITH a AS (SELECT merchant_id, count(*) AS n FROM payments WHERE approved_at >= $1 AND approved_at < $2 GROUP BY 1),
       c AS (SELECT merchant_id, count(*) AS n FROM payment_cancels WHERE canceled_at >= $1 AND canceled_at < $2 GROUP BY 1)
  SELECT a.merchant_id, a.n AS approvals, coalesce(c.n, 0) AS cancels FROM a LEFT JOIN c USING (merchant_id)`;

export const BASELINE_RATE_SQL = `
  WITH a AS (SELECT merchant_id, count(*) AS n FROM payments WHERE approved_at >= $1 AND approved_at < $2 GROUP BY 1),
       c AS (SELECT merchant_id, count(*) AS n FROM payment_cancels WHERE canceled_at >= $1 AND canceled_at < $2 GROUP BY 1)
  SELECT a.merchant_id, a.n AS approvals, coalesce(c.n, 0) AS cancels FROM a LEFT JOIN c USING (merchant_id)`;

/** Eligible merchants (7-day average ≥ 1B KRW) with the same time-of-day window of each of the 7 days. */
export const VOLUME_BASELINE_SQL = `
  WITH days AS (SELECT generate_series(1, 7) AS d),
       eligible AS (SELECT merchant_id FROM payments WHERE approved_at >= $1 AND approved_at < $2
                    GROUP BY 1 HAVING sum(amount) / 7 >= 1000000000)
  SELECT p.merchant_id, sum(p.amount) / 7 AS baseline
  FROM days JOIN payments p
    ON p.approved_at >= $2::timestamptz - make_interval(days => d)
   AND p.approved_at <  $2::timestamptz - make_interval(days => d) + $3::interval
  WHERE p.merchant_id IN (SELECT merchant_id FROM eligible)
  GROUP BY 1`;

export const TODAY_SQL = `SELECT merchant_id, sum(amount) AS today FROM payments WHERE approved_at >= $1 AND approved_at < $2 GROUP BY 1`;

/** Per-process CPU (user+system, ms) of a PostgreSQL backend, read from /proc (same machine). */
export function backendCpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15 of stat)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

async function buffers(client: pg.Client, sql: string, params: unknown[]): Promise<number> {
  const r = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, params);
  const plan = r.rows[0]['QUERY PLAN'][0].Plan;
  return (plan['Shared Hit Blocks'] ?? 0) + (plan['Shared Read Blocks'] ?? 0);
}

export interface PollCost { cpuMs: number; wallMs: number; blocks: number }

/** One minute's evaluation by the SQL poller for the closed minute ending at `minuteEnd`. */
export async function pollOnce(client: pg.Client, pid: number, minuteEnd: number, tz: string, naive: boolean): Promise<PollCost> {
  const today = dayStart(minuteEnd - 1, tz);
  const steps: Array<[string, unknown[]]> = [
    [WINDOW_SQL, [new Date(minuteEnd - HOUR), new Date(minuteEnd)]],
    [TODAY_SQL, [new Date(today), new Date(minuteEnd)]],
  ];
  if (naive) {
    steps.push([BASELINE_RATE_SQL, [new Date(today - 7 * DAY), new Date(today)]]);
    steps.push([VOLUME_BASELINE_SQL, [new Date(today - 7 * DAY), new Date(today), `${Math.round((minuteEnd - today) / 1000)} seconds`]]);
  }
  const cpu0 = backendCpuMs(pid);
  const t0 = performance.now();
  for (const [sql, params] of steps) await client.query(sql, params);
  const wallMs = performance.now() - t0;
  const cpuMs = backendCpuMs(pid) - cpu0;
  let blocks = 0;
  for (const [sql, params] of steps) blocks += await buffers(client, sql, params);
  return { cpuMs, wallMs, blocks };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Measures the poller on whatever history the source holds (the pipeline bench loads it). Returns cost per
 * minute for both variants, as medians over `runs` evaluations of the latest closed minutes.
 */
export async function measurePoller(pgUrl: string, tz: string, runs = 5): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    // Parallel workers are processes of their own, whose CPU /proc/<backend pid> would not show: one process per
    // query keeps the measured CPU the whole cost (parallelism spreads the same work, it does not remove it).
    await client.query('SET max_parallel_workers_per_gather = 0');
    // Sensible indexes for time-range scans (the reference schema has (merchant_id, time) ones).
    await client.query('CREATE INDEX IF NOT EXISTS payments_approved_at ON payments (approved_at) INCLUDE (merchant_id, amount)');
    await client.query('CREATE INDEX IF NOT EXISTS payment_cancels_canceled_at ON payment_cancels (canceled_at) INCLUDE (merchant_id)');
    await client.query('ANALYZE payments; ANALYZE payment_cancels');
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const latest = Number((await client.query('SELECT extract(epoch FROM max(approved_at)) * 1000 AS t FROM payments')).rows[0].t);
    const out: Record<string, number> = {};
    for (const naive of [true, false]) {
      const costs: PollCost[] = [];
      for (let i = 0; i < runs; i++) costs.push(await pollOnce(client, pid, minuteStart(latest) - i * MINUTE, tz, naive));
      const tag = naive ? 'naive' : 'cached';
      out[`poller_${tag}_source_cpu_ms_per_min`] = median(costs.map((c) => c.cpuMs));
      out[`poller_${tag}_wall_ms_per_min`] = median(costs.map((c) => c.wallMs));
      out[`poller_${tag}_blocks_per_min`] = median(costs.map((c) => c.blocks));
    }
    out.poller_source_cpu_ms_per_min = out.poller_naive_source_cpu_ms_per_min;
    const rows = (await client.query('SELECT (SELECT count(*) FROM payments) + (SELECT count(*) FROM payment_cancels) AS n')).rows[0].n;
    out.poller_history_rows = Number(rows);
    return out;
  } finally {
    await client.end();
  }
}
