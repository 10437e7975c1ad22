/**
 * The rate limit (RISKMON_RATE_LIMIT_MAX per RISKMON_RATE_LIMIT_WINDOW_MS): counted per API key (per address
 * without one), answered with 429, our error body and Retry-After; health, readiness and metrics stay exempt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, testApi, VIEWER, type TestApi } from './testing.ts';

let t: TestApi;
const get = (url: string, key: string | null) => t.app.inject({ method: 'GET', url, headers: key ? { authorization: `Bearer ${key}` } : {} });

beforeAll(async () => { t = await testApi({ RISKMON_RATE_LIMIT_MAX: '5', RISKMON_RATE_LIMIT_WINDOW_MS: '60000' }); });
afterAll(async () => { await t?.close(); });

describe('rate limit', () => {
  it('answers the request over the limit with 429, a reason and Retry-After, per key', async () => {
    for (let i = 0; i < 5; i++) expect((await get('/api/alerts', VIEWER)).statusCode).toBe(200);
    const over = await get('/api/alerts', VIEWER);
    expect(over.statusCode).toBe(429);
    expect(over.json()).toMatchObject({ error: 'rate_limited' });
    expect(over.json().message).toMatch(/more than 5 requests in 1 minute/);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // Another key has its own budget.
    expect((await get('/api/alerts', ADMIN)).statusCode).toBe(200);
  });

  it('never limits health, readiness and metrics', async () => {
    for (let i = 0; i < 12; i++) {
      expect((await get('/health', null)).statusCode).toBe(200);
      expect((await get('/metrics', null)).statusCode).toBe(200);
    }
    expect((await get('/ready', null)).statusCode).toBe(200);
  });
});
