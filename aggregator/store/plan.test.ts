import { describe, expect, it } from 'vitest';
import { encodeEvent, heartbeat, type RowChange } from '../../lib/events.ts';
import { referenceMapping } from '../../lib/mapping.ts';
import { candidatePartitions } from '../../lib/partition.ts';
import { DAY, MINUTE, dayStart } from '../../lib/time.ts';
import { addField, emptyTotals, forEachWindowCounter } from './counters.ts';
import { DayClock, keys, slotsOf } from './layout.ts';
import { buildPlan, type Msg, type PlanContext } from './plan.ts';

const tz = 'Asia/Seoul';
const now = Date.parse('2026-11-21T12:00:00Z');
const ctx = (over: Partial<PlanContext> = {}): PlanContext => ({
  prefix: 'rm', partition: 0, partitions: 12, hotShards: 8, mapping: referenceMapping, clock: new DayClock(tz),
  retention: { minuteTtlMs: 2 * DAY, hourTtlMs: 36 * DAY, dayTtlMs: 400 * DAY }, windowKeepMinutes: 240,
  allowedLatenessMs: 5000, now, watermark: null, ...over,
});

let lsn = 0x100;
function pay(merchant: string, amount: number, at: string, op: RowChange['op'] = 'insert', old?: Record<string, string>): Msg {
  lsn += 0x10;
  const row = { payment_id: String(lsn), merchant_id: merchant, amount: String(amount), approved_at: at };
  const e: RowChange = { v: 1, lsn: `0/${lsn.toString(16)}`, seq: 0, commitTs: new Date(now).toISOString(), xid: 1, table: 'public.payments',
    op, row: op === 'delete' ? null : row, old: op === 'insert' ? null : { ...row, ...old } };
  return { offset: String(lsn), value: Buffer.from(encodeEvent(e)) };
}

describe('layout', () => {
  it('decodes bucket fields exactly (amounts beyond 2^53)', () => {
    const acc = emptyTotals();
    addField(acc, 0, '3'); addField(acc, 1, '9007199254740993'); addField(acc, 2, '1'); addField(acc, 3, '-5');
    expect(acc).toEqual({ approvals: 3, approvedAmount: 9_007_199_254_740_993n, cancels: 1, canceledAmount: -5n });
    const seen: [string, number, string][] = [];
    forEachWindowCounter('a:shop:1a\u00007', (m, k, v) => seen.push([m, k, v]));
    expect(seen).toEqual([['shop:1a', 1, '7']]);
  });

  it('puts a minute in its local day, quarter and UTC hour (Seoul midnight = 15:00 UTC)', () => {
    const c = new DayClock(tz);
    const s = slotsOf(Date.parse('2026-11-21T15:00:00Z'), c);
    expect(s.dayStartMs).toBe(Date.parse('2026-11-21T15:00:00Z'));
    expect(s.minuteOfDay).toBe(0);
    expect(c.startOfLocalDay(s.localDay)).toBe(s.dayStartMs);
    const before = slotsOf(Date.parse('2026-11-21T14:59:00Z'), c);
    expect(before.localDay).toBe(s.localDay - 1);
    expect(before.minuteOfDay).toBe(1439);
    expect(before.quarter).toBe(3);
    expect(c.dayStart(Date.parse('2026-11-21T14:59:00Z'))).toBe(dayStart(Date.parse('2026-11-21T14:59:00Z'), tz));
  });
});

describe('buildPlan', () => {
  it('sums deltas per bucket; an update moves the amount; a delete subtracts', () => {
    const at = '2026-11-21T11:59:30Z';
    const plan = buildPlan([pay('42', 100, at), pay('42', 50, at), pay('42', 70, at, 'update', { amount: '50' }), pay('42', 100, at, 'delete')], ctx());
    const s = slotsOf(Date.parse('2026-11-21T11:59:00Z'), new DayClock(tz));
    const hash = plan.hashes.get(keys.minute('rm', 0, '42', s.localDay, s.quarter))!;
    expect(hash.kind).toBe('bucket');
    expect(plan.hashes.get(keys.window('rm', 0, Date.parse('2026-11-21T11:59:00Z') / MINUTE))!.kind).toBe('window');
    const minute = hash.fields.get(String(s.minuteOfDay))!;
    expect(minute).toEqual({ approvals: 1, approvedAmount: 70n, cancels: 0, canceledAmount: 0n });
    expect(plan.changes).toBe(4);
    expect(plan.late).toBe(0);
    expect([...plan.reread]).toEqual([]); // nothing late: the window index shows it
  });

  it('sends malformed events and unreadable rows to the dead letters, counts late rows, skips re-published changes', () => {
    const good = pay('7', 10, '2026-11-21T11:00:00Z');
    const bad: Msg = { offset: '1', value: Buffer.from('{"v":1') };
    const noAmount = pay('7', 10, '2026-11-21T11:00:00Z');
    const e = JSON.parse(noAmount.value!.toString()); e.row.amount = null; noAmount.value = Buffer.from(JSON.stringify(e));
    const plan = buildPlan([good, bad, noAmount, good], ctx({ watermark: now }));
    expect(plan.bad.map((b) => b.reason)).toEqual([expect.stringMatching(/not JSON/), expect.stringMatching(/amount is missing/)]);
    expect(plan.late).toBe(1); // 11:00 is closed at 12:00
    expect([...plan.reread]).toEqual(['7']); // named in the changed-merchant index for money at risk
    expect(plan.duplicates).toBe(1);
    expect(plan.facts).toBe(1);
  });

  it('records a merchant outside its candidate partitions as foreign, and heartbeats move the watermark', () => {
    const p = candidatePartitions('42', 12, 8).includes(3) ? 11 : 3;
    const hb: Msg = { offset: '9', value: Buffer.from(encodeEvent(heartbeat('0/FFFF', new Date(now + 5000).toISOString()))) };
    const plan = buildPlan([pay('42', 1, '2026-11-21T11:59:00Z'), hb], ctx({ partition: p }));
    expect(plan.foreign.has('42') || candidatePartitions('42', 12, 8).includes(p)).toBe(true);
    expect(plan.watermark).toBe(now + 5000);
    // late by the chunk's heartbeat, not 30 minutes late as of its own change: the window index shows it
    expect(plan.late).toBe(1);
    expect([...plan.reread]).toEqual([]);
  });

  it('on a shifted clock, decides on its timeline and writes expiries by Redis\' clock (lib/clock.ts offsetOf)', () => {
    // the clock reads `now` while Redis' clock is a week later: the same keys, their EXPIREAT a week later too
    const shift = -7 * DAY;
    const at = '2026-11-21T11:59:00Z';
    const plain = buildPlan([pay('1', 5, at)], ctx());
    const shifted = buildPlan([pay('1', 5, at)], ctx({ clockOffsetMs: shift }));
    expect([...shifted.expires.keys()]).toEqual([...plain.expires.keys()]);
    for (const [k, exp] of plain.expires) expect(shifted.expires.get(k)).toBe(exp - shift);
    expect([...shifted.hashes.keys()].some((k) => k.includes(':m:'))).toBe(true); // kept: two days on the clock's timeline
  });

  it('does not write buckets that would already have expired; replay applies only the reset range', () => {
    const old = buildPlan([pay('1', 5, new Date(now - 3 * DAY).toISOString())], ctx());
    expect([...old.hashes.keys()].some((k) => k.includes(':m:'))).toBe(false);
    expect([...old.hashes.keys()].some((k) => k.includes(':h:'))).toBe(true);
    const from = Date.parse('2026-11-21T11:00:00Z');
    const r = buildPlan([pay('1', 5, '2026-11-21T10:59:00Z'), pay('1', 6, '2026-11-21T11:01:00Z')], ctx({ from: { minute: from, hour: from, day: from + MINUTE } }));
    const minuteKeys = [...r.hashes.keys()].filter((k) => k.includes(':m:'));
    expect(minuteKeys.length).toBe(1);
    expect([...r.hashes.keys()].some((k) => k.includes(':d:'))).toBe(false);
  });
});

describe('payouts in a plan', () => {
  const payout = (op: RowChange['op'], r: Record<string, string> | null, old: Record<string, string> | null = null): Msg => {
    lsn += 0x10;
    const e: RowChange = { v: 1, lsn: `0/${lsn.toString(16)}`, seq: 0, commitTs: '2026-11-21T11:59:30Z', xid: 1, table: 'public.payouts', op, row: r, old };
    return { offset: String(lsn), value: Buffer.from(encodeEvent(e)) };
  };
  it('adds +1 for a row that stands, -1 for one that no longer does, in the block of its paid_at; a replay leaves them alone', () => {
    const a = { payout_id: '5', merchant_id: '42', amount: '900', covers_to: '2026-11-20T15:00:00Z', paid_at: '2026-11-21T00:00:00Z' };
    const b = { ...a, amount: '950' };
    const plan = buildPlan([payout('insert', a), payout('update', b, a), payout('insert', { ...a, payout_id: '6' }), payout('delete', null, { ...a, payout_id: '6' })], ctx());
    const key = keys.payouts('rm', 0, '42', Math.floor(Date.parse(a.paid_at) / (100 * DAY)));
    const fa = `${Date.parse(a.covers_to)}:${Date.parse(a.paid_at)}:900:5`;
    expect([...plan.payouts.keys()]).toEqual([key]);
    expect(Object.fromEntries(plan.payouts.get(key)!)).toEqual({ [fa]: 0, [fa.replace(':900:', ':950:')]: 1, [fa.replace(':5', ':6')]: 0 });
    expect(plan.merchants.has('42')).toBe(true);
    expect(plan.hashes.size).toBe(0);
    expect(buildPlan([payout('insert', a)], ctx({ from: { minute: 0, hour: 0, day: 0 } })).payouts.size).toBe(0);
  });
});
