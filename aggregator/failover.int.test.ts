/**
 * Redis failovers on real Redis Cluster and Sentinel nodes (scripts/stack/replicated.ts), with an aggregator
 * process writing all along. The replica about to be promoted is frozen (DEBUG SLEEP) just before its master is
 * killed with SIGKILL, so it misses the master's last acknowledged writes: a partition's buckets, offset and
 * watermark roll back together (one hash slot), and the aggregator must notice and re-consume. Afterwards the old
 * master comes back (as a replica) and every bucket must equal SQL; a replay from an LSN on the new topology must
 * equal a fresh computation.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { nodePorts, startNode, stopNode } from '../scripts/stack/replicated.ts';
import { runRiskmon, waitFor } from '../test/harness/index.ts';
import { cutOff, onNode, replicatedForTest, roleOf, slotOwners, type ReplicatedForTest } from '../test/harness/replicated.ts';
import { connections, readConfig } from '../lib/config.ts';
import { createRedis, duplicateRedis, pipelined, type RedisCommand } from '../lib/redis.ts';
import { harness, loadPayments, type Harness } from './harness.int.ts';
import { keys } from './store/index.ts';

let rep: ReplicatedForTest;
let h: Harness | null = null;
let along: { stop(): Promise<number> } | null = null;
beforeAll(async () => { rep = await replicatedForTest('redis', ['cluster', 'sentinel']); });
afterAll(async () => { await rep?.down(); });
afterEach(async () => {
  await along?.stop().catch(() => {});
  along = null;
  await h?.close();
  h = null;
});

const load = loadPayments;
/** Twice the longest recovery after a Redis master failover the faults bench measured (docs/faults.md: recovery_s_redis_master_max). */
const RECOVERY_ALLOWANCE_MS = 11_000;

/** Keeps loading batches until stopped; returns the next free id. */
function loadAlong(h: Harness, firstId: number, batch: number): { stop(): Promise<number> } {
  let running = true;
  let id = firstId;
  const loop = (async () => {
    while (running) {
      await load(h, id, batch);
      id += batch;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return { async stop() { running = false; await loop; return id; } };
}

describe('Redis Cluster client', () => {
  it('pub/sub reaches a subscriber on another node; a pipeline over many partitions is split per slot and keeps its order', async () => {
    const cfg = readConfig(connections('redisUrl'), { RISKMON_REDIS_MODE: 'cluster', REDIS_URL: rep.env.REDIS_CLUSTER_URL });
    const pub = createRedis(cfg);
    const sub = duplicateRedis(pub);
    try {
      const got: string[] = [];
      sub.on('message', (_c: string, m: string) => got.push(m));
      await sub.subscribe('t:alerts');
      const p = pub.pipeline(); // what the alerting's fan-out does
      for (let i = 0; i < 5; i++) p.publish('t:alerts', `m${i}`);
      await p.exec();
      await waitFor(() => got.length === 5, { timeoutMs: 10_000 });
      expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);

      const cmds: RedisCommand[] = [];
      for (let part = 0; part < 12; part++) cmds.push(['set', `t:{p${part}}:x`, String(part)]);
      for (let part = 11; part >= 0; part--) cmds.push(['get', `t:{p${part}}:x`]);
      const res = await pipelined(pub, cmds);
      expect(res.slice(12).map(([err, v]) => (err ? err.message : v))).toEqual(Array.from({ length: 12 }, (_, i) => String(11 - i)));
      // the keys really are spread over the masters
      const owners = new Set(await Promise.all(Array.from({ length: 12 }, async (_, part) => (await slotOwners(Number(new URL(rep.env.REDIS_CLUSTER_URL!.split(',')[0]).port), `t:{p${part}}:x`)).master)));
      expect(owners.size).toBe(3);
    } finally {
      sub.disconnect();
      pub.disconnect();
    }
  });
});

describe('Redis failover', () => {
  it('cluster: kill -9 of a master mid-load, its lagging replica promoted, the old master back as a replica: every bucket equals SQL, and a replay from an LSN too', async () => {
    h = await harness({ partitions: 6, hot: ['1', '2'], redisEnv: { RISKMON_REDIS_MODE: 'cluster', REDIS_URL: rep.env.REDIS_CLUSTER_URL } });
    h.cdc.heartbeats();
    const ports = await nodePorts(rep.dir, 'cluster');
    const offsetKey = keys.offset(h.prefix, 0);
    await load(h, 1, 5_000);
    const middle = h.cdc.nextLsn();
    h.spawnAggregator();
    await h.caughtUp(120_000);
    along = loadAlong(h, 5_001, 400);
    await waitFor(async () => Number(await h!.redis.get(offsetKey)) > 0, { timeoutMs: 30_000 });

    const { master, replica } = await slotOwners(ports[0], offsetKey);
    const frozen = await cutOff(master, [replica]);
    const acknowledged = Number(await onNode(master, (r) => r.get(offsetKey)));
    await stopNode(rep.dir, 'cluster', ports.indexOf(master), { hard: true });
    await Promise.all(frozen);
    await waitFor(async () => (await roleOf(replica)) === 'master', { timeoutMs: 30_000, intervalMs: 200, message: 'replica promoted' });
    const afterPromotion = Number(await onNode(replica, (r) => r.get(offsetKey)));
    // the case this test is about: the promoted replica holds an older offset than the master had acknowledged
    expect(afterPromotion).toBeLessThan(acknowledged);

    await startNode(rep.dir, 'cluster', ports.indexOf(master));
    await waitFor(async () => (await roleOf(master)) === 'slave', { timeoutMs: 30_000, intervalMs: 200, message: 'old master back as a replica' });
    const next = await along.stop();
    along = null;
    await load(h, next, 2_000);
    await h.caughtUp(RECOVERY_ALLOWANCE_MS);
    expect(await h.diff()).toEqual([]);

    // replay from an LSN on the cluster (keys scanned on every master) equals a fresh computation
    const r = await runRiskmon(['replay', '--from-lsn', middle], h.env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await h.caughtUp(60_000);
    expect(await h.diff()).toEqual([]);
  }, 300_000);

  it('sentinel: kill -9 of the master mid-load, a lagging replica promoted, the old master back as a replica: every bucket equals SQL', async () => {
    h = await harness({
      partitions: 4, redisEnv: { RISKMON_REDIS_MODE: 'sentinel', REDIS_URL: rep.env.REDIS_SENTINEL_URL, RISKMON_REDIS_SENTINEL_NAME: rep.env.RISKMON_REDIS_SENTINEL_NAME },
    });
    h.cdc.heartbeats();
    const sentinels = await nodePorts(rep.dir, 'sentinel');
    const data = await nodePorts(rep.dir, 'sentinel-redis');
    const masterPort = async () => Number((await onNode(sentinels[0], (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', rep.env.RISKMON_REDIS_SENTINEL_NAME!)) as string[])[1]);
    const offsetKey = keys.offset(h.prefix, 0);
    await load(h, 1, 4_000);
    h.spawnAggregator();
    await h.caughtUp(120_000);
    along = loadAlong(h, 4_001, 300);
    const master = await masterPort();
    const replicas = data.filter((p) => p !== master);
    const frozen = await cutOff(master, replicas);
    const acknowledged = Number(await onNode(master, (r) => r.get(offsetKey)));
    await stopNode(rep.dir, 'sentinel-redis', data.indexOf(master), { hard: true });
    await Promise.all(frozen);
    await waitFor(async () => (await masterPort()) !== master, { timeoutMs: 60_000, intervalMs: 250, message: 'sentinels promoted a replica' });
    const promoted = await masterPort();
    const afterPromotion = Number(await onNode(promoted, (r) => r.get(offsetKey)));
    expect(afterPromotion).toBeLessThan(acknowledged);

    await startNode(rep.dir, 'sentinel-redis', data.indexOf(master));
    await waitFor(async () => (await roleOf(master)) === 'slave', { timeoutMs: 60_000, intervalMs: 250, message: 'old master back as a replica' });
    const next = await along.stop();
    along = null;
    await load(h, next, 2_000);
    await h.caughtUp(RECOVERY_ALLOWANCE_MS);
    expect(await h.diff()).toEqual([]);
  }, 300_000);
});
