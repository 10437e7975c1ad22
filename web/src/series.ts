/**
 * Pure computations of the merchant page over API points: gaps filled with zeros, the rolling 60-minute cancel
 * rate the rule uses, the 7-day baseline rate, and today's cumulative approved amount against the average of the
 * same time of day over the 7 days before today.
 */
import { DAY, dayKey, dayStart, HOUR, MINUTE } from '../../lib/time.ts';

export interface P { t: number; approvals: number; approvedAmount: number; cancels: number; canceledAmount: number }
export interface ApiPoint { t: string; approvals: number; approvedAmount: string; cancels: number; canceledAmount: string }

/** Amounts become numbers for charting (KRW totals stay far below 2^53). */
export function parsePoints(points: ApiPoint[]): P[] {
  return points.map((p) => ({
    t: Date.parse(p.t), approvals: p.approvals, approvedAmount: Number(p.approvedAmount), cancels: p.cancels, canceledAmount: Number(p.canceledAmount),
  }));
}

/** One point per bucket start in [from, to) (every stepMs), zeros where the API omitted an empty bucket. */
export function fill(points: P[], from: number, to: number, stepMs: number): P[] {
  const by = new Map(points.map((p) => [p.t, p]));
  const out: P[] = [];
  for (let t = from; t < to; t += stepMs) out.push(by.get(t) ?? { t, approvals: 0, approvedAmount: 0, cancels: 0, canceledAmount: 0 });
  return out;
}

/** Merges live points (newer values win) into a list sorted by t. */
export function merge(points: P[], live: P[]): P[] {
  const by = new Map(points.map((p) => [p.t, p]));
  for (const p of live) by.set(p.t, p);
  return [...by.values()].sort((a, b) => a.t - b.t);
}

export function sum(points: P[]): { approvals: number; cancels: number; approvedAmount: number; canceledAmount: number } {
  const s = { approvals: 0, cancels: 0, approvedAmount: 0, canceledAmount: 0 };
  for (const p of points) { s.approvals += p.approvals; s.cancels += p.cancels; s.approvedAmount += p.approvedAmount; s.canceledAmount += p.canceledAmount; }
  return s;
}

/** Cancels ÷ approvals over the baseline points; null without approvals. */
export function baselineRate(points: P[]): { rate: number | null; approvals: number; cancels: number } {
  const s = sum(points);
  return { rate: s.approvals > 0 ? s.cancels / s.approvals : null, approvals: s.approvals, cancels: s.cancels };
}

/**
 * For each minute start in `minutes` (filled, sorted, 1m apart): cancels ÷ approvals over the `window` minutes
 * ending with it, or null with no approvals. The first window−1 results lack a full window and are null.
 */
export function rollingRate(minutes: P[], window = 60): (number | null)[] {
  const out: (number | null)[] = [];
  let a = 0;
  let c = 0;
  for (let i = 0; i < minutes.length; i++) {
    a += minutes[i].approvals; c += minutes[i].cancels;
    if (i >= window) { a -= minutes[i - window].approvals; c -= minutes[i - window].cancels; }
    out.push(i >= window - 1 && a > 0 ? c / a : null);
  }
  return out;
}

/** Per-bucket rate (for 1h/1d views). */
export function bucketRate(points: P[]): (number | null)[] {
  return points.map((p) => (p.approvals > 0 ? p.cancels / p.approvals : null));
}

/** Running total of approved amount over today's filled minutes. */
export function cumulative(minutes: P[]): number[] {
  let acc = 0;
  return minutes.map((p) => (acc += p.approvedAmount));
}

/**
 * The same-time baseline at each hour of today: for h = 0…24, the average over `days` days before `todayStart` of
 * the approved amount from that day's start to start + h hours. From hourly points of those days.
 */
export function sameTimeBaseline(hourly: P[], todayStart: number, days = 7): { t: number[]; v: number[] } {
  const t: number[] = [];
  const v: number[] = [];
  const amountAt = new Map(hourly.map((p) => [p.t, p.approvedAmount]));
  const perDay: number[] = new Array(days).fill(0);
  for (let h = 0; h <= 24; h++) {
    t.push(todayStart + h * HOUR);
    v.push(perDay.reduce((x, y) => x + y, 0) / days);
    for (let d = 1; d <= days; d++) perDay[d - 1] += amountAt.get(todayStart - d * DAY + h * HOUR) ?? 0;
  }
  return { t, v };
}

/**
 * The same-time baseline as volume_drop computes it by default: the same weekday of each of the last `weeks` weeks,
 * holidays and days without activity left out; with fewer than `min` such days, the flat mean of the last 7 days.
 * `days` names the local dates averaged (empty: the 7-day mean).
 */
export function sameWeekdayBaseline(hourly: P[], todayStart: number, tz: string, holidays: ReadonlySet<string>, weeks = 4, min = 2): { t: number[]; v: number[]; days: string[] } {
  const active = new Set<number>();
  for (const p of hourly) if (p.approvals > 0 || p.approvedAmount > 0 || p.cancels > 0) active.add(dayStart(p.t, tz));
  const starts: number[] = [];
  for (let k = weeks; k >= 1; k--) {
    const d = dayStart(todayStart - 7 * k * DAY + 12 * HOUR, tz);
    if (!holidays.has(dayKey(d, tz)) && active.has(d)) starts.push(d);
  }
  if (starts.length < min) return { ...sameTimeBaseline(hourly.filter((p) => p.t >= todayStart - 7 * DAY), todayStart), days: [] };
  const amountAt = new Map(hourly.map((p) => [p.t, p.approvedAmount]));
  const t: number[] = [];
  const v: number[] = [];
  let sum = 0;
  for (let h = 0; h <= 24; h++) {
    t.push(todayStart + h * HOUR);
    v.push(sum / starts.length);
    for (const d of starts) sum += amountAt.get(d + h * HOUR) ?? 0;
  }
  return { t, v, days: starts.map((d) => dayKey(d, tz)) };
}

/** Linear interpolation of the hourly baseline at a minute (for "now vs baseline" figures). */
export function baselineAt(b: { t: number[]; v: number[] }, at: number): number | null {
  for (let i = 1; i < b.t.length; i++) {
    if (at <= b.t[i]) {
      const f = (at - b.t[i - 1]) / (b.t[i] - b.t[i - 1]);
      return b.v[i - 1] + f * (b.v[i] - b.v[i - 1]);
    }
  }
  return null;
}

/** A payout as the net-position chart needs it (epoch ms): what it settles through and when it is paid. */
export interface PayoutMark { coversTo: number; paidAt: number }

/** The settled-through time at `t`: the latest coversTo among payouts paid by `t`; null when none is. */
export function settledAt(payouts: readonly PayoutMark[], t: number): number | null {
  let s: number | null = null;
  for (const p of payouts) if (p.paidAt <= t && (s === null || p.coversTo > s)) s = p.coversTo;
  return s;
}

/**
 * The merchant's net position (approved − canceled with a transaction time since its settled-through time S) at each
 * instant of `times`, from `buckets` (filled, sorted, `stepMs` apart, the last one holding `now`), anchored at the
 * exact net `netNow` the exposure gives at `now`. Where S(t) = S(now) it is netNow minus the buckets in [t, now) —
 * exact whatever the buckets reach back to; elsewhere the buckets in [S(t), t), S(t) floored to the bucket (a
 * payout's covers_to is a local midnight in practice). Null where the buckets do not reach back to S(t) or where
 * nothing was settled at t while something is now. `times` are bucket boundaries or `now`.
 */
export function netPosition(buckets: P[], stepMs: number, payouts: readonly PayoutMark[], times: number[], now: number, netNow: number): (number | null)[] {
  if (!buckets.length) return times.map((t) => (t === now ? netNow : null));
  const from = buckets[0].t;
  const cum = [0];
  for (const b of buckets) cum.push(cum[cum.length - 1] + b.approvedAmount - b.canceledAmount);
  const at = (x: number) => cum[Math.max(0, Math.min(buckets.length, Math.floor((x - from) / stepMs)))];
  const sNow = settledAt(payouts, now);
  return times.map((t) => {
    if (t >= now) return t === now ? netNow : null;
    const s = settledAt(payouts, t);
    if (s === sNow) return netNow - (cum[buckets.length] - at(t));
    if (s === null || s < from) return null;
    return at(t) - at(s);
  });
}

export { DAY, HOUR, MINUTE };
