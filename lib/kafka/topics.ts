/**
 * Creating topics on a multi-broker cluster, and checking how durable they are.
 *
 * kafkajs' `createTopics({ waitForLeaders: true })` asks one broker for the new topic's metadata and retries only
 * LEADER_NOT_AVAILABLE; on three brokers the broker asked often has not received the new topic's metadata yet and
 * answers UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this topic-partition"), which kafkajs then
 * throws as fatal. Here the topics are created without that wait, and the wait is ours: metadata is asked again
 * (of any broker) until every partition has a leader, retrying every retriable answer, up to a deadline.
 */
import type { Admin, ITopicConfig } from 'kafkajs';

/** The topic cannot be created as asked (e.g. a replication factor above the broker count): a setting is wrong. */
export class TopicSetupError extends Error {
  override name = 'TopicSetupError';
}

/** Errors a broker gives while a new topic's metadata spreads over the cluster (or a leader moves). */
const SPREADING = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_OR_FOLLOWER', 'NOT_CONTROLLER', 'REQUEST_TIMED_OUT']);

function isTransient(err: unknown): boolean {
  const e = err as { type?: string; retriable?: boolean; name?: string; errors?: unknown[] };
  if (e?.type && SPREADING.has(e.type)) return true;
  if (Array.isArray(e?.errors) && e.errors.length) return e.errors.every(isTransient);
  return e?.retriable === true || e?.name === 'KafkaJSConnectionError' || e?.name === 'KafkaJSNumberOfRetriesExceeded';
}

/**
 * Runs `fn` again while it fails with an error of a cluster still converging (a broker that has not heard of a
 * new topic yet, a leader moving, a broker restarting), up to `timeoutMs`; other errors are thrown at once.
 */
export async function retryTransient<T>(fn: () => Promise<T>, o: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (Date.now() > deadline) throw new Error(`${o.what ?? 'Kafka request'}: the cluster kept answering ${(err as Error).message} for ${(o.timeoutMs ?? 60_000) / 1000}s`, { cause: err });
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 1000)));
    }
  }
}

/**
 * Creates the topics that are missing and waits until every partition of each has a leader. `replication` 0 means
 * the brokers' default.replication.factor. Returns the names it created.
 */
export async function createTopics(admin: Admin, topics: ITopicConfig[], o: { replication: number; timeoutMs?: number; sleep?: (ms: number) => Promise<void> }): Promise<string[]> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  const existing = new Set(await retryTransient(() => admin.listTopics(), { what: 'listing topics' }));
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length) {
    try {
      await admin.createTopics({ waitForLeaders: false, topics: missing.map((t) => ({ ...t, replicationFactor: o.replication || -1 })) });
    } catch (err) {
      const e = err as { type?: string; errors?: { type?: string; message?: string }[]; message: string };
      const errors = e.errors ?? [e];
      if (!errors.every((x) => x.type === 'TOPIC_ALREADY_EXISTS')) { // created concurrently: fine
        const bad = errors.find((x) => x.type === 'INVALID_REPLICATION_FACTOR');
        if (bad) throw new TopicSetupError(`Kafka refused to create ${missing.map((t) => t.topic).join(', ')}: ${bad.message}. Set RISKMON_TOPIC_REPLICATION to at most the number of brokers (0 = the brokers' default)`, { cause: err });
        throw err;
      }
    }
  }
  const names = topics.map((t) => t.topic);
  for (let attempt = 0; ; attempt++) {
    let last: unknown;
    try {
      const md = await admin.fetchTopicMetadata({ topics: names });
      if (md.topics.length === names.length && md.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) {
        return missing.map((t) => t.topic);
      }
    } catch (err) {
      if (!isTransient(err)) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`topics ${names.join(', ')} have no leader for every partition after ${(o.timeoutMs ?? 60_000) / 1000}s`, { cause: last });
    await sleep(Math.min(100 * 2 ** attempt, 1000));
  }
}

export interface Durability {
  replicationFactor: number;
  minInsyncReplicas: number | null;
  brokers: number;
}

/** Warnings about how a topic is replicated (pure: what the cdc logs at start). */
export function durabilityWarnings(topic: string, d: Durability): string[] {
  const out: string[] = [];
  if (d.replicationFactor >= 3 && d.minInsyncReplicas !== null && d.minInsyncReplicas < 2) {
    out.push(`topic ${topic} has replication factor ${d.replicationFactor} but min.insync.replicas=${d.minInsyncReplicas}: an acknowledged write may live on one broker only and be lost with it. ` +
      `Fix: kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config min.insync.replicas=2`);
  }
  if (d.replicationFactor === 1 && d.brokers > 1) {
    out.push(`topic ${topic} has replication factor 1 on a cluster of ${d.brokers} brokers: losing the broker that holds a partition loses its events. ` +
      'Create the topic with RISKMON_TOPIC_REPLICATION=3 (a new RISKMON_TOPIC, then a rebuild), or reassign its partitions with kafka-reassign-partitions.sh');
  }
  return out;
}

/** Replication factor and min.insync.replicas of a topic, and the broker count. */
export async function durabilityOf(admin: Admin, topic: string): Promise<Durability> {
  const md = await retryTransient(() => admin.fetchTopicMetadata({ topics: [topic] }), { what: `metadata of ${topic}` });
  const replicationFactor = Math.min(...md.topics[0].partitions.map((p) => p.replicas.length));
  const cfg = await retryTransient(() => admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topic, configNames: ['min.insync.replicas'] }] }), { what: `configuration of ${topic}` });
  const raw = cfg.resources[0]?.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue;
  const { brokers } = await retryTransient(() => admin.describeCluster(), { what: 'cluster description' });
  return { replicationFactor, minInsyncReplicas: raw === undefined ? null : Number(raw), brokers: brokers.length };
}
