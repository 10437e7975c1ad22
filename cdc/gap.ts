/**
 * A slot that disappeared is never recreated silently. When the slot does not exist but the change topic already
 * holds changes, an earlier slot was dropped (by hand, or lost in a failover to a server that never had it): the
 * changes committed since its last published position are in no stream, and a new slot would start after them.
 * The cdc then refuses to start unless the operator chose to go on (`riskmon cdc --accept-gap`, or
 * RISKMON_ACCEPT_GAP=true), and says which range to backfill from the source tables.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from '../lib/logger.ts';
import { connectSource } from './setup.ts';
import { SetupError } from './errors.ts';

/** A slot gone while its topic holds changes: how many the topic holds. */
export interface SlotGap { slot: string; topic: string; messages: number }

export class SlotGoneError extends SetupError {
  constructor(readonly gap: SlotGap) {
    super(`replication slot "${gap.slot}" does not exist, but topic ${gap.topic} already holds ${gap.messages} messages: ` +
      `the slot was dropped or lost (a failover), and what the source committed since is in no stream. A new slot would start at the current position, leaving that gap uncounted`,
      `start with --accept-gap (riskmon cdc --accept-gap, or RISKMON_ACCEPT_GAP=true) to create the slot anew, then rebuild the gap from the source tables: riskmon backfill --from <the commit time of the topic's last change: riskmon status shows it as the watermark> --to <now>`);
    this.name = 'SlotGoneError';
  }
}

/** Null when the slot exists or nothing was ever published; the gap otherwise. */
export async function findSlotGap(kafka: Kafka, o: { pgUrl: string; slot: string; topic: string }): Promise<SlotGap | null> {
  const c = await connectSource(o.pgUrl);
  try {
    if ((await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [o.slot])).rowCount) return null;
  } finally {
    await c.end().catch(() => {});
  }
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(o.topic)) return null;
    let messages = 0;
    for (const { low, high } of await admin.fetchTopicOffsets(o.topic)) messages += Number(high) - Number(low);
    return messages > 0 ? { slot: o.slot, topic: o.topic, messages } : null;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Throws SlotGoneError for a gap the operator has not accepted; logs an accepted one. */
/**
 * Throws SlotGoneError for a gap the operator has not accepted; an accepted one is recorded in the store (`record`,
 * for `riskmon status` and `/api/status` until a backfill covers it) and logged with the backfill that closes it.
 */
export async function checkSlotGap(kafka: Kafka, o: { pgUrl: string; slot: string; topic: string; acceptGap: boolean }, log: Logger,
  record: (slot: string) => Promise<{ fix: string } | null>): Promise<void> {
  const gap = await findSlotGap(kafka, o);
  if (!gap) return;
  if (!o.acceptGap) throw new SlotGoneError(gap);
  const known = await record(gap.slot);
  log.warn({ gap }, `replication slot "${gap.slot}" was gone; creating it anew as accepted (--accept-gap). Changes committed after the topic's last change and before the new slot are not in the stream: rebuild them with ${known?.fix ?? 'riskmon backfill --from <the commit time of the topic\'s last change> --to <now>'}`);
}
