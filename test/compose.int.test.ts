/**
 * compose.yaml, proven: the real compose system (postgres, kafka, redis, migrate, cdc, aggregator, alerting, api and
 * the monitoring profile's prometheus, on the riskmon image) is brought up on a Docker engine; the test writes 7
 * days of payments and cancels for a merchant plus a cancel surge in the last half hour into the compose
 * PostgreSQL, reads the buckets back through REST, starts the alerting (after the history, as docs/operations.md "Running it"
 * says) and waits for the cancel_rate_spike alert. Its secrets are files (scripts/compose-secrets.sh into a folder of
 * its own): it checks that compose refuses to start without them and holds no default password, that each service
 * logs in to PostgreSQL as its own role, that the dashboard and /docs answer, that Prometheus scrapes every component and loaded the
 * alert rules, and that `promtool check metrics` finds nothing in riskmon's own metrics of each component. Everything
 * is removed at the end (`down -v`).
 *
 * Needs a Docker engine, Compose (v2 plugin or docker-compose 1.29) and the base images (pulled, or the stand-ins);
 * without them it is skipped and says why.
 * Images: RISKMON_IMAGE (default: riskmon:local, built here from the Dockerfile) and the base images of
 * RISKMON_*_IMAGE (official by default; CI selects the stand-ins of `npm run images -- local`).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../lib/net.ts';
import { BASE_IMAGES, baseImage, composeCommand, dockerBuildEnv, imageExists, probeDocker } from '../scripts/images-lib.ts';
import { waitFor } from './harness/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const docker = probeDocker();
const compose = docker.ok ? composeCommand() : null;
/** Base images neither on the engine nor pullable (no registry): the case `npm run images -- local` is for. */
function unavailableImages(): string[] {
  return BASE_IMAGES.map((n) => baseImage(n)).filter((ref) => !imageExists(ref)
    && spawnSync('docker', ['pull', '-q', ref], { stdio: 'ignore', timeout: 600_000 }).status !== 0);
}
const missingImages = compose ? unavailableImages() : [];
const skipReason = !docker.ok ? docker.reason
  : !compose ? 'neither `docker compose` nor `docker-compose` runs'
  : missingImages.length ? `base images ${missingImages.join(', ')} are not on the engine and cannot be pulled; \`eval "$(npm run -s images -- local)"\` builds stand-ins`
  : null;
// CI sets RISKMON_REQUIRE_DOCKER=1 where it started a Docker engine: there a skip would hide a broken setup.
if (skipReason && process.env.RISKMON_REQUIRE_DOCKER === '1') throw new Error(`compose test cannot run, and RISKMON_REQUIRE_DOCKER=1: ${skipReason}`);
if (skipReason) console.warn(`[compose] compose.int.test.ts skipped: ${skipReason}`);

const MERCHANT = '900001';
const KEY = `compose-admin-${crypto.randomBytes(6).toString('hex')}`;
const project = `riskmon-test-${crypto.randomBytes(3).toString('hex')}`;
/** The compose secrets of this run (under .riskmon/, which the image build context leaves out). */
const secrets = path.join(ROOT, '.riskmon', `compose-secrets-${project}`);
const timings: Record<string, number> = {};
let env: NodeJS.ProcessEnv = {};
let api = '';
let passed = false;

function run(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; allowFail?: boolean; timeoutMs?: number } = {}) {
  const [cmd, ...rest] = compose!;
  const r = spawnSync(cmd, [...rest, '-p', project, '-f', path.join(ROOT, 'compose.yaml'), '--profile', 'monitoring', ...args], {
    cwd: ROOT, env: opts.env ?? env, encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024,
  });
  if (!opts.allowFail && r.status !== 0) throw new Error(`${compose!.join(' ')} ${args.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r;
}
/** Host ports for the published services: free when picked, but the engine may give one to another container before `up` binds it. */
async function pickPorts(): Promise<void> {
  const [http, pgPort, kafka, redis, prom] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  Object.assign(env, {
    RISKMON_HTTP_PORT: String(http), RISKMON_PG_PORT: String(pgPort), RISKMON_KAFKA_PORT: String(kafka), RISKMON_REDIS_PORT: String(redis), RISKMON_PROMETHEUS_PORT: String(prom),
  });
  api = `http://127.0.0.1:${http}`;
}

/** `up -d` of `services`; when a host port was taken meanwhile ("port is already allocated"), new ports and again (3 tries). */
async function up(services: string[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const r = run(['up', '-d', ...services], { allowFail: true });
    if (r.status === 0) return;
    const out = `${r.stdout}${r.stderr}`;
    if (attempt >= 3 || !/port is already allocated|address already in use/i.test(out)) throw new Error(`${compose!.join(' ')} up -d ${services.join(' ')} failed (${r.status}):\n${out}`);
    console.log(`[compose] a host port was taken before compose bound it (try ${attempt}); again on new ports`);
    run(['down', '-v', '--remove-orphans'], { allowFail: true, timeoutMs: 180_000 });
    await pickPorts();
  }
}
const containerOf = (service: string) => run(['ps', '-q', service]).stdout.trim();
const health = (service: string) => spawnSync('docker', ['inspect', '-f', '{{.State.Health.Status}}', containerOf(service)], { encoding: 'utf8' }).stdout.trim();
const get = async (p: string) => {
  const res = await fetch(`${api}${p}`, { headers: { authorization: `Bearer ${KEY}` } });
  if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
  return res.json();
};

describe.skipIf(skipReason !== null)('docker compose: the whole system in containers', () => {
  beforeAll(async () => {
    // RISKMON_IMAGE names an image to test as it is; otherwise riskmon:local is (re)built from this checkout, so
    // the test never runs an image older than the code (Docker's layer cache makes an unchanged build quick).
    const image = process.env.RISKMON_IMAGE ?? 'riskmon:local';
    if (!process.env.RISKMON_IMAGE || !imageExists(image)) {
      const t0 = Date.now();
      const r = spawnSync('docker', ['build', '-q', '--build-arg', `NODE_IMAGE=${baseImage('node')}`, '-t', image, ROOT], { env: dockerBuildEnv(), encoding: 'utf8', timeout: 900_000 });
      if (r.status !== 0) throw new Error(`docker build of ${image} failed:\n${r.stdout}${r.stderr}`);
      console.log(`[compose] built ${image} in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
    }
    env = { ...process.env, RISKMON_IMAGE: image, RISKMON_SECRETS_DIR: secrets };
    // The test's own service URLs must not leak into compose's interpolation.
    for (const k of ['PG_URL', 'RISK_PG_URL', 'KAFKA_BROKERS', 'REDIS_URL', 'RISKMON_API_KEYS']) delete env[k];
    await pickPorts();
    const gen = spawnSync('sh', [path.join(ROOT, 'scripts', 'compose-secrets.sh'), secrets], { env: { ...process.env, RISKMON_API_KEYS: `${KEY}:admin` }, encoding: 'utf8' });
    if (gen.status !== 0) throw new Error(`scripts/compose-secrets.sh failed:\n${gen.stderr}`);
  }, 900_000);

  afterAll(async () => {
    if (!compose || !api) return;
    if (!passed) console.log(run(['logs', '--tail', '40'], { allowFail: true }).stdout);
    run(['down', '-v', '--remove-orphans'], { allowFail: true, timeoutMs: 180_000 });
    rmSync(secrets, { recursive: true, force: true });
    console.log(`[compose] ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`).join(', ')}`);
  }, 240_000);

  it('refuses to start without its secret files, and holds no password of its own', () => {
    const none = { ...env };
    delete none.RISKMON_SECRETS_DIR;
    const r = run(['config', '-q'], { env: none, allowFail: true });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('compose-secrets.sh');
    const text = readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8');
    expect(text).not.toMatch(/PASSWORD:-|PASSWORD: [^$\n]|postgres:\/\/[^@\s]*:[^@\s]*@/);
    expect(text).not.toMatch(/RISKMON_API_KEYS:/);
  });

  it('comes up, counts what is written to its PostgreSQL, serves it over REST and raises the cancel surge alert', async () => {
    const t0 = Date.now();
    await up(['cdc', 'aggregator', 'api', 'prometheus']);
    await waitFor(async () => (await fetch(`${api}/ready`)).ok, { timeoutMs: 240_000, intervalMs: 1000, message: 'api /ready' });
    await waitFor(() => health('cdc') === 'healthy' && health('aggregator') === 'healthy', { timeoutMs: 180_000, intervalMs: 1000, message: 'cdc and aggregator healthy' });
    timings['up to ready'] = Date.now() - t0;

    // 7 full local days of history (6 approvals an hour, a cancel every 4 hours: ~4%), then a surge in the last
    // 30 minutes (30 approvals, 15 cancels: 50%).
    const pgPassword = readFileSync(path.join(secrets, 'pg_password'), 'utf8');
    const db = new pg.Client({ connectionString: `postgres://postgres:${pgPassword}@127.0.0.1:${env.RISKMON_PG_PORT}/riskmon_source` });
    await db.connect();
    const t1 = Date.now();
    // The history ends at the last local midnight at least an hour back, so the surge never lands on its last day
    // (the day series below counts the history alone), whatever the hour.
    const { rows: [mid] } = await db.query(`SELECT (date_trunc('day', (now() - interval '1 hour') AT TIME ZONE 'Asia/Seoul') AT TIME ZONE 'Asia/Seoul') AS midnight, now() AS now`);
    const midnight: Date = mid.midnight;
    const now: Date = mid.now;
    await db.query('BEGIN');
    await db.query(`INSERT INTO merchants (merchant_id, name) VALUES ($1, 'compose surge'), ($1 + 1, 'compose steady')`, [MERCHANT]);
    await db.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at)
      SELECT g, $1, 10000, $2::timestamptz - interval '7 days' + (g - 1) * interval '10 minutes' FROM generate_series(1, 1008) g`, [MERCHANT, midnight]);
    await db.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at)
      SELECT g, g * 24, $1, 10000, $2::timestamptz - interval '7 days' + (g * 24 - 1) * interval '10 minutes' + interval '1 minute' FROM generate_series(1, 42) g`, [MERCHANT, midnight]);
    await db.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at)
      SELECT 2000 + g, $1, 20000, $2::timestamptz - g * interval '1 minute' FROM generate_series(1, 30) g`, [MERCHANT, now]);
    await db.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at)
      SELECT 2000 + g, 2000 + g, $1, 20000, $2::timestamptz - g * interval '1 minute' + interval '30 seconds' FROM generate_series(1, 15) g`, [MERCHANT, now]);
    await db.query('COMMIT');
    await db.end();

    type Point = { t: string; approvals: number; cancels: number; approvedAmount: string; canceledAmount: string };
    const sum = (points: Point[]) => points.reduce((a, p) => ({ approvals: a.approvals + p.approvals, cancels: a.cancels + p.cancels }), { approvals: 0, cancels: 0 });
    const from = new Date(midnight.getTime() - 7 * 86_400_000).toISOString();
    const days = await waitFor(async () => {
      const body = await get(`/api/merchants/${MERCHANT}/series?from=${from}&to=${midnight.toISOString()}&step=1d`) as { points: Point[] };
      const s = sum(body.points);
      return s.approvals === 1008 && s.cancels === 42 ? body.points : null;
    }, { timeoutMs: 180_000, intervalMs: 1000, message: 'history buckets through REST' });
    expect(days).toHaveLength(7);
    expect(days.every((p) => p.approvals === 144)).toBe(true);
    const lastHour = await waitFor(async () => {
      const body = await get(`/api/merchants/${MERCHANT}/series?from=${new Date(now.getTime() - 3_600_000).toISOString()}&to=${new Date(now.getTime() + 60_000).toISOString()}&step=1m`) as { points: Point[] };
      const s = sum(body.points);
      return s.approvals === 30 && s.cancels === 15 ? body.points : null;
    }, { timeoutMs: 60_000, intervalMs: 1000, message: 'surge buckets through REST' });
    expect(lastHour.reduce((a, p) => a + BigInt(p.canceledAmount), 0n)).toBe(15n * 20000n);
    timings['rows to REST'] = Date.now() - t1;

    const t2 = Date.now();
    run(['up', '-d', 'alerting']);
    const alert = await waitFor(async () => {
      const body = await get(`/api/alerts?merchantId=${MERCHANT}&rule=cancel_rate_spike`) as { items: { state: string; rule: string; evidence: { window: { cancels: number } } }[] };
      return body.items.find((a) => a.state === 'firing') ?? null;
    }, { timeoutMs: 240_000, intervalMs: 1000, message: 'cancel_rate_spike alert' });
    // The window holds the closed minutes: the last few surge rows may still be in the open minute.
    expect(alert.evidence.window.cancels).toBeGreaterThanOrEqual(10);
    timings['alerting start to alert'] = Date.now() - t2;
    timings['compose up to first alert'] = Date.now() - t0;
    // Nothing else fired: the steady merchant has no rows, the surge merchant one alert.
    const all = await get('/api/alerts?state=firing') as { items: { merchantId: string }[] };
    expect(all.items.map((a) => a.merchantId)).toEqual([MERCHANT]);

    // Each service logged in as its own role (ops/postgres-init/20-riskmon-roles.sh), none as the superuser.
    const admin = new pg.Client({ connectionString: `postgres://postgres:${pgPassword}@127.0.0.1:${env.RISKMON_PG_PORT}/riskmon_source` });
    await admin.connect();
    const { rows } = await admin.query(`SELECT DISTINCT usename, application_name, datname FROM pg_stat_activity
      WHERE application_name LIKE 'riskmon%' OR backend_type = 'walsender'`);
    await admin.end();
    const who = (app: RegExp, db: string) => [...new Set(rows.filter((r) => app.test(r.application_name ?? '') && r.datname === db).map((r) => r.usename))];
    expect(who(/^riskmon-api$/, 'riskmon_risk')).toEqual(['riskmon_api']);
    expect(who(/^riskmon-alerting$/, 'riskmon_risk')).toEqual(['riskmon_alerting']);
    expect(rows.filter((r) => r.datname === 'riskmon_source' && r.usename === 'riskmon_cdc').length).toBeGreaterThan(0);
    expect(rows.filter((r) => r.usename === 'postgres' && /^riskmon/.test(r.application_name ?? ''))).toEqual([]);
    passed = true;
  }, 900_000);

  it('serves the dashboard and Swagger UI', async () => {
    const page = await fetch(`${api}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    const docs = await fetch(`${api}/docs`);
    expect(docs.status).toBe(200);
    expect((await (await fetch(`${api}/docs/json`)).json()).paths).toHaveProperty(['/api/alerts']);
  });

  it('Prometheus scrapes every component and loaded the alert rules; promtool finds nothing in riskmon\'s metrics', async () => {
    const prom = `http://127.0.0.1:${env.RISKMON_PROMETHEUS_PORT}`;
    const targets = await waitFor(async () => {
      const body = await (await fetch(`${prom}/api/v1/targets`)).json() as { data: { activeTargets: { labels: { job: string }; health: string }[] } };
      const t = body.data.activeTargets;
      return t.length === 4 && t.every((x) => x.health === 'up') ? t : null;
    }, { timeoutMs: 120_000, intervalMs: 2000, message: 'every scrape target up' });
    expect(targets.map((t) => t.labels.job).sort()).toEqual(['riskmon-aggregator', 'riskmon-alerting', 'riskmon-api', 'riskmon-cdc']);
    const rules = await (await fetch(`${prom}/api/v1/rules`)).json() as { data: { groups: { rules: { name: string }[] }[] } };
    expect(rules.data.groups.flatMap((g) => g.rules.map((r) => r.name))).toEqual(expect.arrayContaining(['RiskmonComponentDown', 'RiskmonSlotWalNearLimit', 'RiskmonConsumerLagGrowing', 'RiskmonDeadLetters']));

    const promtool = containerOf('prometheus');
    for (const [service, port] of [['api', 8080], ['cdc', 9464], ['aggregator', 9464], ['alerting', 9464]] as const) {
      const scrape = spawnSync('docker', ['exec', containerOf(service), 'node', '-e', `fetch('http://127.0.0.1:${port}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`], { encoding: 'utf8' });
      expect(scrape.stdout, service).toContain('riskmon_');
      // prom-client's default process metrics (riskmon_process_*) are its own naming, not riskmon's.
      const own = scrape.stdout.split('\n').filter((l) => !/^(# (HELP|TYPE) )?riskmon_process_/.test(l)).join('\n');
      const check = spawnSync('docker', ['exec', '-i', promtool, 'promtool', 'check', 'metrics'], { input: own, encoding: 'utf8' });
      expect(`${check.stdout}${check.stderr}`.trim(), service).toBe('');
      expect(check.status, service).toBe(0);
    }
  }, 300_000);
});
