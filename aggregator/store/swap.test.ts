/** The keys a range swap touches (swap.ts rangeKeys) and whether the evaluator judges meanwhile (pure). */
import { describe, expect, it } from 'vitest';
import { DAY, HOUR } from '../../lib/time.ts';
import { backfillBlocksJudging, rangeOf, type BackfillRecord } from './backfill.ts';
import { DayClock, retentionOf } from './layout.ts';
import { rangeKeys, type SwapRange } from './swap.ts';

const clock = new DayClock('UTC');
const now = Date.parse('2026-12-07T10:00:00Z');
const swapRange = (fromMs: number, toMs: number | null, payouts = false): SwapRange => ({
  ...rangeOf(fromMs, toMs, clock), clock, retention: retentionOf({ minuteTtlDays: 8, hourTtlDays: 35, dayTtlDays: 400 }), now,
  untilMs: now + 2 * DAY, windowMinutes: 60, payouts,
});

describe('range swap keys', () => {
  it('a bounded range: its days\' minute keys whole, the hour block it lies in clipped to its hours, the day block clipped', () => {
    const r = swapRange(Date.parse('2026-12-03T05:00:00Z'), Date.parse('2026-12-04T05:00:00Z')); // local days 12-03 and 12-04
    const ks = rangeKeys('P', 3, 'S-1', r);
    const minute = ks.filter(([k]) => k.includes(':m:'));
    const d0 = Math.round(Date.parse('2026-12-03T00:00:00Z') / DAY);
    expect(minute.map(([k]) => k)).toEqual([0, 1, 2, 3].map((q) => `P:{p3}:m:S-1:${d0}:${q}`).concat([0, 1, 2, 3].map((q) => `P:{p3}:m:S-1:${d0 + 1}:${q}`)));
    expect(minute.every(([live, aside, mode]) => aside === live.replace('P:{p3}', 'P:bf:{p3}') && mode === 'w')).toBe(true);
    const h0 = Date.parse('2026-12-03T00:00:00Z') / HOUR;
    const hour = ks.filter(([k]) => k.includes(':h:'));
    expect(hour).toEqual([[`P:{p3}:h:S-1:${Math.floor(h0 / 120)}`, `P:bf:{p3}:h:S-1:${Math.floor(h0 / 120)}`, 'c', (h0 % 120) * 4, (h0 % 120 + 48) * 4]]);
    const day = ks.filter(([k]) => k.includes(':d:'));
    expect(day).toEqual([[`P:{p3}:d:S-1:${Math.floor(d0 / 100)}`, `P:bf:{p3}:d:S-1:${Math.floor(d0 / 100)}`, 'c', (d0 % 100) * 4, (d0 % 100 + 2) * 4]]);
    expect(ks.some(([k]) => k.includes(':po:'))).toBe(false);
  });

  it('without an end: every block to its end is whole, up to the latest instant a fact can lie at; minute keys only within their TTL; payouts whole', () => {
    const r = swapRange(now - 20 * DAY, null, true);
    const ks = rangeKeys('P', 0, '7', r);
    const days = ks.filter(([k]) => k.includes(':m:')).map(([k]) => Number(k.split(':')[4]));
    expect(Math.min(...days)).toBe(Math.round(Date.parse('2026-11-27T00:00:00Z') / DAY)); // now − 8 days TTL − 2
    expect(Math.max(...days)).toBe(Math.round(Date.parse('2026-12-09T00:00:00Z') / DAY)); // untilMs
    const hours = ks.filter(([k]) => k.includes(':h:'));
    expect(hours[hours.length - 1][2]).toBe('w');
    expect(ks.filter(([k]) => k.includes(':po:')).every(([, , m]) => m === 'w')).toBe(true);
    expect(ks.filter(([k]) => k.includes(':po:')).length).toBeGreaterThanOrEqual(6);
  });

  it('judging: stopped while the live buckets are written (first start, swap), on while a range is rebuilt aside', () => {
    const base = { id: 'x', slot: null, from: '', to: null, consistentPoint: null, startedAt: '', finishedAt: null, rows: 0, chunksDone: 0, chunks: 1, topicChanges: 0, rowsPerSecond: null };
    const rec = (r: Partial<BackfillRecord>): BackfillRecord => ({ ...base, state: 'running', kind: 'range', ...r });
    expect(backfillBlocksJudging(rec({ kind: 'initial' }))).toBe(true);
    expect(backfillBlocksJudging(rec({ aside: true, swapping: false }))).toBe(false);
    expect(backfillBlocksJudging(rec({ aside: true, swapping: true }))).toBe(true);
    expect(backfillBlocksJudging(rec({ state: 'done', aside: true }))).toBe(false);
    expect(backfillBlocksJudging(null)).toBe(false);
  });
});
