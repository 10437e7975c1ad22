/**
 * The subscriber of a Redis Cluster (duplicateRedis) with every node gone, on real cluster nodes of its own
 * (scripts/stack/replicated.ts): ioredis's own cluster subscriber connects to the next node at once when one fails,
 * so with every node down it connects without pause (30–90% of a core on the api, measured). riskmon's subscriber
 * reconnects with backoff (200 ms doubling to 5 s), each time to the next node, and subscribes again on its own when
 * the nodes return; the cluster client itself reconnects with backoff too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connections, readConfig } from './config.ts';
import { createRedis, duplicateRedis, isCluster, whenReady } from './redis.ts';
import { nodePorts, startNode, stopNode } from '../scripts/stack/replicated.ts';
import { waitFor } from '../test/harness/index.ts';
import { replicatedForTest, type ReplicatedForTest } from '../test/harness/replicated.ts';
import { nativeStackMissing } from '../test/harness/services.ts';

const missing = await nativeStackMissing();
if (missing) console.warn(`[redis cluster] skipped: it stops cluster nodes on a native stack, which cannot run here: ${missing}`);

describe.skipIf(missing !== null)('Redis Cluster subscriber with every node down', () => {
  let rep: ReplicatedForTest;
  beforeAll(async () => { rep = await replicatedForTest('redis-sub', ['cluster']); }, 180_000);
  afterAll(async () => { await rep?.down(); });

  it('reconnects with backoff, node after node, and gets the channel again when the nodes return', async () => {
    const cfg = readConfig(connections('redisUrl'), { RISKMON_REDIS_MODE: 'cluster', REDIS_URL: rep.env.REDIS_CLUSTER_URL });
    const pub = createRedis(cfg, { offlineQueue: false });
    pub.on('error', () => {});
    const sub = duplicateRedis(pub);
    sub.on('error', () => {});
    try {
      if (isCluster(sub)) throw new Error('the subscriber of a cluster is a plain connection to one node');
      const got: string[] = [];
      sub.on('message', (_c: string, m: string) => got.push(m));
      await Promise.all([whenReady(pub), whenReady(sub)]); // as the api does (its clients have no offline queue)
      await sub.subscribe('t:alerts');
      await pub.publish('t:alerts', 'before');
      await waitFor(() => got.includes('before'), { timeoutMs: 10_000, message: 'the message before the outage' });

      const ports = await nodePorts(rep.dir, 'cluster');
      let attempts = 0;
      const hosts = new Set<string>();
      sub.on('reconnecting', () => { attempts++; hosts.add(`${sub.options.host}:${sub.options.port}`); });
      for (let i = 0; i < ports.length; i++) await stopNode(rep.dir, 'cluster', i, { hard: true });
      // counted from when the last node is gone (before, it may reconnect to a node still up)
      attempts = 0;
      hosts.clear();
      await new Promise((r) => setTimeout(r, 15_000));
      // backoff from 200 ms doubling to 5 s: about 6 attempts in 15 s (ioredis's cluster subscriber: thousands)
      expect(attempts).toBeGreaterThanOrEqual(3);
      expect(attempts).toBeLessThanOrEqual(9);
      expect(hosts.size).toBeGreaterThan(1);

      for (let i = 0; i < ports.length; i++) await startNode(rep.dir, 'cluster', i);
      await waitFor(async () => {
        await pub.publish('t:alerts', 'after').catch(() => {});
        return got.includes('after');
      }, { timeoutMs: 90_000, intervalMs: 1000, message: 'the message after the nodes returned' });
    } finally {
      sub.disconnect();
      pub.disconnect();
    }
  }, 240_000);
});
