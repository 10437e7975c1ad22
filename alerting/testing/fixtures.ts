/** Shared set-up for the alerting integration tests and the benchmark: a migrated risk store, history helpers, a backtest run to its end. */
import pg from 'pg';
import { migrate } from '../../lib/migrate.ts';
import { dayStart, HOUR } from '../../lib/time.ts';
import { baselineDayStarts } from '../baseline.ts';
import type { BacktestRunner } from '../backtest/jobs.ts';
import { getBacktest, queueBacktest } from '../risk-store/index.ts';
import type { RulesConfig } from '../rules/config.ts';
import type { MemoryReader } from './memory-reader.ts';

export async function riskStore(url: string): Promise<pg.Pool> {
  await migrate(url, 'risk');
  return new pg.Pool({ connectionString: url, max: 4 });
}

/** Spreads per-day activity evenly over the 24 hours of each of the `days` full days before the day of `at`. */
export function addHistory(reader: MemoryReader, merchantId: string, at: number, perDay: { approvals: number; cancels: number; amount: bigint }, days = 7): void {
  for (const d of baselineDayStarts(dayStart(at, reader.tz), days, reader.tz)) {
    for (let h = 0; h < 24; h++) {
      const share = (n: number) => Math.floor(n / 24) + (h < n % 24 ? 1 : 0);
      reader.add(merchantId, d + h * HOUR, { approvals: share(perDay.approvals), cancels: share(perDay.cancels), approvedAmount: perDay.amount / 24n });
    }
  }
}

/** Inserts a firing alert with one transition and a pending Slack notification; returns the notification id. */
export async function pendingNotification(db: pg.Pool, merchantId: string, rule = 'cancel_rate_spike'): Promise<string> {
  const evidence = { ruleVersion: 'test', window: { approvals: 100, cancels: 20, rate: 0.2 }, baseline: { approvals: 1000, cancels: 20, rate: 0.02 }, multiplier: 2, threshold: 0.04 };
  const a = await db.query(`INSERT INTO alerts (rule, merchant_id, state, fired_at, rule_version, evidence) VALUES ($1, $2, 'firing', now(), 'test', $3) RETURNING id`, [rule, merchantId, evidence]);
  const t = await db.query(`INSERT INTO alert_transitions (alert_id, kind, minute, evidence) VALUES ($1, 'fired', now(), $2) RETURNING id`, [a.rows[0].id, evidence]);
  const n = await db.query(`INSERT INTO notifications (transition_id, status) VALUES ($1, 'pending') RETURNING id::text`, [t.rows[0].id]);
  return n.rows[0].id;
}

/**
 * Queues a backtest of `config` over [from, to), runs it on `runner` (one job) and returns its result; throws when
 * the runner found nothing to run or the job did not end done (its status and error in the message).
 */
export async function finishedBacktest(db: pg.Pool, runner: Pick<BacktestRunner, 'runOne'>, config: RulesConfig, from: number, to: number) {
  const id = await queueBacktest(db, { config, version: null, from, to, actor: 'test' });
  if (!(await runner.runOne())) throw new Error(`backtest ${id}: the runner found no job to run`);
  const job = (await getBacktest(db, id))!;
  if (job.status !== 'done' || job.error !== null || job.progress !== 1) throw new Error(`backtest ${id} ended ${job.status} (progress ${job.progress}): ${job.error}`);
  return job.result!;
}
