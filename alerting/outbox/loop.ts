/**
 * The loop shared by the outbox senders (the Slack sender, the webhook deliverers): rounds of "claim the due rows,
 * send, record in the claiming transaction" until stopped.
 *
 * A round that sent something is followed by the next at once; one that found nothing waits for a NOTIFY on the
 * outbox's channel (the writer's transaction NOTIFYs on commit, so new work goes out without polling delay) or for
 * `pollMs` (rows whose retry time comes, a lost LISTEN connection). `pauseMs()` above 0 delays the next round (a
 * sender's pacing). A round that throws (the risk store unreachable) is retried with a jittered backoff; nothing is
 * lost, since rows leave their pending state only in the COMMIT of a round.
 */
import pg from 'pg';
import type { Logger } from '../../lib/logger.ts';
import { backoffMs, RunState } from '../../lib/service.ts';

export interface OutboxLoopOptions {
  /** the NOTIFY channel the writers signal */
  channel: string;
  riskPgUrl: string;
  /** fallback poll when no NOTIFY arrives */
  pollMs: number;
  log: Logger;
  /** what a failed round is called in the log */
  what: string;
}

export class OutboxLoop {
  readonly #state = new RunState();
  readonly #o: OutboxLoopOptions;
  #listener: pg.Client | null = null;
  #wake: (() => void) | null = null;
  #woken = false;

  constructor(o: OutboxLoopOptions) { this.#o = o; }

  get running(): boolean { return this.#state.shouldRun(); }

  /** Runs `round` (true: it did something) until stop(). */
  async run(round: () => Promise<boolean>, pauseMs: () => number = () => 0): Promise<void> {
    let failures = 0;
    try {
      while (this.#state.shouldRun()) {
        try {
          await this.#ensureListener();
          const wait = pauseMs();
          if (wait > 0) { await this.#state.sleep(wait); continue; }
          this.#woken = false;
          const did = await round();
          failures = 0;
          if (!did) await this.#waitForWork();
        } catch (err) {
          const wait = backoffMs(failures++, 500, 30_000);
          this.#o.log.warn({ err, retryInMs: wait }, `${this.#o.what} round failed`);
          await this.#listener?.end().catch(() => {});
          this.#listener = null;
          await this.#state.sleep(wait);
        }
      }
    } finally {
      await this.#listener?.end().catch(() => {});
      this.#listener = null;
    }
  }

  stop(): void {
    this.#state.stop();
    this.#wake?.();
  }

  async #ensureListener(): Promise<void> {
    if (this.#listener) return;
    const c = new pg.Client({ connectionString: this.#o.riskPgUrl });
    c.on('error', (err) => { this.#o.log.warn({ err }, `${this.#o.what} LISTEN connection lost`); this.#listener = null; c.end().catch(() => {}); });
    c.on('notification', () => { this.#woken = true; this.#wake?.(); });
    await c.connect();
    await c.query(`LISTEN ${this.#o.channel}`);
    this.#listener = c;
  }

  async #waitForWork(): Promise<void> {
    if (this.#woken || !this.#state.shouldRun()) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, this.#o.pollMs);
      const self = this;
      function done() { clearTimeout(t); self.#wake = null; resolve(); }
      this.#wake = done;
    });
  }
}
