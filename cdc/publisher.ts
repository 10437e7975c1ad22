/**
 * Sends messages to explicit (topic, partition)s with acks=-1 through the idempotent PartitionWriter (lib/kafka
 * producer.ts): up to its maxInFlight batches per partition unacknowledged, each partition written strictly in
 * order because the broker appends a producer's batches only in sequence order. A partition's next batch is cut
 * only when the writer's connection to its leader has room (`ready`): a broker serves a connection's requests one
 * at a time, so batches cut earlier would only wait in its socket, each behind the others' replication, and be
 * small; meanwhile the messages gather here into the next, larger batch. Leader changes and brokers gone
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

/** One partition's queue: messages not yet handed to the writer, and its batches handed over and not yet acknowledged. */
interface Queue<U> { topic: string; partition: number; list: Outgoing<U>[]; busy: number }

export class Publisher<U = unknown> {
  /** per topic, per partition (no string key built per message) */
  readonly #byTopic = new Map<string, Queue<U>[]>();
  readonly #queues: Queue<U>[] = [];
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
    let parts = this.#byTopic.get(m.topic);
    if (!parts) this.#byTopic.set(m.topic, (parts = []));
    let q = parts[m.partition];
    if (!q) this.#queues.push((parts[m.partition] = q = { topic: m.topic, partition: m.partition, list: [], busy: 0 }));
    q.list.push(m);
    this.#bytes += m.value.length;
    // Let the synchronous processing of a socket chunk fill the batches first.
    this.#schedule();
  }

  /** The writer has room again (a request was answered): queued messages may go. */
  poke(): void { if (!this.#failed) this.#schedule(); }

  /** Resolves once buffered bytes are below `below`; rejects if the publisher failed. */
  waitBelow(below: number): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#bytes < below) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ below, resolve, reject }));
  }

  #pump(): void {
    if (this.#failed) return;
    const max = this.writer.maxInFlight;
    const taken: { q: Queue<U>; batch: Outgoing<U>[] }[] = [];
    for (const q of this.#queues) {
      const { list } = q;
      // the writer's connection to the partition's leader has room (no queueing behind its requests in flight)
      if (q.busy >= max || list.length === 0 || !this.writer.ready(q.topic, q.partition)) continue;
      let n = 0, bytes = 0;
      while (n < list.length && n < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES) bytes += list[n++].value.length;
      taken.push({ q, batch: n === list.length ? list.splice(0) : list.splice(0, n) });
      q.busy++;
    }
    if (!taken.length) return;
    // An Outgoing is a message ({key, value}) as it is: no copy per message.
    const batches: PartitionBatch[] = taken.map(({ q, batch }) => ({ topic: q.topic, partition: q.partition, messages: batch }));
    const acks = this.writer.produce(batches);
    for (let i = 0; i < taken.length; i++) {
      const { q, batch } = taken[i];
      acks[i].then(() => this.#acked(q, batch), (err: Error) => this.#fail(err));
    }
    // a partition with more queued than one batch takes goes on at once, up to the writer's in-flight limit
    if (taken.some(({ q }) => q.list.length > 0 && q.busy < max)) this.#schedule();
  }

  #acked(q: Queue<U>, batch: Outgoing<U>[]): void {
    q.busy--;
    let bytes = 0;
    const onAck = this.#onAck;
    for (let i = 0; i < batch.length; i++) { const m = batch[i]; bytes += m.value.length; onAck(m.unit); }
    this.#bytes -= bytes;
    this.#wake();
    this.#schedule();
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
    for (const q of this.#queues) q.list = [];
    this.#onFail(err);
  }
}
