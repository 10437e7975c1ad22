/**
 * The README's first command on a fresh clone: a copy of the repository as a clone gets it (the files git tracks,
 * plus the working tree's uncommitted ones; no node_modules, no dist/, no .riskmon/), where `npm run demo` runs
 * exactly as documented: it installs the dependencies, starts every component, loads history and prints the
 * dashboard URL with a key. The test waits for that line, opens the dashboard and the API with the printed key, then
 * stops the demo. The demo uses the test services (PG_URL, KAFKA_BROKERS, REDIS_URL, RISK_PG_URL, as it documents)
 * at a small scale, so it takes a couple of minutes rather than the full reference history.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../lib/net.ts';
import { services } from './harness/services.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let dir = '';
let child: ChildProcess | null = null;
let output = '';

/** The files a clone of the working tree would hold. */
function cleanCopy(): string {
  const to = fs.mkdtempSync(path.join(os.tmpdir(), 'riskmon-clone-'));
  const files = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
  for (const f of files) {
    const from = path.join(ROOT, f);
    if (!fs.existsSync(from)) continue; // deleted in the working tree
    fs.mkdirSync(path.dirname(path.join(to, f)), { recursive: true });
    fs.cpSync(from, path.join(to, f), { verbatimSymlinks: true });
  }
  return to;
}

afterAll(async () => {
  if (child?.pid && child.exitCode === null) {
    process.kill(-child.pid, 'SIGTERM');
    await new Promise((r) => { const t = setTimeout(r, 20_000); child!.once('exit', () => { clearTimeout(t); r(null); }); });
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('npm run demo on a fresh clone', () => {
  it('installs what it needs and serves the dashboard with the key it prints', async () => {
    dir = cleanCopy();
    expect(fs.existsSync(path.join(dir, 'node_modules'))).toBe(false);
    const s = services();
    const port = await freePort();
    child = spawn('npm', ['run', 'demo'], {
      cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env, ...s, RISKMON_HTTP_PORT: String(port), RISKMON_DEMO_TX_PER_DAY: '20000', RISKMON_DEMO_MERCHANTS: '1000', RISKMON_DEMO_TPS: '5',
        RISKMON_LOG_LEVEL: 'warn', npm_config_loglevel: 'error',
      },
    });
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (d: Buffer) => {
        output += d.toString();
        const m = /dashboard\s+(http:\/\/\S+\?key=\S+)/.exec(output);
        if (m) resolve(m[1]);
      };
      child!.stdout!.on('data', onData);
      child!.stderr!.on('data', onData);
      child!.once('exit', (code) => reject(new Error(`npm run demo exited with ${code} before printing the dashboard URL:\n${output.slice(-4000)}`)));
    });
    expect(output).toContain('installing dependencies (npm ci)');
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    const key = decodeURIComponent(new URL(url).searchParams.get('key')!);
    const alerts = await fetch(new URL('/api/alerts', url), { headers: { authorization: `Bearer ${key}` } });
    expect(alerts.status).toBe(200);
    expect(await alerts.json()).toHaveProperty('items');
  }, 900_000);
});
