/**
 * Which merchants were hot from which commit LSN. Routing must be reproducible: after a crash, a change that is
 * decoded again must go to the partition it went to before, or the per-partition restart check could not see it
 * and it would be published twice. So every hot set is written to a small topic (`<topic>.hotset`) BEFORE the
 * first change routed with it, as `{fromLsn, hot}`; on restart the schedule is read back and a transaction with
 * commit LSN L is routed with the last set whose fromLsn ≤ L.
 */
import type { Kafka, Producer } from 'kafkajs';
import { formatLsn, parseLsn } from '../lib/lsn.ts';
import { TopicReader } from '../lib/kafka/index.ts';

export interface HotEntry { from: bigint; hot: Set<string> }

export class HotSchedule {
  #entries: HotEntry[] = [];

  constructor(entries: HotEntry[] = []) { this.#entries = [...entries].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0)); }

  /** The hot set in force for a transaction committed at `lsn` (empty before the first entry). */
  at(lsn: bigint): Set<string> {
    let lo = 0, hi = this.#entries.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.#entries[mid].from <= lsn) lo = mid + 1; else hi = mid; }
    return lo ? this.#entries[lo - 1].hot : EMPTY;
  }

  get lastFrom(): bigint { return this.#entries.length ? this.#entries[this.#entries.length - 1].from : -1n; }
  get size(): number { return this.#entries.length; }

  add(e: HotEntry): void {
    if (e.from <= this.lastFrom) throw new Error(`hot-set entries must grow: ${formatLsn(e.from)} after ${formatLsn(this.lastFrom)}`);
    this.#entries.push(e);
  }

  /** Forget entries no restart can need (superseded before `lsn`, the slot's confirmed position). */
  prune(lsn: bigint): void {
    let i = 0;
    while (i + 1 < this.#entries.length && this.#entries[i + 1].from <= lsn) i++;
    if (i) this.#entries = this.#entries.slice(i);
  }
}

const EMPTY = new Set<string>();

export function encodeHotEntry(e: HotEntry): string {
  return JSON.stringify({ fromLsn: formatLsn(e.from), hot: [...e.hot] });
}

export function decodeHotEntry(v: Buffer | null): HotEntry {
  const o = JSON.parse(String(v));
  return { from: parseLsn(o.fromLsn), hot: new Set(o.hot.map(String)) };
}

/** Reads the entries a restart at `since` needs: the one in force at `since` and every later one. */
export async function loadHotSchedule(kafka: Kafka, topic: string, since: bigint): Promise<HotSchedule> {
  const reader = await TopicReader.open(kafka, topic);
  try {
    const { low, high } = (await reader.watermarks()).get(0) ?? { low: 0n, high: 0n };
    const entries: HotEntry[] = [];
    // Walk back from the end until an entry at or before `since` is found (usually one step: one entry a minute).
    let end = high;
    while (end > low) {
      const start = end - 64n > low ? end - 64n : low;
      const chunk: HotEntry[] = [];
      for (let off = start; off < end;) {
        const msgs = (await reader.fetch(0, off, 8 << 20)).filter((m) => m.offset < end);
        if (!msgs.length) break;
        for (const m of msgs) chunk.push(decodeHotEntry(m.value));
        off = msgs[msgs.length - 1].offset + 1n;
      }
      entries.unshift(...chunk);
      if (chunk.some((e) => e.from <= since)) break;
      end = start;
    }
    // Entries are appended in growing order; a stale tail from an older run (smaller from) is dropped.
    const clean: HotEntry[] = [];
    for (const e of entries) if (!clean.length || e.from > clean[clean.length - 1].from) clean.push(e);
    const s = new HotSchedule(clean);
    s.prune(since);
    return s;
  } finally {
    await reader.close();
  }
}

export async function appendHotEntry(producer: Producer, topic: string, e: HotEntry): Promise<void> {
  await producer.send({ topic, acks: -1, messages: [{ partition: 0, key: null, value: encodeHotEntry(e) }] });
}
