/**
 * A webhook deliverer: drains one channel of the webhook outbox (`action`: payout holds and releases to the
 * settlement system; `alert`: alert transitions) to its endpoint, signed (lib/webhook.ts).
 *
 * Each round claims the due rows that head their key's queue (alerting/risk-store/webhooks.ts: a merchant's release
 * never overtakes its hold), up to `batch` of them, POSTs them concurrently, and records every outcome in the
 * claiming transaction right after the answers. The loop, its wake-ups and its backoff are the outbox loop's
 * (alerting/outbox/loop.ts), shared with the Slack sender.
 *
 * Delivery is at-least-once with the same event id on every try: a row leaves 'pending' only in the COMMIT after a
 * 2xx, so a crash (kill -9) between the endpoint's answer and that COMMIT sends it again after a restart, with the same
 * `idempotency-key`, and the receiver dedupes. Nothing is held in memory between rounds: while the endpoint is down
 * the rows wait in the table with their next attempt time (policy.ts), and each round holds at most `batch` of them.
 */
import type pg from 'pg';
import { systemClock, type Clock } from '../../lib/clock.ts';
import type { Logger } from '../../lib/logger.ts';
import { inTransaction } from '../../lib/pg.ts';
import type { Service } from '../../lib/service.ts';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signatureHeader } from '../../lib/webhook.ts';
import * as metrics from '../metrics.ts';
import { postJson } from '../outbox/http.ts';
import { OutboxLoop } from '../outbox/loop.ts';
import {
  claimDueWebhooks, recordWebhookOutcome, WEBHOOKS_CHANNEL, type DueWebhook, type WebhookChannel, type WebhookOutcome,
} from '../risk-store/index.ts';
import { decideDelivery, type RetrySchedule, type WebhookDecision } from './policy.ts';

export interface DelivererOptions {
  channel: WebhookChannel;
  url: string;
  /** the current secret first, then the previous one during a rotation: one v1= signature each */
  secrets: string[];
  timeoutMs: number;
  schedule: RetrySchedule;
  /** at most this many events in flight per round */
  batch: number;
  /** fallback poll (rows whose retry time has come) */
  pollMs?: number;
}

export class WebhookDeliverer implements Service {
  readonly name: string;
  readonly #o: Required<DelivererOptions>;
  readonly #db: pg.Pool;
  readonly #log: Logger;
  readonly #now: Clock;
  readonly #loop: OutboxLoop;

  constructor(opts: DelivererOptions, deps: { db: pg.Pool; riskPgUrl: string; log: Logger; now?: Clock }) {
    if (!opts.secrets.filter(Boolean).length) throw new Error(`the ${opts.channel} webhook needs a secret to sign with`);
    this.#o = { pollMs: 1000, ...opts, secrets: opts.secrets.filter(Boolean) };
    this.name = `alerting-webhooks-${opts.channel}`;
    this.#db = deps.db;
    this.#log = deps.log;
    this.#now = deps.now ?? systemClock;
    this.#loop = new OutboxLoop({ channel: WEBHOOKS_CHANNEL, riskPgUrl: deps.riskPgUrl, pollMs: this.#o.pollMs, log: deps.log, what: `${opts.channel} webhook deliverer` });
  }

  run(): Promise<void> {
    return this.#loop.run(() => this.deliverOnce());
  }

  async stop(): Promise<void> {
    this.#loop.stop();
  }

  /** One round: claim the due heads, send them, record. False when nothing was due. */
  async deliverOnce(): Promise<boolean> {
    const done = await inTransaction(this.#db, async (client) => {
      const rows = await claimDueWebhooks(client, this.#o.channel, this.#now(), this.#o.batch);
      if (!rows.length) return null;
      const results = await Promise.all(rows.map((r) => this.#attempt(r)));
      for (const { row, at, outcome } of results) await recordWebhookOutcome(client, row.rowId, at, outcome);
      return results;
    });
    if (!done) return false;
    for (const { row, decision } of done) this.#report(row, decision);
    return true;
  }

  async #attempt(row: DueWebhook): Promise<{ row: DueWebhook; at: number; decision: WebhookDecision; outcome: WebhookOutcome }> {
    const t = Math.floor(this.#now() / 1000);
    const answer = await postJson(this.#o.url, row.body, {
      [SIGNATURE_HEADER]: signatureHeader(this.#o.secrets, t, row.body),
      [IDEMPOTENCY_HEADER]: row.eventId,
      'user-agent': 'riskmon-webhooks/1',
    }, this.#o.timeoutMs);
    const at = this.#now();
    const decision = decideDelivery(answer, row.attempts + 1, row.firstAttemptAt ?? at, at, this.#o.schedule);
    const outcome: WebhookOutcome = {
      status: decision.kind === 'delivered' ? 'delivered' : decision.kind === 'failed' ? 'failed' : 'pending',
      httpStatus: answer.status,
      nextAttemptAt: decision.kind === 'retry' ? at + decision.delayMs : null,
      reason: decision.kind === 'delivered' ? null : decision.reason,
    };
    return { row, at, decision, outcome };
  }

  #report(row: DueWebhook, d: WebhookDecision): void {
    metrics.webhookAttempts.inc({ channel: this.#o.channel, result: d.kind });
    const ctx = { event: row.eventId, type: row.type, attempt: row.attempts + 1 };
    if (d.kind === 'retry') this.#log.warn({ ...ctx, reason: d.reason, retryInMs: d.delayMs }, 'webhook not delivered: will retry');
    else if (d.kind === 'failed') this.#log.error({ ...ctx, reason: d.reason }, 'webhook failed: dead-lettered (riskmon webhooks, docs/operations.md)');
    else this.#log.info(ctx, 'webhook delivered');
  }
}
