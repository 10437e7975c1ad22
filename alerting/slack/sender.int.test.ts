/**
 * The Slack sender against a real risk store and a local HTTP server playing Slack: 429 with Retry-After, 500 then
 * 200, 404, digests of bursts, and a restart of the whole component while alerts fire.
 */
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../lib/config.ts';
import { logger } from '../../lib/logger.ts';
import type { Service } from '../../lib/service.ts';
import { MINUTE } from '../../lib/time.ts';
import { freshDatabase, services, uniqueName } from '../../test/harness/services.ts';
import { alertingSpec } from '../config.ts';
import { alertsChannel, type AlertMessage } from '../../lib/alert-message.ts';
import { buildAlerting } from '../index.ts';
import { addHistory, pendingNotification, riskStore } from '../testing/fixtures.ts';
import { MemoryReader } from '../testing/memory-reader.ts';
import { applyTriage } from '../risk-store/index.ts';
import { SlackSender } from './sender.ts';
import { FakeSlack, waitFor } from '../../test/harness/index.ts';

const log = logger.child({ component: 'alerting-test' });

async function notification(db: pg.Pool, id: string) {
  return (await db.query('SELECT status, reason, attempts, last_status, next_attempt_at, sent_at FROM notifications WHERE id = $1', [id])).rows[0];
}

describe('slack sender', () => {
  let db: pg.Pool;
  let url: string;
  let slack: FakeSlack;
  let sender: SlackSender;
  beforeAll(async () => {
    url = await freshDatabase('risk');
    db = await riskStore(url);
    slack = await new FakeSlack().start();
    sender = new SlackSender({ webhookUrl: slack.url, publicUrl: 'https://risk.example.com', minIntervalMs: 0, digestOver: 3, maxAttempts: 5, timeoutMs: 5000 }, { db, riskPgUrl: url, log });
  });
  afterAll(async () => { await db.end(); await slack.stop(); });
  const reset = () => { slack.received.length = 0; slack.script.length = 0; };

  it('sends one message with merchant, rule, evidence and dashboard link, and marks it sent', async () => {
    reset();
    const id = await pendingNotification(db, '42');
    expect(await sender.sendOnce()).toBe(true);
    expect(await notification(db, id)).toMatchObject({ status: 'sent', attempts: 1, last_status: 200 });
    expect(slack.received).toHaveLength(1);
    const body = JSON.stringify(slack.received[0].body);
    expect(body).toContain('https://risk.example.com/#/merchants/42');
    expect(slack.received[0].body.text).toMatch(/merchant 42.*cancel rate 20\.0%/);
    expect(await sender.sendOnce()).toBe(false); // nothing repeats
  });

  it('429 waits for Retry-After, then sends', async () => {
    reset();
    slack.script.push({ status: 429, headers: { 'retry-after': '1' } });
    const id = await pendingNotification(db, '43');
    expect(await sender.sendOnce()).toBe(true);
    const after429 = await notification(db, id);
    expect(after429).toMatchObject({ status: 'pending', attempts: 0, last_status: 429, reason: 'rate limited (429)' });
    expect(await sender.sendOnce()).toBe(false); // not due before Retry-After
    await waitFor(async () => (await sender.sendOnce()) && (await notification(db, id)).status === 'sent', { timeoutMs: 10_000 });
    expect(slack.received).toHaveLength(2);
    expect(slack.received[1].at - slack.received[0].at).toBeGreaterThanOrEqual(900);
  });

  it('500 is retried with backoff, then 200 sends it once', async () => {
    reset();
    slack.script.push({ status: 500, body: 'internal' });
    const id = await pendingNotification(db, '44');
    await sender.sendOnce();
    expect(await notification(db, id)).toMatchObject({ status: 'pending', attempts: 1, last_status: 500, reason: 'HTTP 500: internal' });
    await waitFor(async () => { await sender.sendOnce(); return (await notification(db, id)).status === 'sent'; }, { timeoutMs: 10_000 });
    expect(await notification(db, id)).toMatchObject({ status: 'sent', attempts: 2, last_status: 200 });
    expect(slack.received).toHaveLength(2);
  });

  it('404 is recorded as failed and never retried', async () => {
    reset();
    slack.script.push({ status: 404, body: 'no_service' });
    const id = await pendingNotification(db, '45');
    await sender.sendOnce();
    expect(await notification(db, id)).toMatchObject({ status: 'failed', attempts: 1, last_status: 404, reason: 'HTTP 404: no_service' });
    expect(await sender.sendOnce()).toBe(false);
    expect(slack.received).toHaveLength(1);
  });

  it('a burst of pending notifications goes out as one digest', async () => {
    reset();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await pendingNotification(db, `burst${i}`));
    expect(await sender.sendOnce()).toBe(true);
    expect(slack.received).toHaveLength(1);
    expect(slack.received[0].body.text).toMatch(/^5 alert transitions/);
    for (const id of ids) expect((await notification(db, id)).status).toBe('sent');
  });

  it('a re-notification of an alert acknowledged through the desk says who acknowledged it', async () => {
    reset();
    const id = await pendingNotification(db, '46');
    expect(await sender.sendOnce()).toBe(true);
    const { rows: [a] } = await db.query(`SELECT t.alert_id::text FROM notifications n JOIN alert_transitions t ON t.id = n.transition_id WHERE n.id = $1`, [id]);
    expect(await applyTriage(db, a.alert_id, 'Ji-woo Park', { action: 'ack' })).toBe(true);
    expect(await applyTriage(db, a.alert_id, 'Min Kim', { action: 'assign', assignee: 'Min Kim' })).toBe(true);
    const t = await db.query(`INSERT INTO alert_transitions (alert_id, kind, minute, evidence) SELECT $1, 'renotified', now(), evidence FROM alerts WHERE id = $1 RETURNING id`, [a.alert_id]);
    await db.query(`INSERT INTO notifications (transition_id, status) VALUES ($1, 'pending')`, [t.rows[0].id]);
    expect(await sender.sendOnce()).toBe(true);
    expect(slack.received).toHaveLength(2);
    expect(slack.received[0].body.text).not.toContain('acknowledged');
    expect(slack.received[1].body.text).toMatch(/^:bell: STILL FIRING \(acknowledged by Ji-woo Park\).*merchant 46.*assigned to Min Kim/);
  });
});

describe('restart while alerts fire', () => {
  it('neither loses nor repeats Slack messages', async () => {
    const url = await freshDatabase('risk');
    const prefix = uniqueName('al');
    const slack = await new FakeSlack().start();
    const sub = new Redis(services().REDIS_URL);
    const messages: AlertMessage[] = [];
    await sub.subscribe(alertsChannel(prefix));
    sub.on('message', (_c, m) => messages.push(JSON.parse(m)));
    const cfg = readConfig(alertingSpec, {
      RISK_PG_URL: url, REDIS_URL: services().REDIS_URL, RISKMON_REDIS_PREFIX: prefix, RISKMON_SLACK_WEBHOOK_URL: slack.url,
      RISKMON_SLACK_MIN_INTERVAL_MS: '0', RISKMON_EVAL_POLL_MS: '20',
    });
    const T0 = Date.parse('2026-11-21T05:00:00Z');
    const clock = { now: T0 };
    const reader = new MemoryReader();
    addHistory(reader, 'c1', T0, { approvals: 1000, cancels: 20, amount: 10_000_000n });
    const setMinute = (M: number) => { reader.wm = M + MINUTE + 5000; clock.now = reader.wm + 1000; };
    const progress = async (db: pg.Pool) => (await db.query('SELECT last_minute FROM evaluator_progress')).rows[0]?.last_minute.getTime();
    const db = await riskStore(url);
    let running: { services: Service[]; done: Promise<unknown> } | null = null;
    const startAll = () => {
      const services = buildAlerting(cfg, { reader, redis: new Redis(services_().REDIS_URL), now: () => clock.now });
      running = { services, done: Promise.all(services.map((s) => s.run())) };
    };
    const stopAll = async () => { await Promise.all(running!.services.map((s) => s.stop())); await running!.done; };
    const services_ = services;
    try {
      const M0 = T0 - 10 * MINUTE;
      setMinute(M0 - MINUTE);
      startAll();
      await waitFor(async () => (await progress(db)) === M0 - MINUTE);
      reader.add('c1', M0, { approvals: 30, cancels: 10 });
      setMinute(M0);
      await waitFor(() => slack.received.length === 1);
      expect(slack.received[0].body.text).toMatch(/FIRING.*merchant c1/);
      await stopAll();

      // Down for three minutes while the surge goes on; then up again: no message repeats.
      setMinute(M0 + 3 * MINUTE);
      startAll();
      await waitFor(async () => (await progress(db)) === M0 + 3 * MINUTE);
      // Recovery; Slack fails the resolve message once, and we restart right after the failure.
      slack.script.push({ status: 500 });
      reader.add('c1', M0 + 4 * MINUTE, { approvals: 600 });
      setMinute(M0 + 8 * MINUTE);
      await waitFor(() => slack.received.length === 2);
      await stopAll();
      const pending = (await db.query(`SELECT count(*)::int AS n FROM notifications WHERE status = 'pending'`)).rows[0].n;
      expect(pending).toBe(1);
      startAll();
      await waitFor(() => slack.received.length === 3, { timeoutMs: 20_000 });
      await waitFor(async () => (await db.query(`SELECT count(*)::int AS n FROM notifications WHERE status = 'sent'`)).rows[0].n === 2);
      await stopAll();
      expect(slack.received.map((r) => r.body.text.split(' — ')[0])).toEqual([':rotating_light: FIRING cancel-rate spike', ':white_check_mark: RESOLVED cancel-rate spike', ':white_check_mark: RESOLVED cancel-rate spike']);
      expect((await db.query('SELECT kind FROM alert_transitions ORDER BY id')).rows.map((r) => r.kind)).toEqual(['fired', 'resolved']);
      await waitFor(() => messages.length === 2);
      expect(messages.map((m) => m.transition)).toEqual(['fired', 'resolved']);
    } finally {
      if (running) await stopAll().catch(() => {});
      await db.end();
      sub.disconnect();
      await slack.stop();
    }
  });
});
