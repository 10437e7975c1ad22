import { afterEach, describe, expect, it } from 'vitest';
import { originalSchedule, RequestQueueClass, scheduleOnlyWhilePending } from './request-queue-fix.ts';

/** A bare queue of kafkajs' shape, idle: nothing pending, never throttled; counts how often it checks its queue. */
function idleQueue() {
  const q = Object.create(RequestQueueClass.prototype) as { pending: unknown[]; throttledUntil: number; throttleCheckTimeoutId: NodeJS.Timeout | null; checks: number; checkPendingRequests(): void; scheduleCheckPendingRequests(): void };
  Object.assign(q, { pending: [], throttledUntil: -1, throttleCheckTimeoutId: null, checks: 0 });
  q.checkPendingRequests = function () { this.checks += 1; this.scheduleCheckPendingRequests(); };
  return q;
}
const queues: ReturnType<typeof idleQueue>[] = [];
afterEach(() => { for (const q of queues.splice(0)) clearTimeout(q.throttleCheckTimeoutId ?? undefined); });

async function checksWhileIdle(schedule: () => void, ms: number): Promise<number> {
  const q = idleQueue();
  queues.push(q);
  q.scheduleCheckPendingRequests = schedule;
  q.checkPendingRequests();
  await new Promise((r) => setTimeout(r, ms));
  return q.checks;
}

describe("kafkajs' request queue", () => {
  it('is patched on import', () => {
    expect(RequestQueueClass.prototype.scheduleCheckPendingRequests).toBe(scheduleOnlyWhilePending);
  });

  it('no longer wakes up while idle; the original re-armed itself every millisecond', async () => {
    const before = await checksWhileIdle(originalSchedule, 200);
    const after = await checksWhileIdle(scheduleOnlyWhilePending, 200);
    expect(before).toBeGreaterThan(20);
    expect(after).toBe(1); // the first, explicit check only
  });

  it('still checks again while requests wait, at the end of a throttle', async () => {
    const q = idleQueue();
    queues.push(q);
    q.scheduleCheckPendingRequests = scheduleOnlyWhilePending;
    q.pending.push({});
    q.throttledUntil = Date.now() + 30;
    q.checkPendingRequests();
    expect(q.throttleCheckTimeoutId).not.toBeNull();
    await new Promise((r) => setTimeout(r, 80));
    expect(q.checks).toBeGreaterThanOrEqual(2);
  });
});
