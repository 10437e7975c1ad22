import { describe, expect, it } from 'vitest';
import { decodeEvent, type RowChange } from './events.ts';
import { BadRowError, FactScanner, factsOf, incompatibleType, isMerchantId, merchantOf, referenceMapping, tablesOf, trimRow, validateMapping, type Fact, type Mapping } from './mapping.ts';
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
    expect(fast).toBe(12); // the plain ones above: envelope and row variants decodeEvent accepts in the common shape
  });
});

/** Approvals and cancels on one row: payments(payment_id, store, amount, approved_at, canceled_amount, canceled_at). */
const sameRow: Mapping = validateMapping({
  approvals: { table: 'pay.payments', id: 'payment_id', merchant: 'store', amount: 'amount', time: 'approved_at' },
  cancels: { table: 'pay.payments', id: 'payment_id', merchant: 'store', amount: 'canceled_amount', time: 'canceled_at' },
  merchants: { table: 'pay.stores', id: 'store_code', name: 'display_name' },
});

/** The plain reference: the facts a row stands for, each side while its time is not NULL. */
function standing(row: Record<string, any>): string[] {
  const out: string[] = [];
  for (const [kind, amount, time] of [['approval', 'amount', 'approved_at'], ['cancel', 'canceled_amount', 'canceled_at']] as const) {
    if (row[time] === null) continue;
    if (row[amount] === null) throw new Error('bad');
    out.push(`${row.store}|${kind}|${Math.floor(Date.parse(row[time]) / 60_000) * 60_000}|${row[amount]}`);
  }
  return out;
}

/** Bucket totals (count, amount) per merchant|kind|minute of signed facts, zeros left out. */
function buckets(items: [string, number][]): Map<string, string> {
  const sums = new Map<string, [number, bigint]>();
  for (const [f, sign] of items) {
    const [m, kind, minute, amount] = f.split('|');
    const k = `${m}|${kind}|${minute}`;
    const s = sums.get(k) ?? [0, 0n];
    sums.set(k, [s[0] + sign, s[1] + BigInt(sign) * BigInt(amount)]);
  }
  return new Map([...sums].filter(([, [n, a]]) => n !== 0 || a !== 0n).map(([k, [n, a]]) => [k, `${n}/${a}`]));
}
const asItems = (fs: Fact[]) => fs.map((f) => [`${f.merchantId}|${f.kind}|${f.minuteMs}|${f.amount}`, f.sign] as [string, number]);

describe('approvals and cancels on one table', () => {
  const rows: Record<string, any>[] = [];
  for (const store of ['S-0001', 'S-0002'])
    for (const approved_at of [null, '2026-12-07T01:00:10.000Z', '2026-12-07T01:01:10.000Z'])
      for (const canceled_at of [null, '2026-12-07T01:00:50.000Z', '2026-12-07T02:00:00.000Z'])
        for (const amount of ['1000', '2000'])
          for (const canceled_amount of [null, '500'])
            rows.push({ payment_id: '7', store, amount, approved_at, canceled_amount, canceled_at, note: 'x' });
  const change = (op: 'insert' | 'update' | 'delete', old: Record<string, any> | null, row: Record<string, any> | null): RowChange =>
    ({ ...base, table: 'pay.payments', op, old, row });
  const scanner = new FactScanner(sameRow);

  it(`signs every insert, delete and update of ${rows.length} row versions exactly as the plain reference`, () => {
    let checked = 0, bad = 0, fast = 0;
    const check = (e: RowChange, expected: () => [string, number][]) => {
      let want: Map<string, string> | 'bad';
      try { want = buckets(expected()); } catch { want = 'bad'; }
      if (want === 'bad') { expect(() => factsOf(e, sameRow)).toThrow(BadRowError); bad++; return; }
      const fs = factsOf(e, sameRow);
      expect(buckets(asItems(fs))).toEqual(want);
      if (scanner.read(Buffer.from(JSON.stringify(e)))) {
        fast++;
        expect(Array.from({ length: scanner.n }, (_, j) => ({ merchantId: scanner.merchant(j), kind: scanner.kind[j] ? 'cancel' : 'approval', minuteMs: scanner.minuteMs[j], sign: scanner.sign[j], amount: BigInt(scanner.amount[j]) }))).toEqual(fs);
      }
      checked++;
    };
    for (const r of rows) {
      check(change('insert', null, r), () => standing(r).map((f) => [f, 1]));
      check(change('delete', r, null), () => standing(r).map((f) => [f, -1]));
      for (const o of rows) check(change('update', o, r), () => [...standing(o).map((f) => [f, -1] as [string, number]), ...standing(r).map((f) => [f, 1] as [string, number])]);
    }
    expect(checked + bad).toBe(rows.length * (rows.length + 2));
    expect(bad).toBeGreaterThan(0);
    expect(fast).toBe(checked);
  }, 60_000);

  it('a cancel is an update that sets canceled_at; setting it back to NULL revokes it', () => {
    const paid = { payment_id: '7', store: 'S-0001', amount: '1000', approved_at: '2026-12-07T01:00:10Z', canceled_amount: null, canceled_at: null };
    const canceled = { ...paid, canceled_amount: '400', canceled_at: '2026-12-07T03:00:00Z' };
    expect(factsOf(change('insert', null, paid), sameRow)).toMatchObject([{ kind: 'approval', sign: 1, amount: 1000n, merchantId: 'S-0001' }]);
    expect(factsOf(change('update', paid, canceled), sameRow)).toEqual([
      { merchantId: 'S-0001', kind: 'cancel', minuteMs: Date.parse('2026-12-07T03:00:00Z'), sign: 1, amount: 400n },
    ]);
    expect(factsOf(change('update', canceled, paid), sameRow)).toEqual([
      { merchantId: 'S-0001', kind: 'cancel', minuteMs: Date.parse('2026-12-07T03:00:00Z'), sign: -1, amount: 400n },
    ]);
    expect(factsOf(change('delete', canceled, null), sameRow).map((f) => [f.kind, f.sign])).toEqual([['approval', -1], ['cancel', -1]]);
    expect(tablesOf(sameRow)).toEqual(['pay.payments']);
  });

  it('refuses a mapping whose two sides share one time column', () => {
    expect(() => validateMapping({ approvals: sameRow.approvals, cancels: { ...sameRow.cancels, time: 'approved_at' } })).toThrow(/each needs its own time column/);
  });
});

describe('merchant ids', () => {
  it('accepts up to 64 characters of [A-Za-z0-9_.:-] and dead-letters any other id with its reason', () => {
    for (const ok of ['42', 'S-0001', 'shop.kr:seoul_01', 'a'.repeat(64)]) expect(isMerchantId(ok), ok).toBe(true);
    for (const no of ['', 'a'.repeat(65), 'a b', 'a#1', 'mé', 'a*', '{p1}', 'x\n']) expect(isMerchantId(no), no).toBe(false);
    const e: RowChange = { ...base, table: 'public.payments', op: 'insert', row: pay('1', 'S 1', '10', '2026-11-21T07:59:58Z'), old: null };
    expect(() => factsOf(e, referenceMapping)).toThrow(/merchant_id="S 1" is not a merchant id riskmon accepts \(1 to 64 characters/);
    expect(new FactScanner(referenceMapping).read(Buffer.from(JSON.stringify(e)))).toBe(false);
    const text: RowChange = { ...e, row: pay('1', 'S-0003', '10', '2026-11-21T07:59:58Z') };
    expect(factsOf(text, referenceMapping)).toMatchObject([{ merchantId: 'S-0003' }]);
  });
});

describe('schema checks and trimming', () => {
  it('knows which column types can play which role', () => {
    expect(incompatibleType('amount', 20, -1)).toBeNull();
    expect(incompatibleType('amount', 1700, -1)).toMatch(/integer type/); // numeric without a scale may hold fractions
    expect(incompatibleType('amount', 1700, (18 << 16) + 4)).toBeNull(); // numeric(18, 0)
    expect(incompatibleType('amount', 1700, ((18 << 16) | 2) + 4)).toMatch(/integer type/);
    expect(incompatibleType('time', 1184, -1)).toBeNull();
    expect(incompatibleType('time', 25, -1)).toMatch(/timestamptz/);
    expect(incompatibleType('merchant', 25, -1)).toBeNull();
    expect(incompatibleType('merchant', 1184, -1)).toMatch(/merchant id/);
    expect(incompatibleType('id', 17, -1)).toBeNull();
  });
  it('keeps only the mapped columns of a row', () => {
    expect(trimRow({ payment_id: '1', card_number: '4111', store: 'S-1', note: null }, ['payment_id', 'store', 'amount'])).toEqual({ payment_id: '1', store: 'S-1' });
    expect(trimRow(null, ['a'])).toBeNull();
  });
  it('reads an optional merchant directory', () => {
    expect(sameRow.merchants).toEqual({ table: 'pay.stores', id: 'store_code', name: 'display_name' });
    expect(() => validateMapping({ ...referenceMapping, merchants: { table: 'stores', id: 'a', name: 'b' } })).toThrow(/merchants\.table" must be schema-qualified/);
    expect(() => validateMapping({ ...referenceMapping, merchants: { table: 'x.stores', id: 'a' } })).toThrow(/merchants\.name/);
  });
});
