/**
 * Rules as versioned data and backtests over REST, against a real PostgreSQL and Redis: roles, drafts with errors
 * naming the config path, activation, the shadow version, backtest requests (the period that is possible, bad
 * input), a backtest run by the alerting's runner with the contract's result shape, cancel, and the audit trail.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketWriter } from '../aggregator/store/index.ts';
import { BacktestRunner, defaultRules, seedRules } from '../alerting/index.ts';
import { requeueRunningBacktests as requeueInterrupted } from '../alerting/risk-store/index.ts';
import { logger } from '../lib/logger.ts';
import { MINUTE } from '../lib/time.ts';
import { services } from '../test/harness/services.ts';
import { ADMIN, ANALYST as ANALYST_KEY, insertAlert, testApi, VIEWER, type TestApi } from './testing.ts';

// Until the triage merge brings analysts, names and the audit trail: an admin key stands in for an analyst.
const ANALYST = ADMIN;
const ANALYST_NAME = expect.stringMatching(/^key [0-9a-f]{12}$/) as unknown as string;

let t: TestApi;
let redis: Redis;
// At least 10 s behind the wall clock, so the heartbeat at NOW + 5 s (not the wall clock) bounds the closed minutes
// even when the file starts in the first seconds of a minute.
const NOW = Math.floor((Date.now() - 10_000) / MINUTE) * MINUTE;
beforeAll(async () => {
  t = await testApi();
  redis = new Redis(services().REDIS_URL);
  // A watermark: minutes up to NOW − 1 min are closed.
  const w = new BucketWriter(redis, { prefix: t.deps.cfg.redisPrefix, partitions: t.deps.cfg.partitions, hotShards: t.deps.cfg.hotShards, tz: t.deps.cfg.tz });
  w.approval('42', 10_000, NOW - 30 * MINUTE);
  w.cdc.heartbeats(new Date(NOW + 5000).toISOString());
  await w.flush();
  await seedRules(t.riskPg, defaultRules());
});
afterAll(async () => { await t?.close(); redis?.disconnect(); });

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const get = (url: string, key = VIEWER) => t.app.inject({ method: 'GET', url, headers: auth(key) });
const post = (url: string, body: unknown, key = ADMIN) => t.app.inject({ method: 'POST', url, headers: auth(key), payload: body as object });
const iso = (ms: number) => new Date(ms).toISOString();

describe('rules', () => {
  it('GET /api/rules: the active version (seeded), every version, the period a backtest can cover', async () => {
    const r = await get('/api/rules');
    expect(r.statusCode).toBe(200);
    const b = r.json();
    expect(b.active).toMatchObject({ version: defaultRules().version, activatedBy: 'RISKMON_RULES', config: { cancel_rate_spike: { multiplier: 2 } } });
    expect(b.versions).toHaveLength(1);
    expect(b.backtestPeriod).toMatchObject({ to: iso(NOW) });
    expect(Date.parse(b.backtestPeriod.from)).toBeLessThanOrEqual(NOW - 7 * 86_400_000 + 2 * MINUTE);
  });

  it('drafts are admin-only; a wrong value is a 400 naming its path in the config; activation applies and is audited', async () => {
    expect((await post('/api/rules', { config: {} }, VIEWER)).statusCode).toBe(403);
    const bad = await post('/api/rules', { config: { cancel_rate_spike: { multiplier: -1 } } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'bad_request', field: 'config.cancel_rate_spike.multiplier', message: expect.stringContaining('cancel_rate_spike.multiplier must be a number from 1 to 1000, got -1') });
    const unknown = await post('/api/rules', { config: { overrides: { '42': { volume_drop: { ratio: 2 } } }, lifecycle: { renotify: 5 } } });
    expect(unknown.json().field).toBe('config.lifecycle.renotify');
    expect(unknown.json().message).toContain('overrides.42.volume_drop.ratio');
    const ok = await post('/api/rules', { config: { cancel_rate_spike: { multiplier: 3 } }, note: 'stricter' });
    expect(ok.statusCode).toBe(201);
    const { version } = ok.json();
    expect((await get(`/api/rules/${version}`)).json()).toMatchObject({ version, config: { cancel_rate_spike: { multiplier: 3 } } });
    expect((await post('/api/rules/nope/activate', {})).statusCode).toBe(404);
    const act = await post(`/api/rules/${version}/activate`, {});
    expect(act.statusCode).toBe(200);
    const rules = (await get('/api/rules')).json();
    expect(rules.active).toMatchObject({ version, config: { cancel_rate_spike: { multiplier: 3 } } });
    expect(rules.versions[0]).toMatchObject({ version, note: 'stricter', active: true });
  });

  it('a shadow version starts and stops (admin), audited', async () => {
    const { version } = (await post('/api/rules', { config: { cancel_rate_spike: { multiplier: 5 } } })).json();
    expect((await post(`/api/rules/${version}/shadow`, {})).json()).toMatchObject({ shadow: { version }, alerts: [] });
    expect((await get('/api/rules/shadow')).json()).toMatchObject({ shadow: { version } });
    expect((await t.app.inject({ method: 'DELETE', url: '/api/rules/shadow', headers: auth(ADMIN) })).statusCode).toBe(204);
    expect((await get('/api/rules/shadow')).json()).toEqual({ shadow: null, alerts: [] });
  });
});

describe('backtests', () => {
  const period = { from: iso(NOW - 120 * MINUTE), to: iso(NOW - 60 * MINUTE) };

  it('bad input is a 400 that says what is wrong and which period is possible; viewers get 403', async () => {
    expect((await post('/api/backtests', { version: defaultRules().version, ...period }, VIEWER)).statusCode).toBe(403);
    const cases: [object, string, RegExp][] = [
      [{ version: defaultRules().version, from: period.to, to: period.from }, 'from', /from must be before to.*a backtest can cover \[/],
      [{ version: defaultRules().version, from: iso(NOW - 8 * 86_400_000), to: period.to }, 'from', /from is too early: a backtest can cover \[.*last 7 days/],
      [{ version: defaultRules().version, from: period.from, to: iso(NOW + 10 * MINUTE) }, 'to', /to is in the future or not closed yet/],
      [{ version: defaultRules().version, from: 'yesterday', to: period.to }, 'from', /ISO timestamp/],
      [{ version: 'nope', ...period }, 'version', /does not exist/],
      [{ config: { volume_drop: { ratio: 'half' } }, ...period }, 'config.volume_drop.ratio', /ratio must be a number/],
      [{ ...period }, 'config', /either config .* or version/],
    ];
    for (const [body, field, message] of cases) {
      const r = await post('/api/backtests', body, ANALYST);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json(), JSON.stringify(body)).toMatchObject({ error: 'bad_request', field, message: expect.stringMatching(message) });
    }
  });

  it('runs in the background (queued → done) with the contract shape; cancel; every start audited with its actor', async () => {
    await insertAlert(t.riskPg, { merchantId: '42', firedAt: iso(NOW - 100 * MINUTE), resolvedAt: iso(NOW - 90 * MINUTE), state: 'resolved' });
    const r = await post('/api/backtests', { config: { cancel_rate_spike: { multiplier: 4 } }, ...period }, ANALYST);
    expect(r.statusCode).toBe(202);
    const { id } = r.json();
    expect((await get(`/api/backtests/${id}`)).json()).toMatchObject({ id, status: 'queued', progress: 0, from: period.from, to: period.to, alerts: [], createdBy: ANALYST_NAME });
    const runner = new BacktestRunner({ tz: t.deps.cfg.tz, maxIngestLagMs: 120_000, evaluatorName: 'default', pollMs: 100 },
      { reader: t.deps.reader, db: t.riskPg, log: logger.child({ component: 'api-test' }), liveBusy: () => false });
    expect(await runner.runOne()).toBe(true);
    const done = (await get(`/api/backtests/${id}`)).json();
    expect(done).toMatchObject({
      id, status: 'done', progress: 1, error: null, alerts: [],
      summary: { cancel_rate_spike: { fired: 0, merchants: 0, live: { fired: 1, merchants: 1 } }, volume_drop: { fired: 0, merchants: 0 } },
      vsLive: { both: [], onlyBacktest: [], onlyLive: [{ rule: 'cancel_rate_spike', merchantId: '42' }], exact: false },
      quality: { cancel_rate_spike: { confirmed: 0, falsePositive: 0, benign: 0 }, volume_drop: { confirmed: 0, falsePositive: 0, benign: 0 } },
    });
    expect(done.minutes).toBe(60);
    expect((await get('/api/backtests')).json().items[0]).toMatchObject({ id, status: 'done' });

    const q = (await post('/api/backtests', { version: defaultRules().version, ...period }, ANALYST)).json().id;
    const c = await post(`/api/backtests/${q}/cancel`, {}, ANALYST);
    expect(c.statusCode).toBe(200);
    expect(c.json()).toMatchObject({ id: q, status: 'failed', error: expect.stringMatching(/^cancelled by key [0-9a-f]{12}$/) });
    expect((await post(`/api/backtests/${q}/cancel`, {}, ANALYST)).statusCode).toBe(400);
    expect((await get('/api/backtests/999999')).statusCode).toBe(404);
  });
});

describe('backtests are bounded', () => {
  const period = { from: iso(NOW - 120 * MINUTE), to: iso(NOW - 60 * MINUTE) };
  it('an all-zero config is a 400 naming the path of the first threshold out of range', async () => {
    const zero = { cancel_rate_spike: { multiplier: 0, minApprovals: 0, minCancels: 0, minBaselineApprovals: 0 }, volume_drop: { minDailyAmount: 0, ratio: 0, minBaselineAmount: 0 } };
    const r = await post('/api/backtests', { config: zero, ...period }, ANALYST);
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ error: 'bad_request', field: 'config.cancel_rate_spike.multiplier', message: expect.stringMatching(/from 1 to 1000/) });
  });

  it('a caller has at most RISKMON_BACKTEST_MAX_QUEUED backtests queued or running; others are not held up', async () => {
    await t.riskPg.query(`UPDATE backtests SET status = 'failed' WHERE status IN ('queued', 'running')`);
    for (let i = 0; i < 2; i++) expect((await post('/api/backtests', { version: defaultRules().version, ...period }, ADMIN)).statusCode).toBe(202);
    const third = await post('/api/backtests', { version: defaultRules().version, ...period }, ADMIN);
    expect(third.statusCode).toBe(429);
    expect(third.json().message).toMatch(/2 backtests queued or running \(at most 2\)/);
    expect((await post('/api/backtests', { version: defaultRules().version, ...period }, ANALYST_KEY)).statusCode).toBe(202);
  });

  it('a job that was running when its process died is taken again once, then failed', async () => {
    const runner = () => new BacktestRunner({ tz: t.deps.cfg.tz, maxIngestLagMs: 120_000, evaluatorName: 'default', pollMs: 100 },
      { reader: t.deps.reader, db: t.riskPg, log: logger.child({ component: 'api-test' }), liveBusy: () => false });
    await t.riskPg.query(`UPDATE backtests SET status = 'failed' WHERE status IN ('queued', 'running')`);
    const { id } = (await post('/api/backtests', { version: defaultRules().version, ...period }, ADMIN)).json();
    const status = async () => (await get(`/api/backtests/${id}`)).json();
    // a runner takes it and its process dies mid-run (the row stays 'running'), twice
    for (let death = 1; death <= 2; death++) {
      await t.riskPg.query(`UPDATE backtests SET status = 'running', attempts = attempts + 1 WHERE id = $1`, [id]);
      await requeueInterrupted(t.riskPg);
      if (death === 1) expect(await status()).toMatchObject({ status: 'queued', error: null });
    }
    expect(await status()).toMatchObject({ status: 'failed', error: expect.stringMatching(/stopped unexpectedly 2 times .* not retried/) });
    // an orderly stop gives the attempt back; a clean run still works
    const { id: ok } = (await post('/api/backtests', { version: defaultRules().version, ...period }, ADMIN)).json();
    expect(await runner().runOne()).toBe(true);
    expect((await get(`/api/backtests/${ok}`)).json()).toMatchObject({ status: 'done' });
  });
});

