/**
 * Backtests as jobs in the risk store (`backtests`): the API queues them, the alerting process runs them one at a
 * time, oldest first (`BacktestRunner`), in a worker thread of its own (thread.ts: its own event loop and heap
 * limit, so a heavy backtest can neither stall nor crash live alerting), below the live evaluator in priority:
 *
 * - between two backtest minutes the runner yields to the event loop, and while the evaluator has a closed minute
 *   due or in progress (`Evaluator.busy`) it waits — the live minute is never queued behind a backtest's; what a
 *   backtest minute costs the live path is at most one `decideMinute` (a few ms to tens of ms at 100,000 merchants);
 * - progress and cancel requests go through the job row (read/written about once a second), so any API instance can
 *   watch or cancel, and a job whose process died is picked up again (from the start) by the next runner.
 *
 * A backtest changes nothing live: no alert, transition, evaluation row or notification is written; its result is
 * the job row's `result`.
 */
import type pg from 'pg';
import type { BucketReader, Settlement, Totals } from '../../aggregator/store/index.ts';
import { hasMinuteTotals } from '../../aggregator/store/index.ts';
import type { Logger } from '../../lib/logger.ts';
import { iso, MINUTE } from '../../lib/time.ts';
import { backoffMs, RunState, type Service } from '../../lib/service.ts';
import { lastClosedMinute } from '../closed.ts';
import type { MerchantDirectory } from '../directory.ts';
import { parseRules, type RulesConfig } from '../rules/config.ts';
import {
  alertsHaveDispositions, claimNextBacktest, failBacktest, finishBacktest, firingAt, liveAlerts, liveIngestLags, reportBacktestProgress,
  requeueBacktest, requeueRunningBacktests,
} from '../risk-store/index.ts';
import { compareWithLive } from './compare.ts';
import { BacktestLimitError, firstMinuteNeeded, runBacktest } from './engine.ts';

/** Largest result kept in the job row (JSON bytes); beyond, the job fails with a message saying so. */
export const MAX_BACKTEST_RESULT_BYTES = 16 * 1024 * 1024;

export const BACKTEST_DAYS = 7;

/** A bad backtest request: `field` names what is wrong. */
export class BacktestRequestError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
    this.name = 'BacktestRequestError';
  }
}

/**
 * The period that can be backtested now: from 7 days ago to the end of the last closed minute. Minutes the minute
 * tier no longer holds are rebuilt from the retained topic (`rebuild`); without that, the period starts where the
 * minute tier's horizon plus the rules' window allows.
 */
export async function backtestablePeriod(reader: BucketReader, o: { now: number; allowedLatenessMs: number; windowMinutes: number; rebuild: boolean }): Promise<{ from: number; to: number; limitedBy: 'days' | 'minute tier' }> {
  const weekAgo = Math.ceil((o.now - BACKTEST_DAYS * 86_400_000) / MINUTE) * MINUTE;
  const horizon = hasMinuteTotals(reader) && !o.rebuild ? reader.minuteHorizon() + o.windowMinutes * MINUTE : -Infinity;
  const wm = await reader.watermark();
  const to = wm === null ? weekAgo : lastClosedMinute(Math.min(wm, o.now), o.allowedLatenessMs) + MINUTE;
  return horizon > weekAgo ? { from: horizon, to, limitedBy: 'minute tier' } : { from: weekAgo, to, limitedBy: 'days' };
}

/** Checks a requested period against the possible one; returns it minute-aligned (whole minutes inside it). */
export function checkPeriod(fromIso: unknown, toIso: unknown, possible: { from: number; to: number; limitedBy: string }): { from: number; to: number } {
  const parse = (v: unknown, field: string) => {
    const t = typeof v === 'string' ? Date.parse(v) : NaN;
    if (!Number.isFinite(t)) throw new BacktestRequestError(field, `${field} must be an ISO timestamp such as ${iso(possible.from)}`);
    return t;
  };
  const from = Math.ceil(parse(fromIso, 'from') / MINUTE) * MINUTE;
  const to = Math.ceil(parse(toIso, 'to') / MINUTE) * MINUTE;
  const can = `a backtest can cover [${iso(possible.from)}, ${iso(possible.to)})`;
  const why = possible.limitedBy === 'minute tier'
    ? ' (earlier minutes are no longer at minute resolution in Redis, and this deployment does not rebuild them from the topic)'
    : ` (the last ${BACKTEST_DAYS} days, up to the last closed minute)`;
  if (from >= to) throw new BacktestRequestError('from', `from must be before to (and both inside one closed minute at least); ${can}`);
  if (from < possible.from) throw new BacktestRequestError('from', `from is too early: ${can}${why}`);
  if (to > possible.to) throw new BacktestRequestError('to', `to is in the future or not closed yet: ${can}${why}`);
  return { from, to };
}

class Cancelled extends Error {}

/** Minutes handed out in order (the aggregator's TopicMinutes). */
export interface MinuteStream { read(lo: number, hi: number): Promise<Map<number, Map<string, Totals>>>; close(): Promise<void>; changes: number }

export interface RunnerOptions {
  tz: string; maxIngestLagMs: number; evaluatorName: string; pollMs: number;
  /** As the live evaluator's: receivable is judged and the money reported (absent: neither, as live without one). */
  settlement?: Settlement;
}
export interface RunnerDeps {
  reader: BucketReader;
  /** The live evaluator's merchant directory (cohorts). */
  directory?: MerchantDirectory;
  /** Minutes [lo, hi) rebuilt from the retained topic (aggregator's TopicMinutes); absent: no rebuild. */
  topicMinutes?: (lo: number, hi: number) => Promise<MinuteStream>;
  db: pg.Pool;
  log: Logger;
  /** True while the live evaluator has a minute due or in progress: the runner waits. */
  liveBusy: () => boolean;
  /** Told the job taken (its id) and, when it has ended, null: the backtest thread fails a job its worker died of. */
  onJob?: (id: string | null) => void;
}

export class BacktestRunner implements Service {
  readonly name = 'alerting-backtests';
  readonly #state = new RunState();

  constructor(private readonly o: RunnerOptions, private readonly d: RunnerDeps) {}

  async run(): Promise<void> {
    // A job left 'running' by a process that died is taken again from the start.
    let failures = 0;
    while (this.#state.shouldRun()) {
      try {
        await requeueRunningBacktests(this.d.db);
        break;
      } catch (err) {
        const wait = backoffMs(failures++, this.o.pollMs, 30_000);
        this.d.log.warn({ err, retryInMs: wait }, 'backtest runner: store unavailable; retrying');
        await this.#state.sleep(wait);
      }
    }
    failures = 0;
    while (this.#state.shouldRun()) {
      let ran = false;
      try {
        ran = await this.runOne();
        failures = 0;
      } catch (err) {
        // the risk store is down: back off (up to 30 s) instead of a warning every poll
        const wait = backoffMs(failures++, this.o.pollMs, 30_000);
        this.d.log.warn({ err, retryInMs: wait }, 'backtest runner: store unavailable; retrying');
        await this.#state.sleep(wait);
        continue;
      }
      if (!ran) await this.#state.sleep(this.o.pollMs);
    }
  }

  async stop(): Promise<void> { this.#state.stop(); }

  /** Runs the oldest queued backtest, if any; true when one ran. */
  async runOne(): Promise<boolean> {
    const job = await claimNextBacktest(this.d.db);
    if (!job) return false;
    const { id, from, to } = job;
    this.d.onJob?.(id);
    const log = this.d.log.child({ backtest: id });
    const t0 = performance.now();
    let topic: MinuteStream | null = null;
    try {
      const rules = parseRules(job.config);
      // Minutes the minute tier no longer holds come from the retained topic — never approximated.
      const reader = this.d.reader;
      const horizon = hasMinuteTotals(reader) ? reader.minuteHorizon() : -Infinity;
      const needed = firstMinuteNeeded(from, rules, this.o.tz);
      const split = Math.max(needed, Math.min(horizon, to));
      if (needed < split) {
        if (!this.d.topicMinutes) throw new Error(`the minutes from ${iso(needed)} have left the minute tier (it holds them from ${iso(horizon)}) and this alerting process has no KAFKA_BROKERS to rebuild them from the topic: start the backtest at ${iso(horizon + rules.windowMinutes * MINUTE)} or later`);
        const t1 = performance.now();
        topic = await this.d.topicMinutes(needed, split);
        log.info({ from: iso(needed), to: iso(split), ms: Math.round(performance.now() - t1) }, 'rebuilding minutes from the topic (late changes collected)');
      }
      const minutes = async (lo: number, hi: number) => {
        const out = new Map<number, Map<string, Totals>>();
        if (topic && lo < split) for (const [t, m] of await topic.read(lo, Math.min(hi, split))) out.set(t, m);
        if (hi > split) {
          const part = hasMinuteTotals(reader) ? await reader.minuteTotals(Math.max(lo, split), hi) : new Map();
          for (const [t, m] of part) out.set(t, m);
        }
        return out;
      };
      const [initial, ingestLags] = await Promise.all([firingAt(this.d.db, from), liveIngestLags(this.d.db, this.o.evaluatorName, from, to)]);
      log.info({ from: iso(from), to: iso(to), version: rules.version, carried: initial.length }, 'backtest started');
      let lastReport = performance.now();
      const out = await runBacktest({
        rules, from, to, tz: this.o.tz, maxIngestLagMs: this.o.maxIngestLagMs, reader: this.d.reader, settlement: this.o.settlement, directory: this.d.directory, log, initial, ingestLags, minutes,
        onMinute: async (done, total) => {
          await this.#yieldToLive();
          if (performance.now() - lastReport < 1000 && done < total) return;
          lastReport = performance.now();
          const by = await reportBacktestProgress(this.d.db, id, done / total);
          if (by) throw new Cancelled(`cancelled by ${by}`);
          if (!this.#state.shouldRun()) throw new Cancelled('the alerting process stopped; the backtest runs again at its next start');
        },
      });
      const live = await liveAlerts(this.d.db, from, to, await this.#hasDispositions());
      const result = compareWithLive(out.alerts, live, { from, to, tz: this.o.tz, minutes: out.minutes, evaluations: out.evaluations, money: out.money });
      const bytes = Buffer.byteLength(JSON.stringify(result));
      if (bytes > MAX_BACKTEST_RESULT_BYTES) throw new BacktestLimitError(`the result is ${Math.round(bytes / 1048576)} MiB, more than ${MAX_BACKTEST_RESULT_BYTES / 1048576} MiB; raise the thresholds or shorten the period`);
      await finishBacktest(this.d.db, id, result);
      log.info({ minutes: out.minutes, alerts: out.alerts.length, exact: result.vsLive.exact, fromTopic: topic?.changes ?? 0, ms: Math.round(performance.now() - t0) }, 'backtest done');
    } catch (err) {
      if (err instanceof Cancelled && !this.#state.shouldRun()) {
        await requeueBacktest(this.d.db, id).catch(() => {});
        return true;
      }
      const message = err instanceof Error ? err.message : String(err);
      if (!(err instanceof Cancelled) && !(err instanceof BacktestLimitError)) log.warn({ err }, 'backtest failed');
      await failBacktest(this.d.db, id, message);
    } finally {
      await topic?.close().catch(() => {});
      this.d.onJob?.(null);
    }
    return true;
  }

  /** Lets pending I/O run, then waits while the live evaluator has a minute due or in progress. */
  async #yieldToLive(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    while (this.d.liveBusy() && this.#state.shouldRun()) await new Promise((r) => setTimeout(r, 5));
  }

  #dispositions: boolean | null = null;
  async #hasDispositions(): Promise<boolean> {
    this.#dispositions ??= await alertsHaveDispositions(this.d.db);
    return this.#dispositions;
  }
}
