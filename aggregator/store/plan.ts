/**
 * The local half of local-global aggregation: one partition's chunk of messages becomes bucket deltas summed per
 * (key, field), so the Lua apply touches each bucket once per chunk however many changes hit it. Pure: the wall
 * clock, the partition's watermark and the replay filter are passed in.
 */
import { BadEventError, decodeEvent } from '../../lib/events.ts';
import { formatLsn, parseLsn } from '../../lib/lsn.ts';
import { BadRowError, factsOf, payoutsOf, type Fact, type Mapping, type PayoutDelta } from '../../lib/mapping.ts';
import { candidatePartitions } from '../../lib/partition.ts';
import { HOUR, MINUTE } from '../../lib/time.ts';
import {
  DAY_BLOCK, dayKeyExpiry, DayClock, HOUR_BLOCK, hourKeyExpiry, keys, minuteKeyExpiry, payoutBlockOf, payoutKeyExpiry, REREAD_LATENESS_MS, slotsOf, type Retention,
} from './layout.ts';
import { encodePayoutField } from './payouts.ts';
import { emptyTotals, type Totals } from './counters.ts';

export interface Msg { offset: string; value: Buffer | null; key?: Buffer | null }

/**
 * One hash of the plan: the deltas of its fields, and which encoding its fields get (counters.ts): a tier bucket
 * (field key = slot) or the all-merchants window index (field key = merchant).
 */
export interface PlannedHash { kind: 'bucket' | 'window'; fields: Map<string, Totals> }

export interface PlanContext {
  prefix: string;
  partition: number;
  partitions: number;
  hotShards: number;
  mapping: Mapping;
  clock: DayClock;
  retention: Retention;
  /** Event-time minutes the all-merchants minute index keeps behind the partition's watermark. */
  windowKeepMinutes: number;
  allowedLatenessMs: number;
  /** Wall clock (ms): buckets whose key would already have expired are not written. */
  now: number;
  /**
   * How far `now` runs ahead of Redis' clock (lib/clock.ts offsetOf; 0 or unset on the system clock): expiries are
   * decided on the clock's timeline and written to Redis (EXPIREAT) on its own, `expiry − clockOffsetMs`.
   */
  clockOffsetMs?: number;
  /** The partition's watermark before this chunk (ms), null when it has none. */
  watermark: number | null;
  /** Position of the last row change applied in this partition: changes at or before it are re-published copies. */
  lastPosition?: Position | null;
  /** Replay: only facts in buckets at or after these instants are applied (the reset range). */
  from?: { minute: number; hour: number; day: number };
  candidates?: (merchant: string) => number[];
}

export interface BadMessage { offset: string; reason: string; value: Buffer | null; key: Buffer | null }

export interface Plan {
  /** key → its deltas */
  hashes: Map<string, PlannedHash>;
  /** payout hash key → payout row field → count delta (payouts.ts) */
  payouts: Map<string, Map<string, number>>;
  /** key → expiry (epoch ms) by Redis' clock (PlanContext.clockOffsetMs) */
  expires: Map<string, number>;
  merchants: Set<string>;
  foreign: Set<string>;
  /**
   * Merchants named in the changed-merchant index (layout.ts `changed`): those with a fact at least
   * REREAD_LATENESS_MS late or a payout change — what a reader following the last hour through the window index
   * (alerting/exposure.ts) may not see there.
   */
  reread: Set<string>;
  /** max commitTs of the chunk (ms), null when the chunk has no valid event */
  watermark: number | null;
  bad: BadMessage[];
  changes: number;
  facts: number;
  late: number;
  /** position of the chunk's last applied row change ("LSN/seq"), null when none */
  position: string | null;
  /** row changes skipped as copies of changes already applied */
  duplicates: number;
  /** earliest fact minute of the chunk (replay uses it to find the reset range) */
  minFactMinute: number | null;
}

export interface Position { lsn: bigint; seq: number }

export function comparePos(a: Position, b: Position): number {
  return a.lsn < b.lsn ? -1 : a.lsn > b.lsn ? 1 : a.seq - b.seq;
}

export function formatPosition(p: Position): string {
  return `${formatLsn(p.lsn)}:${p.seq}`;
}

export function parsePosition(s: string | null): Position | null {
  if (!s) return null;
  const i = s.lastIndexOf(':');
  return { lsn: parseLsn(s.slice(0, i)), seq: Number(s.slice(i + 1)) };
}

export function emptyPlan(): Plan {
  return {
    hashes: new Map(), payouts: new Map(), expires: new Map(), merchants: new Set(), foreign: new Set(), reread: new Set(), watermark: null,
    bad: [], changes: 0, facts: 0, late: 0, minFactMinute: null, position: null, duplicates: 0,
  };
}

/** Cached candidate partitions (a merchant's own and its shards'). */
export function candidateCache(partitions: number, hotShards: number): (m: string) => number[] {
  const cache = new Map<string, number[]>();
  return (m) => {
    let c = cache.get(m);
    if (!c) {
      if (cache.size > 500_000) cache.clear();
      cache.set(m, (c = candidatePartitions(m, partitions, hotShards)));
    }
    return c;
  };
}

function add(plan: Plan, kind: PlannedHash['kind'], key: string, field: string, f: Fact, expiry: number): void {
  let h = plan.hashes.get(key);
  if (!h) {
    plan.hashes.set(key, (h = { kind, fields: new Map() }));
    plan.expires.set(key, expiry);
  }
  let d = h.fields.get(field);
  if (!d) h.fields.set(field, (d = emptyTotals()));
  const amount = f.sign === 1 ? f.amount : -f.amount;
  if (f.kind === 'approval') { d.approvals += f.sign; d.approvedAmount += amount; } else { d.cancels += f.sign; d.canceledAmount += amount; }
}

/** Plans a chunk; `into` accumulates several chunks into one plan (the replay's whole rebuilt range). */
export function buildPlan(messages: Msg[], ctx: PlanContext, into?: Plan): Plan {
  const plan = into ?? emptyPlan();
  const facts: Fact[] = [];
  /** the partition's watermark as of each fact's change (the chunk's earlier commits included) */
  const factWms: (number | null)[] = [];
  const payouts: PayoutDelta[] = [];
  let wm = ctx.watermark;
  let last = ctx.lastPosition ?? null;
  for (const m of messages) {
    try {
      const e = decodeEvent(m.value);
      const ts = Date.parse(e.commitTs);
      if (plan.watermark === null || ts > plan.watermark) plan.watermark = ts;
      if (wm === null || ts > wm) wm = ts;
      if (e.op === 'heartbeat') continue;
      const pos = { lsn: parseLsn(e.lsn), seq: e.seq };
      if (last && comparePos(pos, last) <= 0) { plan.duplicates++; continue; }
      last = pos;
      const fs = factsOf(e, ctx.mapping);
      const ps = payoutsOf(e, ctx.mapping);
      plan.changes++;
      for (const f of fs) { facts.push(f); factWms.push(wm); }
      for (const d of ps) payouts.push(d);
    } catch (err) {
      if (!(err instanceof BadEventError) && !(err instanceof BadRowError)) throw err;
      plan.bad.push({ offset: m.offset, reason: err.message, value: m.value, key: m.key ?? null });
    }
  }
  if (last && last !== (ctx.lastPosition ?? null)) plan.position = formatPosition(last);
  addFacts(plan, facts, ctx, wm, factWms);
  // A replay rebuilds buckets only: payout hashes already hold every change applied live (aggregator/README.md).
  if (!ctx.from) addPayouts(plan, payouts, ctx);
  return plan;
}

/** Adds payout row deltas to a plan (payouts.ts): +1 on the new row's field, -1 on the old row's. */
export function addPayouts(plan: Plan, deltas: PayoutDelta[], ctx: PlanContext): void {
  const candidates = ctx.candidates ?? candidateCache(ctx.partitions, ctx.hotShards);
  for (const { sign, payout } of deltas) {
    const block = payoutBlockOf(payout.paidAtMs);
    const expiry = payoutKeyExpiry(block, ctx.retention);
    if (expiry <= ctx.now) continue;
    const redisExpiry = expiry - (ctx.clockOffsetMs ?? 0);
    const m = payout.merchantId;
    const key = keys.payouts(ctx.prefix, ctx.partition, m, block);
    let h = plan.payouts.get(key);
    if (!h) {
      plan.payouts.set(key, (h = new Map()));
      plan.expires.set(key, redisExpiry);
    }
    const f = encodePayoutField(payout);
    h.set(f, (h.get(f) ?? 0) + sign);
    plan.merchants.add(m);
    plan.reread.add(m);
    if (!candidates(m).includes(ctx.partition)) plan.foreign.add(m);
  }
}

/**
 * Adds facts to a plan (the second pass of buildPlan; the benchmark feeds synthetic facts here). `wm` is the
 * partition's watermark including this chunk: it decides late rows and the window-index horizon. `factWms[i]`, when
 * given, is the watermark as of fact i's own change: a fact is named in `reread` when its minute ended
 * REREAD_LATENESS_MS before it (a chunk's later commits do not make its earlier rows late).
 */
export function addFacts(plan: Plan, facts: Fact[], ctx: PlanContext, wm: number | null, factWms?: (number | null)[]): void {
  const windowFrom = wm === null ? -Infinity : (Math.floor(wm / MINUTE) - ctx.windowKeepMinutes) * MINUTE;
  const candidates = ctx.candidates ?? candidateCache(ctx.partitions, ctx.hotShards);
  const { prefix, partition: p, retention: r, now, from } = ctx;
  const shift = ctx.clockOffsetMs ?? 0; // expiries go to Redis by its clock
  for (let i = 0; i < facts.length; i++) {
    const f = facts[i];
    plan.facts++;
    if (plan.minFactMinute === null || f.minuteMs < plan.minFactMinute) plan.minFactMinute = f.minuteMs;
    const m = f.merchantId;
    if (wm !== null && f.minuteMs + MINUTE + ctx.allowedLatenessMs <= wm) plan.late++;
    const fwm = factWms ? factWms[i] : wm;
    const late = fwm !== null && f.minuteMs + MINUTE + REREAD_LATENESS_MS <= fwm;
    const s = slotsOf(f.minuteMs, ctx.clock);
    let touched = false;
    const mExp = minuteKeyExpiry(s, r);
    if (mExp > now && (!from || f.minuteMs >= from.minute)) {
      add(plan, 'bucket', keys.minute(prefix, p, m, s.localDay, s.quarter), String(s.minuteOfDay), f, mExp - shift);
      touched = true;
    }
    if (f.minuteMs >= windowFrom && (!from || f.minuteMs >= from.minute)) {
      // wall-clock expiry is only a safety net; the Lua apply deletes these by event time
      add(plan, 'window', keys.window(prefix, p, f.minuteMs / MINUTE), m, f, Math.max(f.minuteMs, now) + (ctx.windowKeepMinutes + 60) * MINUTE - shift);
      touched = true;
    }
    const hExp = hourKeyExpiry(s, r);
    if (hExp > now && (!from || s.hourNo * HOUR >= from.hour)) {
      add(plan, 'bucket', keys.hour(prefix, p, m, Math.floor(s.hourNo / HOUR_BLOCK)), String(s.hourNo % HOUR_BLOCK), f, hExp - shift);
      touched = true;
    }
    const dExp = dayKeyExpiry(s, r);
    if (dExp > now && (!from || s.dayStartMs >= from.day)) {
      add(plan, 'bucket', keys.day(prefix, p, m, Math.floor(s.localDay / DAY_BLOCK)), String(s.localDay % DAY_BLOCK), f, dExp - shift);
      touched = true;
    }
    if (touched) {
      plan.merchants.add(m);
      if (late) plan.reread.add(m);
      if (!candidates(m).includes(p)) plan.foreign.add(m);
    }
  }
}
