import { describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE } from '../../lib/time.ts';
import { DAY_BLOCK, DayClock, HOUR_BLOCK, keys, QUARTER_MINUTES } from './layout.ts';
import { finestSegments, keyReads, slotTimeOf, tierSegments, type RangeContext } from './ranges.ts';
import { accumulate, addWindowHash, visitBucketReplies } from './read.ts';
import type { Step } from './reader.ts';

const clock = new DayClock('Asia/Seoul'); // local midnight = 15:00 UTC
const ctx: RangeContext = { prefix: 'rm', clock, startOfLocalDay: (n) => clock.startOfLocalDay(n) };
const at = (s: string) => Date.parse(s);

/** Every bucket start the reads cover, in order. */
function covered(from: number, to: number, step: Step): number[] {
  const time = slotTimeOf(step, ctx.startOfLocalDay);
  return keyReads(ctx, 3, '42', from, to, step).flatMap((r) => Array.from({ length: r.hi - r.lo + 1 }, (_, i) => time(r.base, r.lo + i)));
}

/** The bucket starts in [from, to) at a fixed step, by brute force. */
function expected(from: number, to: number, size: number): number[] {
  const out: number[] = [];
  for (let t = Math.ceil(from / size) * size; t < to; t += size) out.push(t);
  return out;
}

describe('key ranges of a read', () => {
  it('1m: one quarter key with the slots of a short range', () => {
    const from = at('2026-11-21T16:40:00Z'); // local 01:40, quarter 0
    const reads = keyReads(ctx, 3, '42', from, from + 20 * MINUTE, '1m');
    expect(reads).toEqual([{ m: '42', key: keys.minute('rm', 3, '42', clock.localDay(from), 0), lo: 100, hi: 119, base: at('2026-11-21T15:00:00Z') }]);
  });

  it('1m: across quarters and a local midnight, every minute exactly once, none outside', () => {
    const from = at('2026-11-21T14:17:30Z'); // unaligned, 43 minutes before local midnight
    const to = at('2026-11-21T21:05:00Z');
    const reads = keyReads(ctx, 0, '42', from, to, '1m');
    expect(reads.map((r) => r.key)).toEqual([
      keys.minute('rm', 0, '42', clock.localDay(from), 3),
      keys.minute('rm', 0, '42', clock.localDay(to), 0),
      keys.minute('rm', 0, '42', clock.localDay(to), 1),
    ]);
    for (const r of reads) expect(r.hi - r.lo).toBeLessThan(QUARTER_MINUTES);
    expect(covered(from, to, '1m')).toEqual(expected(from, to, MINUTE));
  });

  it('1h: hours starting inside the range, split at a 120-hour block', () => {
    const blockEdge = Math.ceil(Date.parse('2026-11-21T00:00:00Z') / (HOUR_BLOCK * HOUR)) * HOUR_BLOCK * HOUR;
    const from = blockEdge - 5 * HOUR - 1;
    const to = blockEdge + 3 * HOUR + 1;
    const reads = keyReads(ctx, 0, '42', from, to, '1h');
    expect(reads).toHaveLength(2);
    expect(reads[0]).toMatchObject({ lo: HOUR_BLOCK - 5, hi: HOUR_BLOCK - 1 });
    expect(reads[1]).toMatchObject({ lo: 0, hi: 3 });
    expect(covered(from, to, '1h')).toEqual(expected(from, to, HOUR));
  });

  it('1d: local days starting inside the range, across a 100-day block', () => {
    const n = Math.ceil(clock.localDay(Date.parse('2026-11-21T00:00:00Z')) / DAY_BLOCK) * DAY_BLOCK; // first day of a block
    const from = clock.startOfLocalDay(n - 2) + 1; // just after a local midnight: that day is not whole
    const to = clock.startOfLocalDay(n + 2);
    const reads = keyReads(ctx, 0, '42', from, to, '1d');
    expect(reads.map((r) => r.key)).toEqual([keys.day('rm', 0, '42', n / DAY_BLOCK - 1), keys.day('rm', 0, '42', n / DAY_BLOCK)]);
    expect(covered(from, to, '1d')).toEqual([n - 1, n, n + 1].map((d) => clock.startOfLocalDay(d)));
    expect(covered(from, to, '1d').every((t) => (t - at('2026-01-01T15:00:00Z')) % DAY === 0)).toBe(true);
  });

  it('an empty or inverted range reads nothing', () => {
    const t = at('2026-11-21T16:40:00Z');
    for (const step of ['1m', '1h', '1d'] as const) {
      expect(keyReads(ctx, 0, '42', t, t, step)).toEqual([]);
      expect(keyReads(ctx, 0, '42', t + HOUR, t, step)).toEqual([]);
    }
  });
});

describe('decoding replies of a read', () => {

  it('keeps only the bucket fields whose bucket starts inside [from, to), summed per merchant', () => {
    const from = at('2026-11-21T16:40:00Z');
    const reads = keyReads(ctx, 0, '42', from, from + 2 * MINUTE, '1m');
    const slot = reads[0].lo; // 16:40 local-day minute
    const reply = [`${slot * 4}\u00003\u0000${slot * 4 + 1}\u0000900\u0000${(slot + 1) * 4 + 2}\u00001\u0000${(slot + 2) * 4}\u00007`];
    const out = new Map();
    visitBucketReplies(reply, reads, slotTimeOf('1m', ctx.startOfLocalDay), from, from + 2 * MINUTE, accumulate(out));
    expect(out.get('42')).toEqual({ approvals: 3, approvedAmount: 900n, cancels: 1, canceledAmount: 0n }); // slot + 2 is outside
    const none = new Map();
    visitBucketReplies([''], reads, slotTimeOf('1m', ctx.startOfLocalDay), from, from + 2 * MINUTE, accumulate(none));
    expect(none.size).toBe(0);
  });

  it('sums a window-index reply per merchant', () => {
    const out = new Map();
    addWindowHash(out, 'n:7\u00002\u0000a:7\u0000500\u0000c:shop:1\u00001\u0000x:shop:1\u000050');
    addWindowHash(out, 'n:7\u00001');
    addWindowHash(out, '');
    expect(Object.fromEntries(out)).toEqual({
      7: { approvals: 3, approvedAmount: 500n, cancels: 0, canceledAmount: 0n },
      'shop:1': { approvals: 0, approvedAmount: 0n, cancels: 1, canceledAmount: 50n },
    });
  });
});

describe('finestSegments', () => {
  const H = HOUR;
  const now = Date.parse('2026-12-10T03:00:00Z');
  const minuteHorizon = now - 46 * H, hourHorizon = now - 35 * 24 * H;
  it('minutes only when the start is within the minute tier', () => {
    expect(finestSegments(now - 10 * H, now, minuteHorizon, hourHorizon, clock)).toEqual([{ step: '1m', from: now - 10 * H, to: now }]);
  });
  it('whole hours before the minute horizon, then minutes', () => {
    const from = Date.parse('2026-12-07T15:00:00Z');
    expect(finestSegments(from, now, minuteHorizon, hourHorizon, clock)).toEqual([{ step: '1h', from, to: minuteHorizon }, { step: '1m', from: minuteHorizon, to: now }]);
  });
  it('local days before the hour horizon up to the first midnight after it, then hours, then minutes', () => {
    const from = Date.parse('2026-10-01T15:00:00Z');
    const segs = finestSegments(from, now, minuteHorizon, hourHorizon, clock);
    expect(segs.map((s) => s.step)).toEqual(['1d', '1h', '1m']);
    expect(segs[0].from).toBe(from);
    expect(segs[0].to).toBe(clock.dayStart(segs[0].to));
    expect(segs[0].to).toBeGreaterThanOrEqual(hourHorizon);
    expect(segs[0].to - hourHorizon).toBeLessThan(24 * H);
    expect(segs[1]).toEqual({ step: '1h', from: segs[0].to, to: minuteHorizon });
    expect(finestSegments(now, now, minuteHorizon, hourHorizon, clock)).toEqual([]);
  });
});

describe('tierSegments', () => {
  const H = HOUR;
  const now = Date.parse('2026-12-10T03:00:00Z'); // local 12:00; local midnights at 15:00 UTC
  const minuteHorizon = now - 46 * H, hourHorizon = now - 35 * 24 * H;
  const today = Date.parse('2026-12-09T15:00:00Z');
  it('within one local day: the finest tiers', () => {
    expect(tierSegments(now - 10 * H, now, minuteHorizon, hourHorizon, clock)).toEqual([{ step: '1m', from: now - 10 * H, to: now }]);
  });
  it('whole local days from the day tier, today from the minutes', () => {
    const from = Date.parse('2026-12-07T15:00:00Z');
    expect(tierSegments(from, now, minuteHorizon, hourHorizon, clock)).toEqual([{ step: '1d', from, to: today }, { step: '1m', from: today, to: now }]);
    const old = Date.parse('2025-12-01T15:00:00Z');
    expect(tierSegments(old, now, minuteHorizon, hourHorizon, clock)).toEqual([{ step: '1d', from: old, to: today }, { step: '1m', from: today, to: now }]);
  });
  it('a start inside a day: the rest of that day from the finest tier holding it, then days', () => {
    const from = Date.parse('2026-12-08T06:30:00Z'); // local 15:30, within the minute tier
    const midnight = Date.parse('2026-12-08T15:00:00Z');
    expect(tierSegments(from, now, minuteHorizon, hourHorizon, clock)).toEqual([
      { step: '1m', from, to: midnight }, { step: '1d', from: midnight, to: today }, { step: '1m', from: today, to: now }]);
    const hourly = Date.parse('2026-12-01T06:00:00Z'); // within the hour tier, on a whole hour
    expect(tierSegments(hourly, now, minuteHorizon, hourHorizon, clock)).toEqual([
      { step: '1h', from: hourly, to: Date.parse('2026-12-01T15:00:00Z') }, { step: '1d', from: Date.parse('2026-12-01T15:00:00Z'), to: today }, { step: '1m', from: today, to: now }]);
    expect(tierSegments(now, now, minuteHorizon, hourHorizon, clock)).toEqual([]);
  });
});
