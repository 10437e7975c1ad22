import { describe, expect, it } from 'vitest';
import { encodeEvent } from '../lib/events.ts';
import { cdcDeadLetterPosition as dlqPosition, encodeCdcDeadLetter } from '../lib/dead-letters.ts';
import { readablePosition } from './tails.ts';
import { decodeEvent } from '../lib/events.ts';
import { parseLsn } from '../lib/lsn.ts';

const event = { v: 1, lsn: '0/1A2B3C4', seq: 2, commitTs: '2026-11-21T08:00:00.123Z', xid: 7, table: 'public.payments', op: 'insert',
  row: { payment_id: '1', merchant_id: '42', amount: '15000', approved_at: '2026-11-21T07:59:58.000Z' }, old: null } as const;
const eventPosition = (v: Buffer | null) => { const e = decodeEvent(v); return { lsn: parseLsn(e.lsn), seq: e.seq }; };

describe('restart tails step over messages this cdc did not write', () => {
  it('reads its own change events and dead letters', () => {
    expect(readablePosition(eventPosition, Buffer.from(encodeEvent(event as never)))).toEqual({ lsn: parseLsn('0/1A2B3C4'), seq: 2 });
    expect(readablePosition(dlqPosition, Buffer.from(encodeCdcDeadLetter('x', event)))).toEqual({ lsn: parseLsn('0/1A2B3C4'), seq: 2 });
  });

  it("garbage on the change topic and the aggregator's dead letters are not positions", () => {
    expect(readablePosition(eventPosition, Buffer.from('this is not a change event'))).toBeNull();
    expect(readablePosition(eventPosition, null)).toBeNull();
    // The aggregator dead-letters the original message (reason in a header): a change event, or garbage.
    expect(readablePosition(dlqPosition, Buffer.from(encodeEvent(event as never)))).toBeNull();
    expect(readablePosition(dlqPosition, Buffer.from('this is not a change event'))).toBeNull();
    expect(readablePosition(dlqPosition, Buffer.alloc(0))).toBeNull();
  });
});
