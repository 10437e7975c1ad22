/**
 * Every long-running piece of riskmon is a Service. Its loop runs `while (state.shouldRun())`; `state` owns the
 * AbortController, interruptible sleeps and backoff. `runServices` turns SIGTERM/SIGINT into drain-then-stop and
 * exits non-zero when a service failed.
 */
import type { Logger } from './logger.ts';

export interface Service {
  readonly name: string;
  /** Resolves when the service has stopped; rejects when it failed. */
  run(): Promise<void>;
  /** Finish in-flight work (e.g. the current batch), then stop. Defaults to stop(). */
  drain?(): Promise<void>;
  stop(): Promise<void>;
}

export class RunState {
  readonly #ac = new AbortController();

  get signal(): AbortSignal { return this.#ac.signal; }
  shouldRun(): boolean { return !this.#ac.signal.aborted; }
  stop(): void { this.#ac.abort(); }

  /** Sleeps `ms`, returning early (without throwing) when stopped. */
  sleep(ms: number): Promise<void> {
    if (!this.shouldRun()) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const signal = this.#ac.signal;
      function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/** Exponential backoff with full jitter: attempt 0 → up to base, capped at max. `random` injectable for tests. */
export function backoffMs(attempt: number, baseMs = 200, maxMs = 30_000, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Runs `session` again and again until `state` is stopped: a session that ends with an error (a connection lost, a
 * service restarting) is started again after a jittered backoff, which starts over after a session that lasted a
 * minute. Errors `fatal` accepts end the loop by being rethrown (configuration errors: retrying cannot help).
 */
export async function runSessions(state: RunState, session: () => Promise<void>, o: {
  fatal: (err: unknown, attempt: number) => boolean;
  onRetry: (err: unknown, retryInMs: number) => void;
  baseMs?: number;
  maxMs?: number;
}): Promise<void> {
  let attempt = 0;
  while (state.shouldRun()) {
    const t0 = Date.now();
    try {
      await session();
    } catch (err) {
      if (o.fatal(err, attempt)) throw err;
      if (!state.shouldRun()) return;
      if (Date.now() - t0 > 60_000) attempt = 0;
      const wait = backoffMs(attempt++, o.baseMs ?? 500, o.maxMs ?? 15_000);
      o.onRetry(err, wait);
      await state.sleep(wait);
    }
  }
}

/**
 * Runs services until one fails or a signal arrives. On SIGTERM/SIGINT every service drains, then stops; a second
 * signal stops at once. Resolves with the process exit code (0 clean, 1 a service failed).
 */
export async function runServices(services: Service[], log: Logger, opts: { exit?: boolean } = {}): Promise<number> {
  let failed = false;
  let stopping = false;
  const stopAll = async (how: 'drain' | 'stop') => {
    await Promise.allSettled(services.map((s) => (how === 'drain' && s.drain ? s.drain() : s.stop())));
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal: sig }, 'second signal: stopping now');
      void stopAll('stop');
      return;
    }
    stopping = true;
    log.info({ signal: sig }, 'draining, then stopping');
    void stopAll('drain');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await Promise.all(services.map(async (s) => {
      try {
        await s.run();
        log.info({ service: s.name }, 'service stopped');
      } catch (err) {
        failed = true;
        log.error({ service: s.name, err }, 'service failed');
      } finally {
        // One service ending (by failure or by itself) ends the process: stop the others.
        if (!stopping) { stopping = true; void stopAll(failed ? 'stop' : 'drain'); }
      }
    }));
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  const code = failed ? 1 : 0;
  if (opts.exit) process.exit(code);
  return code;
}
