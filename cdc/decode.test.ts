import { describe, expect, it } from 'vitest';
import type { Pgoutput } from 'pg-logical-replication';
import { convertValue, relationDiff, timestampToIso, toRowChange } from './decode.ts';

const rel = (cols: [string, number][]): Pgoutput.MessageRelation => ({
  tag: 'relation', relationOid: 1, schema: 'public', name: 'payments', replicaIdentity: 'full', keyColumns: ['payment_id'],
  columns: cols.map(([name, typeOid]) => ({ name, typeOid, flags: 0, typeMod: -1, typeSchema: null, typeName: null, parser: (s: string) => s })),
});
const payments = rel([['payment_id', 20], ['merchant_id', 20], ['amount', 1700], ['approved_at', 1184], ['note', 25], ['n', 23], ['ok', 16]]);
const tx = { lsn: '0/1A2B3C4', commitTs: '2026-11-21T08:00:00.123Z', xid: 7 };

describe('decode', () => {
  it('keeps bigint and numeric as strings, timestamps as ISO UTC, ints and booleans as JSON', () => {
    expect(convertValue('9223372036854775807', 20)).toBe('9223372036854775807');
    expect(convertValue('12.50', 1700)).toBe('12.50');
    expect(convertValue('42', 23)).toBe(42);
    expect(convertValue('t', 16)).toBe(true);
    expect(convertValue(null, 20)).toBeNull();
    expect(timestampToIso('2026-11-21 17:00:01.123456+09', false)).toBe('2026-11-21T08:00:01.123Z');
    expect(timestampToIso('2026-11-21 08:00:01+05:30', false)).toBe('2026-11-21T02:30:01.000Z');
    expect(timestampToIso('2026-11-21 08:00:01', true)).toBe('2026-11-21T08:00:01.000Z');
    expect(timestampToIso('infinity', false)).toBe('infinity');
    // the cheap path for a UTC session, against the general one
    for (const [t, utc] of [['2026-11-21 08:00:07+00', false], ['2026-11-21 08:00:07.1+00', false], ['2026-11-21 08:00:07.12+00', false],
      ['2026-11-21 08:00:07.123456+00', false], ['2026-11-21 08:00:07.5', true], ['2026-11-21 08:00:07', true]] as const) {
      expect(timestampToIso(t, utc)).toBe(new Date(t.replace(' ', 'T').replace('+00', 'Z') + (utc ? 'Z' : '')).toISOString());
    }
    expect(timestampToIso('2026-11-21 08:00:07 BC', true)).toBe('2026-11-21 08:00:07 BC');
    expect(timestampToIso('0099-11-21 08:00:07+00', false)).toBe('0099-11-21 08:00:07+00');
  });

  it('encodes an insert with the transaction position', () => {
    const { change } = toRowChange({ tag: 'insert', relation: payments, new: { payment_id: '1', merchant_id: '42', amount: '15000', approved_at: '2026-11-21 07:59:58+00', note: 'x', n: '3', ok: 'f' } }, tx, 4);
    expect(change).toEqual({
      v: 1, lsn: '0/1A2B3C4', seq: 4, commitTs: tx.commitTs, xid: 7, table: 'public.payments', op: 'insert',
      row: { payment_id: '1', merchant_id: '42', amount: '15000', approved_at: '2026-11-21T07:59:58.000Z', note: 'x', n: 3, ok: false }, old: null,
    });
  });

  it('carries old rows of updates and deletes; key-only old rows stay partial', () => {
    const old = { payment_id: '1', merchant_id: '42', amount: '1', approved_at: '2026-11-21 07:59:58+00', note: null, n: null, ok: null };
    const u = toRowChange({ tag: 'update', relation: payments, key: null, old, new: { ...old, amount: '2' } }, tx, 0).change;
    expect(u.old!.amount).toBe('1');
    expect(u.row!.amount).toBe('2');
    const d = toRowChange({ tag: 'delete', relation: payments, key: { payment_id: '1' }, old: null }, tx, 1).change;
    expect(d.row).toBeNull();
    expect(d.old).toEqual({ payment_id: '1' });
  });

  it('leaves out unchanged TOAST columns it cannot fill, and reports them', () => {
    // pg-logical-replication sets an unchanged TOAST value to the old row's value, or undefined without one.
    const r = toRowChange({ tag: 'update', relation: payments, key: null, old: null, new: { payment_id: '1', merchant_id: '42', amount: '2', approved_at: '2026-11-21 07:59:58+00', note: undefined, n: '1', ok: 't' } }, tx, 0);
    expect(r.unchangedToast).toEqual(['note']);
    expect('note' in r.change.row!).toBe(false);
  });

  it('reports column changes of a relation', () => {
    expect(relationDiff(['a', 'b', 'c'], ['a', 'c', 'd'])).toEqual({ added: ['d'], dropped: ['b'] });
  });
});
