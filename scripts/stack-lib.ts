/**
 * Local PostgreSQL 15 + Kafka 3.9 (KRaft) + Redis 7 without Docker.
 *
 * Everything lives under one data folder (default `.riskmon/stack`, or RISKMON_STACK_DIR):
 *   state.json            ports, pids and which URLs came from the environment
 *   pg/{data,run}         initdb'd cluster (owned by the `postgres` OS user when we run as root), socket dir
 *   kafka/{data,...}      KRaft log dirs, server.properties, kafka.log
 *   redis/                AOF, redis.conf, redis.log
 * Kafka's jars are resolved once with Maven into `.riskmon/cache/kafka-<version>` (shared by every data folder).
 *
 * Ports are picked free (bind to port 0) on the first `up` and kept in state.json, so URLs stay the same across
 * restarts while the port stays free. Every state change happens under a lock directory so parallel test runs
 * that share a data folder do not start the same service twice.
 */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

export type ServiceName = 'pg' | 'kafka' | 'redis';
export const SERVICES: readonly ServiceName[] = ['pg', 'kafka', 'redis'];

export interface StackEnv {
  PG_URL: string;
  RISK_PG_URL: string;
  KAFKA_BROKERS: string;
  REDIS_URL: string;
}

interface ServiceState {
  port: number;
  /** KRaft controller listener (Kafka only). */
  controllerPort?: number;
  pid?: number;
}

interface StackState {
  services: Partial<Record<ServiceName, ServiceState>>;
  /** URLs taken from the environment at `up`; those services are not ours to start or stop. */
  external: Partial<StackEnv>;
  /** Processes (e.g. vitest runs) sharing this stack; the last one to release it stops it. */
  holders: number[];
  /** Where the PostgreSQL cluster lives (see pgBaseDir). */
  pgBase?: string;
}

export interface StackUpOptions {
  /** Data folder; default RISKMON_STACK_DIR or `<repo>/.riskmon/stack`. */
  dir?: string;
  /** Where PG_URL, KAFKA_BROKERS, REDIS_URL, RISK_PG_URL are looked up; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Progress lines; default console.log. */
  log?: (line: string) => void;
  /** Register this pid as a user of the stack; `releaseStack(dir, pid)` stops it when the last user leaves. */
  holder?: number;
  /**
   * Runs once the services answer, still under the stack's lock (so no other run joins meanwhile), with the other
   * live holders; the test setup uses it to clear leftovers when it is alone.
   */
  whileLocked?: (env: StackEnv, otherHolders: number[]) => Promise<void>;
}

export interface ServiceStatus {
  name: ServiceName;
  port?: number;
  pid?: number;
  state: 'up' | 'down' | 'external';
  url?: string;
}

export class StackError extends Error {
  override name = 'StackError';
}

export const KAFKA_VERSION = '3.9.1';
const PG_MAJOR = '15';
const REPO_ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const POM = path.join(REPO_ROOT, 'scripts', 'kafka', 'pom.xml');
const TIMEOUT_MS: Record<ServiceName, number> = { pg: 60_000, kafka: 120_000, redis: 20_000 };
const STOP_GRACE_MS: Record<ServiceName, number> = { pg: 30_000, kafka: 30_000, redis: 15_000 };

export function defaultStackDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.RISKMON_STACK_DIR ?? path.join(REPO_ROOT, '.riskmon', 'stack'));
}

/** The one line `npm run stack -- env` prints. */
export function envLine(env: StackEnv): string {
  return `export PG_URL=${env.PG_URL} RISK_PG_URL=${env.RISK_PG_URL} KAFKA_BROKERS=${env.KAFKA_BROKERS} REDIS_URL=${env.REDIS_URL}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Public API

export async function stackUp(opts: StackUpOptions = {}): Promise<StackEnv> {
  const dir = path.resolve(opts.dir ?? defaultStackDir(opts.env));
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line: string) => console.log(line));
  await fsp.mkdir(dir, { recursive: true });
  return withLock(dir, async () => {
    const state = await readState(dir);
    state.external = externalUrls(state, env);
    const started: ServiceName[] = [];
    try {
      for (const name of SERVICES) {
        if (isExternal(state, name)) {
          log(`${name}: using ${externalUrl(state, name)} from the environment`);
          continue;
        }
        const st = state.services[name];
        if (st && (await isServiceUp(dir, state, name))) {
          log(`${name}: already running on port ${st.port} (pid ${st.pid})`);
          continue;
        }
        await startService(dir, state, name, env, log);
        started.push(name);
        await writeState(dir, state);
      }
      const env2 = urls(state);
      if (!isExternal(state, 'pg')) await ensureDatabases([env2.PG_URL, env2.RISK_PG_URL]);
      else if (!env.RISK_PG_URL) await ensureDatabases([env2.RISK_PG_URL]).catch((err) => log(`pg: could not create ${env2.RISK_PG_URL}: ${err}`));
    } catch (err) {
      // Leave nothing half-started behind: stop what this call started, keep the data.
      for (const name of started.reverse()) await stopService(state, name, log).catch(() => {});
      await writeState(dir, state);
      throw err;
    }
    state.holders = state.holders.filter((pid) => pid !== opts.holder && pidAlive(pid));
    if (opts.whileLocked) await opts.whileLocked(urls(state), [...state.holders]);
    if (opts.holder !== undefined) state.holders.push(opts.holder);
    await writeState(dir, state);
    return urls(state);
  });
}

/**
 * Checks (and with CI=true or RISKMON_AUTO_INSTALL=1 as root, installs) the binaries, and resolves Kafka's jars,
 * without starting anything: what a fresh CI machine runs once before the tests.
 */
export async function stackPrepare(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = (l) => console.log(l)): Promise<void> {
  log(`postgres: ${findPgBin(env)}`);
  log(`redis-server: ${requireBinary('redis-server', 'redis-server', env)}`);
  log(`java: ${requireBinary('java', 'openjdk-17-jre-headless', env)}`);
  log(`kafka jars: ${await ensureKafkaJars(env, log)}`);
}

/** Stops what the stack started (graceful, then SIGKILL). `purge` also deletes the data folder. */
export async function stackDown(dir: string = defaultStackDir(), opts: { purge?: boolean; log?: (line: string) => void } = {}): Promise<void> {
  dir = path.resolve(dir);
  const log = opts.log ?? ((line: string) => console.log(line));
  if (!fs.existsSync(dir)) return;
  await withLock(dir, async () => {
    const state = await readState(dir);
    for (const name of [...SERVICES].reverse()) {
      if (!isExternal(state, name)) await stopService(state, name, log);
    }
    state.holders = [];
    await writeState(dir, state);
    if (opts.purge) {
      if (state.pgBase && !state.pgBase.startsWith(dir + path.sep)) await fsp.rm(state.pgBase, { recursive: true, force: true });
    }
  });
  if (opts.purge) {
    await fsp.rm(dir, { recursive: true, force: true });
    log(`purged ${dir}`);
  }
}

/** The URLs of a stack that was brought up in `dir` (whether or not it still runs). */
export async function stackEnv(dir: string = defaultStackDir()): Promise<StackEnv> {
  dir = path.resolve(dir);
  if (!fs.existsSync(statePath(dir))) throw new StackError(`no stack in ${dir}; run \`npm run stack -- up\` first`);
  const state = await readState(dir);
  for (const name of SERVICES) {
    if (!isExternal(state, name) && !state.services[name]) throw new StackError(`stack in ${dir} has no ${name}; run \`npm run stack -- up\``);
  }
  return urls(state);
}

export async function stackStatus(dir: string = defaultStackDir()): Promise<ServiceStatus[]> {
  dir = path.resolve(dir);
  const state = await readState(dir);
  const out: ServiceStatus[] = [];
  for (const name of SERVICES) {
    if (isExternal(state, name)) {
      out.push({ name, state: 'external', url: externalUrl(state, name) });
      continue;
    }
    const st = state.services[name];
    const up = st ? await isServiceUp(dir, state, name) : false;
    out.push({ name, port: st?.port, pid: up ? st?.pid : undefined, state: up ? 'up' : 'down' });
  }
  return out;
}

/** Stops one service of the stack, keeping its data and port. `hard` sends SIGKILL at once (crash injection). */
export async function stopStackService(dir: string, name: ServiceName, opts: { hard?: boolean } = {}): Promise<void> {
  dir = path.resolve(dir);
  await withLock(dir, async () => {
    const state = await readState(dir);
    if (isExternal(state, name)) throw new StackError(`${name} is external (from the environment); cannot stop it`);
    await stopService(state, name, () => {}, opts.hard);
    await writeState(dir, state);
  });
}

/** Starts one stopped service again on its old port with its old data. */
export async function startStackService(dir: string, name: ServiceName, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  dir = path.resolve(dir);
  await withLock(dir, async () => {
    const state = await readState(dir);
    if (isExternal(state, name)) throw new StackError(`${name} is external (from the environment); cannot start it`);
    if (!(await isServiceUp(dir, state, name))) await startService(dir, state, name, env, () => {});
    await writeState(dir, state);
  });
}

/** Stop + start of one service, keeping data and port (fault-injection tests). */
export async function restartService(dir: string, name: ServiceName, opts: { hard?: boolean } = {}): Promise<void> {
  await stopStackService(dir, name, opts);
  await startStackService(dir, name);
}

/**
 * Drops `holder` (and holders that died) from the stack's users; when none is left, stops the stack unless
 * `keep` is set. Returns true when it stopped the stack.
 */
export async function releaseStack(dir: string, holder: number, opts: { keep?: boolean; log?: (line: string) => void } = {}): Promise<boolean> {
  dir = path.resolve(dir);
  const last = await withLock(dir, async () => {
    const state = await readState(dir);
    state.holders = state.holders.filter((pid) => pid !== holder && pidAlive(pid));
    await writeState(dir, state);
    return state.holders.length === 0;
  });
  if (!last || opts.keep) return false;
  await stackDown(dir, { log: opts.log ?? (() => {}) });
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// State and locking

function statePath(dir: string): string {
  return path.join(dir, 'state.json');
}

async function readState(dir: string): Promise<StackState> {
  try {
    const raw = JSON.parse(await fsp.readFile(statePath(dir), 'utf8')) as Partial<StackState>;
    return { services: raw.services ?? {}, external: raw.external ?? {}, holders: raw.holders ?? [], pgBase: raw.pgBase };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { services: {}, external: {}, holders: [] };
    throw err;
  }
}

async function writeState(dir: string, state: StackState): Promise<void> {
  const tmp = `${statePath(dir)}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await fsp.rename(tmp, statePath(dir));
}

/** mkdir is atomic, so a lock directory holding the owner's pid works across processes; a dead owner's lock is taken over. */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, '.lock');
  const deadline = Date.now() + 10 * 60_000;
  await fsp.mkdir(dir, { recursive: true });
  for (;;) {
    try {
      await fsp.mkdir(lock);
      await fsp.writeFile(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(await fsp.readFile(path.join(lock, 'pid'), 'utf8').catch(() => '0'));
      const stat = await fsp.stat(lock).catch(() => undefined);
      // No pid yet and old: the owner died between mkdir and writeFile.
      const orphan = owner ? !pidAlive(owner) : stat !== undefined && Date.now() - stat.mtimeMs > 10_000;
      if (orphan) await fsp.rm(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new StackError(`stack in ${dir} is locked by pid ${owner}`);
      else await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lock, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// URLs and the environment

function ownUrl(state: StackState, key: keyof StackEnv): string | undefined {
  const s = state.services;
  switch (key) {
    case 'PG_URL':
      return s.pg && `postgres://postgres@127.0.0.1:${s.pg.port}/riskmon_source`;
    case 'RISK_PG_URL':
      return s.pg && `postgres://postgres@127.0.0.1:${s.pg.port}/riskmon_risk`;
    case 'KAFKA_BROKERS':
      return s.kafka && `127.0.0.1:${s.kafka.port}`;
    case 'REDIS_URL':
      return s.redis && `redis://127.0.0.1:${s.redis.port}`;
  }
}

/** URLs in env that point elsewhere than this stack (a shell that ran `eval $(npm run stack env)` is not "external"). */
function externalUrls(state: StackState, env: NodeJS.ProcessEnv): Partial<StackEnv> {
  const out: Partial<StackEnv> = {};
  for (const key of ['PG_URL', 'RISK_PG_URL', 'KAFKA_BROKERS', 'REDIS_URL'] as const) {
    const v = env[key];
    if (v && v !== ownUrl(state, key)) out[key] = v;
  }
  // The risk store follows the source server unless named: an external source without RISK_PG_URL gets a
  // riskmon_risk database on that same server.
  if (out.PG_URL && !out.RISK_PG_URL) out.RISK_PG_URL = withDatabase(out.PG_URL, 'riskmon_risk');
  return out;
}

const ENV_KEY: Record<ServiceName, keyof StackEnv> = { pg: 'PG_URL', kafka: 'KAFKA_BROKERS', redis: 'REDIS_URL' };

function isExternal(state: StackState, name: ServiceName): boolean {
  return state.external[ENV_KEY[name]] !== undefined;
}

function externalUrl(state: StackState, name: ServiceName): string | undefined {
  return state.external[ENV_KEY[name]];
}

function urls(state: StackState): StackEnv {
  const get = (key: keyof StackEnv): string => {
    const v = state.external[key] ?? ownUrl(state, key);
    if (!v) throw new StackError(`stack has no value for ${key}`);
    return v;
  };
  return { PG_URL: get('PG_URL'), RISK_PG_URL: get('RISK_PG_URL'), KAFKA_BROKERS: get('KAFKA_BROKERS'), REDIS_URL: get('REDIS_URL') };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

// ---------------------------------------------------------------------------------------------------------------
// Service lifecycle

async function startService(dir: string, state: StackState, name: ServiceName, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  const t0 = Date.now();
  const st = (state.services[name] ??= { port: 0 });
  st.port = await pickPort(st.port);
  if (name === 'kafka') st.controllerPort = await pickPort(st.controllerPort ?? 0, [st.port]);
  st.pid = undefined;
  log(`${name}: starting on port ${st.port}`);
  try {
    if (name === 'pg') st.pid = await startPg(dir, state, st, env);
    else if (name === 'kafka') st.pid = await startKafka(dir, st, env, log);
    else st.pid = await startRedis(dir, st, env);
  } catch (err) {
    await stopService(state, name, () => {}, true).catch(() => {});
    throw err;
  }
  log(`${name}: up on port ${st.port} (pid ${st.pid}) in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

async function stopService(state: StackState, name: ServiceName, log: (line: string) => void, hard = false): Promise<void> {
  const st = state.services[name];
  if (!st) return;
  const pid = name === 'pg' ? (pgPid(state) ?? st.pid) : st.pid;
  if (pid && pidAlive(pid)) {
    log(`${name}: stopping pid ${pid}`);
    if (name === 'pg' && !hard) {
      // Fast shutdown: disconnects clients, checkpoints; replication slots survive.
      runPgTool(state, 'pg_ctl', ['stop', '-D', pgDataDir(state), '-m', 'fast', '-w', '-t', String(STOP_GRACE_MS.pg / 1000)]);
    } else {
      signal(pid, hard ? 'SIGKILL' : 'SIGTERM');
    }
    if (!(await waitGone(pid, hard ? 5_000 : STOP_GRACE_MS[name]))) {
      log(`${name}: pid ${pid} still alive after ${STOP_GRACE_MS[name] / 1000}s, sending SIGKILL`);
      signal(pid, 'SIGKILL');
      await waitGone(pid, 5_000);
    }
  }
  st.pid = undefined;
}

async function isServiceUp(dir: string, state: StackState, name: ServiceName): Promise<boolean> {
  const st = state.services[name];
  if (!st) return false;
  if (name === 'pg') st.pid = pgPid(state) ?? st.pid;
  if (name === 'redis') st.pid = readPidFile(path.join(dir, 'redis', 'redis.pid')) ?? st.pid;
  return st.pid !== undefined && pidAlive(st.pid) && (await portOpen(st.port));
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

/**
 * PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` OS user. That user must be
 * able to reach the folder; if the data folder is under an unreachable path (e.g. /root), the cluster goes to
 * /var/tmp/riskmon-pg/<hash> instead (recorded in state.json, removed by `down --purge`).
 */
function pgBaseDir(dir: string, state: StackState): string {
  if (state.pgBase) return state.pgBase;
  let base = path.join(dir, 'pg');
  if (isRoot()) {
    ensurePostgresUser();
    const probe = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dir]);
    if (probe.status !== 0) base = path.join('/var/tmp/riskmon-pg', crypto.createHash('sha1').update(dir).digest('hex').slice(0, 12));
  }
  state.pgBase = base;
  return base;
}

function pgDataDir(state: StackState): string {
  return path.join(state.pgBase ?? '', 'data');
}

function pgPid(state: StackState): number | undefined {
  return state.pgBase ? readPidFile(path.join(pgDataDir(state), 'postmaster.pid')) : undefined;
}

let pgBin: string | undefined;

function findPgBin(env: NodeJS.ProcessEnv): string {
  if (pgBin) return pgBin;
  const candidates = [env.RISKMON_PG_BIN, `/usr/lib/postgresql/${PG_MAJOR}/bin`];
  const cfg = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (cfg.status === 0) candidates.push(cfg.stdout.trim());
  for (const c of candidates) if (c && fs.existsSync(path.join(c, 'initdb')) && fs.existsSync(path.join(c, 'postgres'))) return (pgBin = c);
  if (autoInstallAllowed(env)) {
    aptInstall([`postgresql-${PG_MAJOR}`]);
    return findPgBin({ ...env, RISKMON_AUTO_INSTALL: '0', CI: '' });
  }
  throw new StackError(
    `PostgreSQL ${PG_MAJOR} server binaries (initdb, postgres) not found in /usr/lib/postgresql/${PG_MAJOR}/bin or RISKMON_PG_BIN. ` +
      `Install them: \`apt-get install -y postgresql-${PG_MAJOR}\` (or run with RISKMON_AUTO_INSTALL=1 as root).`,
  );
}

function runPgTool(state: StackState, tool: string, args: string[], opts: SpawnSyncOptions = {}): { status: number | null; output: string } {
  const bin = path.join(pgBin ?? findPgBin(process.env), tool);
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: state.pgBase, ...opts });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

async function startPg(dir: string, state: StackState, st: ServiceState, env: NodeJS.ProcessEnv): Promise<number> {
  findPgBin(env);
  const base = pgBaseDir(dir, state);
  const data = pgDataDir(state);
  const run = path.join(base, 'run');
  const logFile = path.join(base, 'postgres.log');
  await fsp.mkdir(run, { recursive: true });
  if (isRoot()) chownToPostgres(base, run);
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    const r = runPgTool(state, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C']);
    if (r.status !== 0) throw new StackError(`initdb failed:\n${r.output}`);
    await fsp.appendFile(path.join(data, 'postgresql.conf'), "\ninclude_if_exists = 'riskmon.conf'\n");
  }
  // Rewritten on every start so a changed port or setting takes effect on an existing cluster.
  const conf = [
    `port = ${st.port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${socketDir(run)}'`,
    'wal_level = logical',
    'max_replication_slots = 32',
    'max_wal_senders = 32',
    'max_connections = 300',
    'wal_sender_timeout = 60s',
    "shared_buffers = '256MB'",
    "max_wal_size = '2GB'",
    "log_min_messages = 'warning'",
    '',
  ].join('\n');
  await writeAsPg(path.join(data, 'riskmon.conf'), conf);
  await writeAsPg(
    path.join(data, 'pg_hba.conf'),
    ['local all all trust', 'host all all 127.0.0.1/32 trust', 'local replication all trust', 'host replication all 127.0.0.1/32 trust', ''].join('\n'),
  );
  const r = runPgTool(state, 'pg_ctl', ['start', '-D', data, '-l', logFile, '-w', '-t', String(TIMEOUT_MS.pg / 1000)]);
  if (r.status !== 0) throw new StackError(`PostgreSQL did not start:\n${r.output}\n--- ${logFile} (tail) ---\n${tail(logFile)}`);
  const pid = pgPid(state);
  if (!pid) throw new StackError(`PostgreSQL started but ${data}/postmaster.pid is missing`);
  return pid;
}

/** Unix socket paths are limited to ~107 bytes; fall back to /tmp when the data folder is deep. */
function socketDir(run: string): string {
  return run.length + '/.s.PGSQL.65535'.length < 100 ? run : '/tmp';
}

async function writeAsPg(file: string, content: string): Promise<void> {
  await fsp.writeFile(file, content);
  if (isRoot()) chownToPostgres(file);
}

function chownToPostgres(...paths: string[]): void {
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  for (const p of paths) fs.chownSync(p, uid, gid);
}

function ensurePostgresUser(): void {
  if (spawnSync('id', ['-u', 'postgres']).status === 0) return;
  const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0) throw new StackError(`cannot create the postgres OS user (PostgreSQL refuses to run as root): ${r.stderr}`);
}

async function ensureDatabases(dbUrls: string[]): Promise<void> {
  for (const url of dbUrls) {
    const name = new URL(url).pathname.slice(1);
    const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
    await client.connect();
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (!rowCount) await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    } finally {
      await client.end();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka (KRaft, one combined broker+controller node)

async function startKafka(dir: string, st: ServiceState, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<number> {
  const java = requireBinary('java', 'openjdk-17-jre-headless', env);
  const jars = await ensureKafkaJars(env, log);
  const base = path.join(dir, 'kafka');
  const data = path.join(base, 'data');
  const props = path.join(base, 'server.properties');
  const log4j = path.join(base, 'log4j.properties');
  const logFile = path.join(base, 'kafka.log');
  await fsp.mkdir(data, { recursive: true });
  await fsp.writeFile(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${st.controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${st.port},CONTROLLER://127.0.0.1:${st.controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${st.port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${data}`,
      'num.partitions=12',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=12',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'log.retention.hours=216',
      'auto.create.topics.enable=true',
      '',
    ].join('\n'),
  );
  await fsp.writeFile(
    log4j,
    [
      'log4j.rootLogger=WARN, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      // Start/stop milestones, so the log tail on failure says how far the broker got.
      'log4j.logger.kafka.server.KafkaRaftServer=INFO',
      'log4j.logger.kafka.server.BrokerServer=INFO',
      'log4j.logger.kafka.server.ControllerServer=INFO',
      '',
    ].join('\n'),
  );
  const classpath = `${jars}/*`;
  const jvm = [...(env.KAFKA_HEAP_OPTS ?? '-Xms256m -Xmx1g').split(/\s+/).filter(Boolean), '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`];
  if (!fs.existsSync(path.join(data, 'meta.properties'))) {
    const r = spawnSync(java, [...jvm, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', '-t', kafkaClusterId(), '-c', props], { encoding: 'utf8' });
    if (r.status !== 0) throw new StackError(`kafka storage format failed:\n${r.stdout}${r.stderr}`);
  }
  if (fs.existsSync(logFile)) await fsp.rename(logFile, `${logFile}.1`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(java, [...jvm, '-cp', classpath, 'kafka.Kafka', props], { detached: true, stdio: ['ignore', out, out], cwd: base });
  fs.closeSync(out);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new StackError(`could not spawn ${java}`);
  st.pid = pid;
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));
  await waitUntil(
    async () => {
      if (exited !== null) throw new StackError(`Kafka exited with code ${exited}\n--- ${logFile} (tail) ---\n${tail(logFile)}`);
      return kafkaAnswers(`127.0.0.1:${st.port}`);
    },
    TIMEOUT_MS.kafka,
    () => `Kafka did not answer on 127.0.0.1:${st.port} within ${TIMEOUT_MS.kafka / 1000}s\n--- ${logFile} (tail) ---\n${tail(logFile)}`,
  );
  child.removeAllListeners('exit');
  return pid;
}

/** Kafka's Uuid: 16 random bytes, URL-safe base64 without padding; Kafka never issues ids starting with '-'. */
function kafkaClusterId(): string {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

async function kafkaAnswers(broker: string): Promise<boolean> {
  const admin = new Kafka({ brokers: [broker], clientId: 'riskmon-stack', logLevel: logLevel.NOTHING, connectionTimeout: 1000, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Resolves Kafka's jars once into .riskmon/cache (Maven keeps its own cache in ~/.m2; try offline first). */
export async function ensureKafkaJars(env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<string> {
  const jars = path.resolve(env.RISKMON_KAFKA_JARS ?? path.join(REPO_ROOT, '.riskmon', 'cache', `kafka-${KAFKA_VERSION}`));
  if (fs.existsSync(path.join(jars, '.complete'))) return jars;
  const mvn = requireBinary('mvn', 'maven', env);
  log(`kafka: resolving org.apache.kafka:kafka_2.13:${KAFKA_VERSION} with Maven into ${jars}`);
  const tmp = `${jars}.tmp-${process.pid}`;
  await fsp.rm(tmp, { recursive: true, force: true });
  const args = ['-q', '-B', '-f', POM, `-Dkafka.version=${KAFKA_VERSION}`, 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`];
  let r = spawnSync(mvn, ['-o', ...args], { encoding: 'utf8' });
  if (r.status !== 0) r = spawnSync(mvn, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new StackError(`Maven could not resolve Kafka ${KAFKA_VERSION} (needs Maven Central or ~/.m2):\n${r.stdout}${r.stderr}`);
  await fsp.writeFile(path.join(tmp, '.complete'), `${KAFKA_VERSION}\n`);
  await fsp.rm(jars, { recursive: true, force: true });
  await fsp.rename(tmp, jars).catch(async (err) => {
    // A parallel run finished first: use its copy.
    if (!fs.existsSync(path.join(jars, '.complete'))) throw err;
    await fsp.rm(tmp, { recursive: true, force: true });
  });
  return jars;
}

// ---------------------------------------------------------------------------------------------------------------
// Redis

async function startRedis(dir: string, st: ServiceState, env: NodeJS.ProcessEnv): Promise<number> {
  const server = requireBinary('redis-server', 'redis-server', env);
  const base = path.join(dir, 'redis');
  const conf = path.join(base, 'redis.conf');
  const pidFile = path.join(base, 'redis.pid');
  const logFile = path.join(base, 'redis.log');
  await fsp.mkdir(base, { recursive: true });
  await fsp.rm(pidFile, { force: true });
  await fsp.writeFile(
    conf,
    [
      'bind 127.0.0.1',
      `port ${st.port}`,
      'protected-mode no',
      `dir "${base}"`,
      'save ""',
      // AOF so a restarted Redis keeps its buckets (restart tests rely on it).
      'appendonly yes',
      'appendfsync everysec',
      'daemonize yes',
      `pidfile "${pidFile}"`,
      `logfile "${logFile}"`,
      '',
    ].join('\n'),
  );
  const r = spawnSync(server, [conf], { encoding: 'utf8' });
  if (r.status !== 0) throw new StackError(`redis-server failed:\n${r.stdout}${r.stderr}\n--- ${logFile} (tail) ---\n${tail(logFile)}`);
  await waitUntil(
    () => redisPong(st.port),
    TIMEOUT_MS.redis,
    () => `Redis did not answer PING on 127.0.0.1:${st.port} within ${TIMEOUT_MS.redis / 1000}s\n--- ${logFile} (tail) ---\n${tail(logFile)}`,
  );
  const pid = readPidFile(pidFile);
  if (!pid) throw new StackError(`Redis answers but wrote no pid file ${pidFile}`);
  return pid;
}

/** PING over a raw socket: true on +PONG (not on -LOADING while the AOF is read back). */
function redisPong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (buf) => done(buf.toString().startsWith('+PONG')));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function autoInstallAllowed(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI === 'true' || env.CI === '1';
  return isRoot() && (ci || env.RISKMON_AUTO_INSTALL === '1');
}

function aptInstall(pkgs: string[]): void {
  console.log(`installing ${pkgs.join(' ')} with apt-get`);
  const r = spawnSync('bash', ['-c', `apt-get update -qq && apt-get install -y -qq --no-install-recommends ${pkgs.join(' ')}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) throw new StackError(`apt-get install ${pkgs.join(' ')} failed`);
}

function which(bin: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(d, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function requireBinary(bin: string, aptPackage: string, env: NodeJS.ProcessEnv): string {
  const found = which(bin);
  if (found) return found;
  if (autoInstallAllowed(env)) {
    aptInstall([aptPackage]);
    const again = which(bin);
    if (again) return again;
  }
  throw new StackError(`\`${bin}\` not found on PATH. Install it: \`apt-get install -y ${aptPackage}\` (or run with RISKMON_AUTO_INSTALL=1 as root).`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(100);
  }
  return !pidAlive(pid);
}

function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').split('\n')[0]?.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.setTimeout(1000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.on('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => resolve(false));
  });
}

function listen(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(srv));
  });
}

/** Keeps the previous port when it is still free (stable URLs), else asks the kernel for a free one. */
async function pickPort(previous: number, avoid: number[] = []): Promise<number> {
  if (previous && !avoid.includes(previous)) {
    const srv = await listen(previous);
    if (srv) {
      await new Promise((r) => srv.close(r));
      return previous;
    }
  }
  for (;;) {
    const srv = await listen(0);
    if (!srv) continue;
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    if (!avoid.includes(port)) return port;
  }
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, message: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(300);
  }
  throw new StackError(message());
}

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
