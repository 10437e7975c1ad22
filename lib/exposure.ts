/**
 * Money at risk (docs/analysts.md "Exposure"): what the company has paid a merchant that later cancels may claw
 * back. Pure: the bucket store reads payouts and sums (aggregator/store `readExposure`), this file decides.
 *
 * Per merchant at instant `now`:
 * - `settledThrough` S: the latest `covers_to` among its payouts with `paid_at ≤ now` (a payout settles every
 *   approval and cancel with a transaction time before its covers_to); without payouts mapped, the D+N schedule
 *   of RISKMON_SETTLEMENT_DAYS (local day D is paid at the start of local day D+N, so S is the start of local day
 *   today − N + 1); null when the merchant has no paid payout (then everything the buckets hold is unsettled).
 * - `approvedSinceSettled` / `canceledSinceSettled`: amounts with transaction time in [S, end of now's minute).
 * - `netSinceSettled` = approved − canceled; `receivable` = max(0, −net).
 * - `nextPayoutAt` T: the earliest `paid_at > now` among its payouts (or the next local midnight on the D+N
 *   schedule); null when none is known.
 * - `projectedReceivable`: the receivable at T if the last 60 minutes' approved and canceled amounts per minute
 *   continue until T: max(0, −(net + (approvedLastHour − canceledLastHour) × minutes(now, T) / 60)), rounded toward
 *   zero; equal to `receivable` when T is unknown.
 */
import type { Payout } from './mapping.ts';
import { DAY, HOUR, MINUTE, dayStart } from './time.ts';

/** A hold on a merchant's payouts, as the exposure JSON lists it (filled by the holds module; [] without one). */
export interface ExposureHold {
  id: string;
  state: string;
  reason: string;
  createdBy: string;
  createdAt: string;
}

/** GET /api/merchants/:id/exposure (docs/contracts.md); amounts are decimal strings (exact KRW). */
export interface Exposure {
  merchantId: string;
  settledThrough: string | null;
  approvedSinceSettled: string;
  canceledSinceSettled: string;
  netSinceSettled: string;
  receivable: string;
  projectedReceivable: string;
  nextPayoutAt: string | null;
  holds: ExposureHold[];
}

/** When a merchant is settled through and paid next (epoch ms), from its payouts or the D+N schedule. */
export interface Schedule {
  settledThrough: number | null;
  nextPayoutAt: number | null;
}

/** The schedule of a merchant's payout rows at `now`. */
export function scheduleOfPayouts(payouts: readonly Payout[], now: number): Schedule {
  let settledThrough: number | null = null, nextPayoutAt: number | null = null;
  for (const p of payouts) {
    if (p.paidAtMs <= now) {
      if (settledThrough === null || p.coversToMs > settledThrough) settledThrough = p.coversToMs;
    } else if (nextPayoutAt === null || p.paidAtMs < nextPayoutAt) {
      nextPayoutAt = p.paidAtMs;
    }
  }
  // buckets are per minute: a covers_to inside a minute settles from that minute's start (the whole minute unsettled)
  if (settledThrough !== null) settledThrough = Math.floor(settledThrough / MINUTE) * MINUTE;
  return { settledThrough, nextPayoutAt };
}

/** The D+N schedule (RISKMON_SETTLEMENT_DAYS = days ≥ 1): local day D is paid at the start of local day D+N. */
export function scheduleOfDays(days: number, now: number, tz: string): Schedule {
  if (!Number.isInteger(days) || days < 1) throw new Error(`settlement days must be a whole number ≥ 1, got ${days}`);
  const today = dayStart(now, tz);
  let s = today;
  // N − 1 local days back (a day is 23–25 h under DST; local midnights are found, not assumed 24 h apart)
  for (let i = 0; i < days - 1; i++) s = dayStart(s - HOUR, tz);
  return { settledThrough: s, nextPayoutAt: dayStart(today + DAY + 2 * HOUR, tz) };
}

/** The next instant after `now` at which a schedule changes (a payout becomes paid), or null. */
export function nextScheduleChange(payouts: readonly Payout[], now: number): number | null {
  let t: number | null = null;
  for (const p of payouts) if (p.paidAtMs > now && (t === null || p.paidAtMs < t)) t = p.paidAtMs;
  return t;
}

export interface ExposureInput {
  merchantId: string;
  now: number;
  schedule: Schedule;
  approvedSince: bigint;
  canceledSince: bigint;
  /** approved and canceled amounts of the 60 minutes ending with now's minute */
  approvedLastHour: bigint;
  canceledLastHour: bigint;
  holds?: ExposureHold[];
}

export function receivableOf(approved: bigint, canceled: bigint): bigint {
  const net = approved - canceled;
  return net < 0n ? -net : 0n;
}

/** The projected receivable (see the file head). */
export function projectedReceivable(net: bigint, approvedLastHour: bigint, canceledLastHour: bigint, now: number, nextPayoutAt: number | null): bigint {
  if (nextPayoutAt === null || nextPayoutAt <= now) return net < 0n ? -net : 0n;
  const ms = BigInt(Math.round(nextPayoutAt - now));
  const projected = net + ((approvedLastHour - canceledLastHour) * ms) / BigInt(HOUR);
  return projected < 0n ? -projected : 0n;
}

export function exposureOf(x: ExposureInput): Exposure {
  const net = x.approvedSince - x.canceledSince;
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    merchantId: x.merchantId,
    settledThrough: iso(x.schedule.settledThrough),
    approvedSinceSettled: x.approvedSince.toString(),
    canceledSinceSettled: x.canceledSince.toString(),
    netSinceSettled: net.toString(),
    receivable: (net < 0n ? -net : 0n).toString(),
    projectedReceivable: projectedReceivable(net, x.approvedLastHour, x.canceledLastHour, x.now, x.schedule.nextPayoutAt).toString(),
    nextPayoutAt: iso(x.schedule.nextPayoutAt),
    holds: x.holds ?? [],
  };
}
