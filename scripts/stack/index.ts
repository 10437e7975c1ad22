/**
 * Local PostgreSQL 15 + Kafka 3.9 (KRaft) + Redis 7 without Docker: the public face. Each service lives in its own
 * module under scripts/stack/ (pg.ts, kafka.ts, redis.ts), with the shared state (state.ts, urls.ts), lifecycle
 * (services.ts) and host helpers (host.ts).
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
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { SERVICES, ServiceName, ServiceStatus, StackEnv, StackError, StackUpOptions, defaultStackDir } from './common.ts';
import { readState, statePath, withLock, writeState } from './state.ts';
import { externalUrl, externalUrls, isExternal, urls } from './urls.ts';
import { isServiceUp, startService, stopService } from './services.ts';
import { ensureDatabases, findPgBin } from './pg.ts';
import { ensureKafkaJars } from './kafka.ts';
import { pidAlive, requireBinary } from './host.ts';

export { defaultStackDir, envLine, KAFKA_VERSION, SERVICES, StackError, type ServiceName, type ServiceStatus, type StackEnv, type StackUpOptions } from './common.ts';
export { withDatabase } from './urls.ts';

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
