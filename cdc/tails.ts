/**
 * The restart check. On start, the position (lsn, seq) of the last message of every partition is read; a change
 * whose position is ≤ the tail of the partition it is routed to was published before the crash and is skipped.
 * Per partition, because a transaction spread over several partitions may have reached some and not others.
 */
import type { Kafka } from 'kafkajs';
import { decodeEvent } from '../lib/events.ts';
import { parseLsn } from '../lib/lsn.ts';
import { TopicReader, type FetchedMessage } from '../lib/kafka/index.ts';

export interface Position { lsn: bigint; seq: number }

export function atOrBefore(lsn: bigint, seq: number, tail: Position | undefined): boolean {
  return tail !== undefined && (lsn < tail.lsn || (lsn === tail.lsn && seq <= tail.seq));
}

const eventPosition = (v: Buffer | null): Position => { const e = decodeEvent(v); return { lsn: parseLsn(e.lsn), seq: e.seq }; };

/**
 * Tail positions of every partition of `topic`: the position of the last message `positionOf` can read
 * (default: a change event). A message it cannot read was not written by this cdc — garbage from another producer
 * on the change topic, or the aggregator's dead letters (the original message, reason in a header) on the shared
 * dead-letter topic — and is stepped over: otherwise one such message at a tail keeps the cdc from ever resuming.
 */
export async function readTails(kafka: Kafka, topic: string, positionOf: (value: Buffer | null) => Position = eventPosition,
  o: { settleMs?: number; maxSettleMs?: number } = {}): Promise<Map<number, Position>> {
  const reader = await TopicReader.open(kafka, topic);
  try {
    const out = new Map<number, Position>();
    const marks = o.settleMs ? await settledWatermarks(reader, o.settleMs, o.maxSettleMs ?? 30_000) : await reader.watermarks();
    await Promise.all([...marks].map(async ([p, { low, high }]) => {
      const pos = await lastReadable(reader, p, low, high, positionOf);
      if (pos) out.set(p, pos);
    }));
    return out;
  } finally {
    await reader.close();
  }
}

/**
 * The watermarks once no partition's high watermark moved for `settleMs`. Nothing writes to the change topic while
 * the cdc starts a session, yet after a leader change the new leader may hold messages of the previous session
 * beyond its high watermark (written, not yet replicated to the in-sync replicas); they become visible when the
 * followers catch up. Reading the tail before that would re-publish them: wait until the marks stand still (bounded
 * by `maxMs`, after which the tail is read anyway and the aggregator's (lsn, seq) check absorbs a duplicate).
 */
async function settledWatermarks(reader: TopicReader, settleMs: number, maxMs: number): Promise<Map<number, { low: bigint; high: bigint }>> {
  const deadline = performance.now() + maxMs;
  let prev = await reader.watermarks();
  for (;;) {
    await new Promise((r) => setTimeout(r, settleMs));
    const now = await reader.watermarks();
    if ([...now].every(([p, m]) => prev.get(p)?.high === m.high) || performance.now() > deadline) return now;
    prev = now;
  }
}

/** positionOf(value), or null when it cannot read it. */
export function readablePosition(positionOf: (value: Buffer | null) => Position, value: Buffer | null): Position | null {
  try {
    const pos = positionOf(value);
    return typeof pos?.lsn === 'bigint' && Number.isInteger(pos.seq) ? pos : null;
  } catch {
    return null;
  }
}

/** Windows of growing size back from the end; normally the batch at high-1 holds the answer. */
async function lastReadable(reader: TopicReader, p: number, low: bigint, high: bigint, positionOf: (value: Buffer | null) => Position): Promise<Position | null> {
  let end = high;
  for (let back = 1n; end > low; back *= 16n) {
    const from = end - back > low ? end - back : low;
    const msgs: FetchedMessage[] = [];
    for (let o = from; o < end;) {
      const got = (await reader.fetch(p, o)).filter((m) => m.offset < end);
      if (!got.length) break;
      msgs.push(...got);
      o = got[got.length - 1].offset + 1n;
    }
    for (let i = msgs.length - 1; i >= 0; i--) {
      const pos = readablePosition(positionOf, msgs[i].value);
      if (pos) return pos;
    }
    end = from;
  }
  return null;
}
