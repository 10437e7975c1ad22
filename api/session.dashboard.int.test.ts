/**
 * The dashboard's session in headless Chromium: signing in with /?key= leaves no key in the address bar, in the
 * history entry, in localStorage or sessionStorage, nor in any cookie the page can read; the session cookie is
 * HttpOnly and SameSite=Strict; the live feed connects by the cookie; sign-out ends the session on the server (the
 * cookie, replayed, gets 401) and closes the live connection. Skipped with a message when Chromium is missing.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../test/harness/index.ts';
import { ANALYST, ANALYST_NAME, CHROMIUM, HAVE_CHROMIUM, launchChromium, testApi, type TestApi } from './testing.ts';
import { ensureWebBuilt } from './web-dist.ts';

if (!HAVE_CHROMIUM) console.warn(`session dashboard test skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set RISKMON_CHROMIUM)`);

let t: TestApi;
let base: string;
let browser: Browser;

describe.skipIf(!HAVE_CHROMIUM)('dashboard session', () => {
  beforeAll(async () => {
    const dist = await ensureWebBuilt(undefined, { force: true });
    t = await testApi({}, dist);
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('signs in once with ?key=, keeps no key anywhere, and sign-out ends the session', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/?key=${encodeURIComponent(ANALYST)}#/rules`);
    await page.waitForSelector('#signout');
    expect(await page.innerText('#who')).toContain(ANALYST_NAME);

    // no key in the URL (the hash route is kept), in storage, or readable by the page's scripts
    expect(page.url()).toBe(`${base}/#/rules`);
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie + history.state);
    expect(stored).not.toContain(ANALYST);
    expect(await page.evaluate(() => document.cookie)).not.toContain('riskmon_session');
    const [cookie, ...others] = await context.cookies();
    expect(others).toEqual([]);
    expect(cookie).toMatchObject({ name: 'riskmon_session', httpOnly: true, sameSite: 'Strict', secure: false });
    expect(cookie.value).not.toContain(ANALYST);

    // the live feed is connected by the cookie
    await page.goto(`${base}/`);
    await page.waitForSelector('#live-dot.live');
    await waitFor(() => t.hub.size === 1);

    // sign-out: the sign-in form, the live connection closed, and the cookie no longer works on the server
    await page.click('#signout');
    await page.waitForSelector('#signin #key');
    await waitFor(() => t.hub.size === 0);
    expect(await context.cookies()).toEqual([]);
    const replay = await t.app.inject({ method: 'GET', url: '/api/me', headers: { cookie: `riskmon_session=${cookie.value}` } });
    expect(replay.statusCode).toBe(401);

    // a wrong key in the form says so and keeps no trace of it either
    await page.fill('#key', 'not-the-right-key-0123456789');
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('.signin .error');
    expect(await page.innerText('.signin .error')).toContain('not accepted');
    expect(await page.evaluate(() => JSON.stringify({ ...localStorage }))).toBe('{}');

    // and the right key through the form starts a new session
    await page.fill('#key', ANALYST);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#signout');
    expect(errors).toEqual([]);
    await context.close();
  });
});
