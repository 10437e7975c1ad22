/**
 * Dead letters: what riskmon could not read, on RISKMON_DLQ_TOPIC. Two producers, two kinds, one file:
 * - the cdc writes a source row it cannot turn into a change event (unmapped table, no merchant, TRUNCATE) as
 *   JSON `{"reason", "event"}`; the event's (lsn, seq) is also the cdc's restart position on that topic;
 * - the aggregator writes a change event it cannot apply as the original message (key and value untouched), its
 *   reason and source position in the `riskmon-reason` and `riskmon-source` headers.
 * The API reads both through `readDeadLetter`.
 */
import { parseLsn } from './lsn.ts';

export const REASON_HEADER = 'riskmon-reason';
export const SOURCE_HEADER = 'riskmon-source';

/** The cdc's dead letter of a change at source position (lsn, seq). */
export interface CdcDeadLetter { reason: string; event: { lsn: string; seq: number; table?: string } & Record<string, unknown> }

export function encodeCdcDeadLetter(reason: string, event: CdcDeadLetter['event']): string {
  return JSON.stringify({ reason, event });
}

/** Source position of a cdc dead letter; throws on any other message (an aggregator dead letter, garbage). */
export function cdcDeadLetterPosition(value: Buffer | null): { lsn: bigint; seq: number } {
  const { event } = JSON.parse(String(value)) as CdcDeadLetter;
  return { lsn: parseLsn(event.lsn), seq: event.seq };
}

/** The aggregator's dead letter of the message at `topic/partition/offset`, as a kafkajs message. */
export function aggregatorDeadLetter(m: { key: Buffer | string | null; value: Buffer | null; reason: string }, topic: string, partition: number, offset: string | bigint) {
  return {
    key: m.key, value: m.value ?? Buffer.alloc(0),
    headers: { [REASON_HEADER]: m.reason, [SOURCE_HEADER]: `${topic}/${partition}/${offset}` },
  };
}

/** One dead letter as a reader (the API, the dashboard) shows it. */
export interface DeadLetterView {
  /** When it was written to the dead-letter topic. */
  at: string | null;
  from: 'cdc' | 'aggregator' | 'unknown';
  reason: string;
  /** Source position (table, lsn/seq) or topic/partition/offset of the event. */
  where: string;
}

const str = (v: Buffer | string | undefined) => (v === undefined ? undefined : String(v));

/** Reads either kind from a fetched message. */
export function readDeadLetter(m: { offset: bigint; value: Buffer | null; headers?: Record<string, Buffer | string | undefined>; timestamp?: string }): DeadLetterView {
  const at = m.timestamp ? new Date(Number(m.timestamp)).toISOString() : null;
  const header = str(m.headers?.[REASON_HEADER]);
  if (header !== undefined) return { at, from: 'aggregator', reason: header, where: str(m.headers?.[SOURCE_HEADER]) ?? '' };
  try {
    const { reason, event } = JSON.parse(String(m.value));
    return { at, from: 'cdc', reason: String(reason), where: `${event?.table ?? '?'} lsn ${event?.lsn}/${event?.seq}` };
  } catch {
    return { at, from: 'unknown', reason: 'unreadable dead letter', where: `offset ${m.offset}` };
  }
}
