/**
 * Pure checks and alignment of a series request: the range is aligned to whole buckets (hours in UTC, days in the
 * configured zone) and refused when it would return more than MAX_POINTS buckets, with the step to use instead.
 */
import { STEP_MS, type Step } from '../aggregator/store/index.ts';
import { dayStart, DAY } from '../lib/time.ts';
import { badRequest } from './errors.ts';

export const MAX_POINTS = 1440;
export const STEPS: readonly Step[] = ['1m', '1h', '1d'];

export function parseInstant(field: string, raw: string): number {
  // ISO-8601 with a date and, if a time is given, a zone (Z or ±hh:mm): a zoneless time would be read in the
  // server's zone, which is a silent surprise.
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(raw)) {
    throw badRequest(field, `${field} must be an ISO-8601 time with a zone, e.g. 2026-11-21T08:00:00Z (got "${raw}")`);
  }
  const ms = Date.parse(raw);
  if (!Number.isFinite(ms)) throw badRequest(field, `${field} is not a valid time: "${raw}"`);
  return ms;
}

export function floorTo(ms: number, step: Step, tz: string): number {
  return step === '1d' ? dayStart(ms, tz) : Math.floor(ms / STEP_MS[step]) * STEP_MS[step];
}

export function ceilTo(ms: number, step: Step, tz: string): number {
  const f = floorTo(ms, step, tz);
  if (f === ms) return ms;
  return step === '1d' ? dayStart(f + DAY + 3 * 3_600_000, tz) : f + STEP_MS[step];
}

/** Number of buckets in an aligned [from, to) (days counted as 24 h, close enough for a limit). */
export function bucketCount(fromMs: number, toMs: number, step: Step): number {
  return Math.round((toMs - fromMs) / STEP_MS[step]);
}

export interface SeriesRange { fromMs: number; toMs: number; step: Step }

export function seriesRange(q: { from: string; to: string; step: Step }, tz: string): SeriesRange {
  const from = parseInstant('from', q.from);
  const to = parseInstant('to', q.to);
  if (to <= from) throw badRequest('to', 'to must be after from');
  const step = q.step;
  const fromMs = floorTo(from, step, tz);
  const toMs = ceilTo(to, step, tz);
  const n = bucketCount(fromMs, toMs, step);
  if (n > MAX_POINTS) {
    const better = STEPS.find((s) => bucketCount(floorTo(from, s, tz), ceilTo(to, s, tz), s) <= MAX_POINTS);
    throw badRequest('step', better
      ? `the range covers ${n} buckets of ${step}, more than ${MAX_POINTS}: use step=${better} or a shorter range`
      : `the range covers ${n} buckets of ${step}, more than ${MAX_POINTS}: use a shorter range`);
  }
  return { fromMs, toMs, step };
}
