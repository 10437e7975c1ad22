import { describe, expect, it } from 'vitest';
import { lastClosedMinute, nextPollMs } from './closed.ts';

const M = Date.UTC(2026, 10, 28, 9, 0);
const MIN = 60_000;

describe('nextPollMs', () => {
  it('polls at the poll interval while the next close is far, finely when it is within two polls', () => {
    // evaluated M; M + 1:00 closes when the watermark reaches M + 2:00 + 5 s
    const closesAt = M + 2 * MIN + 5000;
    expect(nextPollMs(closesAt - 10_000, M, 5000, 100, 5)).toBe(100);
    expect(nextPollMs(closesAt - 201, M, 5000, 100, 5)).toBe(100);
    expect(nextPollMs(closesAt - 200, M, 5000, 100, 5)).toBe(5);
    expect(nextPollMs(closesAt - 1, M, 5000, 100, 5)).toBe(5);
    expect(lastClosedMinute(closesAt, 5000)).toBe(M + MIN);
  });

  it('keeps the poll interval with no watermark or no progress yet, and never polls slower than asked', () => {
    expect(nextPollMs(null, M, 5000, 100, 5)).toBe(100);
    expect(nextPollMs(M, null, 5000, 100, 5)).toBe(100);
    expect(nextPollMs(M + 2 * MIN, M, 5000, 3, 5)).toBe(3);
  });
});
