/**
 * Sends messages to explicit (topic, partition)s with acks=-1 through the idempotent PartitionWriter (lib/kafka
 * producer.ts): up to its maxInFlight batches per partition unacknowledged, each partition written strictly in
 * order because the broker appends a producer's batches only in sequence order. Leader changes and brokers gone
 * are retried inside the writer with the batches' original sequence numbers (nothing twice, no gap). Only when the
 * writer fails for good (fenced, a batch refused, not acknowledged within its delivery timeout) does the
 * publisher fail; the pipeline then restarts its session, which re-reads the tails (the topic holds a prefix of
 * what was sent, per partition) and resumes without duplicates.
 */
import type { PartitionBatch, PartitionWriter } from '../lib/kafka/index.ts';

/** `unit` is handed back to the publisher's onAck (one shared callback, no closure per message). */
export interface Outgoing<U = unknown> {
  topic: string;
  partition: number;
  key: string | null;
  value: string;
  unit: U;
}

const MAX_BATCH_MESSAGES = 50_000;
// A produce request's batch for one partition must stay under the topic's max.message.bytes (broker default
// 1 MiB, record overhead included), or Kafka rejects the whole request with MESSAGE_TOO_LARGE.
const MAX_BATCH_BYTES = 768 << 10;

export class Publisher<U = unknown> {
  readonly #queues = new Map<string, Outgoing<U>[]>();
  /** per queue: batches handed to the writer and not yet acknowledged */
  readonly #busy = new Map<string, number>();
  #bytes = 0;
  #scheduled = false;
  #failed: Error | null = null;
  #waiters: { below: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  #onFail: (err: Error) => void;
  #onAck: (unit: U) => void;

  constructor(private readonly writer: PartitionWriter, onAck: (unit: U) => void, onFail: (err: Error) => void) {
    this.#onAck = onAck;
    this.#onFail = onFail;
  }

  /** Bytes of values queued or in flight. */
  get bufferedBytes(): number { return this.#bytes; }
  get failed(): Error | null { return this.#failed; }

  send(m: Outgoing<U>): void {
    if (this.#failed) return;
    const q = `${m.topic}\u0000${m.partition}`;
    let list = this.#queues.get(q);
    if (!list) this.#queues.set(q, (list = []));
    list.push(m);
    this.#bytes += m.value.length;
    // Let the synchronous processing of a socket chunk fill the batches first.
    this.#schedule();
  }

  /** Resolves once buffered bytes are below `below`; rejects if the publisher failed. */
  waitBelow(below: number): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#bytes < below) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ below, resolve, reject }));
  }

  #pump(): void {
    if (this.#failed) return;
    const max = this.writer.maxInFlight;
    const taken: { q: string; batch: Outgoing<U>[] }[] = [];
    for (const [q, list] of this.#queues) {
      const busy = this.#busy.get(q) ?? 0;
      if (busy >= max || list.length === 0) continue;
      let n = 0, bytes = 0;
      while (n < list.length && n < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES) bytes += list[n++].value.length;
      taken.push({ q, batch: n === list.length ? list.splice(0) : list.splice(0, n) });
      this.#busy.set(q, busy + 1);
    }
    if (!taken.length) return;
    // An Outgoing is a message ({key, value}) as it is: no copy per message.
    const batches: PartitionBatch[] = taken.map(({ batch }) => ({ topic: batch[0].topic, partition: batch[0].partition, messages: batch }));
    const acks = this.writer.produce(batches);
    taken.forEach(({ q, batch }, i) => acks[i].then(() => {
      this.#busy.set(q, this.#busy.get(q)! - 1);
      for (const m of batch) { this.#bytes -= m.value.length; this.#onAck(m.unit); }
      this.#wake();
      this.#schedule();
    }, (err: Error) => this.#fail(err)));
    // a partition with more queued than one batch takes goes on at once, up to the writer's in-flight limit
    if (taken.some(({ q }) => (this.#queues.get(q)?.length ?? 0) > 0 && this.#busy.get(q)! < max)) this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => { this.#scheduled = false; this.#pump(); });
  }

  #wake(): void {
    if (!this.#waiters.length) return;
    const still: { below: number; resolve: () => void; reject: (e: Error) => void }[] = [];
    for (const w of this.#waiters) (this.#bytes < w.below ? w.resolve() : still.push(w));
    this.#waiters = still;
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = err;
    for (const w of this.#waiters) w.reject(err);
    this.#waiters = [];
    this.#queues.clear();
    this.#onFail(err);
  }
}
