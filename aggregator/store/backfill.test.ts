/** The backfill's range arithmetic (store/backfill.ts): whole local days, whole UTC hours, chunks newest first. */
import { describe, expect, it } from 'vitest';
import { HOUR } from '../../lib/time.ts';
import { backfillStatus, chunksOf, rangeOf } from './backfill.ts';
import { DayClock } from './layout.ts';

const iso = (ms: number) => new Date(ms).toISOString();

describe('backfill range', () => {
  it('moves out to local midnights; hours cover them whole, also in a half-hour zone', () => {
    const seoul = rangeOf(Date.parse('2026-12-01T03:20:00Z'), Date.parse('2026-12-03T16:00:00Z'), new DayClock('Asia/Seoul'));
    expect(iso(seoul.from.day)).toBe('2026-11-30T15:00:00.000Z');
    expect(seoul.from.hour).toBe(seoul.from.day);
    expect(iso(seoul.to!.day)).toBe('2026-12-04T15:00:00.000Z');
    const india = rangeOf(Date.parse('2026-12-01T03:20:00Z'), Date.parse('2026-12-01T03:21:00Z'), new DayClock('Asia/Kolkata'));
    expect(iso(india.from.day)).toBe('2026-11-30T18:30:00.000Z');
    expect(iso(india.from.hour)).toBe('2026-11-30T18:00:00.000Z');
    expect(iso(india.to!.day)).toBe('2026-12-01T18:30:00.000Z');
    expect(iso(india.to!.hour)).toBe('2026-12-01T19:00:00.000Z');
    expect(rangeOf(Date.parse('2026-12-01T03:20:00Z'), null, new DayClock('UTC')).to).toBeNull();
    // a `to` on a midnight stays there
    expect(iso(rangeOf(0, Date.parse('2026-12-02T00:00:00Z'), new DayClock('UTC')).to!.day)).toBe('2026-12-02T00:00:00.000Z');
  });

  it('chunks cover the range once, newest first; without an end the newest chunk has none', () => {
    const { from } = rangeOf(Date.parse('2026-12-01T00:00:00Z'), null, new DayClock('UTC'));
    const now = Date.parse('2026-12-03T10:30:00Z');
    const c = chunksOf(from, null, now, 24 * HOUR);
    expect(c[0][1]).toBe(Infinity);
    expect(c[c.length - 1][0]).toBe(from.hour);
    for (let i = 1; i < c.length; i++) expect(c[i][1]).toBe(c[i - 1][0]);
    const bounded = rangeOf(Date.parse('2026-12-01T00:00:00Z'), Date.parse('2026-12-02T05:00:00Z'), new DayClock('UTC'));
    const b = chunksOf(bounded.from, bounded.to, now, 6 * HOUR);
    expect(b.map(([x, y]) => (y - x) / HOUR)).toEqual([6, 6, 6, 6, 6, 6, 6, 6]);
    expect(b[0][1]).toBe(bounded.to!.hour);
  });

  it('status: none without a record, progress from the chunks', () => {
    expect(backfillStatus(null)).toEqual({ state: 'none' });
    const r = { state: 'running', kind: 'initial', id: 'x', slot: 's', from: '', to: null, consistentPoint: null, startedAt: '', finishedAt: null, rows: 0, chunksDone: 1, chunks: 4, topicChanges: 0, rowsPerSecond: null } as const;
    expect(backfillStatus(r).state === 'running' && (backfillStatus(r) as { progress: number }).progress).toBe(0.25);
    expect((backfillStatus({ ...r, state: 'done' }) as { progress: number }).progress).toBe(1);
  });
});
