/**
 * Start time and memory of the compiled build (`npm run build` → dist/, run by the `riskmon` bin with plain node,
 * as the image runs it) against the TypeScript sources through tsx (scripts/riskmon-dev.mjs, the development
 * path), median of RUNS runs each, alternating so both see the same machine load:
 *  - `riskmon --help`: process start to exit (loading the CLI);
 *  - `riskmon api`: process start until GET /health answers, and the process's RSS one second later.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate } from '../lib/migrate.ts';
import { freePort } from '../lib/net.ts';
import { quantile } from './util.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.RISKMON_BENCH_STARTUP_RUNS ?? 5);
const BINS = { compiled: path.join(ROOT, 'scripts', 'riskmon.mjs'), tsx: path.join(ROOT, 'scripts', 'riskmon-dev.mjs') } as const;
type Mode = keyof typeof BINS;

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);

function helpMs(mode: Mode): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BINS[mode], '--help'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`riskmon --help (${mode}) failed: ${r.stderr}`);
  return performance.now() - t0;
}

async function apiStart(mode: Mode, env: NodeJS.ProcessEnv): Promise<{ ms: number; rss: number }> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--max-old-space-size=256', BINS[mode], 'api'], {
    env: { ...env, RISKMON_HTTP_PORT: String(port), RISKMON_HTTP_HOST: '127.0.0.1', RISKMON_API_KEYS: 'bench-startup-key-0123456789abcdef:viewer', RISKMON_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`riskmon api (${mode}) exited with ${child.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
    return { ms, rss: rssOf(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

export async function benchStartup(env: NodeJS.ProcessEnv): Promise<Record<string, number>> {
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stdout}${build.stderr}`);
  await migrate(env.PG_URL!, 'source');
  await migrate(env.RISK_PG_URL!, 'risk');
  const help: Record<Mode, number[]> = { compiled: [], tsx: [] };
  const api: Record<Mode, { ms: number; rss: number }[]> = { compiled: [], tsx: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const mode of ['compiled', 'tsx'] as const) {
      help[mode].push(helpMs(mode));
      api[mode].push(await apiStart(mode, env));
    }
  }
  const out: Record<string, number> = {};
  for (const mode of ['compiled', 'tsx'] as const) {
    out[`cli_help_ms_${mode}`] = Math.round(median(help[mode]));
    out[`api_ready_ms_${mode}`] = Math.round(median(api[mode].map((x) => x.ms)));
    out[`api_rss_at_ready_bytes_${mode}`] = Math.round(median(api[mode].map((x) => x.rss)));
  }
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  console.error(`   startup (median of ${RUNS}):          compiled     tsx`);
  console.error(`   riskmon --help, start to exit      ${String(out.cli_help_ms_compiled).padStart(6)} ms ${String(out.cli_help_ms_tsx).padStart(6)} ms`);
  console.error(`   riskmon api, start to /health      ${String(out.api_ready_ms_compiled).padStart(6)} ms ${String(out.api_ready_ms_tsx).padStart(6)} ms`);
  console.error(`   riskmon api, RSS 1 s after ready   ${mib(out.api_rss_at_ready_bytes_compiled).padStart(9)} ${mib(out.api_rss_at_ready_bytes_tsx).padStart(9)}`);
  return out;
}
