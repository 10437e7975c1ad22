/**
 * Deny by default: every route the api registers answers 401 without a key unless it is one of the few public ones,
 * and no spelling of a path gets around that — percent-encoded letters (`/%61pi/audit`), an absolute-form request
 * target (`GET http://x/api/alerts`), a WebSocket upgrade to `/%77s`. The requests go over a real socket, as an
 * attacker's would; `inject()` would normalise them first.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, VIEWER, type TestApi } from './testing.ts';

/**
 * The only routes served without a key: liveness, readiness, metrics, the API documentation, the dashboard's files,
 * and sign-in/sign-out (which check the key, or end the session, themselves).
 */
const PUBLIC = [/^\/health$/, /^\/ready$/, /^\/metrics$/, /^\/docs(\/|$)/, /^\/\*?$/, /^\/api\/session$/];

let t: TestApi;
let port: number;

beforeAll(async () => {
  t = await testApi();
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.address() as { port: number }).port;
});
afterAll(async () => { await t?.close(); });

/** Sends `head` as the raw request head and returns the status code of the answer. */
function raw(head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setTimeout(5_000, () => { s.destroy(); reject(new Error(`no answer to ${head.split('\r\n')[0]}`)); });
    s.on('data', (d) => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m) { s.destroy(); resolve(Number(m[1])); }
    });
    s.on('error', reject);
    s.write(head);
  });
}
const get = (target: string, extra = '') => raw(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}\r\n`);
const upgrade = (target: string, extra = '') => get(target, extra + 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n');

/** A concrete path for a route pattern (`:id` → 1, a trailing wildcard → a file name). */
const pathOf = (url: string) => url.replace(/:[A-Za-z]+/g, '1').replace(/\*$/, 'x.js');

describe('authentication is decided on the matched route', () => {
  it('every registered route but the public ones answers 401 without a key', async () => {
    const guarded = t.routes.filter((r) => !PUBLIC.some((re) => re.test(r.url)));
    expect(guarded.length).toBeGreaterThan(15);
    const open: string[] = [];
    for (const r of guarded) {
      const res = await t.app.inject({ method: r.method as 'GET', url: pathOf(r.url), payload: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} });
      if (res.statusCode !== 401) open.push(`${r.method} ${r.url} → ${res.statusCode}`);
    }
    expect(open).toEqual([]);
    // and the public ones are few and named
    const publicRoutes = t.routes.filter((r) => PUBLIC.some((re) => re.test(r.url))).map((r) => r.url);
    expect(publicRoutes).toEqual(expect.arrayContaining(['/health', '/ready', '/metrics']));
    expect(publicRoutes.every((u) => (!u.startsWith('/api') || u === '/api/session') && u !== '/ws')).toBe(true);
  });

  it('no spelling of a path gets past it', async () => {
    const spellings = [
      '/api/audit', '/%61pi/audit', '/ap%69/alerts', '/%61pi/status', '/%61%70%69/merchants/1/series',
      '/api/%61lerts', 'http://x/api/alerts', 'http://127.0.0.1/%61pi/audit', '/api//alerts', '/api/alerts/', '/API/alerts',
      '/api/./alerts', '/x/../api/alerts',
    ];
    const answers = await Promise.all(spellings.map(async (s) => `${s} → ${await get(s)}`));
    // 401 where the router finds the route; 404 where it finds none — never a 200
    for (const a of answers) expect(a).toMatch(/→ (401|404)$/);
    expect(answers.filter((a) => a.endsWith('401')).length).toBeGreaterThanOrEqual(8);
    // the same paths with a key are served, so the 401s above are the auth hook's and not a broken route
    expect(await get('/%61pi/audit', `Authorization: Bearer ${VIEWER}\r\n`)).toBe(200);
    expect(await get('http://x/api/alerts', `Authorization: Bearer ${VIEWER}\r\n`)).toBe(200);
  });

  it('a WebSocket upgrade without a key is refused under any spelling', async () => {
    // a key in the URL is no way in either: it would end up in proxy logs and history
    for (const s of ['/ws', '/%77s', '/%77%73', 'http://x/ws', '/ws?token=', '/ws?token=wrong-token-0123456789', `/ws?token=${VIEWER}`, `/ws?token=${VIEWER}&token=${VIEWER}`]) {
      expect(`${s} → ${await upgrade(s)}`).toBe(`${s} → 401`);
    }
    expect(await upgrade('/%77s', `Authorization: Bearer ${VIEWER}\r\n`)).toBe(101);
  });

  it('public routes answer without a key', async () => {
    expect(await get('/health')).toBe(200);
    expect(await get('/metrics')).toBe(200);
    expect(await get('/docs/json')).toBe(200);
  });
});
