/**
 * Direct partition access through kafkajs's Cluster (reached through the Kafka client's private factory;
 * kafkajs 2.2.x is no longer developed, so the shape is stable):
 * - TopicReader: fetch the record batch holding offset N, and the low/high watermarks. kafkajs has no public
 *   "fetch at offset" outside a consumer group (joining one costs seconds). Used for the restart tails, the
 *   hot-set schedule and `locateLsn`.
 * - createCluster: the same cluster (metadata, one connection pool per broker) for producer.ts's PartitionWriter,
 *   which sends its own Produce requests: kafkajs's producer groups messages in O(n²) (array spread per message),
 *   encodes each record as objects, and silently leaves out partitions missing from stale metadata.
 */
import { createRequire } from 'node:module';
import type { Admin, Kafka } from 'kafkajs';
import { gunzipSync } from 'node:zlib';
import { decodeFetchV4, encodeFetchV4, type RecordSet } from './record-batch.ts';

export interface FetchedMessage {
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  /** Record headers (the aggregator's dead letters carry their reason in one) and the record's timestamp (ms). */
  headers?: Record<string, Buffer | string | undefined>;
  timestamp?: string;
}

/** kafkajs's error for a Kafka error code (retriable or not, named as the protocol names it). */
const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error') as { createErrorFromCode: (code: number) => Error };

export interface Broker {
  initProducerId(req: { transactionalId: string | null; transactionTimeout: number }): Promise<unknown>;
  connectionPool: { send(req: { request: unknown; response: unknown }): Promise<unknown> };
  fetch(req: unknown): Promise<{ responses: { partitions: { partition: number; errorCode: number; messages: { offset: string; key: Buffer | null; value: Buffer | null; headers?: FetchedMessage['headers']; timestamp?: string }[] }[] }[] }> }
export interface Cluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(q: { nodeId: string }): Promise<Broker>;
}

export function createCluster(kafka: Kafka): Cluster {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (!sym) throw new Error('kafkajs internals changed: cannot create a cluster for offset fetches (kafkajs 2.2.x expected)');
  // isolationLevel 0 = READ_UNCOMMITTED; we never write transactionally.
  return (kafka as any)[sym]({ metadataMaxAge: 60_000, allowAutoTopicCreation: false, isolationLevel: 0 });
}

export class TopicReader {
  private constructor(readonly topic: string, private readonly cluster: Cluster, private readonly admin: Admin) {}

  static async open(kafka: Kafka, topic: string): Promise<TopicReader> {
    const cluster = createCluster(kafka);
    const admin = kafka.admin();
    await Promise.all([cluster.connect(), admin.connect()]);
    try {
      await cluster.addTargetTopic(topic);
    } catch (err) {
      await Promise.allSettled([cluster.disconnect(), admin.disconnect()]);
      throw err;
    }
    return new TopicReader(topic, cluster, admin);
  }

  /** Per partition: low = first retained offset, high = next offset to be written. */
  async watermarks(): Promise<Map<number, { low: bigint; high: bigint }>> {
    const rows = await this.admin.fetchTopicOffsets(this.topic);
    const out = new Map<number, { low: bigint; high: bigint }>();
    for (const r of rows.sort((a, b) => a.partition - b.partition)) out.set(r.partition, { low: BigInt(r.low), high: BigInt(r.high) });
    return out;
  }

  /** Messages at offsets ≥ `offset` from the batch holding it (and following ones up to maxBytes). */
  async fetch(partition: number, offset: bigint, maxBytes = 1 << 20): Promise<FetchedMessage[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        const broker = await this.#leader(partition);
        const { responses } = await broker.fetch({
          maxWaitTime: 0, minBytes: 1, maxBytes, isolationLevel: 0,
          topics: [{ topic: this.topic, partitions: [{ partition, fetchOffset: offset.toString(), maxBytes }] }],
        });
        const msgs = responses[0]?.partitions[0]?.messages ?? [];
        return msgs.map((m) => ({ offset: BigInt(m.offset), key: m.key, value: m.value, headers: m.headers, timestamp: m.timestamp })).filter((m) => m.offset >= offset);
      } catch (err) {
        if (attempt >= 3) throw err;
        await this.cluster.refreshMetadata().catch(() => {});
      }
    }
  }

  /**
   * Records at offsets ≥ `offset` as a RecordSet (record-batch.ts): the Fetch request and response are encoded and
   * read here, not by kafkajs, which makes objects, Buffers and Longs per record — most of a replay's read cost.
   */
  async fetchRecords(partition: number, offset: bigint, maxBytes = 1 << 20): Promise<RecordSet> {
    const body = encodeFetchV4(this.topic, partition, offset, maxBytes);
    const from = Number(offset);
    const raw = { decode: async (b: Buffer) => b, parse: async (b: Buffer) => b };
    for (let attempt = 0; ; attempt++) {
      try {
        const broker = await this.#leader(partition);
        const res = await broker.connectionPool.send({
          request: { apiKey: 1, apiVersion: 4, apiName: 'Fetch', expectResponse: () => true, encode: async () => ({ buf: body, buffer: body }) },
          response: raw,
        }) as Buffer;
        return decodeFetchV4(res, from, gunzipSync, createErrorFromCode);
      } catch (err) {
        if (attempt >= 3) throw err;
        await this.cluster.refreshMetadata().catch(() => {});
      }
    }
  }

  async #leader(partition: number): Promise<Broker> {
    const leaders = this.cluster.findLeaderForPartitions(this.topic, [partition]);
    const nodeId = Object.keys(leaders)[0];
    if (nodeId === undefined) throw new Error(`no leader for ${this.topic}[${partition}]`);
    return this.cluster.findBroker({ nodeId });
  }

  /** The last message of a partition, or null when it holds none. */
  async last(partition: number, high: bigint, low: bigint): Promise<FetchedMessage | null> {
    // Step back in growing strides: the record batch at high-1 normally holds it.
    for (let back = 1n; high - back >= low; back *= 16n) {
      const msgs = (await this.fetch(partition, high - back)).filter((m) => m.offset < high);
      if (msgs.length) return msgs[msgs.length - 1];
    }
    return null;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.cluster.disconnect(), this.admin.disconnect()]);
  }
}
