/**
 * Starting a riskmon component as a child process, the way the README says to run it (`riskmon <cmd>` through
 * lib/launch.ts's argv, with its heap cap). Tests, the demo, the soak and the benchmarks all start components here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { riskmonArgv } from '../../lib/launch.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

type Stream = 'inherit' | 'ignore' | 'pipe';

export interface SpawnOptions {
  /** The child's whole environment. */
  env: NodeJS.ProcessEnv;
  /** Node flags before the script (profiling). */
  nodeArgs?: string[];
  /** Default: the repository root. */
  cwd?: string;
  /** Default 'pipe' (read them from child.stdout/stderr, or use logFile/logs/onFailure). */
  stdout?: Stream;
  stderr?: Stream;
  /** Output is appended to this file (stdout and stderr). */
  logFile?: string;
  /** Piped output is kept here, the latest few hundred chunks (for failure messages). */
  logs?: string[];
  /** Called when the child exits non-zero, with the last 4,000 characters of its piped stderr. */
  onFailure?: (exit: number | string, stderrTail: string) => void;
}

export function spawnRiskmon(args: string[], o: SpawnOptions): ChildProcess {
  // A log file is handed to the child as its stdout (and stderr, unless the parent reads stderr too), so the log
  // is complete when the child exits and nothing passes through this process.
  const fd = o.logFile ? openSync(o.logFile, 'a') : null;
  const readsStderr = Boolean(o.logs || o.onFailure);
  const stdout: Stream | number = fd ?? o.stdout ?? 'pipe';
  const stderr: Stream | number = fd !== null && !readsStderr ? fd : o.stderr ?? 'pipe';
  const child = spawn(process.execPath, riskmonArgv(args, o.nodeArgs ?? [], o.env), {
    env: o.env, cwd: o.cwd ?? ROOT, stdio: ['ignore', stdout, stderr],
  });
  if (fd !== null) closeSync(fd);
  const piped = [child.stdout, child.stderr].filter((s) => s !== null);
  if (o.logFile && child.stderr) child.stderr.pipe(createWriteStream(o.logFile, { flags: 'a' }));
  if (o.logs) {
    const logs = o.logs;
    const keep = (b: Buffer) => { logs.push(b.toString()); if (logs.length > 400) logs.splice(0, 200); };
    for (const s of piped) s.on('data', keep);
  }
  if (o.onFailure) {
    const onFailure = o.onFailure;
    let tail = '';
    child.stderr?.on('data', (d) => { tail = (tail + d).slice(-4000); });
    child.on('exit', (code, signal) => { if (code) onFailure(code ?? signal ?? '?', tail); });
  }
  return child;
}

/** Runs a one-shot command (`riskmon replay …`) to its end and returns its exit code and output. */
/**
 * Runs a riskmon command to its end. `timeoutMs`: past it the command is killed and its output so far returned with
 * code null and a last stderr line saying so (a test then shows what the command was waiting for).
 */
export function runRiskmon(args: string[], env: NodeJS.ProcessEnv, o: { timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawnRiskmon(args, { env });
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = o.timeoutMs ? setTimeout(() => {
      stderr += `\n[test] riskmon ${args.join(' ')}: no end after ${o.timeoutMs} ms, killed\n`;
      child.kill('SIGKILL');
    }, o.timeoutMs) : null;
    child.on('exit', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
