import { describe, expect, it } from 'vitest';
import { backoffMs, RunState } from './service.ts';

describe('backoffMs', () => {
  it('grows exponentially with jitter inside [ceiling/2, ceiling] and caps', () => {
    expect(backoffMs(0, 200, 30_000, () => 0)).toBe(100);
    expect(backoffMs(0, 200, 30_000, () => 1)).toBe(200);
    expect(backoffMs(3, 200, 30_000, () => 1)).toBe(1600);
    expect(backoffMs(20, 200, 30_000, () => 1)).toBe(30_000);
  });
});

describe('RunState', () => {
  it('wakes a sleeper when stopped', async () => {
    const s = new RunState();
    const slept = s.sleep(60_000);
    s.stop();
    await slept;
    expect(s.shouldRun()).toBe(false);
  });
});
