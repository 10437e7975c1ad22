/** Redis 7 with AOF. */
import { spawnSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { ServiceState, StackError, TIMEOUT_MS } from './common.ts';
import { readPidFile, requireBinary, tail, waitUntil } from './host.ts';

export async function startRedis(dir: string, st: ServiceState, env: NodeJS.ProcessEnv): Promise<number> {
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
export function redisPong(port: number): Promise<boolean> {
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
