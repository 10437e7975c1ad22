/**
 * What to do with a webhook endpoint's answer — a pure decision over the status, the attempts made and the clock.
 *
 * - 2xx: delivered.
 * - 408, 429, 5xx, or no answer (refused, reset, timed out): tried again after an exponential backoff with jitter
 *   (`baseMs` doubling up to `maxMs`; a Retry-After longer than that is honoured up to `maxMs`), for as long as the
 *   first attempt is less than `retryForMs` ago; after that the event is failed (dead-lettered).
 * - anything else (3xx, 4xx): the endpoint refused this event; failed at once, never retried by itself.
 *
 * The default schedule (1 s doubling to 5 min, for 24 h) rides out an endpoint down for an hour with about twenty
 * attempts, and reaches it within 5 minutes of its return.
 */
import { backoffMs } from '../../lib/service.ts';
import { parseRetryAfter } from '../outbox/http.ts';

export interface RetrySchedule { baseMs: number; maxMs: number; retryForMs: number }

export type WebhookDecision =
  | { kind: 'delivered' }
  | { kind: 'retry'; delayMs: number; reason: string }
  | { kind: 'failed'; reason: string };

const human = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : ms < 7_200_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`);

/**
 * @param status HTTP status, or null when no answer came
 * @param attempts attempts made, this one included
 * @param firstAttemptAt when the first attempt was made (this one when it is the first)
 */
export function decideDelivery(
  a: { status: number | null; retryAfter: string | null; body: string }, attempts: number, firstAttemptAt: number, now: number,
  s: RetrySchedule, random: () => number = Math.random,
): WebhookDecision {
  const { status } = a;
  if (status !== null && status >= 200 && status < 300) return { kind: 'delivered' };
  const what = status === null ? `no answer: ${a.body}` : `HTTP ${status}${a.body ? `: ${a.body.slice(0, 200)}` : ''}`;
  const retryable = status === null || status === 408 || status === 429 || status >= 500;
  if (!retryable) return { kind: 'failed', reason: `${what} (the endpoint refused the event: not retried)` };
  let delayMs = backoffMs(attempts - 1, s.baseMs, s.maxMs, random);
  if (a.retryAfter !== null) delayMs = Math.max(delayMs, Math.min(s.maxMs, parseRetryAfter(a.retryAfter, now)));
  if (now + delayMs - firstAttemptAt > s.retryForMs) {
    return { kind: 'failed', reason: `${what} (gave up after ${attempts} attempts over ${human(now - firstAttemptAt)})` };
  }
  return { kind: 'retry', delayMs, reason: what };
}
