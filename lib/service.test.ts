import { describe, expect, it } from 'vitest';
import { backoffMs, RunState, runSessions } from './service.ts';

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

describe('runSessions', () => {
  it('starts a failed session again after a backoff, until stopped', async () => {
    const state = new RunState();
    const waits: number[] = [];
    let n = 0;
    await runSessions(state, async () => {
      n++;
      if (n === 3) state.stop();
      throw new Error(`lost ${n}`);
    }, { fatal: () => false, onRetry: (_e, ms) => waits.push(ms), baseMs: 1, maxMs: 4 });
    expect(n).toBe(3);
    expect(waits).toHaveLength(2);
    expect(waits.every((w) => w >= 0.5 && w <= 4)).toBe(true);
  });

  it('rethrows a fatal error, passing the attempt number', async () => {
    const attempts: number[] = [];
    const p = runSessions(new RunState(), async () => { throw new Error('config'); },
      { fatal: (_e, attempt) => { attempts.push(attempt); return attempt >= 2; }, onRetry: () => {}, baseMs: 1, maxMs: 1 });
    await expect(p).rejects.toThrow('config');
    expect(attempts).toEqual([0, 1, 2]);
  });

  it('returns when a session ends because of the stop', async () => {
    const state = new RunState();
    let retried = false;
    await runSessions(state, async () => { state.stop(); throw new Error('stopping'); }, { fatal: () => false, onRetry: () => { retried = true; } });
    expect(retried).toBe(false);
  });
});
