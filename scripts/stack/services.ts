/** Starting, stopping and probing one service, dispatched to its module. */
import path from 'node:path';
import pg from 'pg';
import { STOP_GRACE_MS, ServiceName, StackState } from './common.ts';
import { pgDataDir, pgPid, runPgTool, startPg } from './pg.ts';
import { startKafka } from './kafka.ts';
import { startRedis } from './redis.ts';
import { pickPort, pidAlive, portOpen, readPidFile, signal, waitGone } from './host.ts';

export async function startService(dir: string, state: StackState, name: ServiceName, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
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

export async function stopService(state: StackState, name: ServiceName, log: (line: string) => void, hard = false): Promise<void> {
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

export async function isServiceUp(dir: string, state: StackState, name: ServiceName): Promise<boolean> {
  const st = state.services[name];
  if (!st) return false;
  if (name === 'pg') st.pid = pgPid(state) ?? st.pid;
  if (name === 'redis') st.pid = readPidFile(path.join(dir, 'redis', 'redis.pid')) ?? st.pid;
  return st.pid !== undefined && pidAlive(st.pid) && (await portOpen(st.port));
}
