/**
 * Failed authentications are limited per client address before anything else runs: after RISKMON_AUTH_FAIL_MAX
 * wrong keys in a window, the address gets 429 on every route that needs a key — even with a right key, so a guess
 * that happens to be right tells it nothing — while other addresses and the public routes go on being served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, VIEWER, type TestApi } from './testing.ts';

let t: TestApi;
// The request limit is far above 2,000, so only the failed-authentication limit can answer 429 here.
beforeAll(async () => { t = await testApi({ RISKMON_AUTH_FAIL_MAX: '20', RISKMON_AUTH_FAIL_WINDOW_MS: '60000', RISKMON_RATE_LIMIT_MAX: '100000' }); });
afterAll(async () => { await t?.close(); });

const get = (url: string, key: string | null, remoteAddress = '203.0.113.7') =>
  t.app.inject({ method: 'GET', url, remoteAddress, headers: key ? { authorization: `Bearer ${key}` } : {} });

describe('failed authentications', () => {
  it('2,000 wrong keys a minute from one address: 401 up to the limit, then 429 with Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 2000; i++) statuses.push((await get(i % 2 ? '/api/alerts' : '/api/audit', `wrong-key-${String(i).padStart(20, '0')}`)).statusCode);
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(20).every((s) => s === 429)).toBe(true);
    const over = await get('/api/alerts', 'wrong-key-once-more-0123456789');
    expect(over.statusCode).toBe(429);
    expect(over.json()).toMatchObject({ error: 'rate_limited' });
    expect(over.json().message).toMatch(/failed authentications/);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // even a right key from that address is refused until the window ends
    expect((await get('/api/alerts', VIEWER)).statusCode).toBe(429);
    // another address is served; public routes stay open to the blocked one
    expect((await get('/api/alerts', VIEWER, '198.51.100.9')).statusCode).toBe(200);
    expect((await get('/health', null)).statusCode).toBe(200);
  });

  it('requests without any key are 401 and do not count', async () => {
    for (let i = 0; i < 50; i++) expect((await get('/api/alerts', null, '198.51.100.10')).statusCode).toBe(401);
    expect((await get('/api/alerts', VIEWER, '198.51.100.10')).statusCode).toBe(200);
  });

  it('behind a trusted proxy, counts the client named by X-Forwarded-For, not the proxy', async () => {
    const t2 = await testApi({ RISKMON_AUTH_FAIL_MAX: '3', RISKMON_TRUST_PROXY: '10.9.9.9' });
    try {
      const via = (client: string, key: string) => t2.app.inject({ method: 'GET', url: '/api/alerts', remoteAddress: '10.9.9.9', headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': client } });
      for (let i = 0; i < 4; i++) await via('192.0.2.1', `wrong-key-${i}-0123456789abcdef`);
      expect((await via('192.0.2.1', VIEWER)).statusCode).toBe(429);
      expect((await via('192.0.2.2', VIEWER)).statusCode).toBe(200);
    } finally {
      await t2.close();
    }
  });
});
