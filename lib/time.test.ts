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

describe('dayStart across daylight saving time', () => {
  const ny = 'America/New_York';
  it('the 25-hour day a zone falls back: its last hour is still that day', () => {
    const start = Date.parse('2026-11-01T00:00:00-04:00');
    for (const t of ['2026-11-01T00:30:00-04:00', '2026-11-01T01:30:00-04:00', '2026-11-01T01:30:00-05:00', '2026-11-01T23:30:00-05:00']) {
      expect(new Date(dayStart(Date.parse(t), ny)).toISOString()).toBe(new Date(start).toISOString());
    }
    expect(dayStart(Date.parse('2026-11-02T00:00:00-05:00'), ny)).toBe(Date.parse('2026-11-02T00:00:00-05:00'));
  });
  it('the 23-hour day a zone springs forward', () => {
    const start = Date.parse('2026-03-08T00:00:00-05:00');
    for (const t of ['2026-03-08T01:59:00-05:00', '2026-03-08T03:00:00-04:00', '2026-03-08T23:59:00-04:00']) expect(dayStart(Date.parse(t), ny)).toBe(start);
    expect(dayStart(Date.parse('2026-03-09T00:00:00-04:00'), ny)).toBe(Date.parse('2026-03-09T00:00:00-04:00'));
  });
});
