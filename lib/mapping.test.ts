import { describe, expect, it } from 'vitest';
import type { RowChange } from './events.ts';
import { BadRowError, factsOf, merchantOf, referenceMapping, validateMapping } from './mapping.ts';

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
