import { describe, expect, it } from 'vitest';
import type { Pgoutput } from 'pg-logical-replication';
import { parseLsn } from '../lib/lsn.ts';
import { convertValue, relationDiff, TextPgoutputPlugin, timestampToIso, toRowChange } from './decode.ts';

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

describe('TextPgoutputPlugin', () => {
  // pgoutput messages (protocol version 1) as the walsender sends them
  const int = (n: number, bytes: number) => { const b = Buffer.alloc(bytes); if (bytes === 2) b.writeInt16BE(n); else b.writeInt32BE(n); return b; };
  const i64 = (hi: number, lo: number) => Buffer.concat([int(hi, 4), int(lo >> 0, 4)]);
  const cstr = (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);
  const relation = Buffer.concat([Buffer.from('R'), int(16385, 4), cstr('public'), cstr('payments'), Buffer.from('f'), int(4, 2),
    ...[['payment_id', 20], ['merchant_id', 20], ['note', 25], ['blob', 17]].map(([n, t]) => Buffer.concat([Buffer.from([1]), cstr(n as string), int(t as number, 4), int(-1, 4)]))]);
  const text = (s: string) => { const v = Buffer.from(s); return Buffer.concat([Buffer.from('t'), int(v.length, 4), v]); };
  const insert = (...cols: Buffer[]) => Buffer.concat([Buffer.from('I'), int(16385, 4), Buffer.from('N'), int(cols.length, 2), ...cols]);
  // commit time 2026-11-21T08:00:00.123456Z in µs since 2000-01-01
  const us = (Date.UTC(2026, 10, 21, 8, 0, 0, 123) - Date.UTC(2000, 0, 1)) * 1000 + 456;
  const time = i64(Math.floor(us / 2 ** 32), us % 2 ** 32);
  const begin = Buffer.concat([Buffer.from('B'), i64(0x16, 0xb374d848), time, int(987654, 4)]);
  const commit = Buffer.concat([Buffer.from('C'), Buffer.from([0]), i64(0x16, 0xb374d848), i64(0x16, 0xb374d878), time]);

  it('reads begin and commit as the library does, without its strings and BigInts', () => {
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    // the library's own parser (the plugin's, which its parse delegates to for every other message)
    const lib = (new TextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] }) as any).parser;
    const b = plugin.decode(begin), lb = lib.parse(begin) as Pgoutput.MessageBegin;
    expect(b).toEqual({ tag: 'begin', lsn: '16/B374D848', lsnBig: 0x16b374d848n, commitMs: Number((lb.commitTime as bigint) / 1000n), xid: lb.xid });
    expect(b.tag === 'begin' && parseLsn(lb.commitLsn!)).toBe(0x16b374d848n);
    expect(new Date((b as { commitMs: number }).commitMs).toISOString()).toBe('2026-11-21T08:00:00.123Z');
    const c = plugin.decode(commit), lc = lib.parse(commit) as Pgoutput.MessageCommit;
    expect(c).toEqual({ tag: 'commit', endLsn: parseLsn(lc.commitEndLsn!) });
  });

  it('reads inserts exactly as the library does: text, null, unchanged TOAST, binary, a byte-order mark', () => {
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    const lib = (new TextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] }) as any).parser;
    const libParse = (buf: Buffer) => lib.parse(buf);
    plugin.decode(relation);
    libParse(relation);
    for (const ins of [
      insert(text('1'), text('42'), text('héllo ✓'), Buffer.concat([Buffer.from('b'), int(3, 4), Buffer.from([1, 2, 3])])),
      insert(text('2'), Buffer.from('n'), Buffer.from('u'), Buffer.from('n')),
      insert(text('3'), text('7'), text('\uFEFFbom'), text('')),
    ]) {
      const mine = plugin.decode(ins) as Pgoutput.MessageInsert, theirs = libParse(ins) as Pgoutput.MessageInsert;
      expect(mine.tag).toBe('insert');
      expect(mine.relation).toBe((plugin as any).parser._relationCache.get(16385));
      expect(Object.getPrototypeOf(mine.new)).toBeNull();
      expect({ ...mine.new }).toEqual({ ...theirs.new });
      expect(Object.keys(mine.new)).toEqual(Object.keys(theirs.new));
    }
    expect(() => plugin.decode(insert(text('1')).subarray(0, 12))).toThrow(/unexpected end/);
    expect(() => plugin.decode(Buffer.concat([Buffer.from('I'), int(99, 4), Buffer.from('N'), int(0, 2)]))).toThrow(/missing relation/);
  });
});
