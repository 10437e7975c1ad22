/**
 * The rules page in headless Chromium against the real API, PostgreSQL and Redis, under the API's
 * Content-Security-Policy: an admin edits a draft in the form, is told which config path is wrong, backtests the draft
 * (the alerting's backtest runner runs it), watches it finish and compares it with live (alerts per day, merchants
 * only one side flags, precision from the analysts' dispositions), saves it as a version and activates it; a viewer
 * gets no write controls. Screenshots go to test-artifacts/. Skipped with a message when Chromium is missing.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketWriter, seedTrendingMerchant } from '../aggregator/store/index.ts';
import { BacktestRunner, defaultRules, seedRules } from '../alerting/index.ts';
import { logger } from '../lib/logger.ts';
import { dayStart, MINUTE } from '../lib/time.ts';
import { ADMIN, insertAlert, testApi, VIEWER, type TestApi } from './testing.ts';

// Until the triage merge (roles, dispositions, the audit trail, launchChromium in testing.ts).
const CHROMIUM = process.env.RISKMON_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const launchChromium = () => chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
import { ensureWebBuilt } from './web-dist.ts';

const ARTIFACTS = new URL('../test-artifacts/', import.meta.url).pathname;
if (!HAVE_CHROMIUM) console.warn(`rules dashboard test skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set RISKMON_CHROMIUM)`);

let t: TestApi;
let base: string;
let browser: Browser;
let runner: BacktestRunner;
let running: Promise<void>;

async function open(key: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e}`));
  page.on('console', (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`); });
  page.on('dialog', (d) => void d.accept());
  await page.goto(`${base}/?key=${key}#/rules`);
  return { page, problems };
}

describe.skipIf(!HAVE_CHROMIUM)('the rules page in a browser', () => {
  beforeAll(async () => {
    const dist = await ensureWebBuilt(undefined, { force: true });
    t = await testApi({}, dist);
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    mkdirSync(ARTIFACTS, { recursive: true });
    const now = Math.floor(Date.now() / MINUTE) * MINUTE;
    const w = new BucketWriter(t.deps.redis, { prefix: t.deps.cfg.redisPrefix, partitions: t.deps.cfg.partitions, hotShards: t.deps.cfg.hotShards, tz: t.deps.cfg.tz });
    seedTrendingMerchant(w, '9001', now, dayStart(now, t.deps.cfg.tz)); // a cancel surge in the last 40 minutes
    w.cdc.heartbeats(new Date(now + 5000).toISOString());
    await w.flush();
    await seedRules(t.riskPg, defaultRules());
    // Live alerts of the period: 9001's surge (an analyst confirmed it) and one on a merchant the candidate will not flag.
    const a = await insertAlert(t.riskPg, { merchantId: '9001', firedAt: new Date(now - 35 * MINUTE).toISOString() });
    await insertAlert(t.riskPg, { merchantId: '7777', state: 'resolved', firedAt: new Date(now - 300 * MINUTE).toISOString(), resolvedAt: new Date(now - 290 * MINUTE).toISOString() });
    void a;
    runner = new BacktestRunner({ tz: t.deps.cfg.tz, maxIngestLagMs: 120_000, evaluatorName: 'default', pollMs: 100 },
      { reader: t.deps.reader, db: t.riskPg, log: logger.child({ component: 'rules-page-test' }, { level: 'warn' }), liveBusy: () => false });
    running = runner.run();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await runner?.stop();
    await running;
    await browser?.close();
    await t?.close();
  });

  it('edit a draft, see the wrong path, backtest it, compare with live, save and activate', async () => {
    const { page, problems } = await open(ADMIN);
    await page.waitForSelector(`#versions tr[data-version="${defaultRules().version}"]`);
    expect(await page.inputValue('input[name="cancel_rate_spike.multiplier"]')).toBe('2');

    // A wrong value: the API names its path, the page shows it.
    await page.fill('input[name="cancel_rate_spike.multiplier"]', '-1');
    await page.click('#bt-draft');
    await page.waitForSelector('#draft-msg.error');
    expect(await page.innerText('#draft-msg')).toContain('config.cancel_rate_spike.multiplier');
    // A wrong composed rule: the same, with its path.
    await page.fill('input[name="cancel_rate_spike.multiplier"]', '2');
    await page.fill('textarea[name="composed"]', '[{"name": "cancel_amount", "metric": "refunds", "baseline": "last_7_days", "compare": "multiple", "k": 3}]');
    await page.click('#bt-draft');
    await page.waitForFunction(() => /config\.composed\.0\.metric/.test(document.querySelector('#draft-msg')?.textContent ?? ''));
    // A composed rule: canceled over approved amount in the window ≥ 3 × its 7-day value.
    await page.fill('textarea[name="composed"]', '[{"name": "cancel_amount", "metric": "cancel_amount_rate", "baseline": "last_7_days", "compare": "multiple", "k": 3, "minApprovals": 10, "minCancels": 1, "minBaselineApprovals": 100}]');

    // A candidate: multiplier 3, overrides as JSON.
    await page.fill('input[name="cancel_rate_spike.multiplier"]', '3');
    await page.fill('textarea[name="overrides"]', '{"5555": {"volume_drop": {"enabled": false}}}');
    await page.click('#bt-draft');
    await page.waitForSelector('.bt-status[data-status="done"]', { timeout: 90_000 });
    expect(await page.innerText('#bt-title')).toMatch(/unsaved/);
    // once done, the "queued" note under the form is gone (the status line says it)
    await page.waitForFunction(() => !/queued/.test(document.querySelector('#draft-msg')?.textContent ?? ''));
    const row = '.bt-summary tr[data-rule="cancel_rate_spike"]';
    expect(Number(await page.innerText(`${row} .live`))).toBe(2);
    expect(await page.innerText('#only-live')).toContain('7777');
    expect(Number(await page.innerText(`${row} .cand`))).toBeGreaterThan(0); // 9001's surge is strong enough for ×3
    expect(await page.locator('.per-day meter.cand').count()).toBeGreaterThan(0);
    await page.screenshot({ path: `${ARTIFACTS}rules-backtest.png`, fullPage: true });

    // Save, then activate from the versions table.
    await page.fill('input[name="note"]', 'stricter spike');
    await page.click('#save-draft');
    await page.waitForFunction(() => /saved as v\d+/.test(document.querySelector('#draft-msg')?.textContent ?? ''));
    const version = (await page.innerText('#draft-msg')).match(/v\d+/)![0];
    await page.click(`#versions tr[data-version="${version}"] button[data-act="activate"]`);
    await page.waitForSelector(`#versions tr[data-version="${version}"].active`);
    const rules = (await t.app.inject({ url: '/api/rules', headers: { authorization: `Bearer ${VIEWER}` } })).json();
    expect(rules.active).toMatchObject({ version, config: { cancel_rate_spike: { multiplier: 3 }, overrides: { '5555': { volume_drop: { enabled: false } } } } });
    expect(rules.active.config.composed).toEqual([{ name: 'cancel_amount', enabled: true, metric: 'cancel_amount_rate', baseline: 'last_7_days', compare: 'multiple', k: 3, minApprovals: 10, minCancels: 1, minWindowAmount: 0, minBaselineApprovals: 100 }]);
    await page.screenshot({ path: `${ARTIFACTS}rules-versions.png`, fullPage: true });
    if (process.env.RISKMON_SCREENSHOTS) copyFileSync(`${ARTIFACTS}rules-backtest.png`, new URL('../web/screenshot-tuning.png', import.meta.url).pathname);
    expect(problems).toEqual([]);
  });

  it('a viewer reads versions and results but gets no write controls', async () => {
    const { page, problems } = await open(VIEWER);
    await page.waitForSelector('#versions tr[data-version]');
    expect(await page.isDisabled('#bt-draft')).toBe(true);
    expect(await page.isHidden('#save-draft')).toBe(true);
    expect(await page.locator('#versions button[data-act="activate"]').count()).toBe(0);
    await page.waitForSelector('.bt-status[data-status="done"]'); // the latest backtest is shown to everyone
    expect(problems).toEqual([]);
  });
});
