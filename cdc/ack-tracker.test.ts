import { describe, expect, it } from 'vitest';
import { AckTracker } from './ack-tracker.ts';

describe('AckTracker', () => {
  it('confirms only the done prefix, in order', () => {
    const t = new AckTracker(10n);
    const a = t.begin(0), b = t.begin(0);
    t.sent(a); t.sent(a); t.sent(b);
    t.commit(a, 20n);
    t.commit(b, 30n);
    expect(t.acked(b)).toEqual([]); // b done but a is not: nothing confirmable
    expect(t.confirmed).toBe(10n);
    t.acked(a);
    expect(t.confirmed).toBe(10n);
    expect(t.acked(a)).toEqual([a, b]);
    expect(t.confirmed).toBe(30n);
    expect(t.idle()).toBe(true);
  });

  it('does not confirm a transaction acknowledged before its commit arrived (streamed big transaction)', () => {
    const t = new AckTracker(0n);
    const a = t.begin(0);
    t.sent(a);
    t.acked(a);
    expect(t.confirmed).toBe(0n);
    t.commit(a, 5n);
    expect(t.confirmed).toBe(5n);
  });

  it('advances on keepalives only while idle', () => {
    const t = new AckTracker(0n);
    const a = t.begin(0);
    expect(t.idleAdvance(100n)).toBe(false);
    t.commit(a, 50n);
    expect(t.idleAdvance(100n)).toBe(true);
    expect(t.confirmed).toBe(100n);
    expect(t.idleAdvance(90n)).toBe(false);
  });
});
