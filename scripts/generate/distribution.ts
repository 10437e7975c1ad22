/**
 * The reference workload as pure functions: who transacts (merchant weights), when (the daily curve in the
 * configured zone), how much (log-normal amounts by category) and how often it is cancelled. A merchant's
 * attributes depend only on its id (not on a run's seed), so `generate merchants` and every later backfill or live
 * run agree on them; a run's seed only drives the transaction stream.
 */
import { DAY, dayKey, MINUTE, tzOffsetMs } from '../../lib/time.ts';
import { hash32, Rng } from './random.ts';

export const CATEGORIES = ['electronics', 'fashion', 'food', 'travel', 'digital', 'general'] as const;
export type Category = (typeof CATEGORIES)[number];

/**
 * Share of merchants per category, and the log-normal amount of a payment: `median` KRW and `sigma` of ln(amount).
 * Each merchant's median is the category's times its own factor (see merchantProfile).
 */
export const CATEGORY_PARAMS: Readonly<Record<Category, { share: number; median: number; sigma: number }>> = {
  electronics: { share: 0.12, median: 150_000, sigma: 0.9 },
  fashion: { share: 0.22, median: 55_000, sigma: 0.7 },
  food: { share: 0.25, median: 18_000, sigma: 0.5 },
  travel: { share: 0.08, median: 280_000, sigma: 0.8 },
  digital: { share: 0.13, median: 9_000, sigma: 0.8 },
  general: { share: 0.2, median: 35_000, sigma: 0.8 },
};

/** Cancel rates per merchant are drawn uniformly from this range. */
export const CANCEL_RATE_RANGE = [0.01, 0.05] as const;
/** Share of cancels that are partial (amount below the original). */
export const PARTIAL_CANCEL_SHARE = 0.3;
/** Largest amount the sampler returns (the log-normal tail is cut here), KRW. */
export const MAX_AMOUNT = 50_000_000;

/** Fixed salt of merchant attributes: changing it changes every merchant, so it never changes. */
const WORLD = 0x52534b31;

export interface MerchantProfile {
  id: number;
  category: Category;
  /** ln(median amount) and sigma of the merchant's log-normal amounts. */
  mu: number;
  sigma: number;
  /** Share of approvals that get cancelled, in CANCEL_RATE_RANGE. */
  cancelRate: number;
}

export function merchantProfile(id: number): MerchantProfile {
  const rng = new Rng(hash32(WORLD, id));
  let u = rng.next();
  let category: Category = 'general';
  for (const c of CATEGORIES) {
    u -= CATEGORY_PARAMS[c].share;
    if (u < 0) { category = c; break; }
  }
  const p = CATEGORY_PARAMS[category];
  // A merchant's typical ticket differs from its category's by a factor of about e^±0.3.
  const mu = Math.log(p.median) + 0.3 * rng.normal();
  const cancelRate = CANCEL_RATE_RANGE[0] + (CANCEL_RATE_RANGE[1] - CANCEL_RATE_RANGE[0]) * rng.next();
  return { id, category, mu, sigma: p.sigma, cancelRate };
}

/** Mean of a payment's amount (the log-normal mean e^(mu + sigma²/2)). */
export function meanAmount(p: MerchantProfile): number {
  return Math.exp(p.mu + (p.sigma * p.sigma) / 2);
}

const NAME_PREFIX = ['Hana', 'Mirae', 'Saebom', 'Hanbit', 'Daehan', 'Jeil', 'Sinsegye', 'Pureun', 'Hansol', 'Nuri', 'Baekdu', 'Gaon'];
const NAME_NOUN: Record<Category, string> = {
  electronics: 'Electronics', fashion: 'Fashion', food: 'Foods', travel: 'Travel', digital: 'Digital', general: 'Mart',
};

export function merchantName(p: MerchantProfile): string {
  return `${NAME_PREFIX[hash32(WORLD + 1, p.id) % NAME_PREFIX.length]} ${NAME_NOUN[p.category]} ${p.id}`;
}

/**
 * Transaction share of each merchant, index i = merchant id i+1 (merchant 1 is the biggest). A broken power law:
 * exponent 0.8 over the top 1% of merchants and 1.5 below, continuous at the break. The top 1% then carry about
 * two thirds of all transactions (≥ 50% is the contract), the single biggest merchant about 4%, and the merchants
 * just below the top 1% still see ~20 approvals an hour at 3M transactions a day — enough for the cancel-rate
 * rule's guards, so a "normal" (unsharded) merchant's cancel surge is detectable. Sums to 1.
 */
export function merchantWeights(n: number): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new Error(`merchant count must be a positive integer, got ${n}`);
  const head = hotCount(n);
  const w = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const r = (i + 1) / head;
    w[i] = i < head ? r ** -0.8 : r ** -1.5;
    sum += w[i];
  }
  for (let i = 0; i < n; i++) w[i] /= sum;
  return w;
}

/** Size of the top 1% (at least one merchant). */
export function hotCount(n: number): number { return Math.max(1, Math.ceil(n / 100)); }

/**
 * Relative transaction rate at each local hour (value at the start of the hour; minutes in between interpolate
 * linearly). A Korean online-payment day: a deep trough at 03–05, a lunch bump, the peak at 20–22. Mean 1.
 */
const HOURLY = (() => {
  const raw = [0.55, 0.35, 0.22, 0.15, 0.12, 0.14, 0.25, 0.45, 0.7, 0.95, 1.1, 1.25,
    1.4, 1.3, 1.2, 1.15, 1.15, 1.2, 1.3, 1.45, 1.6, 1.65, 1.4, 0.95];
  const mean = raw.reduce((a, b) => a + b, 0) / raw.length;
  return raw.map((x) => x / mean);
})();

/** Relative rate at local minute-of-day m (0..1439); its mean over a day is 1. */
export function curveAtMinuteOfDay(m: number): number {
  const h = Math.floor(m / 60);
  const f = (m % 60) / 60;
  return HOURLY[h] * (1 - f) + HOURLY[(h + 1) % 24] * f;
}

/**
 * Weeks (with `--week-shapes 1`): relative volume of a category's merchants by local weekday (Sunday first) and on
 * a public holiday. B2B-like "general" merchants sell a quarter as much on Sundays and holidays; leisure (travel,
 * food, fashion) sells more at weekends and on holidays. A transaction's merchant is accepted with probability
 * factor ÷ WEEK_FACTOR_MAX and drawn again otherwise, so a day's total stays as asked and the shapes are relative.
 */
export const WEEK_SHAPE: Readonly<Record<Category, { days: readonly number[]; holiday: number }>> = {
  general: { days: [0.25, 1.15, 1.15, 1.15, 1.15, 1.1, 0.5], holiday: 0.25 },
  electronics: { days: [1.1, 0.95, 0.95, 0.95, 1, 1.05, 1.2], holiday: 1.1 },
  fashion: { days: [1.25, 0.9, 0.9, 0.9, 0.95, 1.05, 1.3], holiday: 1.2 },
  food: { days: [1.15, 0.95, 0.95, 0.95, 1, 1.1, 1.2], holiday: 1.3 },
  travel: { days: [1.3, 0.8, 0.8, 0.85, 0.9, 1.2, 1.4], holiday: 1.8 },
  digital: { days: [1.1, 1, 1, 1, 1, 1, 1.1], holiday: 1.1 },
};
export const WEEK_FACTOR_MAX = 1.8;

/** Acceptance per category (CATEGORIES order) for a transaction at `ms`: its weekday's (or holiday's) factor ÷ max. */
export function weekAcceptance(ms: number, tz: string, holidays: ReadonlySet<string>): Float64Array {
  const local = ms + tzOffsetMs(ms, tz);
  const weekday = new Date(local).getUTCDay();
  const holiday = holidays.has(dayKey(ms, tz));
  return Float64Array.from(CATEGORIES, (c) => (holiday ? WEEK_SHAPE[c].holiday : WEEK_SHAPE[c].days[weekday]) / WEEK_FACTOR_MAX);
}

/** Local minute of the day (0..1439) of instant `ms` in zone `tz`. */
export function localMinuteOfDay(ms: number, tz: string): number {
  const local = ms + tzOffsetMs(ms, tz);
  return Math.floor((((local % DAY) + DAY) % DAY) / MINUTE);
}

/** Expected transactions in the minute starting at `minuteMs`, for `txPerDay` a day. */
export function expectedPerMinute(minuteMs: number, txPerDay: number, tz: string): number {
  return (txPerDay / 1440) * curveAtMinuteOfDay(localMinuteOfDay(minuteMs, tz));
}

/** Amounts are whole KRW rounded to 10 won, at least 10. */
export function roundKrw(x: number): number {
  return Math.max(10, Math.min(MAX_AMOUNT, Math.round(x / 10) * 10));
}

export function sampleAmount(rng: Rng, mu: number, sigma: number): number {
  return roundKrw(Math.exp(mu + sigma * rng.normal()));
}

/** The amount of a cancel of a payment of `original`: full, or (PARTIAL_CANCEL_SHARE) 10–90% of it. */
export function sampleCancelAmount(rng: Rng, original: number): number {
  if (original <= 10 || rng.next() >= PARTIAL_CANCEL_SHARE) return original;
  return Math.min(original - 10, roundKrw(original * rng.range(0.1, 0.9)));
}

/** A Poisson-like count for mean `lambda` (normal approximation above 30; exact inversion below). */
export function sampleCount(rng: Rng, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * rng.normal()));
  let k = 0;
  let p = Math.exp(-lambda);
  let cdf = p;
  const u = rng.next();
  while (u > cdf && k < 200) { k++; p *= lambda / k; cdf += p; }
  return k;
}
