/**
 * Payout holds in headless Chromium against the real API and PostgreSQL, with the webhook deliverer running and a
 * real receiver: an analyst holds a merchant's payouts from the alert page and sees the action pending while the
 * settlement system is down, then delivered once it answers; a 4xx shows the release as failed on the merchant page;
 * a viewer sees the state without the buttons. Screenshots go to test-artifacts/. Skipped without Chromium.
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSettlement, type Settlement, type WebhookReceiver } from '../test/harness/index.ts';
import { ANALYST, ANALYST_NAME, CHROMIUM, HAVE_CHROMIUM, insertAlert, launchChromium, testApi, VIEWER, type TestApi } from './testing.ts';
import { ensureWebBuilt } from './web-dist.ts';

const ARTIFACTS = new URL('../test-artifacts/', import.meta.url).pathname;
if (!HAVE_CHROMIUM) console.warn(`holds dashboard test skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set RISKMON_CHROMIUM)`);

let t: TestApi;
let base: string;
let browser: Browser;
let settlement: Settlement;
let receiver: WebhookReceiver;
let alertId: string;

async function open(key: string, path: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e}`));
  page.on('console', (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`); });
  await page.goto(`${base}/?key=${key}${path}`);
  return { page, problems };
}

describe.skipIf(!HAVE_CHROMIUM)('payout holds in a browser', () => {
  beforeAll(async () => {
    const dist = await ensureWebBuilt(undefined, { force: true });
    t = await testApi({}, dist, { exposureOf: async (m) => ({ merchantId: m, receivable: '42000000' }) });
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    mkdirSync(ARTIFACTS, { recursive: true });
    await t.sourcePg.query(`INSERT INTO merchants (merchant_id, name, category) VALUES (5150, 'Hanbit Electronics', 'electronics')`);
    alertId = (await insertAlert(t.riskPg, { merchantId: '5150', firedAt: new Date(Math.floor(Date.now() / 60_000) * 60_000 - 20 * 60_000).toISOString(), evidence: { window: { approvals: 200, cancels: 60, rate: 0.3 } } })).id;
    settlement = await startSettlement(t.riskPg, t.env.RISK_PG_URL!, { down: true }); // the settlement system is down when the analyst acts
    receiver = settlement.receiver;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await settlement?.stop();
    await t?.close();
  });

  it('an analyst holds from the alert page and sees the delivery go from pending to delivered; a refused release shows failed', async () => {
    const { page, problems } = await open(ANALYST, `#/alerts/${alertId}`);
    await page.waitForSelector('#a-hold #hold-state[data-state="none"]');
    expect(await page.innerText('#a-hold')).toContain('Payouts are not held');
    await page.fill('#hold-reason', 'cancel surge: calling the merchant');
    await page.click('#hold-btn');
    await page.waitForSelector('#a-hold #hold-state[data-state="active"]');
    await page.waitForSelector('#a-hold h2 [data-delivery="pending"]');
    expect(await page.innerText('#a-hold')).toContain(`by ${ANALYST_NAME}`);
    expect(await page.innerText('#a-hold')).toContain('cancel surge: calling the merchant');
    await page.waitForFunction(() => /attempt/.test(document.querySelector('#a-hold .actions')?.textContent ?? ''));
    await page.screenshot({ path: `${ARTIFACTS}hold-pending.png`, fullPage: true });

    await receiver.up(); // the settlement system answers again
    await page.waitForSelector('#a-hold h2 [data-delivery="delivered"]', { timeout: 20_000 });
    await page.screenshot({ path: `${ARTIFACTS}hold-delivered.png`, fullPage: true });
    const [event] = [...receiver.accepted.values()];
    expect(event).toMatchObject({ type: 'payout.hold', merchantId: '5150', actor: ANALYST_NAME, reason: 'cancel surge: calling the merchant', exposure: { receivable: '42000000' } });
    const hold = (await t.app.inject({ url: '/api/holds?merchantId=5150', headers: { authorization: `Bearer ${VIEWER}` } })).json().items[0];
    expect(hold).toMatchObject({ alertId, state: 'active', delivery: 'delivered' });

    // The merchant page shows the same hold; the settlement system refuses the release (422): failed, visible.
    receiver.script.push({ status: 422, body: 'payout already sent' });
    await page.goto(`${base}/#/merchants/5150`);
    await page.waitForSelector('#m-hold #hold-state[data-state="active"]');
    await page.fill('#hold-reason', 'merchant shipped everything');
    await page.click('#release-btn');
    await page.waitForSelector('#m-hold #hold-state[data-state="none"]');
    await page.waitForSelector('#m-hold #hold-failed', { timeout: 20_000 });
    await page.click('#m-hold details summary');
    expect(await page.innerText('#m-hold details')).toContain('HTTP 422: payout already sent');
    await page.screenshot({ path: `${ARTIFACTS}hold-release-failed.png`, fullPage: true });
    expect(problems).toEqual([]);

    // A viewer sees the state, without the forms.
    const viewer = await open(VIEWER, '#/merchants/5150');
    await viewer.page.waitForSelector('#m-hold #hold-state');
    expect(await viewer.page.$('#hold-form')).toBeNull();
    expect(await viewer.page.innerText('#m-hold')).toContain('an analyst or admin key holds and releases payouts');
  });
});
