import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.ts';
import { MAX_POINTS, parseInstant, seriesRange } from './range.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';

const TZ = 'Asia/Seoul';
const err = (fn: () => unknown): ApiError => { try { fn(); } catch (e) { return e as ApiError; } throw new Error('no error'); };

describe('seriesRange', () => {
  it('aligns minutes and hours to bucket starts', () => {
    const r = seriesRange({ from: '2026-11-21T07:59:30Z', to: '2026-11-21T08:01:10Z', step: '1m' }, TZ);
    expect(new Date(r.fromMs).toISOString()).toBe('2026-11-21T07:59:00.000Z');
    expect(new Date(r.toMs).toISOString()).toBe('2026-11-21T08:02:00.000Z');
    const h = seriesRange({ from: '2026-11-21T07:10:00Z', to: '2026-11-21T09:00:00Z', step: '1h' }, TZ);
    expect([h.fromMs, h.toMs].map((x) => new Date(x).toISOString())).toEqual(['2026-11-21T07:00:00.000Z', '2026-11-21T09:00:00.000Z']);
  });

  it('aligns days to local midnight in the zone', () => {
    const r = seriesRange({ from: '2026-11-21T10:00:00Z', to: '2026-11-22T10:00:00Z', step: '1d' }, TZ);
    // 2026-11-21T10:00Z is 19:00 in Seoul; that day starts at 2026-11-20T15:00Z.
    expect(new Date(r.fromMs).toISOString()).toBe('2026-11-20T15:00:00.000Z');
    expect(new Date(r.toMs).toISOString()).toBe('2026-11-22T15:00:00.000Z');
  });

  it('refuses too many points and names the step to use', () => {
    const e = err(() => seriesRange({ from: '2026-11-14T00:00:00Z', to: '2026-11-21T00:00:00Z', step: '1m' }, TZ));
    expect(e.field).toBe('step');
    expect(e.message).toContain('step=1h');
    expect(e.message).toContain(String(MAX_POINTS));
    expect(seriesRange({ from: '2026-11-20T00:00:00Z', to: '2026-11-21T00:00:00Z', step: '1m' }, TZ).toMs).toBeGreaterThan(0);
  });

  it('names the bad field', () => {
    expect(err(() => seriesRange({ from: 'yesterday', to: '2026-11-21T00:00:00Z', step: '1m' }, TZ)).field).toBe('from');
    expect(err(() => seriesRange({ from: '2026-11-21T00:00:00Z', to: '2026-11-20T00:00:00Z', step: '1m' }, TZ)).field).toBe('to');
    expect(err(() => parseInstant('from', '2026-11-21T00:00:00')).field).toBe('from'); // no zone
  });
});

describe('cursor', () => {
  it('round-trips and rejects garbage', () => {
    const k = { firedAt: '2026-11-21 08:00:00.123456+00', id: '42' };
    expect(decodeCursor(encodeCursor(k))).toEqual(k);
    expect(err(() => decodeCursor('nope')).field).toBe('cursor');
    expect(err(() => decodeCursor(Buffer.from('[1,2]').toString('base64url'))).field).toBe('cursor');
  });
});
