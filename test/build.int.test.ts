/**
 * The production build without Docker: `npm run build` emits dist/, and the `riskmon` bin runs it with plain node —
 * `riskmon migrate` finds its SQL beside the compiled code, `riskmon api` serves /ready, the dashboard and /docs from
 * dist/, and `riskmon alerting` starts its backtest thread from the compiled worker. (test/compose.int.test.ts runs the same build inside the image.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../lib/net.ts';
import { waitFor } from './harness/index.ts';
import { freshDatabase, services } from './harness/services.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'scripts', 'riskmon.mjs');
const children: ReturnType<typeof spawn>[] = [];
afterAll(() => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });

describe('compiled JavaScript (npm run build)', () => {
  it('builds dist/, and the riskmon bin runs it with plain node', async () => {
    const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
    for (const f of ['dist/scripts/cli.js', 'dist/sql/source/001_reference_schema.sql', 'dist/web/dist/index.html']) expect(existsSync(path.join(ROOT, f)), f).toBe(true);

    const [source, risk] = await Promise.all([freshDatabase('build_src'), freshDatabase('build_risk')]);
    const s = services();
    // With dist/ present the bin imports dist/scripts/cli.js; NODE_OPTIONS is cleared so no loader comes in from outside.
    const env = { ...process.env, PG_URL: source, RISK_PG_URL: risk, KAFKA_BROKERS: s.KAFKA_BROKERS, REDIS_URL: s.REDIS_URL, NODE_OPTIONS: '', RISKMON_LOG_LEVEL: 'warn' };
    const migrate = spawnSync(process.execPath, [BIN, 'migrate'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(migrate.status, `${migrate.stdout}${migrate.stderr}`).toBe(0);

    const port = await freePort();
    const api = spawn(process.execPath, [BIN, 'api'], { env: { ...env, RISKMON_HTTP_PORT: String(port), RISKMON_HTTP_HOST: '127.0.0.1', RISKMON_API_KEYS: 'build-test-key-0123456789abcdef:viewer' }, stdio: 'inherit' });
    children.push(api);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/ready`)).ok, { timeoutMs: 60_000, intervalMs: 200, message: 'compiled api /ready' });
    expect(await (await fetch(`${base}/`)).text()).toMatch(/<html/i);
    expect((await fetch(`${base}/docs`)).status).toBe(200);
    api.kill('SIGTERM');

    // The alerting starts its backtest thread from the compiled worker (dist/alerting/backtest/worker.js).
    const alerting = spawn(process.execPath, [BIN, 'alerting'], { env: { ...env, RISKMON_LOG_LEVEL: 'info', RISKMON_REDIS_PREFIX: `build${port}` }, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(alerting);
    let out = '';
    alerting.stdout!.on('data', (d) => { out += d; });
    await waitFor(() => /"thread":"backtest".*"msg":"backtest thread started"/.test(out), { timeoutMs: 60_000, intervalMs: 200, message: `the compiled backtest thread to start:\n${out.slice(-2000)}` });
    expect(out).not.toMatch(/backtest thread stopped unexpectedly/);
    alerting.kill('SIGTERM');
  }, 300_000);
});
