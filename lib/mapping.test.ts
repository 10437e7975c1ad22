import { describe, expect, it } from 'vitest';
import { decodeEvent, type RowChange } from './events.ts';
import { BadRowError, FactScanner, factsOf, merchantOf, referenceMapping, validateMapping } from './mapping.ts';
import { parseLsn } from './lsn.ts';

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


describe('FactScanner (the replay reading events from their bytes)', () => {
  const row = { payment_id: '1', merchant_id: '42', amount: '15000', approved_at: '2026-11-21T07:59:58.000Z' };
  const ev = (over: Record<string, unknown>) => JSON.stringify({ v: 1, lsn: '0/1A2B3C4', seq: 3, commitTs: '2026-11-21T08:00:00.123Z', xid: 9, table: 'public.payments', op: 'insert', row, old: null, ...over });
  const cases = [
    ev({}), ev({ op: 'update', old: { ...row, amount: '10' } }), ev({ op: 'update', old: row }), ev({ op: 'delete', row: null, old: row }),
    ev({ op: 'delete', row: null, old: null }), ev({ op: 'delete', row: null }), ev({ table: 'public.payment_cancels', row: { cancel_id: '1', merchant_id: '42', amount: '5', canceled_at: '2026-02-29T23:59:59.999Z' } }),
    ev({ table: 'public.other' }), ev({ op: 'heartbeat', table: null, row: null }), ev({ op: 'truncate', row: null }), ev({ v: 2 }), ev({ v: '1' }),
    ev({ lsn: 'x/1' }), ev({ lsn: '123456789/1' }), ev({ seq: -1 }), ev({ seq: 1.5 }), ev({ commitTs: 'soon' }), ev({ commitTs: '2026-11-21T08:00:00+09:00' }),
    ev({ row: { ...row, amount: 15000 } }), ev({ row: { ...row, amount: 1.5 } }), ev({ row: { ...row, amount: '0x10' } }), ev({ row: { ...row, amount: ' 1' } }),
    ev({ row: { ...row, amount: '-7' } }), ev({ row: { ...row, amount: '1234567890123456789' } }), ev({ row: { ...row, amount: null } }),
    ev({ row: { ...row, merchant_id: '' } }), ev({ row: { ...row, merchant_id: 42 } }), ev({ row: { ...row, merchant_id: 'm\u00e9' } }), ev({ row: { ...row, merchant_id: 'a"b' } }),
    ev({ row: { ...row, approved_at: '2026-11-31T00:00:00.000Z' } }), ev({ row: { ...row, approved_at: '0050-01-01T00:00:00.000Z' } }), ev({ row: { ...row, approved_at: 12 } }),
    ev({ row: { ...row, note: { a: [1] }, flag: true, n: null, x: -1.5e3 } }), ev({ row: [] }), ev({ row: null }), ev({ extra: 1 }),
    ev({}).replace('"seq":3', '"seq":03'), ev({}).replace('"seq":3', '"seq":3,"seq":4'), ev({}).replace('{', ' {'), ev({}) + 'x', ev({}).replace('"1"', '"\u0001"'),
    '{}', '[]', 'null', '', '{"v":1',
  ];
  it('reads what decodeEvent + factsOf read, and leaves them everything else', () => {
    const fs = new FactScanner(referenceMapping);
    let fast = 0;
    for (const c of cases) {
      const b = Buffer.from(c);
      if (!fs.read(b)) continue;
      fast++;
      const e = decodeEvent(b); // never throws for what the scanner read
      expect([fs.event.commitMs, fs.event.op, fs.event.seq], c).toEqual([Date.parse(e.commitTs), e.op, e.seq]);
      expect((BigInt(fs.event.lsnHi) << 32n) | BigInt(fs.event.lsnLo), c).toBe(parseLsn(e.lsn));
      if (e.op === 'heartbeat') continue;
      const got = Array.from({ length: fs.n }, (_, j) => ({ merchantId: fs.merchant(j), kind: fs.kind[j] ? 'cancel' : 'approval', minuteMs: fs.minuteMs[j], sign: fs.sign[j], amount: BigInt(fs.amount[j]) }));
      expect(got, c).toEqual(factsOf(e, referenceMapping));
    }
    expect(fast).toBe(13); // the plain ones above: envelope and row variants decodeEvent accepts in the common shape
  });
});
