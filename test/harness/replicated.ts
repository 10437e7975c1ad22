/**
 * The replicated topology (scripts/stack/replicated.ts) for the failover tests: each test file starts the parts it
 * needs in a folder of its own (`.riskmon/test-replicated-<name>`), so files running in parallel never kill each
 * other's nodes, and purges it at the end. The node helpers below are shared with the replicated soak.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { replicatedDown, replicatedUp, type ReplicatedEnv, type ReplicatedPart } from '../../scripts/stack/replicated.ts';

const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface ReplicatedForTest { dir: string; env: ReplicatedEnv; down(): Promise<void> }

export async function replicatedForTest(name: string, parts: ReplicatedPart[]): Promise<ReplicatedForTest> {
  const dir = path.join(ROOT, '.riskmon', `test-replicated-${name}`);
  await replicatedDown(dir, { purge: true, log: () => {} }); // leftovers of an interrupted run
  const env = await replicatedUp(dir, { parts, log: (l) => console.log(`[replicated] ${l}`) });
  return { dir, env, down: () => replicatedDown(dir, { purge: true, log: () => {} }) };
}

/** A plain connection to one node (no cluster or sentinel logic): what a test uses to ask a node about itself. */
export async function onNode<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  r.on('error', () => {});
  await r.connect();
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** `DEBUG SLEEP` on a node without waiting for it: the node answers nothing (replication included) meanwhile. */
export function freeze(port: number, seconds: number): Promise<unknown> {
  return onNode(port, (r) => r.call('DEBUG', 'SLEEP', String(seconds))).catch(() => {});
}

/** The node's role: 'master' or 'slave'; null when it does not answer. */
export async function roleOf(port: number): Promise<string | null> {
  return onNode(port, async (r) => ((await r.call('ROLE')) as [string])[0]).catch(() => null);
}

/** The cluster node serving `key`'s slot, and its replica. */
export async function slotOwners(port: number, key: string): Promise<{ master: number; replica: number }> {
  return onNode(port, async (r) => {
    const slot = Number(await r.call('CLUSTER', 'KEYSLOT', key));
    const lines = String(await r.call('CLUSTER', 'NODES')).trim().split('\n').map((l) => l.split(' '));
    const portOf = (l: string[]) => Number(l[1].split('@')[0].split(':')[1]);
    const master = lines.find((l) => l[2].includes('master') && l.slice(8).some((range) => {
      const [a, b] = range.split('-').map(Number);
      return slot >= a && slot <= (b ?? a);
    }));
    if (!master) throw new Error(`no master serves slot ${slot}`);
    const replica = lines.find((l) => l[3] === master[0]);
    if (!replica) throw new Error(`the master of slot ${slot} has no replica`);
    return { master: portOf(master), replica: portOf(replica) };
  });
}

/**
 * Makes the replicas miss the master's next writes: they are frozen (DEBUG SLEEP, so they cannot reconnect) and
 * the master drops their links (what it already sent they still read on waking); the master then acknowledges
 * writes for 1.5 s that no replica has. Returns the freezes, which end 4 s after the call.
 */
export async function cutOff(master: number, replicas: number[]): Promise<Promise<unknown>[]> {
  const frozen = replicas.map((p) => freeze(p, 4));
  await new Promise((r) => setTimeout(r, 200));
  await onNode(master, (r) => r.call('CLIENT', 'KILL', 'TYPE', 'replica'));
  await new Promise((r) => setTimeout(r, 1_500));
  return frozen;
}
