import { describe, expect, it } from 'vitest';
import { referenceMapping, validateMapping } from '../lib/mapping.ts';
import { mappedColumnProblem, typeName } from './columns.ts';

const col = (name: string, typeOid: number, typeMod = -1) => ({ name, typeOid, typeMod });
const payments = [col('payment_id', 20), col('merchant_id', 20), col('amount', 20), col('approved_at', 1184)];

describe('mappedColumnProblem (a Relation message against the mapping)', () => {
  it('lets unmapped columns come, go and change type', () => {
    expect(mappedColumnProblem('public.payments', payments, referenceMapping)).toBeNull();
    expect(mappedColumnProblem('public.payments', [...payments, col('memo', 1043, 104), col('card', 25)], referenceMapping)).toBeNull();
    expect(mappedColumnProblem('public.payments', [col('merchant_id', 25), col('payment_id', 25), col('approved_at', 1114), col('amount', 1700, (18 << 16) + 4)], referenceMapping)).toBeNull();
    expect(mappedColumnProblem('public.audit', [col('x', 17)], referenceMapping)).toBeNull();
  });
  it('names table, column, mapping field and fix for a mapped column that is gone or retyped beyond reading', () => {
    const gone = mappedColumnProblem('public.payments', payments.filter((c) => c.name !== 'amount'), referenceMapping)!;
    expect(gone.message).toMatch(/^mapped column public\.payments\.amount \(RISKMON_MAPPING "approvals\.amount"\) is gone \(dropped or renamed; public\.payments now has payment_id, merchant_id, approved_at\)/);
    expect(gone.message).toMatch(/Fix: set RISKMON_MAPPING "approvals\.amount" to the column that now holds it, or restore it/);
    const retyped = mappedColumnProblem('public.payments', payments.map((c) => (c.name === 'amount' ? col('amount', 1700) : c)), referenceMapping)!;
    expect(retyped.message).toMatch(/amount \(RISKMON_MAPPING "approvals\.amount"\) now has type numeric: an amount must be an integer type/);
    expect(retyped.message).toMatch(/Fix: ALTER TABLE "public"\."payments" ALTER COLUMN "amount" TYPE bigint/);
    const time = mappedColumnProblem('public.payments', payments.map((c) => (c.name === 'approved_at' ? col('approved_at', 25) : c)), referenceMapping)!;
    expect(time.message).toMatch(/approved_at .* now has type text: a transaction time must be timestamptz/);
  });
  it('checks both sides of a table that carries approvals and cancels', () => {
    const m = validateMapping({
      approvals: { table: 'pay.payments', id: 'id', merchant: 'store', amount: 'amount', time: 'approved_at' },
      cancels: { table: 'pay.payments', id: 'id', merchant: 'store', amount: 'canceled_amount', time: 'canceled_at' },
    });
    const cols = [col('id', 20), col('store', 25), col('amount', 20), col('approved_at', 1184), col('canceled_amount', 20)];
    expect(mappedColumnProblem('pay.payments', cols, m)!.message).toMatch(/pay\.payments\.canceled_at \(RISKMON_MAPPING "cancels\.time"\) is gone/);
    expect(mappedColumnProblem('pay.payments', [...cols, col('canceled_at', 1184)], m)).toBeNull();
  });
  it('names types as PostgreSQL writes them', () => {
    expect(typeName(1700, ((12 << 16) | 2) + 4)).toBe('numeric(12,2)');
    expect(typeName(1043, 68)).toBe('varchar(64)');
    expect(typeName(99999, -1)).toBe('type oid 99999');
  });
});
