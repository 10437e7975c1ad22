/**
 * Backtests outside the live evaluator's event loop: `BacktestThread` runs the `BacktestRunner` in a worker thread
 * (worker.ts) with its own heap limit (`RISKMON_BACKTEST_HEAP_MB`). A backtest's CPU is then another thread's (the
 * evaluator's minute is never queued behind a backtest minute), and a backtest that outgrows its memory ends its
 * thread, not the alerting process:
 *
 * - the worker runs out of memory → the job it was running is failed with a message saying so (running it again
 *   would only die again), and a new worker starts;
 * - the worker dies otherwise → a new worker starts after a backoff; it takes the job again once, a second death
 *   fails it (`requeueRunningBacktests`);
 * - the live evaluator's `busy` reaches the worker through shared memory (`setLiveBusy`), so backtests still wait
 *   while a closed minute is due or in progress (Redis and PostgreSQL are shared with the live path).
 */
import type pg from 'pg';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../lib/logger.ts';
import { backoffMs, RunState, type Service } from '../../lib/service.ts';
import { failBacktest } from '../risk-store/index.ts';

/** What the worker is given (structured-cloned; the flag is shared memory). */
export interface WorkerInput { env: Record<string, string | undefined>; liveBusy: SharedArrayBuffer; pollMs: number; heapMb: number }
/** What the worker tells the parent. */
export type FromWorker = { started: true } | { job: string | null };

export interface BacktestThreadOptions {
  /** The environment the alerting configuration was read from: the worker reads it again. */
  env: NodeJS.ProcessEnv;
  /** The worker's old-generation heap limit (MiB). */
  heapMb: number;
  pollMs: number;
  /** The worker's entry; default worker.ts (tests give one that outgrows its heap). */
  workerUrl?: URL;
}

// From the TypeScript sources (tests, the demo, `riskmon` without a build) the worker runs the sources through tsx;
// from the build, the compiled worker.js beside this file.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './worker.ts' : './worker.js', import.meta.url);

export class BacktestThread implements Service {
  readonly name = 'alerting-backtests';
  readonly #state = new RunState();
  readonly #live = new Int32Array(new SharedArrayBuffer(4));
  #worker: Worker | null = null;
  /** Workers started so far (1 while the first one lives). */
  starts = 0;

  constructor(private readonly o: BacktestThreadOptions, private readonly d: { db: pg.Pool; log: Logger }) {}

  /** The evaluator's `busy`: the worker waits while it is set. */
  setLiveBusy(busy: boolean): void { Atomics.store(this.#live, 0, busy ? 1 : 0); }

  async run(): Promise<void> {
    let failures = 0;
    while (this.#state.shouldRun()) {
      const t0 = performance.now();
      const end = await this.#runWorker();
      if (!this.#state.shouldRun()) return;
      if (performance.now() - t0 > 60_000) failures = 0;
      const wait = backoffMs(failures++, 1000, 30_000);
      this.d.log.error({ err: end.err, job: end.job, retryInMs: wait }, end.outOfMemory
        ? 'the backtest thread ran out of memory; the alerting process goes on'
        : 'the backtest thread stopped unexpectedly; the alerting process goes on');
      if (end.outOfMemory && end.job) {
        await failBacktest(this.d.db, end.job, `the backtest needed more than its ${this.o.heapMb} MiB of memory (RISKMON_BACKTEST_HEAP_MB) and was stopped; shorten the period, raise the thresholds, or raise RISKMON_BACKTEST_HEAP_MB`)
          .catch((err) => this.d.log.warn({ err, job: end.job }, 'could not mark the backtest failed; the next thread takes it again once'));
      }
      await this.#state.sleep(wait);
    }
  }

  async stop(): Promise<void> {
    this.#state.stop();
    const w = this.#worker;
    if (!w) return;
    w.postMessage('stop');
    // The runner puts a job it was running back in the queue and closes its connections; a worker that does not end
    // by then is terminated (its job is taken again at the next start).
    const timer = setTimeout(() => void w.terminate(), 15_000);
    await new Promise<void>((resolve) => { if (this.#worker !== w) resolve(); else w.once('exit', () => resolve()); });
    clearTimeout(timer);
  }

  /** Starts a worker and resolves when it has ended, saying how. */
  #runWorker(): Promise<{ job: string | null; outOfMemory: boolean; err?: unknown }> {
    const input: WorkerInput = { env: { ...this.o.env }, liveBusy: this.#live.buffer as SharedArrayBuffer, pollMs: this.o.pollMs, heapMb: this.o.heapMb };
    const url = this.o.workerUrl ?? WORKER_URL;
    const w = new Worker(url, {
      workerData: input,
      name: 'riskmon-backtests',
      resourceLimits: { maxOldGenerationSizeMb: this.o.heapMb },
      execArgv: url.pathname.endsWith('.ts') ? ['--import', import.meta.resolve('tsx/esm')] : [],
      env: input.env,
    });
    this.#worker = w;
    this.starts++;
    let job: string | null = null;
    let err: unknown;
    w.on('message', (m: FromWorker) => { if ('job' in m) job = m.job; });
    w.on('error', (e) => { err = e; });
    return new Promise((resolve) => {
      w.once('exit', (code) => {
        this.#worker = null;
        const outOfMemory = (err as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
        resolve({ job, outOfMemory, err: err ?? (this.#state.shouldRun() ? new Error(`the backtest thread exited with code ${code}`) : undefined) });
      });
    });
  }
}
