import { describe, expect, it } from 'vitest';
import { BadEventError, decodeEvent, encodeEvent, heartbeat } from './events.ts';

describe('decodeEvent', () => {
  it('round-trips the contract format and heartbeats', () => {
    const e = { v: 1, lsn: '0/1A2B3C4', seq: 0, commitTs: '2026-11-21T08:00:00.123Z', xid: 1234, table: 'public.payments', op: 'insert',
      row: { payment_id: '1', merchant_id: '42', amount: '15000', approved_at: '2026-11-21T07:59:58.000Z' }, old: null };
    expect(decodeEvent(Buffer.from(JSON.stringify(e)))).toEqual(e);
    const hb = heartbeat('0/5', '2026-11-21T08:00:01Z');
    expect(decodeEvent(encodeEvent(hb))).toEqual(hb);
  });
  it('says what is malformed', () => {
    expect(() => decodeEvent('{')).toThrow(BadEventError);
    expect(() => decodeEvent(JSON.stringify({ v: 2 }))).toThrow(/unsupported version/);
    expect(() => decodeEvent(JSON.stringify({ v: 1, lsn: 'x', seq: 0 }))).toThrow(/bad lsn/);
    expect(() => decodeEvent(JSON.stringify({ v: 1, lsn: '0/1', seq: 0, commitTs: '2026-11-21T08:00:00Z', op: 'insert', table: 't', row: null }))).toThrow(/insert without row/);
    expect(() => decodeEvent(null)).toThrow(/empty/);
  });
});
