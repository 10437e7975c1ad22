/**
 * The restart check. On start, the position (lsn, seq) of the last message of every partition is read; a change
 * whose position is ≤ the tail of the partition it is routed to was published before the crash and is skipped.
 * Per partition, because a transaction spread over several partitions may have reached some and not others.
 */
import type { Kafka } from 'kafkajs';
import { decodeEvent } from '../lib/events.ts';
import { parseLsn } from '../lib/lsn.ts';
import { TopicReader } from './kafka-direct.ts';

export interface Position { lsn: bigint; seq: number }

export function atOrBefore(lsn: bigint, seq: number, tail: Position | undefined): boolean {
  return tail !== undefined && (lsn < tail.lsn || (lsn === tail.lsn && seq <= tail.seq));
}

/** Tail positions of every partition of `topic`. `positionOf` reads a message value (default: a change event). */
export async function readTails(
  kafka: Kafka, topic: string,
  positionOf: (value: Buffer | null) => Position = (v) => { const e = decodeEvent(v); return { lsn: parseLsn(e.lsn), seq: e.seq }; },
): Promise<Map<number, Position>> {
  const reader = await TopicReader.open(kafka, topic);
  try {
    const out = new Map<number, Position>();
    await Promise.all([...(await reader.watermarks())].map(async ([p, { low, high }]) => {
      const last = await reader.last(p, high, low);
      if (last) out.set(p, positionOf(last.value));
    }));
    return out;
  } finally {
    await reader.close();
  }
}

/** Position of a dead-letter message (`{reason, event}`). */
export function dlqPosition(v: Buffer | null): Position {
  const { event } = JSON.parse(String(v));
  return { lsn: parseLsn(event.lsn), seq: event.seq };
}
