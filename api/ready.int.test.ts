/**
 * /ready names the dependency that is down — and only its name: the driver's message (addresses, users, stack
 * positions) stays in the log. With Redis gone, API requests that need it fail at once instead of queueing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, VIEWER, type TestApi } from './testing.ts';

let t: TestApi;
beforeAll(async () => { t = await testApi(); });
afterAll(async () => { await t?.close(); });

describe('/ready', () => {
  it('says which dependency is down, without the driver\'s message; Redis commands fail fast meanwhile', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/ready' })).json()).toEqual({ status: 'ready' });
    await t.sourcePg.end();
    t.deps.redis.disconnect();
    const r = await t.app.inject({ method: 'GET', url: '/ready' });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toEqual({ status: 'unavailable', failed: ['source database', 'redis'] });
    // a request that reads Redis answers now, with an error, instead of waiting in an offline queue
    const series = await t.app.inject({ method: 'GET', url: '/api/merchants/42/series?from=2026-11-21T00:00:00Z&to=2026-11-21T01:00:00Z&step=1m', headers: { authorization: `Bearer ${VIEWER}` } });
    expect(series.statusCode).toBeGreaterThanOrEqual(500);
    expect(series.body).not.toMatch(/Connection is closed|ECONNREFUSED|offline/i);
  });
});
