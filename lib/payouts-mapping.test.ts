import { describe, expect, it } from 'vitest';
import type { RowChange } from './events.ts';
import { BadRowError, columnsOf, factsOf, mappedColumns, merchantOf, payoutsOf, referenceMapping, rowIdOf, tablesOf, validateMapping } from './mapping.ts';

const row = (id: string, m: string, covers: string, paid: string, amount = '500') => ({ payout_id: id, merchant_id: m, amount, covers_to: covers, paid_at: paid });
const change = (op: RowChange['op'], r: RowChange['row'], old: RowChange['old'] = null): RowChange =>
  ({ v: 1, lsn: '0/10', seq: 0, commitTs: '2026-12-10T00:00:00Z', xid: 1, table: 'public.payouts', op, row: r, old });

describe('payouts in the mapping', () => {
  it('the reference mapping publishes public.payouts with its columns; payout changes carry no facts', () => {
    expect(tablesOf(referenceMapping)).toEqual(['public.payments', 'public.payment_cancels', 'public.payouts']);
    expect(columnsOf('public.payouts', referenceMapping)).toEqual(['payout_id', 'merchant_id', 'amount', 'covers_to', 'paid_at']);
    expect(mappedColumns('public.payouts', referenceMapping).map((c) => c.field)).toEqual(['payouts.id', 'payouts.merchant', 'payouts.amount', 'payouts.coversTo', 'payouts.paidAt']);
    const e = change('insert', row('9', '42', '2026-12-08T15:00:00Z', '2026-12-10T00:00:00Z'));
    expect(factsOf(e, referenceMapping)).toEqual([]);
    expect(merchantOf(e, referenceMapping)).toBe('42');
    expect(rowIdOf(e, referenceMapping)).toBe('9');
  });

  it('insert adds the row, delete removes the old, update does both; an update that changes nothing read is nothing', () => {
    const a = row('9', '42', '2026-12-08T15:00:00Z', '2026-12-10T00:00:00Z'), b = { ...a, paid_at: '2026-12-11T00:00:00Z' };
    const pa = { id: '9', merchantId: '42', amount: 500n, coversToMs: Date.parse(a.covers_to), paidAtMs: Date.parse(a.paid_at) };
    expect(payoutsOf(change('insert', a), referenceMapping)).toEqual([{ sign: 1, payout: pa }]);
    expect(payoutsOf(change('delete', null, a), referenceMapping)).toEqual([{ sign: -1, payout: pa }]);
    expect(payoutsOf(change('update', b, a), referenceMapping)).toEqual([{ sign: -1, payout: pa }, { sign: 1, payout: { ...pa, paidAtMs: Date.parse(b.paid_at) } }]);
    expect(payoutsOf(change('update', { ...a }, a), referenceMapping)).toEqual([]);
    expect(() => payoutsOf(change('update', b, null), referenceMapping)).toThrow(/REPLICA IDENTITY FULL/);
    expect(() => payoutsOf(change('insert', { ...a, paid_at: null }), referenceMapping)).toThrow(BadRowError);
    expect(() => payoutsOf(change('insert', { ...a, merchant_id: 'a b' }), referenceMapping)).toThrow(/not a merchant id/);
    expect(() => payoutsOf(change('insert', { ...a, payout_id: 'p\u00011' }), referenceMapping)).toThrow(/control character/);
  });

  it('a user mapping: payouts optional; checked with errors that say what is wrong', () => {
    const base = { approvals: referenceMapping.approvals, cancels: referenceMapping.cancels };
    expect(validateMapping(base).payouts).toBeUndefined();
    expect(tablesOf(validateMapping(base))).toEqual(['public.payments', 'public.payment_cancels']);
    const m = validateMapping({ ...base, payouts: { table: 'acct.settlements', merchant: 'shop', coversTo: 'period_end', paidAt: 'paid' } });
    expect(m.payouts).toEqual({ table: 'acct.settlements', merchant: 'shop', coversTo: 'period_end', paidAt: 'paid' });
    const e = { ...change('insert', { shop: 'S-1', period_end: '2026-12-08T15:00:00Z', paid: '2026-12-10T00:00:00Z' }), table: 'acct.settlements' };
    expect(payoutsOf(e, m)).toEqual([{ sign: 1, payout: { id: '', merchantId: 'S-1', amount: 0n, coversToMs: Date.parse('2026-12-08T15:00:00Z'), paidAtMs: Date.parse('2026-12-10T00:00:00Z') } }]);
    expect(() => validateMapping({ ...base, payouts: { table: 'acct.settlements', merchant: 'shop', coversTo: 'period_end' } })).toThrow(/"payouts.paidAt" must be a non-empty string/);
    expect(() => validateMapping({ ...base, payouts: { table: 'settlements', merchant: 'shop', coversTo: 'a', paidAt: 'b' } })).toThrow(/schema-qualified/);
    expect(() => validateMapping({ ...base, payouts: { table: 'public.payments', merchant: 'shop', coversTo: 'a', paidAt: 'b' } })).toThrow(/table of their own/);
    expect(() => validateMapping({ ...base, payouts: { table: 'acct.s', merchant: 'shop', coversTo: 'a', paidAt: 'a' } })).toThrow(/same column/);
  });
});
