/**
 * The dashboard in headless Chromium against the real API, PostgreSQL and Redis: sign in with /?key=, see an alert
 * published on the channel appear in the live feed, open the merchant page with its charts. Screenshots go to
 * test-artifacts/ (git-ignored). Skipped with a message when /usr/bin/chromium is missing.
 */
import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayStart } from '../lib/time.ts';
import { BucketWriter, seedTrendingMerchant } from '../aggregator/store/index.ts';
import { ADMIN, CHROMIUM, HAVE_CHROMIUM, insertAlert, launchChromium, testApi, VIEWER, type TestApi } from './testing.ts';
import { ensureWebBuilt } from './web-dist.ts';

const ARTIFACTS = new URL('../test-artifacts/', import.meta.url).pathname;
if (!HAVE_CHROMIUM) console.warn(`dashboard test skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set RISKMON_CHROMIUM)`);

let t: TestApi;
let base: string;
let browser: Browser;

describe.skipIf(!HAVE_CHROMIUM)('dashboard in a browser', () => {
  beforeAll(async () => {
    const dist = await ensureWebBuilt(undefined, { force: true }); // always test the current source
    t = await testApi({}, dist);
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    mkdirSync(ARTIFACTS, { recursive: true });

    await t.sourcePg.query(`INSERT INTO merchants (merchant_id, name, category) VALUES
      (1042, 'Hanbit Electronics', 'electronics'), (2077, 'Seoul Coffee Roasters', 'food'), (3110, 'Blue Wave Travel', 'travel'),
      (4021, 'Mirae Fashion Outlet', 'fashion'), (5093, 'Daol Books', 'books'), (6120, 'Gangnam Beauty Lab', 'beauty'),
      (7345, 'Jeju Air Tickets', 'travel'), (8801, 'Pixel Game Store', 'digital')`);
    const now = Date.now();
    const today = dayStart(now, t.deps.cfg.tz);
    const w = new BucketWriter(t.deps.redis, { prefix: t.deps.cfg.redisPrefix, partitions: t.deps.cfg.partitions, hotShards: t.deps.cfg.hotShards, tz: t.deps.cfg.tz });
    seedTrendingMerchant(w, '1042', now, today);
    await w.flush();

    const minute = new Date(Math.floor(now / 60_000) * 60_000 - 60_000).toISOString();
    const cancelEv = (rate: number, base: number, a: number) => ({ window: { rate, approvals: a, cancels: Math.round(rate * a) }, baseline: { rate: base, approvals: 9000 } });
    const volEv = (today: number, usual: number) => ({ window: { approvedAmount: String(today) }, baseline: { sameTimeAverage: String(usual) }, todayVsBaseline: today / usual });
    for (const [m, rate, b, a] of [['1042', 0.21, 0.021, 262], ['2077', 0.06, 0.028, 140], ['4021', 0.041, 0.03, 88], ['5093', 0.012, 0.015, 64]] as const) {
      await t.riskPg.query(`INSERT INTO evaluations VALUES ('cancel_rate_spike', $1, $2, $3, NULL, $4)`, [m, minute, rate >= 2 * b ? 'breach' : 'clear', cancelEv(rate, b, a)]);
    }
    for (const [m, td, us] of [['3110', 410_000_000, 1_020_000_000], ['1042', 980_000_000, 1_150_000_000], ['2077', 1_300_000_000, 1_250_000_000]] as const) {
      await t.riskPg.query(`INSERT INTO evaluations VALUES ('volume_drop', $1, $2, $3, NULL, $4)`, [m, minute, td <= 0.5 * us ? 'breach' : 'clear', volEv(td, us)]);
    }
    await insertAlert(t.riskPg, { merchantId: '3110', rule: 'volume_drop', firedAt: new Date(now - 50 * 60_000).toISOString(), evidence: volEv(380_000_000, 990_000_000) });
    await insertAlert(t.riskPg, { merchantId: '2077', firedAt: new Date(now - 5 * 3_600_000).toISOString(), state: 'resolved', resolvedAt: new Date(now - 4 * 3_600_000).toISOString(), evidence: cancelEv(0.08, 0.028, 210) });
    // Some history for the feed: earlier alerts, most of them resolved.
    const hist: [string, string, number, number, object][] = [
      ['6120', 'cancel_rate_spike', 95, 70, cancelEv(0.11, 0.04, 180)], ['7345', 'volume_drop', 150, 100, volEv(520_000_000, 1_400_000_000)],
      ['8801', 'cancel_rate_spike', 200, 150, cancelEv(0.09, 0.03, 320)], ['4021', 'cancel_rate_spike', 380, 330, cancelEv(0.075, 0.03, 140)],
      ['6120', 'volume_drop', 600, 520, volEv(300_000_000, 1_050_000_000)], ['8801', 'cancel_rate_spike', 900, 860, cancelEv(0.12, 0.03, 95)],
    ];
    for (const [m, rule, firedMin, resolvedMin, ev] of hist) {
      await insertAlert(t.riskPg, { merchantId: m, rule, state: 'resolved', firedAt: new Date(now - firedMin * 60_000).toISOString(), resolvedAt: new Date(now - resolvedMin * 60_000).toISOString(), evidence: ev });
    }
    await t.riskPg.query(`INSERT INTO silences (merchant_id, rule, ends_at, reason, created_by) VALUES ('5093', NULL, now() + interval '3 hours', 'migration window', 'key test')`);

    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('signs in with /?key=, shows a live alert, opens the merchant page', async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));

    await page.goto(`${base}/?key=${ADMIN}`);
    await page.waitForSelector('#feed tr[data-alert]');
    expect(new URL(page.url()).searchParams.get('key')).toBeNull(); // the key leaves the address bar
    expect(await page.evaluate(() => localStorage.getItem('riskmon.apiKey'))).toBeNull(); // a session cookie, not the key
    await page.waitForSelector('#live-dot.live');
    await page.waitForSelector('#top-cancel tr');
    await page.waitForSelector('#health .pill');

    // An alert transition published by the alerting side appears in the feed without a reload.
    const a = await insertAlert(t.riskPg, { merchantId: '1042', firedAt: new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000).toISOString(), evidence: { window: { rate: 0.21, approvals: 262, cancels: 55 }, baseline: { rate: 0.021, approvals: 9000 } } });
    const { rows } = await t.riskPg.query('SELECT fired_at FROM alerts WHERE id = $1', [a.id]);
    await t.publisher.publish(`${t.deps.cfg.redisPrefix}:alerts`, JSON.stringify({
      type: 'alert', eventId: a.eventId, transition: 'fired',
      alert: { id: a.id, rule: 'cancel_rate_spike', merchantId: '1042', state: 'firing', firedAt: rows[0].fired_at.toISOString(), resolvedAt: null, evidence: { window: { rate: 0.21, approvals: 262, cancels: 55 }, baseline: { rate: 0.021, approvals: 9000 } } },
    }));
    const row = await page.waitForSelector(`#feed tr[data-alert="${a.id}"]`);
    expect(await row.innerText()).toContain('1042');
    await page.waitForTimeout(300); // let the row flash settle a little for the picture (not an assertion)
    await page.screenshot({ path: `${ARTIFACTS}dashboard.png` });

    // Search finds the merchant by name and opens its page.
    await page.fill('#q', 'hanbit');
    await page.waitForSelector('#results a[href="#/merchants/1042"]');
    await page.click('#results a[href="#/merchants/1042"]');
    await page.waitForFunction(() => document.querySelectorAll('.uplot').length === 4, undefined, { timeout: 60_000 }).catch(async (err) => {
      throw new Error(`the merchant page's 4 charts: ${await page.evaluate(() => document.querySelectorAll('.uplot').length)} drawn; KPIs say "${await page.innerText('#kpis')}"; page errors: ${errors.join(' | ') || 'none'}`, { cause: err });
    });
    await page.waitForSelector('#m-name:not(:empty)');
    expect(await page.innerText('#m-name')).toContain('Hanbit');
    expect(await page.innerText('#kpis')).toContain('Cancel rate, last 60 min');
    expect(await page.innerText('#m-alerts')).toContain('Cancel-rate spike');
    expect(await page.innerText('#evals')).toContain('breach');
    await page.screenshot({ path: `${ARTIFACTS}merchant.png`, fullPage: true });
    await page.click('#tabs button[data-step="1h"]');
    await page.waitForSelector('#tabs button.on[data-step="1h"]');
    await page.screenshot({ path: `${ARTIFACTS}merchant-1h.png`, fullPage: true });

    // A viewer key signs in the same way and sees no silence form.
    const viewer = await browser.newPage();
    await viewer.goto(`${base}/?key=${VIEWER}`);
    await viewer.waitForSelector('#silences table, #silences p');
    expect(await viewer.$('#silence-form')).toBeNull();
    expect(errors).toEqual([]);
  });
});
