/**
 * The replicated local topology (`npm run stack -- up --topology replicated`): what a payment company runs, on one
 * machine, without Docker:
 *   - Kafka: three KRaft nodes (each broker + controller), default replication factor 3, min.insync.replicas 2;
 *   - Redis Cluster: three masters with one replica each (`redis-cli --cluster create`), fast failover
 *     (cluster-node-timeout 2 s) and `cluster-replica-validity-factor 0`, so a replica that missed writes is still
 *     promoted — the case riskmon must stay exact through;
 *   - a Sentinel set: one master, two replicas, three sentinels watching the master set `riskmon`.
 *
 * Everything lives under one folder (`<stack dir>/replicated`): `replicated.json` (ports, pids), `kafka-<i>/`,
 * `cluster-<i>/`, `sentinel-redis-<i>/`, `sentinel-<i>/`. Ports are picked free once and kept. Tests start only the
 * parts they need (`parts`) and inject faults with `stopNode` / `startNode`.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { StackError } from './common.ts';
import { pickPort, pidAlive, readPidFile, requireBinary, signal, tail, waitGone, waitUntil } from './host.ts';
import { ensureKafkaJars, kafkaAnswers, kafkaClusterId } from './kafka.ts';
import { redisPong } from './redis.ts';
import { withLock } from './state.ts';

export type ReplicatedPart = 'kafka' | 'cluster' | 'sentinel';
export const REPLICATED_PARTS: readonly ReplicatedPart[] = ['kafka', 'cluster', 'sentinel'];
/** Kinds of node a fault can hit. */
export type NodeKind = 'kafka' | 'cluster' | 'sentinel-redis' | 'sentinel';

export const SENTINEL_MASTER_NAME = 'riskmon';
const KAFKA_NODES = 3;
const CLUSTER_NODES = 6;
const SENTINEL_REDIS = 3;
const SENTINELS = 3;

interface NodeState { port: number; pid?: number; controllerPort?: number }
interface ReplicatedState {
  kafkaClusterId?: string;
  clusterCreated?: boolean;
  nodes: Partial<Record<NodeKind, NodeState[]>>;
}

/** The variables of each part, as the components read them (docs/deployment.md). */
export interface ReplicatedEnv {
  KAFKA_BROKERS?: string;
  /** REDIS_URL for RISKMON_REDIS_MODE=cluster: every master and replica as a seed. */
  REDIS_CLUSTER_URL?: string;
  /** REDIS_URL for RISKMON_REDIS_MODE=sentinel: the sentinels. */
  REDIS_SENTINEL_URL?: string;
  RISKMON_REDIS_SENTINEL_NAME?: string;
}

export function replicatedDir(stackDir: string): string {
  return path.join(path.resolve(stackDir), 'replicated');
}

export async function replicatedUp(dir: string, opts: { parts?: readonly ReplicatedPart[]; log?: (line: string) => void; env?: NodeJS.ProcessEnv } = {}): Promise<ReplicatedEnv> {
  const parts = opts.parts ?? REPLICATED_PARTS;
  const log = opts.log ?? ((l: string) => console.log(l));
  const env = opts.env ?? process.env;
  await fsp.mkdir(dir, { recursive: true });
  return withLock(dir, async () => {
    const state = await readState(dir);
    try {
      if (parts.includes('kafka')) await upKafka(dir, state, env, log);
      if (parts.includes('cluster')) await upCluster(dir, state, env, log);
      if (parts.includes('sentinel')) await upSentinel(dir, state, env, log);
    } finally {
      await writeState(dir, state);
    }
    return envOf(state);
  });
}

/** Stops every node (graceful, then SIGKILL); `purge` deletes the data too. */
export async function replicatedDown(dir: string, opts: { purge?: boolean; log?: (line: string) => void } = {}): Promise<void> {
  if (!fs.existsSync(dir)) return;
  const log = opts.log ?? ((l: string) => console.log(l));
  await withLock(dir, async () => {
    const state = await readState(dir);
    for (const kind of ['sentinel', 'sentinel-redis', 'cluster', 'kafka'] as const) {
      const nodes = state.nodes[kind] ?? [];
      await Promise.all(nodes.map((n, i) => stopNodeProcess(dir, kind, i, n, false, log)));
    }
    await writeState(dir, state);
  });
  if (opts.purge) await fsp.rm(dir, { recursive: true, force: true });
}

export async function replicatedEnv(dir: string): Promise<ReplicatedEnv> {
  return envOf(await readState(dir));
}

/** Ports of the nodes of one kind (index = node number), for tests that pick a node to kill. */
export async function nodePorts(dir: string, kind: NodeKind): Promise<number[]> {
  return ((await readState(dir)).nodes[kind] ?? []).map((n) => n.port);
}

/** Stops one node (`hard`: SIGKILL, a crash), keeping its data and port. */
export async function stopNode(dir: string, kind: NodeKind, index: number, opts: { hard?: boolean } = {}): Promise<void> {
  await withLock(dir, async () => {
    const state = await readState(dir);
    const n = state.nodes[kind]?.[index];
    if (!n) throw new StackError(`no ${kind} node ${index} in ${dir}`);
    await stopNodeProcess(dir, kind, index, n, opts.hard ?? false, () => {});
    await writeState(dir, state);
  });
}

/** Starts one stopped node again on its port with its data (it rejoins as whatever its peers make it). */
export async function startNode(dir: string, kind: NodeKind, index: number, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await withLock(dir, async () => {
    const state = await readState(dir);
    const n = state.nodes[kind]?.[index];
    if (!n) throw new StackError(`no ${kind} node ${index} in ${dir}`);
    if (!(n.pid && pidAlive(n.pid))) {
      if (kind === 'kafka') {
        await startKafkaNode(dir, state, index, env, () => {});
        await waitUntil(() => kafkaAnswers(`127.0.0.1:${n.port}`), 120_000, () => `kafka node ${index} did not answer\n${tail(path.join(dir, `kafka-${index}`, 'kafka.log'))}`);
      } else {
        await startRedisNode(dir, kind, index, n, env);
      }
    }
    await writeState(dir, state);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka: three KRaft nodes

async function upKafka(dir: string, state: ReplicatedState, env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<void> {
  const nodes = await allocate(state, 'kafka', KAFKA_NODES, true);
  state.kafkaClusterId ??= kafkaClusterId();
  const t0 = Date.now();
  for (let i = 0; i < nodes.length; i++) {
    if (nodes[i].pid && pidAlive(nodes[i].pid!)) continue;
    await startKafkaNode(dir, state, i, env, log);
  }
  const brokers = nodes.map((n) => `127.0.0.1:${n.port}`);
  await waitUntil(() => clusterHasBrokers(brokers, KAFKA_NODES), 180_000,
    () => `the three Kafka nodes did not form a cluster within 180 s\n${nodes.map((_, i) => `--- kafka-${i} ---\n${tail(path.join(dir, `kafka-${i}`, 'kafka.log'), 15)}`).join('\n')}`);
  log(`kafka: 3 KRaft nodes up on ${brokers.join(',')} in ${((Date.now() - t0) / 1000).toFixed(1)}s (RF 3, min ISR 2)`);
}

async function clusterHasBrokers(brokers: string[], n: number): Promise<boolean> {
  const admin = new Kafka({ brokers, clientId: 'riskmon-stack', logLevel: logLevel.NOTHING, connectionTimeout: 1000, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    const { brokers: live } = await admin.describeCluster();
    return live.length >= n;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

async function startKafkaNode(dir: string, state: ReplicatedState, i: number, env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<void> {
  const java = requireBinary('java', 'openjdk-17-jre-headless', env);
  const jars = await ensureKafkaJars(env, log);
  const nodes = state.nodes.kafka!;
  const n = nodes[i];
  const base = path.join(dir, `kafka-${i}`);
  const data = path.join(base, 'data');
  const props = path.join(base, 'server.properties');
  const log4j = path.join(base, 'log4j.properties');
  const logFile = path.join(base, 'kafka.log');
  await fsp.mkdir(data, { recursive: true });
  const voters = nodes.map((x, j) => `${j + 1}@127.0.0.1:${x.controllerPort}`).join(',');
  await fsp.writeFile(props, [
    'process.roles=broker,controller',
    `node.id=${i + 1}`,
    `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://127.0.0.1:${n.port},CONTROLLER://127.0.0.1:${n.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${n.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${data}`,
    'num.partitions=12',
    // what production runs: every partition on three brokers, a write needs two of them (acks=all)
    'default.replication.factor=3',
    'min.insync.replicas=2',
    'offsets.topic.replication.factor=3',
    'offsets.topic.num.partitions=12',
    'transaction.state.log.replication.factor=3',
    'transaction.state.log.min.isr=2',
    // a restarted node takes its partitions' leadership back soon (a leader change the clients must follow)
    'auto.leader.rebalance.enable=true',
    'leader.imbalance.check.interval.seconds=10',
    'unclean.leader.election.enable=false',
    'group.initial.rebalance.delay.ms=0',
    'log.retention.hours=216',
    'auto.create.topics.enable=false',
    '',
  ].join('\n'));
  await fsp.writeFile(log4j, [
    'log4j.rootLogger=WARN, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.server.KafkaRaftServer=INFO',
    '',
  ].join('\n'));
  const jvm = [...(env.KAFKA_HEAP_OPTS ?? '-Xms128m -Xmx512m').split(/\s+/).filter(Boolean), '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`];
  const cp = `${jars}/*`;
  if (!fs.existsSync(path.join(data, 'meta.properties'))) {
    const r = spawnSync(java, [...jvm, '-cp', cp, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', '-t', state.kafkaClusterId!, '-c', props], { encoding: 'utf8' });
    if (r.status !== 0) throw new StackError(`kafka-${i} storage format failed:\n${r.stdout}${r.stderr}`);
  }
  if (fs.existsSync(logFile)) await fsp.rename(logFile, `${logFile}.1`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(java, [...jvm, '-cp', cp, 'kafka.Kafka', props], { detached: true, stdio: ['ignore', out, out], cwd: base });
  fs.closeSync(out);
  child.unref();
  if (!child.pid) throw new StackError(`could not spawn ${java}`);
  n.pid = child.pid;
  log(`kafka-${i}: starting on port ${n.port} (pid ${n.pid})`);
}

// ---------------------------------------------------------------------------------------------------------------
// Redis Cluster: three masters, one replica each

async function upCluster(dir: string, state: ReplicatedState, env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<void> {
  const nodes = await allocate(state, 'cluster', CLUSTER_NODES, false);
  for (let i = 0; i < nodes.length; i++) await startRedisNode(dir, 'cluster', i, nodes[i], env);
  const cli = requireBinary('redis-cli', 'redis-tools', env);
  if (!state.clusterCreated) {
    const r = spawnSync(cli, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' });
    if (r.status !== 0) throw new StackError(`redis-cli --cluster create failed:\n${r.stdout}${r.stderr}`);
    state.clusterCreated = true;
  }
  await waitUntil(async () => nodes.every((n) => /cluster_state:ok/.test(redisCli(cli, n.port, ['CLUSTER', 'INFO']))), 60_000,
    () => `Redis Cluster not ok within 60 s: ${redisCli(cli, nodes[0].port, ['CLUSTER', 'INFO'])}`);
  log(`redis cluster: 3 masters + 3 replicas on ports ${nodes.map((n) => n.port).join(',')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Sentinel: a master, two replicas, three sentinels

async function upSentinel(dir: string, state: ReplicatedState, env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<void> {
  const data = await allocate(state, 'sentinel-redis', SENTINEL_REDIS, false);
  for (let i = 0; i < data.length; i++) await startRedisNode(dir, 'sentinel-redis', i, data[i], env, data[0].port);
  const sentinels = await allocate(state, 'sentinel', SENTINELS, false);
  for (let i = 0; i < sentinels.length; i++) await startRedisNode(dir, 'sentinel', i, sentinels[i], env, data[0].port);
  const cli = requireBinary('redis-cli', 'redis-tools', env);
  await waitUntil(async () => sentinels.every((s) => {
    const out = redisCli(cli, s.port, ['SENTINEL', 'MASTER', SENTINEL_MASTER_NAME]);
    // every sentinel knows the two replicas and the two other sentinels
    return /num-slaves\n2\b/.test(out) && /num-other-sentinels\n2\b/.test(out);
  }), 60_000, () => `sentinels did not discover the set within 60 s: ${redisCli(cli, sentinels[0].port, ['SENTINEL', 'MASTER', SENTINEL_MASTER_NAME])}`);
  log(`redis sentinel: master set "${SENTINEL_MASTER_NAME}" on ports ${data.map((n) => n.port).join(',')}, sentinels on ${sentinels.map((n) => n.port).join(',')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Redis nodes (cluster, sentinel data nodes, sentinels)

async function startRedisNode(dir: string, kind: NodeKind, i: number, n: NodeState, env: NodeJS.ProcessEnv, sentinelMasterPort?: number): Promise<void> {
  const server = requireBinary('redis-server', 'redis-server', env);
  const base = path.join(dir, `${kind}-${i}`);
  const conf = path.join(base, 'redis.conf');
  const pidFile = path.join(base, 'redis.pid');
  const logFile = path.join(base, 'redis.log');
  if (n.pid && pidAlive(n.pid) && (await redisPong(n.port))) return;
  await fsp.mkdir(base, { recursive: true });
  await fsp.rm(pidFile, { force: true });
  // Written once: the cluster (nodes.conf) and the sentinels (CONFIG REWRITE after a failover) keep their own
  // view of who is master in these files, and a restarted node must come back with it.
  if (!fs.existsSync(conf)) {
    const lines = [
      'bind 127.0.0.1', `port ${n.port}`, 'protected-mode no', `dir "${base}"`, 'daemonize yes', `pidfile "${pidFile}"`, `logfile "${logFile}"`,
    ];
    if (kind === 'sentinel') {
      lines.push(
        `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${sentinelMasterPort} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} 2000`,
        `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 10000`,
        `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
      );
    } else {
      // DEBUG SLEEP from this machine only: the failover tests make a replica lag with it
      lines.push('save ""', 'appendonly yes', 'appendfsync everysec', 'enable-debug-command local');
      if (kind === 'cluster') {
        lines.push('cluster-enabled yes', 'cluster-config-file nodes.conf', 'cluster-node-timeout 2000',
          // a replica that lagged is promoted anyway: availability first, as most deployments configure it
          'cluster-replica-validity-factor 0');
      } else if (i > 0) {
        lines.push(`replicaof 127.0.0.1 ${sentinelMasterPort}`);
      }
    }
    await fsp.writeFile(conf, lines.join('\n') + '\n');
  }
  const args = kind === 'sentinel' ? [conf, '--sentinel'] : [conf];
  const r = spawnSync(server, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new StackError(`redis-server (${kind}-${i}) failed:\n${r.stdout}${r.stderr}\n${tail(logFile)}`);
  await waitUntil(() => redisPong(n.port), 20_000, () => `${kind}-${i} did not answer PING on ${n.port}\n${tail(logFile)}`);
  n.pid = readPidFile(pidFile);
  if (!n.pid) throw new StackError(`${kind}-${i} wrote no pid file ${pidFile}`);
}

function redisCli(cli: string, port: number, args: string[]): string {
  const r = spawnSync(cli, ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

// ---------------------------------------------------------------------------------------------------------------
// State

async function allocate(state: ReplicatedState, kind: NodeKind, count: number, controller: boolean): Promise<NodeState[]> {
  const nodes = (state.nodes[kind] ??= []);
  const taken = () => Object.values(state.nodes).flat().flatMap((n) => [n!.port, n!.controllerPort ?? 0]);
  for (let i = 0; i < count; i++) {
    const n = (nodes[i] ??= { port: 0 });
    if (n.pid && pidAlive(n.pid)) continue;
    n.port = await pickPort(n.port, taken().filter((p) => p !== n.port));
    if (controller) n.controllerPort = await pickPort(n.controllerPort ?? 0, taken().filter((p) => p !== n.controllerPort));
  }
  return nodes;
}

async function stopNodeProcess(dir: string, kind: NodeKind, i: number, n: NodeState, hard: boolean, log: (l: string) => void): Promise<void> {
  const pid = kind === 'kafka' ? n.pid : (readPidFile(path.join(dir, `${kind}-${i}`, 'redis.pid')) ?? n.pid);
  if (pid && pidAlive(pid)) {
    log(`${kind}-${i}: stopping pid ${pid}`);
    signal(pid, hard ? 'SIGKILL' : 'SIGTERM');
    if (!(await waitGone(pid, hard ? 5_000 : 30_000))) {
      signal(pid, 'SIGKILL');
      await waitGone(pid, 5_000);
    }
  }
  n.pid = undefined;
}

function statePath(dir: string): string {
  return path.join(dir, 'replicated.json');
}

async function readState(dir: string): Promise<ReplicatedState> {
  try {
    const raw = JSON.parse(await fsp.readFile(statePath(dir), 'utf8')) as Partial<ReplicatedState>;
    return { ...raw, nodes: raw.nodes ?? {} };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { nodes: {} };
    throw err;
  }
}

async function writeState(dir: string, state: ReplicatedState): Promise<void> {
  const tmp = `${statePath(dir)}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await fsp.rename(tmp, statePath(dir));
}

function envOf(state: ReplicatedState): ReplicatedEnv {
  const list = (kind: NodeKind, fmt: (p: number) => string) => (state.nodes[kind]?.length ? state.nodes[kind]!.map((n) => fmt(n.port)).join(',') : undefined);
  return {
    KAFKA_BROKERS: list('kafka', (p) => `127.0.0.1:${p}`),
    REDIS_CLUSTER_URL: state.clusterCreated ? list('cluster', (p) => `redis://127.0.0.1:${p}`) : undefined,
    REDIS_SENTINEL_URL: list('sentinel', (p) => `redis://127.0.0.1:${p}`),
    RISKMON_REDIS_SENTINEL_NAME: state.nodes.sentinel?.length ? SENTINEL_MASTER_NAME : undefined,
  };
}
