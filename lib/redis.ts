/**
 * The one place a Redis client is built (docs/deployment.md). Every component, command, tool and
 * test calls `createRedis` with the Redis part of its configuration:
 *   - `standalone`: REDIS_URL is one server;
 *   - `cluster`: REDIS_URL lists seed nodes; the client follows MOVED/ASK and failovers. riskmon's keys carry the
 *     hash tag `{pN}` of their Kafka partition, so every script and every multi-key command touches one slot;
 *     pipelines that span partitions go through `pipelined`, which splits them per tag;
 *   - `sentinel`: REDIS_URL lists the sentinels, RISKMON_REDIS_SENTINEL_NAME the master set; the client asks the
 *     sentinels for the master and reconnects after a failover (a write refused by a demoted master is resent).
 * `rediss://` means TLS (RISKMON_REDIS_CA_FILE for a private CA); an ACL user and password come from the URL or
 * RISKMON_REDIS_USERNAME / RISKMON_REDIS_PASSWORD (or RISKMON_REDIS_PASSWORD_FILE).
 *
 * A wrong password or an untrusted certificate never turns into a silent reconnect loop: `verifyRedis` (run by
 * every component at start) fails with a message naming the setting.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Command, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import { ConfigError, type REDIS_MODES } from './config.ts';
import { backoffMs } from './service.ts';

export type RedisClient = Redis | Cluster;
export type RedisMode = typeof REDIS_MODES[number];

/** The Redis part of a component's configuration (`connections('redisUrl')` in lib/config.ts). */
export interface RedisConfig {
  readonly redisUrl: readonly string[];
  readonly redisMode: RedisMode;
  readonly redisSentinelName: string;
  readonly redisCaFile: string;
  readonly redisUsername: string;
  readonly redisPassword: string;
}

export interface RedisClientOptions {
  /** Connect on the first command (or `connect()`), not at once. */
  lazyConnect?: boolean;
  /**
   * How often a command is retried across reconnects before it fails; null = wait for Redis as long as it takes
   * (the aggregator and the evaluator: an outage pauses them). Default 2 (requests that answer a user).
   */
  maxRetriesPerRequest?: number | null;
  /** CLIENT SETNAME, visible in CLIENT LIST. */
  connectionName?: string;
  /**
   * false: a command issued while Redis is unreachable fails at once instead of waiting in ioredis' offline queue
   * (which a Redis Cluster client keeps for as long as the cluster is down, without bound). The API, whose
   * requests and live polls would otherwise pile up there, sets it; wait for `whenReady` before the first command.
   */
  offlineQueue?: boolean;
}

/** Resolves once the client is connected (at once if it is), so a client without an offline queue can start. */
export function whenReady(redis: RedisClient, timeoutMs = 30_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { redis.off('ready', ok); reject(new Error(`Redis did not become ready within ${timeoutMs} ms`)); }, timeoutMs);
    const ok = () => { clearTimeout(timer); resolve(); };
    redis.once('ready', ok);
  });
}

/** What `createRedis` builds, as plain data (tested without a server). */
export interface RedisTarget {
  mode: RedisMode;
  nodes: { host: string; port: number }[];
  tls: boolean;
  username?: string;
  password?: string;
  /** sentinel mode: credentials in the sentinel URLs are the sentinels' own */
  sentinelUsername?: string;
  sentinelPassword?: string;
  sentinelName?: string;
  db?: number;
}

export function redisTarget(cfg: RedisConfig): RedisTarget {
  const urls = cfg.redisUrl.map((s) => new URL(s));
  if (cfg.redisMode === 'standalone' && urls.length !== 1) {
    throw new ConfigError([`REDIS_URL lists ${urls.length} servers but RISKMON_REDIS_MODE=standalone: set RISKMON_REDIS_MODE=cluster (seed nodes) or sentinel (sentinels), or give one URL`]);
  }
  if (cfg.redisMode === 'sentinel' && !cfg.redisSentinelName) {
    throw new ConfigError(['RISKMON_REDIS_SENTINEL_NAME is required with RISKMON_REDIS_MODE=sentinel: the name of the master set the sentinels watch']);
  }
  const first = urls[0];
  const dec = (s: string) => (s ? decodeURIComponent(s) : undefined);
  const nodes = urls.map((u) => ({ host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port ? Number(u.port) : (cfg.redisMode === 'sentinel' ? 26379 : 6379) }));
  const username = cfg.redisUsername || (cfg.redisMode === 'sentinel' ? undefined : dec(first.username));
  const password = cfg.redisPassword || (cfg.redisMode === 'sentinel' ? undefined : dec(first.password));
  const dbPath = first.pathname.replace(/^\//, '');
  if (dbPath && !/^\d+$/.test(dbPath)) throw new ConfigError([`REDIS_URL: "/${dbPath}" is not a database number`]);
  if (dbPath && dbPath !== '0' && cfg.redisMode === 'cluster') throw new ConfigError(['REDIS_URL: a Redis Cluster has only database 0; drop the "/N" path']);
  return {
    mode: cfg.redisMode, nodes, tls: first.protocol === 'rediss:', username, password,
    ...(cfg.redisMode === 'sentinel' ? { sentinelName: cfg.redisSentinelName, sentinelUsername: dec(first.username), sentinelPassword: dec(first.password) } : {}),
    ...(dbPath ? { db: Number(dbPath) } : {}),
  };
}

function tlsOptions(cfg: RedisConfig, t: RedisTarget): ConnectionOptions | undefined {
  if (!t.tls) return undefined;
  return cfg.redisCaFile ? { ca: [readFileSync(cfg.redisCaFile)] } : {};
}

export function createRedis(cfg: RedisConfig, opts: RedisClientOptions = {}): RedisClient {
  const t = redisTarget(cfg);
  const tls = tlsOptions(cfg, t);
  const common: RedisOptions = {
    lazyConnect: opts.lazyConnect ?? false,
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 2 : opts.maxRetriesPerRequest,
    ...(opts.connectionName ? { connectionName: opts.connectionName } : {}),
    ...(opts.offlineQueue === false ? { enableOfflineQueue: false } : {}),
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(tls ? { tls } : {}),
  };
  if (t.mode === 'cluster') {
    const nodes: ClusterNode[] = t.nodes.map((n) => ({ host: n.host, port: n.port }));
    const cluster = new Cluster(nodes, {
      lazyConnect: common.lazyConnect,
      // with every node unreachable, reconnect with backoff up to 5 s (ioredis's default retries every 100 ms + 2 ms
      // per attempt: still under 2 s after ten minutes, reconnecting to every seed each time)
      clusterRetryStrategy: (times) => backoffMs(times - 1, 200, 5_000),
      ...(opts.offlineQueue === false ? { enableOfflineQueue: false } : {}),
      // a failover moves slots: wait for the new master rather than fail the command
      retryDelayOnFailover: 200,
      // … for as long as a failover takes (node timeout + election), not the default 16 tries
      maxRedirections: 100,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 200,
      slotsRefreshTimeout: 2000,
      // A node whose connection closes is dropped at once (ioredis' default, no reconnect strategy): its queued
      // commands fail with "Connection is closed", which makes the client re-read the slot map and resend them to the
      // promoted replica. A reconnect strategy kept them queued on the dead master instead, and lost them for good
      // when a slot-map refresh dropped the node while it waited to reconnect (ioredis' disconnect() of a
      // reconnecting connection flushes nothing): a failover never healed. The slot map is re-read every 2 s, which
      // also connects again to a node the cluster still lists (a restart without slot changes).
      slotsRefreshInterval: 2_000,
      // TLS certificates name hosts, not the addresses a lookup returns
      ...(tls ? { dnsLookup: (address: string, cb: (err: null, address: string) => void) => cb(null, address) } : {}),
      redisOptions: { ...common, lazyConnect: undefined, maxRetriesPerRequest: common.maxRetriesPerRequest },
    });
    clusterSeeds.set(cluster, { nodes: t.nodes.map((n) => ({ host: n.host, port: n.port })), options: { ...common, lazyConnect: false } });
    return cluster;
  }
  if (t.mode === 'sentinel') {
    return new Redis({
      ...common,
      sentinels: t.nodes,
      name: t.sentinelName,
      ...(t.sentinelUsername ? { sentinelUsername: t.sentinelUsername } : {}),
      ...(t.sentinelPassword ? { sentinelPassword: t.sentinelPassword } : {}),
      ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
      // learn of a failover from the sentinels' +switch-master at once, not on the next failed command
      failoverDetector: true,
      // a demoted master refuses writes: reconnect (to the new master) and resend. A script refused this way
      // wrote nothing (Redis refuses a script's first write on a replica), so resending it is safe.
      reconnectOnError: (err) => (/^READONLY/.test(err.message) ? 2 : false),
      ...(t.db !== undefined ? { db: t.db } : {}),
    });
  }
  return new Redis({
    ...common, host: t.nodes[0].host, port: t.nodes[0].port,
    ...(t.db !== undefined ? { db: t.db } : {}),
  });
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return (redis as Cluster).isCluster === true;
}

/** A cluster's seed nodes and node options, for its subscriber (duplicateRedis). */
const clusterSeeds = new WeakMap<Cluster, { nodes: { host: string; port: number }[]; options: RedisOptions }>();

/**
 * A second connection like `redis`, for SUBSCRIBE. For a cluster it is a plain connection to one node (Redis Cluster
 * forwards every PUBLISH to all nodes), not ioredis's cluster subscriber: that one, when its node is gone, connects to
 * another at once, with no delay — with every node down a refused connect after a refused connect, 30–90% of a core
 * and garbage to match (measured on the api: bench/results/2026-12-07-deps-down.md). This one reconnects with backoff
 * (200 ms doubling to 5 s), each time to the next node the cluster knows (its seeds when it knows none), and
 * subscribes again on its own (ioredis's autoResubscribe).
 */
export function duplicateRedis(redis: RedisClient): RedisClient {
  if (!isCluster(redis)) return redis.duplicate();
  const seeds = clusterSeeds.get(redis);
  if (!seeds) return redis.duplicate();
  const known = () => {
    const live = redis.nodes().map((n) => ({ host: n.options.host, port: n.options.port })).filter((n): n is { host: string; port: number } => Boolean(n.host && n.port));
    return live.length ? live : seeds.nodes;
  };
  let next = 0;
  const sub: Redis = new Redis({
    ...seeds.options, host: seeds.nodes[0].host, port: seeds.nodes[0].port, maxRetriesPerRequest: null,
    retryStrategy: (times) => {
      const nodes = known();
      const n = nodes[++next % nodes.length];
      // the connector reads host and port from these options at each connect
      sub.options.host = n.host;
      sub.options.port = n.port;
      return backoffMs(times - 1, 200, 5_000);
    },
  });
  return sub;
}

/** The masters holding data: one client per cluster master, or the client itself (key scans, FLUSH). */
export function masters(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

/** Every key matching `pattern` on every master (SCAN, COUNT 1000). */
export async function scanKeys(redis: RedisClient, pattern: string, onKeys: (keys: string[]) => Promise<void> | void): Promise<void> {
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await onKeys(keys);
    } while (cursor !== '0');
  }
}

export type RedisCommand = [name: string, ...args: (string | number)[]];

/**
 * Runs commands in one round trip per hash tag and returns their replies in order ([error, value] each). A
 * standalone or sentinel client sends one pipeline; a cluster client one per `{tag}` (a pipeline must stay on one
 * node), in parallel. A command's tag is the first `{…}` in its arguments.
 */
export async function pipelined(redis: RedisClient, cmds: RedisCommand[]): Promise<[Error | null, unknown][]> {
  if (!isCluster(redis)) return execPipeline(redis, cmds);
  const groups = new Map<string, number[]>();
  cmds.forEach((c, i) => {
    let tag = '';
    for (const a of c.slice(1)) {
      const m = typeof a === 'string' ? /\{([^}]+)\}/.exec(a) : null;
      if (m) { tag = m[1]; break; }
    }
    const g = groups.get(tag);
    if (g) g.push(i); else groups.set(tag, [i]);
  });
  const out: [Error | null, unknown][] = new Array(cmds.length);
  await Promise.all([...groups.values()].map(async (idx) => {
    const res = await execPipeline(redis, idx.map((i) => cmds[i]));
    idx.forEach((i, j) => { out[i] = res[j]; });
  }));
  return out;
}

async function execPipeline(redis: RedisClient, cmds: RedisCommand[]): Promise<[Error | null, unknown][]> {
  const p = redis.pipeline();
  for (const [name, ...args] of cmds) (p as any)[name](...args);
  return ((await p.exec()) ?? []) as [Error | null, unknown][];
}

/** Redis refused our credentials or we refused its certificate: a setting is wrong, retrying cannot help. */
export class RedisSetupError extends Error {
  override name = 'RedisSetupError';
}

const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
]);

/** The setting to fix for an error of a Redis connection, or null when it is an outage (wait and retry). */
export function redisSetupProblem(err: unknown, cfg: Pick<RedisConfig, 'redisCaFile' | 'redisMode'>): string | null {
  const e = err as NodeJS.ErrnoException & { message?: string };
  const msg = String(e?.message ?? err);
  if (/WRONGPASS|invalid username-password|NOAUTH|Authentication required|NOPERM/i.test(msg)) {
    return `Redis refused the credentials (${msg.split('\n')[0]}): check RISKMON_REDIS_USERNAME / RISKMON_REDIS_PASSWORD (or the user:password in REDIS_URL)`;
  }
  if (e?.code && TLS_TRUST_CODES.has(e.code)) {
    return `the Redis server's TLS certificate is not trusted (${e.code}): set RISKMON_REDIS_CA_FILE to the CA that signed it` +
      (cfg.redisCaFile ? ` (now ${cfg.redisCaFile}, which did not verify it)` : '');
  }
  if (/wrong version number|EPROTO|packet length too long/i.test(msg)) {
    return `TLS handshake with Redis failed (${msg}): a rediss:// URL needs a TLS port, a redis:// URL a plain one (check REDIS_URL)`;
  }
  return null;
}

/**
 * One connection attempt at start: a wrong password, an untrusted certificate or a wrong mode fails here with the
 * setting named; an unreachable server is left to the components, which wait for Redis. Returns the problem as a
 * thrown RedisSetupError.
 */
export async function verifyRedis(cfg: RedisConfig, timeoutMs = 10_000): Promise<void> {
  // ioredis' cluster client reports a refused certificate or password of a seed node as 'Connection is closed'
  // and 'None of startup nodes is available': each seed node is asked alone first, where the cause shows.
  if (cfg.redisMode === 'cluster') await Promise.all(cfg.redisUrl.map((url) => verifyRedis({ ...cfg, redisMode: 'standalone', redisUrl: [url] }, timeoutMs)));
  const client = createRedis(cfg, { lazyConnect: true, maxRetriesPerRequest: 0 });
  const seen: unknown[] = [];
  client.on('error', (err) => seen.push(err));
  if (isCluster(client)) client.on('node error', (err) => seen.push(err));
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  try {
    const res = await Promise.race([client.connect().then(() => client.ping()), timer]);
    if (res === 'timeout') {
      for (const err of seen) {
        const problem = redisSetupProblem(err, cfg);
        if (problem) throw new RedisSetupError(problem, { cause: err });
      }
    }
  } catch (err) {
    if (err instanceof RedisSetupError) throw err;
    for (const e of [err, ...seen, (err as { lastNodeError?: unknown })?.lastNodeError]) {
      const problem = e ? redisSetupProblem(e, cfg) : null;
      if (problem) throw new RedisSetupError(problem, { cause: e });
    }
    if (/ERR This instance has cluster support disabled/.test(String((err as Error)?.message))) {
      throw new RedisSetupError('RISKMON_REDIS_MODE=cluster but the Redis server has cluster support disabled: set RISKMON_REDIS_MODE=standalone', { cause: err });
    }
    // unreachable or still starting: an outage, which the components ride out
  } finally {
    client.disconnect();
  }
}

// ---- commands with many arguments, encoded once -----------------------------------------------------------------

/**
 * RESP bulk strings written into one growing buffer: numbers as their decimal digits, strings as UTF-8, with no
 * string made per argument. With `sendEncoded`, for commands of tens of thousands of arguments (the replay's
 * rebuild), where ioredis builds and concatenates a string per argument.
 */
export class RespWriter {
  buf: Buffer;
  at = 0;
  /** arguments written */
  count = 0;

  constructor(size = 1 << 16) {
    this.buf = Buffer.allocUnsafe(size);
  }

  #room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.at + n));
    this.buf.copy(b, 0, 0, this.at);
    this.buf = b;
  }

  /** The digits of a non-negative safe integer (room checked by the caller). */
  #digits(n: number): void {
    let len = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) len++;
    this.at += len;
    for (let i = this.at - 1; i >= this.at - len; i--) { this.buf[i] = 0x30 + (n % 10); n = Math.floor(n / 10); }
  }

  /** A string argument (or `prefix` + string: one argument). */
  string(s: string, prefix = ''): this {
    const n = Buffer.byteLength(prefix) + Buffer.byteLength(s);
    this.#room(n + 16);
    this.buf[this.at++] = 0x24; // $
    this.#digits(n);
    this.buf[this.at++] = 0x0d; this.buf[this.at++] = 0x0a;
    if (prefix) this.at += this.buf.write(prefix, this.at, 'utf8');
    this.at += this.buf.write(s, this.at, 'utf8');
    this.buf[this.at++] = 0x0d; this.buf[this.at++] = 0x0a;
    this.count++;
    return this;
  }

  /** An integer argument (a safe integer or a bigint). */
  integer(v: number | bigint): this {
    if (typeof v === 'bigint' || !Number.isSafeInteger(v)) return this.string(String(v));
    const neg = v < 0;
    const d = Math.abs(v);
    let digits = 1;
    for (let x = d; x >= 10; x = Math.floor(x / 10)) digits++;
    this.#room(digits + 20);
    this.buf[this.at++] = 0x24;
    this.#digits(digits + (neg ? 1 : 0));
    this.buf[this.at++] = 0x0d; this.buf[this.at++] = 0x0a;
    if (neg) this.buf[this.at++] = 0x2d;
    this.#digits(d);
    this.buf[this.at++] = 0x0d; this.buf[this.at++] = 0x0a;
    this.count++;
    return this;
  }

  /** Appends what `w` holds (and empties `w`). */
  append(w: RespWriter): this {
    this.#room(w.at);
    w.buf.copy(this.buf, this.at, 0, w.at);
    this.at += w.at;
    this.count += w.count;
    w.at = 0;
    w.count = 0;
    return this;
  }

  reset(): void {
    this.at = 0;
    this.count = 0;
  }

  /** The bytes written and the writer emptied (on a new buffer) for reuse. */
  take(): { bytes: Buffer; count: number } {
    const out = { bytes: this.buf.subarray(0, this.at), count: this.count };
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.at = 0;
    this.count = 0;
    return out;
  }
}

/**
 * Sends `name` with arguments `route` (what ioredis reads the keys from to pick a cluster node; sent only when
 * `parts` is empty) — or, when `parts` are given, with the arguments encoded in them, in order, as the command's
 * whole argument list. ioredis queues, routes and answers it like any command; only its encoding is ours.
 */
export function sendEncoded(redis: RedisClient, name: string, route: string[], parts: { bytes: Buffer; count: number }[]): Promise<unknown> {
  const count = parts.reduce((n, p) => n + p.count, 0);
  const head = Buffer.from(`*${count + 1}\r\n$${Buffer.byteLength(name)}\r\n${name}\r\n`);
  const body = Buffer.concat([head, ...parts.map((p) => p.bytes)]);
  const cmd = new EncodedCommand(name, route, body);
  return redis.sendCommand(cmd) as Promise<unknown>;
}

class EncodedCommand extends Command {
  readonly #body: Buffer;
  constructor(name: string, route: string[], body: Buffer) {
    super(name, route);
    this.#body = body;
  }

  override toWritable(): Buffer {
    return this.#body;
  }
}
