import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent, heartbeat, type RowChange } from './events.ts';
import { BadRowError, earliestFactMinuteBound, factsOf, merchantOf, referenceMapping, validateMapping } from './mapping.ts';

const base = { v: 1 as const, lsn: '0/1', seq: 0, commitTs: '2026-11-21T08:00:00.123Z', xid: 1 };
const pay = (id: string, merchant: string, amount: string, at: string) =>
  ({ payment_id: id, merchant_id: merchant, amount, approved_at: at });

describe('factsOf', () => {
  it('counts an approval in the minute of approved_at, a cancel in the minute of canceled_at', () => {
    const ins: RowChange = { ...base, table: 'public.payments', op: 'insert', row: pay('1', '42', '15000', '2026-11-21T07:59:58.000Z'), old: null };
    expect(factsOf(ins, referenceMapping)).toEqual([
      { merchantId: '42', kind: 'approval', minuteMs: Date.parse('2026-11-21T07:59:00Z'), sign: 1, amount: 15000n },
    ]);
    const cancel: RowChange = {
      ...base, table: 'public.payment_cancels', op: 'insert', old: null,
      row: { cancel_id: '9', payment_id: '1', merchant_id: '42', amount: '5000', canceled_at: '2026-11-21T08:30:01Z' },
    };
    expect(factsOf(cancel, referenceMapping)[0]).toMatchObject({ kind: 'cancel', minuteMs: Date.parse('2026-11-21T08:30:00Z'), amount: 5000n });
  });
  it('corrects with the old row on update and delete', () => {
    const upd: RowChange = {
      ...base, table: 'public.payments', op: 'update',
      old: pay('1', '42', '15000', '2026-11-21T07:59:58Z'), row: pay('1', '42', '20000', '2026-11-21T08:00:02Z'),
    };
    expect(factsOf(upd, referenceMapping).map((f) => [f.sign, f.amount, f.minuteMs])).toEqual([
      [-1, 15000n, Date.parse('2026-11-21T07:59:00Z')],
      [1, 20000n, Date.parse('2026-11-21T08:00:00Z')],
    ]);
    const del: RowChange = { ...base, table: 'public.payments', op: 'delete', row: null, old: pay('1', '42', '15000', '2026-11-21T07:59:58Z') };
    expect(factsOf(del, referenceMapping)).toMatchObject([{ sign: -1, amount: 15000n }]);
    expect(merchantOf(del, referenceMapping)).toBe('42');
  });
  it('drops an update that changes nothing counted', () => {
    const row = pay('1', '42', '15000', '2026-11-21T07:59:58Z');
    expect(factsOf({ ...base, table: 'public.payments', op: 'update', old: row, row: { ...row } }, referenceMapping)).toEqual([]);
  });
  it('ignores tables outside the mapping', () => {
    expect(factsOf({ ...base, table: 'public.merchants', op: 'insert', row: { merchant_id: '1' }, old: null }, referenceMapping)).toEqual([]);
  });
  it('names what is wrong with a row it cannot read', () => {
    const nullAmount: RowChange = { ...base, table: 'public.payments', op: 'insert', row: { ...pay('1', '42', '1', '2026-11-21T00:00:00Z'), amount: null }, old: null };
    expect(() => factsOf(nullAmount, referenceMapping)).toThrow(new BadRowError('public.payments.amount is missing or NULL'));
    const noOld: RowChange = { ...base, table: 'public.payments', op: 'delete', row: null, old: null };
    expect(() => factsOf(noOld, referenceMapping)).toThrow(/REPLICA IDENTITY FULL/);
    const badTime: RowChange = { ...base, table: 'public.payments', op: 'insert', row: pay('1', '42', '1', 'yesterday'), old: null };
    expect(() => factsOf(badTime, referenceMapping)).toThrow(/approved_at="yesterday" is not a timestamp/);
  });
});

describe('validateMapping', () => {
  it('accepts a user schema and rejects incomplete ones', () => {
    const m = validateMapping({
      approvals: { table: 'shop.orders', id: 'order_no', merchant: 'store_id', amount: 'total', time: 'paid_at' },
      cancels: { table: 'shop.refunds', id: 'refund_no', merchant: 'store_id', amount: 'refund_total', time: 'refunded_at' },
    });
    expect(m.approvals.table).toBe('shop.orders');
    expect(() => validateMapping({ approvals: { table: 'orders' } })).toThrow(/approvals\.id/);
    expect(() => validateMapping({
      approvals: { table: 'orders', id: 'a', merchant: 'b', amount: 'c', time: 'd' },
      cancels: { table: 'x.y', id: 'a', merchant: 'b', amount: 'c', time: 'd' },
    })).toThrow(/schema-qualified/);
  });
});

describe('earliestFactMinuteBound', () => {
  const row = (at: string, id = '1') => ({ payment_id: id, merchant_id: '7', amount: '100', approved_at: at });
  const ev = (op: RowChange['op'], r: Record<string, string> | null, old: Record<string, string> | null) =>
    Buffer.from(encodeEvent({ v: 1, lsn: '0/10', seq: 0, commitTs: '2026-11-21T12:00:00Z', xid: 1, table: 'public.payments', op, row: r, old }));
  const exact = (b: Buffer) => Math.min(...factsOf(decodeEvent(b) as RowChange, referenceMapping).map((f) => f.minuteMs));

  it('equals the earliest fact minute of inserts, updates and deletes, without parsing', () => {
    for (const b of [
      ev('insert', row('2026-11-21T10:15:42.123Z'), null),
      ev('update', row('2026-11-21T10:15:42Z'), row('2026-11-20T23:59:59.999+09:00')),
      ev('delete', null, row('2026-11-19 08:00:30+00')),
    ]) expect(earliestFactMinuteBound(b, referenceMapping)).toBe(exact(b));
  });

  it('says null for a heartbeat and undefined when the bytes do not tell', () => {
    expect(earliestFactMinuteBound(Buffer.from(encodeEvent(heartbeat('0/10', '2026-11-21T12:00:00Z'))), referenceMapping)).toBeNull();
    expect(earliestFactMinuteBound(Buffer.from('{"v":1,"op":"insert","row":{"approved_at":1700000000}}'), referenceMapping)).toBeUndefined();
    expect(earliestFactMinuteBound(Buffer.from('{"approved_at":"not a time"}'), referenceMapping)).toBeUndefined();
    expect(earliestFactMinuteBound(null, referenceMapping)).toBeUndefined();
  });
});
