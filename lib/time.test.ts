import { describe, expect, it } from 'vitest';
import { dayKey, dayStart, minuteStart, tzOffsetMs } from './time.ts';

describe('time', () => {
  it('buckets a timestamp into its minute (17:01:00–17:01:59)', () => {
    expect(minuteStart(Date.parse('2026-11-21T08:01:59.999Z'))).toBe(Date.parse('2026-11-21T08:01:00Z'));
    expect(minuteStart(Date.parse('2026-11-21T08:01:00.000Z'))).toBe(Date.parse('2026-11-21T08:01:00Z'));
  });
  it('starts a Seoul day at 15:00 UTC of the day before', () => {
    expect(tzOffsetMs(Date.parse('2026-11-21T00:00:00Z'), 'Asia/Seoul')).toBe(9 * 3600_000);
    expect(dayStart(Date.parse('2026-11-21T14:59:59Z'), 'Asia/Seoul')).toBe(Date.parse('2026-11-20T15:00:00Z'));
    expect(dayStart(Date.parse('2026-11-21T15:00:00Z'), 'Asia/Seoul')).toBe(Date.parse('2026-11-21T15:00:00Z'));
    expect(dayKey(Date.parse('2026-11-21T15:00:00Z'), 'Asia/Seoul')).toBe('2026-11-22');
    expect(dayKey(Date.parse('2026-11-21T14:59:00Z'), 'Asia/Seoul')).toBe('2026-11-21');
  });
  it('handles a zone with daylight saving time', () => {
    // New York, day of the spring-forward change: the day starts at 05:00 UTC (EST), not 04:00.
    expect(dayStart(Date.parse('2026-03-08T20:00:00Z'), 'America/New_York')).toBe(Date.parse('2026-03-08T05:00:00Z'));
    expect(dayStart(Date.parse('2026-03-09T20:00:00Z'), 'America/New_York')).toBe(Date.parse('2026-03-09T04:00:00Z'));
  });
});
