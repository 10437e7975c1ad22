/**
 * The replicated soak's own faults (`--topology replicated`), on the nodes of scripts/stack/replicated.ts:
 *   - `killLeader`: kill -9 of the Kafka broker leading a random partition of the change topic, under load; it
 *     stays down a while (the cdc's writer and the aggregator's consumer follow the new leaders), then it is
 *     started again and (auto leader rebalance) takes its leaderships back;
 *   - `failRedisMaster`: kill -9 of the Redis master holding a random partition's keys (cluster) or of the
 *     Sentinel set's master, its replica made to miss the master's last acknowledged writes first (so a partition's
 *     buckets, offset and watermark roll back together), then the replica promoted and the old master back as a
 *     replica.
 */
import { createKafka, kafkaConfigOf } from '../../lib/kafka/index.ts';
import { keys } from '../../aggregator/store/index.ts';
import { nodePorts, SENTINEL_MASTER_NAME, startNode, stopNode } from '../../scripts/stack/replicated.ts';
import { sleep, waitFor } from '../harness/index.ts';
import { cutOff, onNode, roleOf, slotOwners } from '../harness/replicated.ts';

export type RedisFailoverMode = 'cluster' | 'sentinel';

/** Returns what was done, for the fault list. */
export async function killLeader(dir: string, brokers: string, topic: string, downMs = 10_000): Promise<string> {
  const admin = createKafka(kafkaConfigOf(brokers), { clientId: 'riskmon-soak' }).admin();
  await admin.connect();
  let partition: number, leader: number;
  try {
    const parts = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions;
    ({ partitionId: partition, leader } = parts[Math.floor(Math.random() * parts.length)]);
  } finally {
    await admin.disconnect().catch(() => {});
  }
  const node = leader - 1; // node.id = index + 1
  await stopNode(dir, 'kafka', node, { hard: true });
  await sleep(downMs);
  await startNode(dir, 'kafka', node);
  return `kill -9 kafka-${node} (leader of ${topic}[${partition}]), restarted after ${downMs / 1000} s`;
}

export async function failRedisMaster(dir: string, mode: RedisFailoverMode, prefix: string, partitions: number): Promise<string> {
  return mode === 'cluster' ? failClusterMaster(dir, prefix, partitions) : failSentinelMaster(dir, prefix, partitions);
}

async function failClusterMaster(dir: string, prefix: string, partitions: number): Promise<string> {
  const ports = await nodePorts(dir, 'cluster');
  const partition = Math.floor(Math.random() * partitions);
  const live = await firstAnswering(ports);
  const offsetKey = keys.offset(prefix, partition);
  const { master, replica } = await slotOwners(live, offsetKey);
  const frozen = await cutOff(master, [replica]);
  const acknowledged = await onNode(master, (r) => r.get(offsetKey));
  await stopNode(dir, 'cluster', ports.indexOf(master), { hard: true });
  await Promise.all(frozen);
  await waitFor(async () => (await roleOf(replica)) === 'master', { timeoutMs: 60_000, intervalMs: 250, message: `cluster replica ${replica} promoted` });
  const promoted = await onNode(replica, (r) => r.get(offsetKey));
  await startNode(dir, 'cluster', ports.indexOf(master));
  await waitFor(async () => (await roleOf(master)) === 'slave', { timeoutMs: 60_000, intervalMs: 250, message: `old master ${master} back as a replica` });
  return `kill -9 cluster master ${master} (partition ${partition}'s slot; its stored offset ${acknowledged}), replica ${replica} promoted (offset ${promoted}), old master back as a replica`;
}

async function failSentinelMaster(dir: string, prefix: string, partitions: number): Promise<string> {
  const sentinels = await nodePorts(dir, 'sentinel');
  const data = await nodePorts(dir, 'sentinel-redis');
  const masterPort = async () => Number((await onNode(await firstAnswering(sentinels), (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME)) as string[])[1]);
  const partition = Math.floor(Math.random() * partitions);
  const offsetKey = keys.offset(prefix, partition);
  const master = await masterPort();
  const frozen = await cutOff(master, data.filter((p) => p !== master));
  const acknowledged = await onNode(master, (r) => r.get(offsetKey));
  await stopNode(dir, 'sentinel-redis', data.indexOf(master), { hard: true });
  await Promise.all(frozen);
  await waitFor(async () => (await masterPort()) !== master, { timeoutMs: 60_000, intervalMs: 250, message: 'sentinels promoted a replica' });
  const promoted = await masterPort();
  const kept = await onNode(promoted, (r) => r.get(offsetKey));
  await startNode(dir, 'sentinel-redis', data.indexOf(master));
  await waitFor(async () => (await roleOf(master)) === 'slave', { timeoutMs: 60_000, intervalMs: 250, message: `old master ${master} back as a replica` });
  return `kill -9 sentinel master ${master} (partition ${partition}'s stored offset ${acknowledged}), replica ${promoted} promoted (offset ${kept}), old master back as a replica`;
}

async function firstAnswering(ports: number[]): Promise<number> {
  for (const p of ports) if ((await roleOf(p)) !== null) return p;
  throw new Error(`no Redis node answers on ${ports.join(', ')}`);
}
