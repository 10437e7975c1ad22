/**
 * Backtests as job rows (`backtests`, sql/risk/004_rules.sql): the API queues, lists, reads and cancels them; the
 * alerting process's runner (backtest/jobs.ts) claims the oldest queued one, reports progress (which is where it
 * learns of a cancel request) and records the result or the error.
 */
import type pg from 'pg';
import { iso } from '../../lib/time.ts';
import type { BacktestResult } from '../backtest/compare.ts';
import type { RulesConfig } from '../rules/config.ts';
import type { Queryable } from './rules.ts';

export interface BacktestJob {
  id: string;
  status: 'queued' | 'running' | 'done' | 'failed';
  progress: number;
  from: string;
  to: string;
  version: string | null;
  ruleVersion: string;
  createdBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  result: BacktestResult | null;
}

export async function queueBacktest(db: Queryable, j: { config: RulesConfig; version: string | null; from: number; to: number; actor: string }): Promise<string> {
  const r = await db.query(`INSERT INTO backtests (period_from, period_to, version, config, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING id::text`,
    [new Date(j.from), new Date(j.to), j.version, j.config, j.actor]);
  await db.query(`SELECT pg_notify('riskmon_backtests', $1)`, [r.rows[0].id]);
  return r.rows[0].id;
}

export async function getBacktest(db: pg.Pool, id: string): Promise<BacktestJob | null> {
  if (!/^\d{1,18}$/.test(id)) return null;
  const r = await db.query('SELECT * FROM backtests WHERE id = $1', [id]);
  const x = r.rows[0];
  if (!x) return null;
  const isoOf = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: String(x.id), status: x.status, progress: x.progress, from: iso(x.period_from.getTime()), to: iso(x.period_to.getTime()),
    version: x.version, ruleVersion: x.config.version, createdBy: x.created_by, createdAt: x.created_at.toISOString(),
    startedAt: isoOf(x.started_at), finishedAt: isoOf(x.finished_at), error: x.error, result: x.result,
  };
}

export async function listBacktests(db: pg.Pool, limit = 20): Promise<Omit<BacktestJob, 'result'>[]> {
  const r = await db.query('SELECT id::text FROM backtests ORDER BY id DESC LIMIT $1', [limit]);
  const out = [];
  for (const x of r.rows) {
    const j = (await getBacktest(db, x.id))!;
    const { result: _r, ...rest } = j;
    out.push(rest);
  }
  return out;
}

/** Asks a queued or running backtest to stop; false when it is unknown or already finished. */
export async function cancelBacktest(db: Queryable, id: string, actor: string): Promise<boolean> {
  if (!/^\d{1,18}$/.test(id)) return false;
  const r = await db.query(`UPDATE backtests SET cancel_by = $2,
      status = CASE WHEN status = 'queued' THEN 'failed' ELSE status END,
      error = CASE WHEN status = 'queued' THEN 'cancelled by ' || $2 ELSE error END,
      finished_at = CASE WHEN status = 'queued' THEN clock_timestamp() ELSE finished_at END
    WHERE id = $1 AND status IN ('queued', 'running')`, [id, actor]);
  return r.rowCount === 1;
}

/** A job left 'running' by a process that died is taken again from the start. */
/** A job taken this many times by runners that died while running it is failed instead of taken again. */
export const BACKTEST_MAX_ATTEMPTS = 2;

/**
 * Jobs left 'running' by a runner that died: taken again from the start, unless they were taken
 * BACKTEST_MAX_ATTEMPTS times already — a backtest that kills its process twice is failed, not retried forever.
 */
export async function requeueRunningBacktests(db: Pick<pg.Pool, 'query'>): Promise<void> {
  await db.query(`UPDATE backtests SET
      status = CASE WHEN attempts >= ${BACKTEST_MAX_ATTEMPTS} THEN 'failed' ELSE 'queued' END,
      progress = CASE WHEN attempts >= ${BACKTEST_MAX_ATTEMPTS} THEN progress ELSE 0 END,
      finished_at = CASE WHEN attempts >= ${BACKTEST_MAX_ATTEMPTS} THEN clock_timestamp() END,
      error = CASE WHEN attempts >= ${BACKTEST_MAX_ATTEMPTS}
        THEN 'the alerting process stopped unexpectedly ' || attempts || ' times while running this backtest; not retried (shorten the period or raise the thresholds)' END
    WHERE status = 'running'`);
}

/** Queued and running backtests started by `actor` (the per-caller limit). */
export async function openBacktestsOf(db: Pick<pg.Pool, 'query'>, actor: string): Promise<number> {
  const r = await db.query(`SELECT count(*)::int AS n FROM backtests WHERE created_by = $1 AND status IN ('queued', 'running')`, [actor]);
  return r.rows[0].n;
}

/** Claims the oldest queued backtest (FOR UPDATE SKIP LOCKED: two runners never take the same one); null when none. */
export async function claimNextBacktest(db: pg.Pool): Promise<{ id: string; from: number; to: number; config: unknown } | null> {
  const r = await db.query(`UPDATE backtests SET status = 'running', started_at = clock_timestamp(), progress = 0, attempts = attempts + 1
    WHERE id = (SELECT id FROM backtests WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id::text, period_from, period_to, config`);
  const job = r.rows[0];
  return job ? { id: job.id, from: job.period_from.getTime(), to: job.period_to.getTime(), config: job.config } : null;
}

/** Records progress (0..1); returns who asked to cancel the job, or null. */
export async function reportBacktestProgress(db: pg.Pool, id: string, fraction: number): Promise<string | null> {
  const u = await db.query('UPDATE backtests SET progress = $2 WHERE id = $1 RETURNING cancel_by', [id, fraction]);
  return u.rows[0]?.cancel_by ?? null;
}

export async function finishBacktest(db: pg.Pool, id: string, result: BacktestResult): Promise<void> {
  await db.query(`UPDATE backtests SET status = 'done', progress = 1, finished_at = clock_timestamp(), result = $2 WHERE id = $1`, [id, result]);
}

/** Puts a job back in the queue (its runner stopped), to run again from the start. */
export async function requeueBacktest(db: pg.Pool, id: string): Promise<void> {
  // an orderly stop is no death: the attempt is given back
  await db.query(`UPDATE backtests SET status = 'queued', progress = 0, attempts = attempts - 1 WHERE id = $1`, [id]);
}

export async function failBacktest(db: pg.Pool, id: string, message: string): Promise<void> {
  await db.query(`UPDATE backtests SET status = 'failed', finished_at = clock_timestamp(), error = $2 WHERE id = $1`, [id, message]);
}

/** Whether the alerts table has the triage columns (sql/risk/003_triage.sql): the backtest's comparison shows dispositions then. */
export async function alertsHaveDispositions(db: pg.Pool): Promise<boolean> {
  return Boolean((await db.query(
    `SELECT 1 FROM information_schema.columns WHERE table_name = 'alerts' AND column_name = 'disposition'`)).rowCount);
}

/** The queue at a glance: running jobs, those of them that have made progress, and the sum of all progress. */
export async function backtestQueue(db: pg.Pool): Promise<{ running: number; started: number; progress: number }> {
  const r = await db.query(`SELECT count(*) FILTER (WHERE status = 'running')::int AS running,
      count(*) FILTER (WHERE status = 'running' AND progress > 0)::int AS started, coalesce(sum(progress), 0)::float AS p FROM backtests`);
  return { running: r.rows[0].running, started: r.rows[0].started, progress: r.rows[0].p };
}

/** Asks every queued or running backtest to stop (their runner ends them at its next progress report). */
export async function cancelAllBacktests(db: pg.Pool, actor: string): Promise<void> {
  await db.query(`UPDATE backtests SET cancel_by = $1 WHERE status IN ('queued', 'running')`, [actor]);
}
