/**
 * Reading partitions at offsets the caller keeps, without a consumer group (the aggregator: where a partition
 * continues is the offset stored in Redis beside its buckets). One Fetch request per partition leader carries every
 * partition the caller wants from it; a request that fails (a broker gone, a leader moved, a partition not yet
 * elected) throws, and the next `leaders()` after `refresh()` names the new leaders. Nothing here waits for a
 * coordinator, a rebalance or a session timeout: a leader change costs the time Kafka takes to elect the new leader
 * plus one metadata round trip. `leaders()` also starts a refresh itself once the metadata is METADATA_MAX_AGE_MS
 * old: a broker answers a consumer's Fetch (v11+) as a follower too, from its own high watermark, one replication
 * round trip behind the leader's, so after a leadership moves back to a restarted broker, Fetches to the former
 * leader go on succeeding, each a little late; kafkajs sends no leader epoch that would have the broker refuse them.
 *
 * Offsets are also committed to a consumer group as a simple (memberless) consumer, generation -1, for lag
 * monitoring (`riskmon status`) only.
 */
import type { Kafka } from 'kafkajs';
import { withTimeout } from '../timeout.ts';
import { createCluster, type Cluster } from './direct.ts';

/** Metadata older than this is refreshed in the background at the next `leaders()` (see above). */
const METADATA_MAX_AGE_MS = 2_000;

export interface FetchedRecord { offset: string; key: Buffer | null; value: Buffer | null; timestamp: string }

export interface PartitionFetch {
  partition: number;
  /** the partition's end (next offset to be written) as the leader answered */
  high: bigint;
  /** records at offsets ≥ the asked offset, in offset order */
  records: FetchedRecord[];
}

/** A Fetch answered OFFSET_OUT_OF_RANGE for `partition`: the asked offset is past its end or before its start. */
export class OffsetOutOfRangeError extends Error {
  override name = 'OffsetOutOfRangeError';
  constructor(readonly partition: number, cause: unknown) { super(`offset out of range on partition ${partition}`, { cause }); }
}

interface RawBroker {
  fetch(req: unknown): Promise<{ responses: { partitions: { partition: number; highWatermark: string; messages: FetchedRecord[] }[] }[] }>;
  offsetCommit(req: unknown): Promise<unknown>;
}
type RawCluster = Cluster & {
  findGroupCoordinator(q: { groupId: string }): Promise<RawBroker>;
  findTopicPartitionMetadata(topic: string): { partitionId: number; leader: number | null }[];
};

export class PartitionFetcher {
  #refreshing: Promise<void> | null = null;
  /** when the metadata held was last refreshed (performance.now(); `open` read it) */
  #refreshedAt = performance.now();

  private constructor(readonly topic: string, private readonly cluster: RawCluster) {}

  static async open(kafka: Kafka, topic: string): Promise<PartitionFetcher> {
    const cluster = createCluster(kafka) as RawCluster;
    await cluster.connect();
    try {
      await cluster.addTargetTopic(topic);
    } catch (err) {
      await cluster.disconnect().catch(() => {});
      throw err;
    }
    return new PartitionFetcher(topic, cluster);
  }

  /**
   * Leader node id → partitions of `parts` it leads, by the metadata held (partitions without a leader are left out).
   * Metadata older than METADATA_MAX_AGE_MS is refreshed in the background for the next call.
   */
  leaders(parts: number[]): Map<number, number[]> {
    if (performance.now() - this.#refreshedAt >= METADATA_MAX_AGE_MS) void this.refresh().catch(() => {});
    const out = new Map<number, number[]>();
    const meta = this.cluster.findTopicPartitionMetadata(this.topic);
    for (const p of parts) {
      const leader = meta.find((m) => m.partitionId === p)?.leader;
      if (leader === null || leader === undefined || leader < 0) continue;
      const l = out.get(leader);
      if (l) l.push(p); else out.set(leader, [p]);
    }
    return out;
  }

  /**
   * Fresh metadata (who leads which partition). Concurrent calls share one request; calls within `minGapMs` of the
   * last refresh return at once (every fetcher of a dead broker asks for one). A refresh that has not answered
   * within `timeoutMs` is given up (kafkajs' own retries of a dead broker can take much longer), so the next call
   * starts a new one.
   */
  refresh(minGapMs = 250, timeoutMs = 5_000): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    if (performance.now() - this.#refreshedAt < minGapMs) return Promise.resolve();
    this.#refreshing = withTimeout(this.cluster.refreshMetadata(), timeoutMs, () => new Error(`metadata refresh not answered within ${timeoutMs} ms`))
      .finally(() => { this.#refreshedAt = performance.now(); this.#refreshing = null; });
    return this.#refreshing;
  }

  /**
   * One Fetch request to `leader` for `parts` (partition → offset). Waits at most `maxWaitMs` for data on the broker;
   * throws on a partition error (OffsetOutOfRangeError for that one) or a connection failure.
   */
  async fetch(leader: number, parts: Map<number, bigint>, o: { maxWaitMs: number; maxBytesPerPartition: number; maxBytes: number }): Promise<PartitionFetch[]> {
    const broker = await this.cluster.findBroker({ nodeId: String(leader) }) as unknown as RawBroker;
    let res;
    try {
      res = await broker.fetch({
        replicaId: -1, isolationLevel: 0, maxWaitTime: o.maxWaitMs, minBytes: 1, maxBytes: o.maxBytes,
        topics: [{ topic: this.topic, partitions: [...parts].map(([partition, offset]) => ({ partition, fetchOffset: offset.toString(), maxBytes: o.maxBytesPerPartition })) }],
      });
    } catch (err) {
      const e = err as { name?: string; partition?: number };
      if (e?.name === 'KafkaJSOffsetOutOfRange' && typeof e.partition === 'number') throw new OffsetOutOfRangeError(e.partition, err);
      throw err;
    }
    const out: PartitionFetch[] = [];
    for (const t of res.responses) {
      for (const p of t.partitions) {
        const from = parts.get(p.partition);
        if (from === undefined) continue;
        // a fetch answers whole record batches: the first may start before the asked offset
        let i = 0;
        while (i < p.messages.length && BigInt(p.messages[i].offset) < from) i++;
        out.push({ partition: p.partition, high: BigInt(p.highWatermark), records: i ? p.messages.slice(i) : p.messages });
      }
    }
    return out;
  }

  /** Commits `offsets` (partition → next offset) to `groupId` as a memberless consumer: for lag monitoring only. */
  async commit(groupId: string, offsets: Map<number, string>): Promise<void> {
    if (!offsets.size) return;
    const coordinator = await this.cluster.findGroupCoordinator({ groupId });
    await coordinator.offsetCommit({
      groupId, groupGenerationId: -1, memberId: '',
      topics: [{ topic: this.topic, partitions: [...offsets].map(([partition, offset]) => ({ partition, offset })) }],
    });
  }

  async close(): Promise<void> {
    await this.cluster.disconnect().catch(() => {});
  }
}
