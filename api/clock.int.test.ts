/**
 * The API at a chosen instant: its "now" comes from deps.now (lib/clock.ts), so a test runs it at 00:30 in Seoul
 * on a given day, whatever the hour it actually runs at.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../lib/clock.ts';
import { ADMIN, insertAlert, testApi, VIEWER, type TestApi } from './testing.ts';

const AT = '2026-01-14T15:30:00.000Z'; // 2026-01-15 00:30 in Seoul

describe('the API on a controlled clock', () => {
  let t: TestApi;
  const clock = fixedClock(AT);
  beforeAll(async () => { t = await testApi({}, null, { now: clock }); });
  afterAll(async () => { await t?.close(); });

  it('defaults its periods and windows to the chosen instant, not to the wall clock', async () => {
    await insertAlert(t.riskPg, { merchantId: 'c1', firedAt: '2026-01-10T03:00:00Z' }); // 4 days before AT
    await insertAlert(t.riskPg, { merchantId: 'c2', firedAt: new Date(Date.now() - 3_600_000).toISOString() }); // the real last hour
    const get = (url: string, key = VIEWER) => t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
    const q = (await get('/api/rules/quality')).json();
    expect(q.to).toBe(AT); // the last 30 days up to the clock's now
    expect(q.items.reduce((n: number, i: { fired: number }) => n + i.fired, 0)).toBe(1);

    // A silence given in minutes starts at the clock's now.
    const s = await t.app.inject({
      method: 'POST', url: '/api/silences', headers: { authorization: `Bearer ${ADMIN}` },
      payload: { merchantId: 'c1', minutes: 30, reason: 'clock test' },
    });
    expect(s.statusCode, s.body).toBe(201);
    expect(s.json().startsAt).toBe(AT);
    clock.advance(60_000);
    expect((await get('/api/rules/quality')).json().to).toBe('2026-01-14T15:31:00.000Z');
  });
});
