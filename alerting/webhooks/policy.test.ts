import { describe, expect, it } from 'vitest';
import { decideDelivery, type RetrySchedule } from './policy.ts';

const S: RetrySchedule = { baseMs: 1000, maxMs: 300_000, retryForMs: 86_400_000 };
const T0 = Date.parse('2026-03-01T00:00:00Z');
const answer = (status: number | null, retryAfter: string | null = null, body = '') => ({ status, retryAfter, body });
const top = () => 1; // backoff at its ceiling

describe('webhook delivery decisions', () => {
  it('2xx is delivered', () => {
    for (const s of [200, 201, 202, 204]) expect(decideDelivery(answer(s), 1, T0, T0, S)).toEqual({ kind: 'delivered' });
  });

  it('408, 429, 5xx and no answer are retried with a doubling delay capped at maxMs', () => {
    const delays = [1, 2, 3, 4, 5, 12].map((n) => {
      const d = decideDelivery(answer(503, null, 'busy'), n, T0, T0, S, top);
      if (d.kind !== 'retry') throw new Error(d.kind);
      return d.delayMs;
    });
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 300_000]);
    for (const a of [answer(408), answer(429), answer(500), answer(null, null, 'ECONNREFUSED')]) expect(decideDelivery(a, 1, T0, T0, S).kind).toBe('retry');
    expect(decideDelivery(answer(null, null, 'ECONNREFUSED'), 1, T0, T0, S)).toMatchObject({ reason: 'no answer: ECONNREFUSED' });
  });

  it('a Retry-After longer than the backoff is honoured, up to maxMs', () => {
    expect(decideDelivery(answer(429, '30'), 1, T0, T0, S, top)).toMatchObject({ kind: 'retry', delayMs: 30_000 });
    expect(decideDelivery(answer(503, '86400'), 1, T0, T0, S, top)).toMatchObject({ kind: 'retry', delayMs: 300_000 });
  });

  it('other answers (4xx, 3xx) fail at once: the endpoint refused the event', () => {
    for (const s of [400, 401, 403, 404, 409, 422, 301]) {
      expect(decideDelivery(answer(s, null, 'nope'), 1, T0, T0, S)).toEqual({ kind: 'failed', reason: `HTTP ${s}: nope (the endpoint refused the event: not retried)` });
    }
  });

  it('the schedule is bounded: an endpoint down for an hour keeps its events pending; past retryForMs they fail', () => {
    // down for an hour, at the ceiling of every backoff: attempts needed to span it, and still retrying
    let at = T0, n = 0;
    while (at - T0 < 3_600_000) {
      const d = decideDelivery(answer(null, null, 'ECONNREFUSED'), ++n, T0, at, S, top);
      expect(d.kind).toBe('retry');
      if (d.kind === 'retry') at += d.delayMs;
    }
    expect(n).toBeLessThan(25);
    const late = decideDelivery(answer(503), 300, T0, T0 + S.retryForMs - 1000, S, top);
    expect(late).toMatchObject({ kind: 'failed', reason: expect.stringMatching(/^HTTP 503 \(gave up after 300 attempts over 24\.0 h\)$/) });
  });
});
