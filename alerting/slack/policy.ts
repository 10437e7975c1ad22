/**
 * What to do with a Slack webhook response (https://api.slack.com/messaging/webhooks#handling_errors,
 * https://api.slack.com/docs/rate-limits): 2xx sent; 429 wait for Retry-After, then try again (not counted as a
 * failure); 5xx or a network error retried with backoff and jitter up to a maximum of attempts; any other 4xx is
 * a permanent error (bad URL, revoked webhook, invalid payload): failed, never retried.
 */
import { backoffMs } from '../../lib/service.ts';
import { parseRetryAfter } from '../outbox/http.ts';

export { parseRetryAfter };

export type Outcome =
  | { kind: 'sent' }
  | { kind: 'rate_limited'; retryAfterMs: number }
  | { kind: 'retry'; delayMs: number; reason: string }
  | { kind: 'failed'; reason: string };

/**
 * @param status HTTP status, or null for a network error/timeout
 * @param attempts attempts made including this one
 */
export function classify(
  status: number | null, retryAfter: string | null, body: string, attempts: number, maxAttempts: number,
  now: number, random: () => number = Math.random,
): Outcome {
  if (status !== null && status >= 200 && status < 300) return { kind: 'sent' };
  if (status === 429) return { kind: 'rate_limited', retryAfterMs: parseRetryAfter(retryAfter, now) };
  const what = status === null ? `network error: ${body}` : `HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`;
  if (status !== null && status < 500) return { kind: 'failed', reason: what };
  if (attempts >= maxAttempts) return { kind: 'failed', reason: `${what} (gave up after ${attempts} attempts)` };
  return { kind: 'retry', delayMs: backoffMs(attempts - 1, 1000, 60_000, random), reason: what };
}
