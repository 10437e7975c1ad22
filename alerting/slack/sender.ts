/**
 * The Slack sender: drains the `notifications` outbox to one incoming webhook.
 *
 * Each round claims the due pending rows with FOR UPDATE SKIP LOCKED (so two senders never take the same row),
 * sends one message — the oldest row alone, or a digest of all claimed rows when more than `digestOver` are due —
 * and records the outcome in the same transaction, right after the HTTP response.
 *
 * Delivery is at-least-once, with one narrow edge: if the process dies after Slack answered 2xx but before the
 * COMMIT (or a timeout hides a request Slack did receive), the rows are still pending and are sent again after a
 * restart. Slack webhooks take no idempotency key, so this cannot be closed; it is kept small by doing nothing
 * between the response and the COMMIT. A restart never loses a row: rows leave 'pending' only in that COMMIT.
 *
 * Pacing: at most one message per `minIntervalMs`; a 429 pauses the whole sender for Retry-After (the limit is per
 * webhook). The evaluator NOTIFYs `riskmon_notifications` on commit, so a new alert is sent without polling delay.
 */
import type pg from 'pg';
import { systemClock } from '../../lib/clock.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Service } from '../../lib/service.ts';
import { inTransaction } from '../../lib/pg.ts';
import * as metrics from '../metrics.ts';
import { postJson } from '../outbox/http.ts';
import { OutboxLoop } from '../outbox/loop.ts';
import { claimDueNotifications, NOTIFICATIONS_CHANNEL, recordNotificationOutcome } from '../risk-store/index.ts';
import { alertMessage, digestMessage, type NotificationView, type SlackPayload } from './message.ts';
import { classify, type Outcome } from './policy.ts';

export interface SenderOptions {
  webhookUrl: string;
  publicUrl: string;
  minIntervalMs: number;
  digestOver: number;
  maxAttempts: number;
  timeoutMs: number;
  /** Fallback poll when no NOTIFY arrives. */
  pollMs?: number;
  /** At most this many rows in one digest. */
  digestMax?: number;
}

export class SlackSender implements Service {
  readonly name = 'alerting-slack-sender';
  readonly #o: Required<SenderOptions>;
  readonly #db: pg.Pool;
  readonly #log: Logger;
  readonly #loop: OutboxLoop;
  #nextAllowedAt = 0;

  constructor(opts: SenderOptions, deps: { db: pg.Pool; riskPgUrl: string; log: Logger }) {
    this.#o = { pollMs: 1000, digestMax: 20, ...opts };
    this.#db = deps.db;
    this.#log = deps.log;
    this.#loop = new OutboxLoop({ channel: NOTIFICATIONS_CHANNEL, riskPgUrl: deps.riskPgUrl, pollMs: this.#o.pollMs, log: deps.log, what: 'slack sender' });
  }

  run(): Promise<void> {
    return this.#loop.run(() => this.sendOnce(), () => this.#nextAllowedAt - performance.now());
  }

  async stop(): Promise<void> {
    this.#loop.stop();
  }

  /** One round: claim, send one message, record. False when nothing was due. */
  async sendOnce(): Promise<boolean> {
    const done = await inTransaction(this.#db, async (client) => {
      const rows = await claimDueNotifications(client, this.#o.digestMax);
      if (!rows.length) return null;
      const views: NotificationView[] = rows.map(({ attempts: _a, ...view }) => view);
      const batch = views.length > this.#o.digestOver ? views : views.slice(0, 1);
      const attempts = Math.max(...rows.filter((r) => batch.some((b) => b.id === r.id)).map((r) => r.attempts)) + 1;
      const payload = batch.length > 1 ? digestMessage(batch, this.#o.publicUrl) : alertMessage(batch[0], this.#o.publicUrl);
      const outcome = await this.#post(payload, attempts);
      await this.#record(client, batch.map((b) => b.id), outcome);
      return { outcome, n: batch.length };
    });
    if (!done) return false;
    this.#afterOutcome(done.outcome, done.n);
    return true;
  }

  async #post(payload: SlackPayload, attempts: number): Promise<Outcome & { status: number | null }> {
    this.#nextAllowedAt = performance.now() + this.#o.minIntervalMs;
    const a = await postJson(this.#o.webhookUrl, JSON.stringify(payload), {}, this.#o.timeoutMs);
    return { ...classify(a.status, a.retryAfter, a.body, attempts, this.#o.maxAttempts, systemClock()), status: a.status }; // Retry-After may be Slack's clock time
  }

  async #record(client: pg.PoolClient, ids: string[], o: Outcome & { status: number | null }): Promise<void> {
    const status = o.kind === 'sent' ? 'sent' : o.kind === 'failed' ? 'failed' : 'pending';
    // A 429 is Slack's pacing, not a failed attempt: the attempt count stays.
    const counted = o.kind === 'rate_limited' ? 0 : 1;
    const delayMs = o.kind === 'rate_limited' ? o.retryAfterMs : o.kind === 'retry' ? o.delayMs : 0;
    const reason = o.kind === 'retry' || o.kind === 'failed' ? o.reason : o.kind === 'rate_limited' ? 'rate limited (429)' : null;
    await recordNotificationOutcome(client, ids, { status, httpStatus: o.status, counted, delayMs, reason });
  }

  #afterOutcome(o: Outcome, n: number): void {
    metrics.slackMessages.inc({ result: o.kind === 'rate_limited' ? 'rate_limited' : o.kind });
    if (o.kind === 'rate_limited') {
      this.#nextAllowedAt = Math.max(this.#nextAllowedAt, performance.now() + o.retryAfterMs);
      this.#log.warn({ retryAfterMs: o.retryAfterMs, notifications: n }, 'slack rate limited: waiting for Retry-After');
    } else if (o.kind === 'retry') this.#log.warn({ reason: o.reason, retryInMs: o.delayMs, notifications: n }, 'slack request failed: will retry');
    else if (o.kind === 'failed') this.#log.error({ reason: o.reason, notifications: n }, 'slack notification failed permanently');
    else this.#log.debug({ notifications: n }, 'slack message sent');
  }
}
