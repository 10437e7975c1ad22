/**
 * PartitionWriter: an idempotent producer for explicit (topic, partition)s, with up to `maxInFlight` batches per
 * partition unacknowledged, that keeps each partition's commit order through leader changes.
 *
 * How order and exactly-once writes hold (https://kafka.apache.org/protocol#The_Messages_InitProducerId, KIP-98):
 * - At open, InitProducerId gives a producer id and epoch. Every batch carries them and the sequence number of its
 *   first record; a partition's sequence starts at 0 and grows by the batch's record count (wrapping to 0 after
 *   2^31 − 1, as the broker counts).
 * - The partition leader appends a batch only when its sequence follows the last one it appended for this producer;
 *   it answers a batch it already holds (among the producer's last five of the partition) with success or
 *   DUPLICATE_SEQUENCE_NUMBER, and a batch past a gap with OUT_OF_ORDER_SEQUENCE_NUMBER. The producer state is part
 *   of the replicated log, so a new leader knows it too. Hence at most five batches in flight per partition.
 * - A retriable error (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, a broker gone, a timeout …) stops new sends on
 *   that partition; once its requests in flight have all answered, metadata is refreshed and every batch not yet
 *   acknowledged is sent again, in sequence order, one at a time, with its ORIGINAL sequence: what the log already
 *   holds comes back as a duplicate (= acknowledged), what it lacks is appended, nothing twice, no reordering.
 *   OUT_OF_ORDER_SEQUENCE_NUMBER is retriable while an earlier batch of the partition is unacknowledged (it was
 *   refused or is being re-sent); on the first unacknowledged batch it means the log lost what it had acknowledged.
 * - Fatal: that OUT_OF_ORDER, the producer fenced or unknown (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED,
 *   UNKNOWN_PRODUCER_ID), a batch the broker refuses (MESSAGE_TOO_LARGE, CORRUPT_MESSAGE …), or a batch not
 *   acknowledged within `deliveryTimeoutMs`. The writer fails every pending batch; the caller starts over with a
 *   new writer (a new producer id) after reading what the partitions hold (the cdc reads its tails).
 *
 * The broker reads one request at a time per connection (the next one waits in the socket until the answer is
 * sent), so requests pipelined on one connection do not overlap their replication waits; they save the client's
 * turnaround between an answer and the next request. `lanes` > 1 spreads partitions over that many connections
 * per broker (partition p on lane p mod lanes), so partitions sharing a leader wait for replication side by side.
 */
import type { Kafka } from 'kafkajs';
import { createCluster, type Cluster } from './direct.ts';
import { decodeProduceV3Response, encodeProduceV3, type ProduceMessage, type ProducerIdentity } from './record-batch.ts';

export interface PartitionBatch { topic: string; partition: number; messages: readonly ProduceMessage[] }

export interface PartitionWriterOptions {
  /** Batches per partition sent and not yet acknowledged (the broker remembers 5 per producer and partition). */
  maxInFlight?: number;
  /** Connections per broker; partition p uses lane p mod lanes. */
  lanes?: number;
  /** A batch not acknowledged this long after it was handed over fails the writer. */
  deliveryTimeoutMs?: number;
  /** Broker-side wait for the in-sync replicas (Produce's timeout). */
  requestTimeoutMs?: number;
  /** Called when a partition's unacknowledged batches are sent again (a leader change, a broker gone …). */
  onRetry?: (info: { topic: string; partition: number; batches: number; error: string; attempt: number }) => void;
  now?: () => number;
}

/** Kafka error codes the writer acts on (https://kafka.apache.org/protocol#protocol_error_codes). */
export const KafkaCode = {
  NONE: 0, UNKNOWN_TOPIC_OR_PARTITION: 3, LEADER_NOT_AVAILABLE: 5, NOT_LEADER_OR_FOLLOWER: 6, REQUEST_TIMED_OUT: 7,
  NETWORK_EXCEPTION: 13, NOT_ENOUGH_REPLICAS: 19, NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20, OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46, INVALID_PRODUCER_EPOCH: 47, KAFKA_STORAGE_ERROR: 56, UNKNOWN_PRODUCER_ID: 59,
  FENCED_LEADER_EPOCH: 74, UNKNOWN_LEADER_EPOCH: 75, PRODUCER_FENCED: 90,
} as const;

const RETRIABLE = new Set<number>([
  KafkaCode.UNKNOWN_TOPIC_OR_PARTITION, KafkaCode.LEADER_NOT_AVAILABLE, KafkaCode.NOT_LEADER_OR_FOLLOWER, KafkaCode.REQUEST_TIMED_OUT,
  KafkaCode.NETWORK_EXCEPTION, KafkaCode.NOT_ENOUGH_REPLICAS, KafkaCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, KafkaCode.KAFKA_STORAGE_ERROR,
  KafkaCode.FENCED_LEADER_EPOCH, KafkaCode.UNKNOWN_LEADER_EPOCH,
]);

/**
 * What a partition's answer to one batch means. `earlierUnacked`: a batch of the same partition with a lower
 * sequence is not acknowledged yet. A transport failure (no answer) is `code` null.
 */
export function produceOutcome(code: number | null, earlierUnacked: boolean): 'acked' | 'retry' | 'fatal' {
  if (code === null) return 'retry';
  if (code === KafkaCode.NONE || code === KafkaCode.DUPLICATE_SEQUENCE_NUMBER) return 'acked';
  if (code === KafkaCode.OUT_OF_ORDER_SEQUENCE_NUMBER) return earlierUnacked ? 'retry' : 'fatal';
  return RETRIABLE.has(code) ? 'retry' : 'fatal';
}

/** The sequence after `seq` plus `n` records, wrapping past 2^31 − 1 to 0 as the broker does. */
export function nextSequence(seq: number, n: number): number {
  const MAX = 0x7fffffff;
  return seq > MAX - n ? n - (MAX - seq) - 1 : seq + n;
}

/** Backoff before a partition's re-send round: 50 ms doubling to 1 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(1_000, 50 * 2 ** Math.max(0, attempt - 1));
}

/** The writer stopped for good: every pending batch failed with this error. */
export class ProduceFailedError extends Error {
  override name = 'ProduceFailedError';
}

interface Pending {
  seq: number;
  messages: readonly ProduceMessage[];
  since: number;
  sent: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface PartState {
  topic: string;
  partition: number;
  nextSeq: number;
  /** unacknowledged batches in sequence order */
  pending: Pending[];
  /** requests of this partition awaiting an answer */
  outstanding: number;
  /**
   * normal: batches go out as they come; waiting: a retriable error was met, no new sends until the partition's
   * requests in flight have answered; resending: the re-send round `round` sends what is pending, in order.
   */
  mode: 'normal' | 'waiting' | 'resending';
  round: number;
  attempt: number;
  lastError: string;
}

export class PartitionWriter {
  readonly #parts = new Map<string, PartState>();
  readonly #maxInFlight: number;
  readonly #deliveryTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #now: () => number;
  #failed: Error | null = null;
  #refreshing: Promise<void> | null = null;
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(private readonly lanes: Cluster[], readonly producer: ProducerIdentity, private readonly opts: PartitionWriterOptions) {
    this.#maxInFlight = Math.max(1, Math.min(5, opts.maxInFlight ?? 5));
    this.#deliveryTimeoutMs = opts.deliveryTimeoutMs ?? 60_000;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
  }

  static async open(kafka: Kafka, topics: string[], opts: PartitionWriterOptions = {}): Promise<PartitionWriter> {
    const lanes = Array.from({ length: Math.max(1, opts.lanes ?? 1) }, () => createCluster(kafka));
    try {
      for (const cluster of lanes) {
        await cluster.connect();
        for (const t of topics) await cluster.addTargetTopic(t);
      }
      const producer = await initProducerId(lanes[0], topics[0]);
      return new PartitionWriter(lanes, producer, opts);
    } catch (err) {
      await Promise.allSettled(lanes.map((c) => c.disconnect()));
      throw err;
    }
  }

  get maxInFlight(): number { return this.#maxInFlight; }
  get failed(): Error | null { return this.#failed; }

  /** Batches of the partition handed over and not yet acknowledged. */
  inFlight(topic: string, partition: number): number {
    return this.#parts.get(`${topic}\u0000${partition}`)?.pending.length ?? 0;
  }

  /**
   * Hands over one batch per partition (at most one per partition per call) and sends them, one request per
   * leader. Each promise resolves when Kafka acknowledged its batch (acks=all), and rejects only when the writer
   * failed for good.
   */
  produce(batches: readonly PartitionBatch[]): Promise<void>[] {
    const out: Promise<void>[] = [];
    const now = this.#now();
    const fresh: [PartState, Pending][] = [];
    for (const b of batches) {
      if (this.#failed) { out.push(Promise.reject(this.#failed)); continue; }
      const part = this.#part(b.topic, b.partition);
      let entry!: Pending;
      out.push(new Promise<void>((resolve, reject) => {
        entry = { seq: part.nextSeq, messages: b.messages, since: now, sent: false, resolve, reject };
      }));
      part.nextSeq = nextSequence(part.nextSeq, b.messages.length);
      part.pending.push(entry);
      // a partition recovering sends its batches in its re-send round, after the ones before them
      if (part.mode === 'normal') fresh.push([part, entry]);
    }
    if (fresh.length) void this.#send(fresh);
    return out;
  }

  #part(topic: string, partition: number): PartState {
    const key = `${topic}\u0000${partition}`;
    let p = this.#parts.get(key);
    if (!p) this.#parts.set(key, (p = { topic, partition, nextSeq: 0, pending: [], outstanding: 0, mode: 'normal', round: 0, attempt: 0, lastError: '' }));
    return p;
  }

  /** Sends the entries (at most one per partition), one request per leader and lane; answers each. */
  async #send(entries: [PartState, Pending][]): Promise<void> {
    const groups = new Map<string, { cluster: Cluster; nodeId: string; list: [PartState, Pending][] }>();
    for (const e of entries) {
      const [part, p] = e;
      part.outstanding++;
      p.sent = true;
      const lane = part.partition % this.lanes.length;
      const cluster = this.lanes[lane];
      let nodeId: string | undefined;
      try { nodeId = Object.keys(cluster.findLeaderForPartitions(part.topic, [part.partition]))[0]; } catch { nodeId = undefined; }
      if (nodeId === undefined) { this.#answer(part, p, null, `no leader known for ${part.topic}[${part.partition}]`); continue; }
      const key = `${lane}:${nodeId}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { cluster, nodeId, list: [] }));
      g.list.push(e);
    }
    await Promise.all([...groups.values()].map(async ({ cluster, nodeId, list }) => {
      let answers: Map<string, number>;
      try {
        const byTopic = new Map<string, { partition: number; messages: readonly ProduceMessage[]; baseSequence: number }[]>();
        for (const [part, p] of list) {
          let parts = byTopic.get(part.topic);
          if (!parts) byTopic.set(part.topic, (parts = []));
          parts.push({ partition: part.partition, messages: p.messages, baseSequence: p.seq });
        }
        const body = encodeProduceV3(-1, this.#requestTimeoutMs, [...byTopic].map(([topic, partitions]) => ({ topic, partitions })), this.#now(), this.producer);
        const broker = await cluster.findBroker({ nodeId });
        const res = await broker.connectionPool.send({
          request: { apiKey: 0, apiVersion: 3, apiName: 'Produce', expectResponse: () => true, encode: async () => ({ buf: body, buffer: body }) },
          response: RAW,
        }) as Buffer;
        answers = new Map(decodeProduceV3Response(res).map((r) => [`${r.topic}\u0000${r.partition}`, r.errorCode]));
      } catch (err) {
        for (const [part, p] of list) this.#answer(part, p, null, (err as Error).message ?? String(err));
        return;
      }
      for (const [part, p] of list) {
        const code = answers.get(`${part.topic}\u0000${part.partition}`);
        this.#answer(part, p, code ?? null, code === undefined ? `broker ${nodeId} did not answer for ${part.topic}[${part.partition}]` : `Kafka error code ${code}`);
      }
    }));
  }

  #answer(part: PartState, p: Pending, code: number | null, why: string): void {
    part.outstanding--;
    if (this.#failed) return;
    const earlier = part.pending.some((q) => q !== p && before(q.seq, p.seq));
    const outcome = produceOutcome(code, earlier);
    if (outcome === 'acked') {
      const i = part.pending.indexOf(p);
      if (i >= 0) part.pending.splice(i, 1);
      part.attempt = 0;
      p.resolve();
    } else if (outcome === 'fatal') {
      this.#fail(new ProduceFailedError(code === KafkaCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        ? `${part.topic}[${part.partition}] lost acknowledged batches (OUT_OF_ORDER_SEQUENCE_NUMBER on sequence ${p.seq}): the producer starts over from what the partition holds`
        : `produce to ${part.topic}[${part.partition}] failed: ${why}`));
      return;
    } else {
      p.sent = false;
      part.mode = 'waiting';
      part.lastError = why;
    }
    if (part.mode === 'waiting' && part.outstanding === 0) this.#scheduleResend(part);
  }

  #scheduleResend(part: PartState): void {
    const head = part.pending[0];
    if (!head) { part.mode = 'normal'; return; }
    if (this.#now() - head.since > this.#deliveryTimeoutMs) {
      this.#fail(new ProduceFailedError(`Kafka did not acknowledge ${part.topic}[${part.partition}] within ${this.#deliveryTimeoutMs / 1000} s (last error: ${part.lastError})`));
      return;
    }
    part.attempt++;
    part.mode = 'resending';
    const round = ++part.round;
    this.opts.onRetry?.({ topic: part.topic, partition: part.partition, batches: part.pending.length, error: part.lastError, attempt: part.attempt });
    const t = setTimeout(() => {
      this.#timers.delete(t);
      void this.#resend(part, round);
    }, retryDelayMs(part.attempt));
    this.#timers.add(t);
  }

  /** Re-sends the partition's pending batches in sequence order, one at a time, then leaves recovery. */
  async #resend(part: PartState, round: number): Promise<void> {
    await this.#refreshMetadata();
    const mine = () => !this.#failed && part.mode === 'resending' && part.round === round;
    while (mine()) {
      const next = part.pending.find((q) => !q.sent);
      if (!next) {
        // everything re-sent and acknowledged: new batches go straight out again
        part.mode = 'normal';
        return;
      }
      // a retriable answer turns the mode to waiting and schedules the next round: this one ends
      await this.#send([[part, next]]);
    }
  }

  #refreshMetadata(): Promise<void> {
    this.#refreshing ??= Promise.allSettled(this.lanes.map((c) => c.refreshMetadata())).then(() => { this.#refreshing = null; });
    return this.#refreshing;
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = err;
    for (const part of this.#parts.values()) {
      for (const p of part.pending) p.reject(err);
      part.pending = [];
    }
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async close(): Promise<void> {
    this.#fail(new ProduceFailedError('the writer was closed'));
    await Promise.allSettled(this.lanes.map((c) => c.disconnect()));
  }
}

/** seq a comes before seq b of the same partition (sequences wrap; a partition never has 2^30 records pending). */
function before(a: number, b: number): boolean {
  const d = b - a;
  return d > 0 ? d < 0x40000000 : d < -0x40000000;
}

const RAW = { decode: async (b: Buffer) => b, parse: async (b: Buffer) => b };

/** InitProducerId (no transactional id) from any broker: the producer id and epoch for this writer. */
async function initProducerId(cluster: Cluster, topic: string): Promise<ProducerIdentity> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const leaders = cluster.findLeaderForPartitions(topic, [0]);
      const nodeId = Object.keys(leaders)[0];
      if (nodeId === undefined) throw new Error(`no leader known for ${topic}[0]`);
      const broker = await cluster.findBroker({ nodeId });
      const r = await broker.initProducerId({ transactionalId: null, transactionTimeout: 60_000 }) as { producerId: string | number; producerEpoch: number };
      return { id: BigInt(String(r.producerId)), epoch: r.producerEpoch };
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, retryDelayMs(attempt + 1)));
      await cluster.refreshMetadata().catch(() => {});
    }
  }
  throw new Error(`InitProducerId failed: ${(last as Error)?.message ?? last}`, { cause: last });
}
