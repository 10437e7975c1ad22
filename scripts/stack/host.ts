/** Small host helpers: binaries (apt when allowed), processes, ports, waiting. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { StackError } from './common.ts';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function autoInstallAllowed(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI === 'true' || env.CI === '1';
  return isRoot() && (ci || env.RISKMON_AUTO_INSTALL === '1');
}

/** Installs Debian packages. Progress and apt's own output go to stderr: stdout may be a command's result
 * (`npm run images -- local` prints only `export …` lines there, for `eval`). */
export function aptInstall(pkgs: string[]): void {
  process.stderr.write(`installing ${pkgs.join(' ')} with apt-get\n`);
  const r = spawnSync('bash', ['-c', `apt-get update -qq && apt-get install -y -qq --no-install-recommends ${pkgs.join(' ')}`], {
    stdio: ['ignore', 2, 2],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) throw new StackError(`apt-get install ${pkgs.join(' ')} failed`);
}

export function which(bin: string): string | undefined {
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

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(100);
  }
  return !pidAlive(pid);
}

export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').split('\n')[0]?.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function portOpen(port: number): Promise<boolean> {
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

export function listen(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(srv));
  });
}

/** Keeps the previous port when it is still free (stable URLs), else asks the kernel for a free one. */
export async function pickPort(previous: number, avoid: number[] = []): Promise<number> {
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

export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, message: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(300);
  }
  throw new StackError(message());
}

export function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
