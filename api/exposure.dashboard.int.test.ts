/**
 * Money at risk in headless Chromium against the real API, PostgreSQL and the bucket store: a merchant paid out D+2
 * whose buyers then cancel more than it sells owes a receivable; the feed shows it as ₩ at risk and reorders by it;
 * the merchant page shows the API's exposure to the won and charts its net position against payouts; the alert page
 * shows the exposure at firing and now beside the hold panel, where an analyst holds payouts and sees the webhook
 * delivered. Exposures are computed by the bucket store and stored in the risk store as the evaluator does each
 * minute. Screenshots go to test-artifacts/ (and to web/ with RISKMON_SCREENSHOTS=1). Skipped without Chromium.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketWriter, hasMoney, readExposure, readExposures, settlementOf, type Exposure } from '../aggregator/store/index.ts';
import { writeExposures } from '../alerting/risk-store/index.ts';
import { DAY, dayStart, HOUR, MINUTE } from '../lib/time.ts';
import { startSettlement, type Settlement, type WebhookReceiver } from '../test/harness/index.ts';
import { ANALYST, CHROMIUM, HAVE_CHROMIUM, insertAlert, launchChromium, testApi, VIEWER, type TestApi } from './testing.ts';
import { ensureWebBuilt } from './web-dist.ts';
import { krwExact } from '../web/src/format.ts';

const ARTIFACTS = new URL('../test-artifacts/', import.meta.url).pathname;
if (!HAVE_CHROMIUM) console.warn(`exposure dashboard test skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set RISKMON_CHROMIUM)`);

let t: TestApi;
let base: string;
let browser: Browser;
let settlement: Settlement;
let receiver: WebhookReceiver;
const alertOf: Record<string, string> = {};

async function open(key: string, path: string, height = 1000): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1440, height } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e}`));
  page.on('console', (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`); });
  await page.goto(`${base}/?key=${key}${path}`);
  return { page, problems };
}

const api = async (path: string) => (await t.app.inject({ url: path, headers: { authorization: `Bearer ${VIEWER}` } })).json();
const feedOrder = (page: Page) => page.$$eval('#feed tr[data-alert] a.mid', (as) => as.map((a) => a.textContent));

describe.skipIf(!HAVE_CHROMIUM)('money at risk in a browser', () => {
  beforeAll(async () => {
    const dist = await ensureWebBuilt(undefined, { force: true });
    t = await testApi({}, dist);
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    mkdirSync(ARTIFACTS, { recursive: true });
    await t.sourcePg.query(`INSERT INTO merchants (merchant_id, name, category) VALUES
      (6001, 'Bada Mobile', 'electronics'), (6002, 'Sori Books', 'books'), (6003, 'Namu Foods', 'food')`);
    const now = Date.now();
    const tz = t.deps.cfg.tz;
    const today = dayStart(now, tz);
    const w = new BucketWriter(t.deps.redis, { prefix: t.deps.cfg.redisPrefix, partitions: t.deps.cfg.partitions, hotShards: t.deps.cfg.hotShards, tz });
    const hourNow = Math.floor(now / HOUR) * HOUR;
    // Sales every hour for 9 days; payouts D+2 (paid at each local midnight, settling through the day before);
    // the next one tomorrow.
    for (let h = hourNow - 9 * DAY; h <= hourNow; h += HOUR) {
      const at = Math.min(h + 7 * MINUTE, now - MINUTE);
      w.approval('6001', 1_500_000, at); w.approval('6002', 1_000_000, at); w.approval('6003', 800_000, at);
    }
    for (const m of ['6001', '6002', '6003']) {
      let paid = today;
      for (let d = 0; d < 8; d++) {
        w.payout(m, String(36_000_000 - d * 1_000_000), dayStart(paid - HOUR, tz), paid);
        paid = dayStart(paid - HOUR, tz);
      }
      w.payout(m, '30000000', today, dayStart(today + DAY + 2 * HOUR, tz)); // scheduled
    }
    // The bust-out: buyers cancel payments paid out long ago, over the last 8 hours.
    for (let i = 0; i < 50; i++) w.cancel('6001', 3_000_000, now - 8 * HOUR + Math.round(i * 9.6 * MINUTE));
    for (let i = 0; i < 30; i++) w.cancel('6002', 2_000_000, now - 60 * MINUTE + i * 100_000);
    await w.flush();

    // Alerts: 6003 (owes nothing) fired last, 6001 (owes most) first; the evaluator's stored exposure at firing.
    const s = settlementOf(t.deps.cfg);
    const reader = t.deps.reader;
    if (!hasMoney(reader)) throw new Error('the bucket reader cannot read exposures');
    const minute = Math.floor(now / MINUTE) * MINUTE;
    for (const [m, ago] of [['6001', 30], ['6002', 10], ['6003', 5]] as const) {
      const firedAt = minute - ago * MINUTE;
      alertOf[m] = (await insertAlert(t.riskPg, { merchantId: m, firedAt: new Date(firedAt).toISOString(), evidence: { window: { approvals: 20, cancels: 12, rate: 0.6 }, baseline: { rate: 0.02 } } })).id;
      const atFiring = await readExposure(reader, m, firedAt + MINUTE - 1, s);
      await t.riskPg.query('UPDATE alerts SET exposure_at_fire = $2 WHERE id = $1', [alertOf[m], JSON.stringify(atFiring)]);
    }
    const all = await readExposures(reader, ['6001', '6002', '6003'], now, s);
    const owe = [...all.values()].filter((e) => e.receivable !== '0');
    await writeExposures(t.riskPg, { upsert: owe, remove: [] }, minute);

    settlement = await startSettlement(t.riskPg, t.env.RISK_PG_URL!);
    receiver = settlement.receiver;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await settlement?.stop();
    await t?.close();
  });

  it('the feed shows ₩ at risk for a merchant that owes and reorders by it', async () => {
    const alerts = (await api('/api/alerts?limit=10')).items as { merchantId: string; receivableNow: string; exposureAtFiring: Exposure | null }[];
    const by = Object.fromEntries(alerts.map((a) => [a.merchantId, a]));
    expect(BigInt(by['6001'].receivableNow)).toBeGreaterThan(BigInt(by['6002'].receivableNow));
    expect(BigInt(by['6002'].receivableNow)).toBeGreaterThan(0n);
    expect(by['6003'].receivableNow).toBe('0');

    const { page, problems } = await open(VIEWER, '#/');
    await page.waitForSelector(`#feed tr[data-alert="${alertOf['6001']}"]`);
    expect(await feedOrder(page)).toEqual(['6003', '6002', '6001']); // live order: newest first
    const cell = page.locator(`#feed tr[data-alert="${alertOf['6001']}"] td.atrisk`);
    expect(await cell.getAttribute('data-receivable')).toBe(by['6001'].receivableNow);
    expect(await cell.innerText()).toMatch(/^₩[\d.]+M\s+at firing ₩[\d.]+M$/);
    expect(await cell.getAttribute('title')).toContain(`receivable now ${krwExact(by['6001'].receivableNow)}`);
    expect(await cell.getAttribute('title')).toContain(`at firing ${krwExact(by['6001'].exposureAtFiring!.receivable)}`);
    expect(await page.innerText(`#feed tr[data-alert="${alertOf['6003']}"] td.atrisk`)).toContain('₩0');
    // the merchants that owe most, beside the feed
    await page.waitForSelector('#top-receivable tr[data-merchant="6001"]');
    expect(await page.$$eval('#top-receivable tr[data-merchant]', (rs) => rs.map((r) => r.getAttribute('data-merchant')))).toEqual(['6001', '6002']);

    await page.click('#sorts button[data-sort="receivable"]');
    await page.waitForFunction(() => document.querySelector('#feed tr[data-alert] a.mid')?.textContent === '6001');
    expect(await feedOrder(page)).toEqual(['6001', '6002', '6003']);
    await page.screenshot({ path: `${ARTIFACTS}feed-at-risk.png` });
    // the choice stays for the session; Newest goes back to the live order
    await page.reload();
    await page.waitForSelector('#sorts button[data-sort="receivable"].on');
    await page.waitForFunction(() => document.querySelector('#feed tr[data-alert] a.mid')?.textContent === '6001');
    await page.click('#sorts button[data-sort="fired"]');
    await page.waitForFunction(() => document.querySelector('#feed tr[data-alert] a.mid')?.textContent === '6003');
    expect(problems).toEqual([]);
  });

  it("the merchant page shows the API's exposure and charts the net position against payouts", async () => {
    const before = (await api('/api/merchants/6001/exposure')) as Exposure;
    const { page, problems } = await open(VIEWER, '#/merchants/6001', 1300);
    await page.waitForSelector('#m-exposure [data-x="receivable"]');
    await page.waitForSelector('#c-net canvas');
    const e = (await api('/api/merchants/6001/exposure')) as Exposure;
    expect(BigInt(e.receivable)).toBeGreaterThan(0n);
    for (const f of ['receivable', 'netSinceSettled', 'approvedSinceSettled', 'canceledSinceSettled'] as const) {
      expect(await page.innerText(`#m-exposure [data-x="${f}"]`), f).toBe(krwExact(e[f]));
    }
    // the projection moves with the clock (the time left to the next payout): between the API's before and after
    const proj = BigInt((await page.innerText('#m-exposure [data-x="projectedReceivable"]')).replace(/[₩,]/g, ''));
    const after = (await api('/api/merchants/6001/exposure')) as Exposure;
    const [lo, hi] = [BigInt(before.projectedReceivable), BigInt(after.projectedReceivable)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(proj >= lo && proj <= hi, `${lo} ≤ ${proj} ≤ ${hi}`).toBe(true);
    expect(await page.getAttribute('#m-exposure [data-x="settledThrough"]', 'data-v')).toBe(e.settledThrough);
    expect(await page.innerText('#m-exposure [data-x="nextPayoutAt"]')).not.toBe('—');
    // the chart's legend: the net position now is the exposure's net
    const legend = await page.innerText('#c-net .u-legend');
    expect(legend).toContain('net position');
    expect(legend).toContain('payout');
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${ARTIFACTS}merchant-exposure.png`, clip: { x: 0, y: 0, width: 1440, height: 760 } });
    if (process.env.RISKMON_SCREENSHOTS) copyFileSync(`${ARTIFACTS}merchant-exposure.png`, new URL('../web/screenshot-exposure.png', import.meta.url).pathname);
    expect(problems).toEqual([]);
  });

  it('the alert page shows the exposure at firing and now beside the hold panel; an analyst holds and sees it delivered', async () => {
    const detail = await api(`/api/alerts/${alertOf['6001']}`);
    const now = (await api('/api/merchants/6001/exposure')) as Exposure;
    const { page, problems } = await open(ANALYST, `#/alerts/${alertOf['6001']}`, 1050);
    await page.waitForFunction(() => /₩/.test(document.querySelector('#a-exposure [data-now="receivable"]')?.textContent ?? ''));
    expect(await page.innerText('#a-exposure [data-firing="receivable"]')).toBe(krwExact(detail.exposureAtFiring.receivable));
    expect(await page.innerText('#a-exposure [data-now="receivable"]')).toBe(krwExact(now.receivable));
    expect(await page.innerText('#a-exposure [data-firing="canceledSinceSettled"]')).toBe(krwExact(detail.exposureAtFiring.canceledSinceSettled));
    await page.waitForSelector('#a-hold #hold-state[data-state="none"]');
    await page.fill('#hold-reason', 'bust-out: cancels of paid-out sales, calling the merchant');
    await page.click('#hold-btn');
    await page.waitForSelector('#a-hold h2 [data-delivery="delivered"]', { timeout: 20_000 });
    const [event] = [...receiver.accepted.values()];
    expect(event).toMatchObject({ type: 'payout.hold', merchantId: '6001', exposure: { receivable: now.receivable } });
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${ARTIFACTS}alert-money.png` });
    if (process.env.RISKMON_SCREENSHOTS) copyFileSync(`${ARTIFACTS}alert-money.png`, new URL('../web/screenshot-money.png', import.meta.url).pathname);
    expect(problems).toEqual([]);
  });
});
