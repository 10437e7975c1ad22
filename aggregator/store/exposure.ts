/**
 * Reading money at risk from the store (lib/exposure.ts decides): each merchant's payouts (or the D+N schedule),
 * the exact sums since its settled-through time from the tiers, and the last hour's amounts for the projection.
 * Batched: one payouts read and one range read per distinct settled-through time for any number of merchants.
 */
import { exposureOf, scheduleOfDays, scheduleOfPayouts, type Exposure, type Schedule } from '../../lib/exposure.ts';
import type { Payout } from '../../lib/mapping.ts';
import { MINUTE, HOUR } from '../../lib/time.ts';
import type { BucketReader, MoneyReader } from './reader.ts';

/** Where settled-through times come from: the payouts table, or the D+N schedule (RISKMON_SETTLEMENT_DAYS). */
export type Settlement = { kind: 'payouts' } | { kind: 'days'; days: number; tz: string } | { kind: 'none' };

/** The settlement source of a configuration: payouts when mapped, else the D+N schedule when set, else none. */
export function settlementOf(c: { mapping: { payouts?: unknown }; settlementDays: number; tz: string }): Settlement {
  if (c.mapping.payouts) return { kind: 'payouts' };
  if (c.settlementDays > 0) return { kind: 'days', days: c.settlementDays, tz: c.tz };
  return { kind: 'none' };
}

/** Each merchant's schedule at `now`, and its payout rows (empty without a payouts table). */
export async function readSchedules(reader: MoneyReader, ids: string[], now: number, s: Settlement): Promise<Map<string, { schedule: Schedule; payouts: Payout[] }>> {
  const out = new Map<string, { schedule: Schedule; payouts: Payout[] }>();
  if (s.kind === 'payouts') {
    const ps = await reader.payouts(ids);
    for (const m of ids) { const p = ps.get(m) ?? []; out.set(m, { schedule: scheduleOfPayouts(p, now), payouts: p }); }
  } else {
    const schedule = s.kind === 'days' ? scheduleOfDays(s.days, now, s.tz) : { settledThrough: null, nextPayoutAt: null };
    for (const m of ids) out.set(m, { schedule, payouts: [] });
  }
  return out;
}

/** Exposures of `ids` at `now` (lib/exposure.ts), given their schedules. */
export async function readExposuresWith(reader: MoneyReader & BucketReader, schedules: Map<string, { schedule: Schedule }>, now: number): Promise<Map<string, Exposure>> {
  const end = Math.floor(now / MINUTE) * MINUTE + MINUTE;
  // merchants grouped by settled-through time: one range read per group
  const groups = new Map<number | null, string[]>();
  for (const [m, { schedule }] of schedules) {
    const k = schedule.settledThrough;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(m);
  }
  const ids = [...schedules.keys()];
  const since = new Map<string, { approved: bigint; canceled: bigint }>();
  for (const [from, ms] of groups) {
    const t = await reader.sinceTotals(ms, from, end);
    for (const m of ms) { const x = t.get(m)!; since.set(m, { approved: x.approvedAmount, canceled: x.canceledAmount }); }
  }
  const hour = await reader.totals(ids, end - HOUR, end);
  const out = new Map<string, Exposure>();
  for (const m of ids) {
    const s = since.get(m)!, h = hour.get(m)!;
    out.set(m, exposureOf({
      merchantId: m, now, schedule: schedules.get(m)!.schedule, approvedSince: s.approved, canceledSince: s.canceled,
      approvedLastHour: h.approvedAmount, canceledLastHour: h.canceledAmount,
    }));
  }
  return out;
}

/** Exposures of `ids` at `now`. */
export async function readExposures(reader: MoneyReader & BucketReader, ids: string[], now: number, s: Settlement): Promise<Map<string, Exposure>> {
  return readExposuresWith(reader, await readSchedules(reader, ids, now, s), now);
}

/** One merchant's exposure at `now` (GET /api/merchants/:id/exposure; the holds' webhook payload). */
export async function readExposure(reader: MoneyReader & BucketReader, merchantId: string, now: number, s: Settlement): Promise<Exposure> {
  return (await readExposures(reader, [merchantId], now, s)).get(merchantId)!;
}
