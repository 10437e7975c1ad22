/**
 * kafkajs 2.2.4 (its last release) re-arms a timer after every check of a connection's pending-request queue, even
 * when nothing is pending and nothing is throttled: the delay is then `throttledUntil - now`, negative, so the timer
 * fires after 1 ms and re-arms itself — about a thousand wake-ups a second for every open broker connection of an
 * idle client, which Node 24 also reports once per process as a `TimeoutNegativeWarning` on stderr. A request that
 * joins the queue, and every in-flight request that completes, check the queue themselves, so a timer is only needed
 * while requests wait: this replaces the method with one that arms it only then (at the throttle's end, or after the
 * library's own 10 ms when the connection is at its in-flight limit).
 *
 * Applied once, on import, by client.ts; `checksWhileIdle` in request-queue-fix.test.ts measures the loop it removes.
 */
import { createRequire } from 'node:module';

const CHECK_PENDING_REQUESTS_INTERVAL = 10; // kafkajs' own constant

interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs' RequestQueue class (CommonJS, not part of its public exports). */
export const RequestQueueClass: { prototype: RequestQueue } = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js');

export const originalSchedule = RequestQueueClass.prototype.scheduleCheckPendingRequests;

export function scheduleOnlyWhilePending(this: RequestQueue): void {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
  const throttled = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, throttled > 0 ? throttled : CHECK_PENDING_REQUESTS_INTERVAL);
}

RequestQueueClass.prototype.scheduleCheckPendingRequests = scheduleOnlyWhilePending;
