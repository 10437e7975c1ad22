/**
 * Sessions without a browser: POST /api/session exchanges a key for an HttpOnly, SameSite=Strict cookie (Secure
 * behind HTTPS) that expires; the cookie authenticates requests and the WebSocket from the dashboard's own origin
 * only; sign-out revokes it on the server; a key holds a bounded number of sessions; a wrong key counts as a
 * failed authentication.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ANALYST, testApi, VIEWER, type TestApi } from './testing.ts';

let t: TestApi;
let port: number;
beforeAll(async () => {
  t = await testApi({ RISKMON_SESSION_MAX_PER_KEY: '3', RISKMON_SESSION_TTL_MS: '3600000', RISKMON_AUTH_FAIL_MAX: '5' });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.address() as { port: number }).port;
});
afterAll(async () => { await t?.close(); });

async function signIn(key: string, headers: Record<string, string> = {}) {
  const res = await t.app.inject({ method: 'POST', url: '/api/session', payload: { key }, headers });
  const setCookie = String(res.headers['set-cookie'] ?? '');
  return { res, setCookie, cookie: setCookie.split(';')[0] };
}

/** Status of a WebSocket upgrade to /ws over a raw socket, with extra header lines. */
function upgrade(extra: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.on('data', (d) => { const m = /^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1')); if (m) { s.destroy(); resolve(Number(m[1])); } });
    s.on('error', reject);
    s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`);
  });
}

describe('sessions', () => {
  it('a key is exchanged for an HttpOnly, SameSite=Strict cookie that expires and is not the key', async () => {
    const { res, setCookie, cookie } = await signIn(ANALYST);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ role: 'analyst', name: 'Ji-woo Park' });
    expect(setCookie).toMatch(/^riskmon_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=3600$/);
    expect(setCookie).not.toContain(ANALYST);
    expect(res.headers['cache-control']).toBe('no-store');
    // the session expires in Redis with the cookie
    const me = await t.app.inject({ method: 'GET', url: '/api/me', headers: { cookie } });
    expect(me.json()).toMatchObject({ role: 'analyst', name: 'Ji-woo Park' });
    // Secure when the browser talks HTTPS (TLS ended by a proxy in front)
    expect((await signIn(VIEWER, { 'x-forwarded-proto': 'https' })).setCookie).toMatch(/; Secure$/);
  });

  it('sign-out revokes the session on the server, not only in the browser', async () => {
    const { cookie } = await signIn(VIEWER);
    expect((await t.app.inject({ method: 'GET', url: '/api/alerts', headers: { cookie } })).statusCode).toBe(200);
    const out = await t.app.inject({ method: 'DELETE', url: '/api/session', headers: { cookie } });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^riskmon_session=; .*Max-Age=0/);
    const after = await t.app.inject({ method: 'GET', url: '/api/alerts', headers: { cookie } });
    expect(after.statusCode).toBe(401);
    expect(after.json().message).toMatch(/sign in again/);
  });

  it('writes with a cookie come from the dashboard\'s origin only; roles still apply', async () => {
    const { cookie } = await signIn(VIEWER);
    const silence = { merchantId: '42', minutes: 30, reason: 'x' };
    expect((await t.app.inject({ method: 'POST', url: '/api/silences', headers: { cookie, origin: 'https://evil.example' }, payload: silence })).statusCode).toBe(403);
    // same origin, but a viewer: forbidden by role
    expect((await t.app.inject({ method: 'POST', url: '/api/silences', headers: { cookie, origin: 'http://dash.local:8080', host: 'dash.local:8080' }, payload: silence })).json().message).toMatch(/admin/);
    const admin = await signIn(ADMIN);
    const ok = await t.app.inject({ method: 'POST', url: '/api/silences', headers: { cookie: admin.cookie, origin: 'http://dash.local:8080', host: 'dash.local:8080' }, payload: silence });
    expect(ok.statusCode).toBe(201);
  });

  it('the WebSocket takes the cookie with the dashboard\'s Origin, never without one or from another', async () => {
    const { cookie } = await signIn(VIEWER);
    expect(await upgrade(`Cookie: ${cookie}\r\nOrigin: http://127.0.0.1:${port}\r\n`)).toBe(101);
    expect(await upgrade(`Cookie: ${cookie}\r\nOrigin: https://evil.example\r\n`)).toBe(403);
    expect(await upgrade(`Cookie: ${cookie}\r\n`)).toBe(403);
    expect(await upgrade(`Cookie: riskmon_session=${'A'.repeat(43)}\r\nOrigin: http://127.0.0.1:${port}\r\n`)).toBe(401);
  });

  it('a key holds at most RISKMON_SESSION_MAX_PER_KEY sessions: the oldest ends', async () => {
    const cookies = [];
    for (let i = 0; i < 4; i++) cookies.push((await signIn(ADMIN, { 'x-forwarded-for': String(i) })).cookie);
    const status = async (c: string) => (await t.app.inject({ method: 'GET', url: '/api/me', headers: { cookie: c } })).statusCode;
    expect(await Promise.all(cookies.map(status))).toEqual([401, 200, 200, 200]);
  });

  it('a wrong key at sign-in is a failed authentication: 401, then 429', async () => {
    const from = { remoteAddress: '192.0.2.44' };
    const tries = [];
    for (let i = 0; i < 7; i++) tries.push((await t.app.inject({ method: 'POST', url: '/api/session', payload: { key: `nope-${i}-0123456789abcdefgh` }, ...from })).statusCode);
    expect(tries).toEqual([401, 401, 401, 401, 401, 429, 429]);
    expect((await t.app.inject({ method: 'POST', url: '/api/session', payload: { key: VIEWER }, ...from })).statusCode).toBe(429);
  });
});
