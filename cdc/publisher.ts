/**
 * Sends messages to explicit (topic, partition)s with acks=-1, keeping at most ONE produce request in flight per
 * partition: without kafkajs's idempotent producer, two in-flight requests to one partition could be reordered or
 * leave a gap by a retry, and the restart check (skip what a partition's tail already holds) relies on each
 * partition being written strictly in order. Requests for different partitions overlap. kafkajs's own retries are
 * off: a retried request could be written twice; instead the first failure fails the publisher, and the pipeline
 * restarts its session, which re-reads the tails and resumes without duplicates.
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
  readonly #busy = new Set<string>();
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
    if (!this.#scheduled) {
      this.#scheduled = true;
      // Let the synchronous processing of a socket chunk fill the batches first.
      setImmediate(() => { this.#scheduled = false; this.#pump(); });
    }
  }

  /** Resolves once buffered bytes are below `below`; rejects if the publisher failed. */
  waitBelow(below: number): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#bytes < below) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ below, resolve, reject }));
  }

  #pump(): void {
    if (this.#failed) return;
    const taken: { q: string; batch: Outgoing<U>[] }[] = [];
    for (const [q, list] of this.#queues) {
      if (this.#busy.has(q) || list.length === 0) continue;
      let n = 0, bytes = 0;
      while (n < list.length && n < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES) bytes += list[n++].value.length;
      taken.push({ q, batch: list.splice(0, n) });
      this.#busy.add(q);
    }
    if (!taken.length) return;
    // An Outgoing is a message ({key, value}) as it is: no copy per message.
    const batches: PartitionBatch[] = taken.map(({ batch }) => ({ topic: batch[0].topic, partition: batch[0].partition, messages: batch }));
    this.writer.produce(batches).then(
      () => {
        for (const { q, batch } of taken) {
          this.#busy.delete(q);
          for (const m of batch) { this.#bytes -= m.value.length; this.#onAck(m.unit); }
        }
        this.#wake();
        this.#pump();
      },
      (err: Error) => this.#fail(err),
    );
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
