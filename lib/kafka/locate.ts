/**
 * Where a replay from source LSN X starts in the topic. A slot cannot rewind past its confirmed position, so a
 * replay reads the retained topic instead: for each partition, the first offset whose message has lsn ≥ X.
 * Within a partition messages are in (lsn, seq) order, so a binary search over offsets finds it with
 * O(log(n / batch)) fetches, fast on millions of messages.
 */
import type { Kafka } from 'kafkajs';
import { decodeEvent } from '../events.ts';
import { formatLsn, parseLsn } from '../lsn.ts';
import { TopicReader, type FetchedMessage } from './direct.ts';

/** X is older than what every partition still retains: a replay from X would miss changes. */
export class LsnTooOldError extends Error {
  constructor(readonly lsn: string, readonly oldestLsn: string | null) {
    super(oldestLsn
      ? `LSN ${lsn} is older than the topic retains: the oldest LSN every partition still holds is ${oldestLsn}; replay from ${oldestLsn} or later (or rebuild from the source tables)`
      : `LSN ${lsn} cannot be replayed: the topic holds no change events`);
    this.name = 'LsnTooOldError';
  }
}

/** X is past the newest change in the topic. */
export class LsnInFutureError extends Error {
  constructor(readonly lsn: string, readonly newestLsn: string | null) {
    super(`LSN ${lsn} is in the future: the newest LSN in the topic is ${newestLsn ?? '(none)'}`);
    this.name = 'LsnInFutureError';
  }
}

export interface LsnLocation {
  /** partition → first offset (decimal string) whose message has lsn ≥ X; the end offset when none has. */
  offsets: Map<number, string>;
  /** Oldest LSN from which every partition is complete; null when the topic is empty. */
  oldestRetainedLsn: string | null;
}

function lsnOf(m: FetchedMessage): bigint {
  return parseLsn(decodeEvent(m.value).lsn);
}

export async function locateLsn(kafka: Kafka, topic: string, lsn: string): Promise<LsnLocation> {
  const x = parseLsn(lsn); // throws LsnError for a malformed LSN
  const reader = await TopicReader.open(kafka, topic);
  try {
    const marks = await reader.watermarks();
    let oldest: bigint | null = null;
    let newest: bigint | null = null;
    const bounds = new Map<number, { low: bigint; high: bigint; first: bigint; last: bigint } | null>();
    await Promise.all([...marks].map(async ([p, { low, high }]) => {
      if (high <= low) { bounds.set(p, null); return; }
      const [firstMsg] = await reader.fetch(p, low);
      const lastMsg = await reader.last(p, high, low);
      if (!firstMsg || !lastMsg) { bounds.set(p, null); return; }
      bounds.set(p, { low, high, first: lsnOf(firstMsg), last: lsnOf(lastMsg) });
    }));
    for (const b of bounds.values()) {
      if (!b) continue;
      // Every partition gets heartbeats, so each partition's first LSN is close to when the cdc started (or to
      // what retention removed); from the largest of them on, every partition is complete.
      if (oldest === null || b.first > oldest) oldest = b.first;
      if (newest === null || b.last > newest) newest = b.last;
    }
    const oldestRetainedLsn = oldest === null ? null : formatLsn(oldest);
    if (oldest === null || x < oldest) throw new LsnTooOldError(lsn, oldestRetainedLsn);
    if (newest !== null && x > newest) throw new LsnInFutureError(lsn, formatLsn(newest));

    const offsets = new Map<number, string>();
    await Promise.all([...marks].map(async ([p, { high }]) => {
      const b = bounds.get(p);
      if (!b) { offsets.set(p, high.toString()); return; }
      offsets.set(p, (await firstAtOrAfter(reader, p, b.low, b.high, x)).toString());
    }));
    return { offsets: new Map([...offsets].sort((a, b) => a[0] - b[0])), oldestRetainedLsn };
  } finally {
    await reader.close();
  }
}

/** Smallest offset in [lo, hi) whose lsn ≥ x, or hi. Each fetch returns a whole batch; use all of it. */
async function firstAtOrAfter(reader: TopicReader, p: number, lo: bigint, hi: bigint, x: bigint): Promise<bigint> {
  while (lo < hi) {
    const mid = lo + (hi - lo) / 2n;
    const msgs = (await reader.fetch(p, mid, 256 * 1024)).filter((m) => m.offset < hi);
    if (!msgs.length) return hi; // cannot happen below the high watermark; be safe
    const hit = msgs.find((m) => lsnOf(m) >= x);
    if (!hit) { lo = msgs[msgs.length - 1].offset + 1n; continue; }
    if (hit !== msgs[0] || hit.offset === lo) return hit.offset; // predecessor in the same fetch is < x
    hi = hit.offset; // msgs[0] ≥ x: answer is at or before it
  }
  return lo;
}

