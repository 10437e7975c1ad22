/**
 * The webhook deliverer against a real risk store and a real HTTP receiver (test/harness/webhook-receiver.ts) that
 * verifies signatures and dedupes by idempotency key: an endpoint that fails first (503s, then refuses connections)
 * and then takes everything, exactly once per event, in order per merchant; a secret rotation; a 4xx that fails the
 * event, stops its retries and holds back the merchant's later events until an operator acts; an exhausted
 * schedule; alert transitions through the same channel.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../../lib/logger.ts';
import { WebhookReceiver, waitFor } from '../../test/harness/index.ts';
import { freshDatabase } from '../../test/harness/services.ts';
import { commitMinute, createHold, inTransaction, releaseHold, resolveFailedWebhook, type TransitionWrite } from '../risk-store/index.ts';
import { riskStore } from '../testing/fixtures.ts';
import { WebhookDeliverer, type DelivererOptions } from './deliverer.ts';

const log = logger.child({ component: 'webhooks-test' }, { level: 'error' });
const NEW = 'new-secret-0123456789abcdef';
const OLD = 'old-secret-0123456789abcdef';
const FAST = { baseMs: 50, maxMs: 400, retryForMs: 60_000 };

let db: pg.Pool;
let url: string;
beforeAll(async () => { url = await freshDatabase('webhooks'); db = await riskStore(url); });
afterAll(async () => { await db?.end(); });

const hold = (merchantId: string, reason = 'surge') =>
  inTransaction(db, (c) => createHold(c, { merchantId, reason, alertId: null, actor: 'Ji-woo Park', at: Date.now(), exposure: { receivable: '1' } }));
const release = (id: string, reason = 'ok') => inTransaction(db, (c) => releaseHold(c, id, { reason, actor: 'Min Kim', at: Date.now(), exposure: null }));
const row = async (eventId: string) => (await db.query('SELECT status, attempts, last_status, reason FROM webhook_outbox WHERE event_id = $1', [eventId])).rows[0];
const eventsOf = async (merchantId: string) => (await db.query(`SELECT event_id, type, status FROM webhook_outbox WHERE merchant_id = $1 ORDER BY id`, [merchantId])).rows;

function deliverer(receiver: WebhookReceiver, o: Partial<DelivererOptions> = {}): WebhookDeliverer {
  return new WebhookDeliverer({ channel: 'action', url: receiver.url, secrets: [NEW, OLD], timeoutMs: 2000, schedule: FAST, batch: 8, pollMs: 50, ...o },
    { db, riskPgUrl: url, log });
}

/** Runs a deliverer while `fn` runs. */
async function running<T>(d: WebhookDeliverer, fn: () => Promise<T>): Promise<T> {
  const run = d.run();
  try { return await fn(); } finally { await d.stop(); await run; }
}

describe('webhook deliverer', () => {
  it('an endpoint that fails (503s, then down) gets every event once it answers: signed, one id per action, in order per merchant', async () => {
    const receiver = await new WebhookReceiver({ secrets: [OLD] }).start(); // the receiver still knows only the old secret
    receiver.script.push({ status: 503 }, { status: 503 });
    const merchants = ['m1', 'm2', 'm3'];
    const created: { merchantId: string; holdId: string; type: string }[] = [];
    await running(deliverer(receiver), async () => {
      for (const m of merchants) {
        const h = await hold(m);
        created.push({ merchantId: m, holdId: h.id, type: 'payout.hold' });
      }
      await waitFor(() => receiver.requests.filter((r) => r.answered === 503).length === 2, { message: 'two 503s' });
      await receiver.down(); // then refuses connections for a while: actions keep coming and wait
      // What it accepted before going down (a 200 may still be on its way to the deliverer): nothing more is delivered.
      const acceptedBeforeDown = receiver.accepted.size;
      for (const c of [...created]) {
        await release(c.holdId);
        created.push({ merchantId: c.merchantId, holdId: c.holdId, type: 'payout.release' });
        const again = await hold(c.merchantId, 'held again');
        created.push({ merchantId: c.merchantId, holdId: again.id, type: 'payout.hold' });
      }
      await new Promise((r) => setTimeout(r, 1500));
      expect((await db.query(`SELECT count(*)::int AS n FROM webhook_outbox WHERE status = 'delivered'`)).rows[0].n).toBeLessThanOrEqual(acceptedBeforeDown);
      for (const m of merchants) expect((await eventsOf(m)).slice(1).every((e) => e.status === 'pending')).toBe(true);
      await receiver.up();
      await waitFor(() => receiver.accepted.size === created.length, { timeoutMs: 20_000, message: 'every event accepted' });
    });
    // Every request verified under the old secret (the new one signs too), carried its own id as idempotency key.
    expect(receiver.requests.every((r) => r.verified && r.idempotencyKey === r.body.id)).toBe(true);
    expect(receiver.requests.every((r) => r.signature!.split(',').filter((p) => p.startsWith('v1=')).length === 2)).toBe(true);
    // One id per action, every action arrived once (accepted) — repeats of an id only as retries of that id.
    const accepted = [...receiver.accepted.values()];
    for (const c of created) expect(accepted.filter((e) => e.holdId === c.holdId && e.type === c.type), `${c.type} of hold ${c.holdId}`).toHaveLength(1);
    const idsPerAction = new Map<string, Set<string>>();
    for (const r of receiver.requests) idsPerAction.set(`${r.body.holdId}/${r.body.type}`, (idsPerAction.get(`${r.body.holdId}/${r.body.type}`) ?? new Set()).add(r.body.id));
    expect([...idsPerAction.values()].every((s) => s.size === 1)).toBe(true);
    // In order per merchant: hold, release, hold — as created.
    for (const m of merchants) {
      expect(accepted.filter((e) => e.merchantId === m).map((e) => e.type)).toEqual(['payout.hold', 'payout.release', 'payout.hold']);
      expect((await eventsOf(m)).map((e) => e.status)).toEqual(['delivered', 'delivered', 'delivered']);
    }
    expect(accepted[0]).toMatchObject({ actor: 'Ji-woo Park', reason: 'surge', exposure: { receivable: '1' }, at: expect.any(String) });
    await receiver.stop();
  });

  it('after the rotation the receiver holding only the new secret verifies too; a wrong secret is refused (401) and fails the event', async () => {
    const receiver = await new WebhookReceiver({ secrets: [NEW] }).start();
    const h = await hold('rot');
    await running(deliverer(receiver, { secrets: [NEW] }), () => waitFor(() => receiver.accepted.has(h.actions[0].id)));
    expect(receiver.requests[0]).toMatchObject({ verified: true, verifiedBy: 0 });
    expect(receiver.requests[0].signature!.split(',')).toHaveLength(2);
    receiver.secrets = ['someone-elses-secret-0123'];
    const released = await release(h.id);
    const ev = released!.actions[1].id;
    await running(deliverer(receiver, { secrets: [NEW] }), () => waitFor(async () => (await row(ev)).status === 'failed'));
    expect(await row(ev)).toMatchObject({ status: 'failed', last_status: 401, attempts: 1 });
    expect(receiver.requests.filter((r) => r.idempotencyKey === ev)).toHaveLength(1);
    await receiver.stop();
  });

  it('a 4xx fails the event and stops its retries; the merchant\'s later events wait behind it until an operator retries or discards it', async () => {
    const receiver = await new WebhookReceiver({ secrets: [NEW] }).start();
    receiver.script.push({ status: 422, body: 'unknown merchant' });
    const h = await hold('m4xx');
    const d = deliverer(receiver);
    await running(d, async () => {
      await waitFor(async () => (await row(h.actions[0].id)).status === 'failed');
      await release(h.id); // queued behind the failed hold: must not overtake it
      await new Promise((r) => setTimeout(r, 800));
    });
    expect(receiver.requests).toHaveLength(1);
    expect(await row(h.actions[0].id)).toMatchObject({ status: 'failed', attempts: 1, last_status: 422, reason: 'HTTP 422: unknown merchant (the endpoint refused the event: not retried)' });
    expect((await eventsOf('m4xx')).map((e) => e.status)).toEqual(['failed', 'pending']);
    // The operator retries it: both go out, in order, the hold with its original id.
    await inTransaction(db, (c) => resolveFailedWebhook(c, h.actions[0].id, 'retry'));
    await running(deliverer(receiver), () => waitFor(() => receiver.accepted.size === 2));
    expect([...receiver.accepted.values()].map((e) => [e.type, e.id === h.actions[0].id])).toEqual([['payout.hold', true], ['payout.release', false]]);
    expect(receiver.requests.filter((r) => r.idempotencyKey === h.actions[0].id).map((r) => r.answered)).toEqual([422, 200]);
    // Discarding instead lets the later ones go without it.
    receiver.script.push({ status: 400 });
    const h2 = await hold('m4xx');
    await running(deliverer(receiver), () => waitFor(async () => (await row(h2.actions[0].id)).status === 'failed'));
    await release(h2.id);
    await inTransaction(db, (c) => resolveFailedWebhook(c, h2.actions[0].id, 'discard'));
    await running(deliverer(receiver), () => waitFor(() => receiver.accepted.size === 3));
    expect([...receiver.accepted.values()][2]).toMatchObject({ type: 'payout.release', holdId: h2.id });
    await receiver.stop();
  });

  it('the schedule is bounded: an endpoint that never answers dead-letters the event after retryForMs', async () => {
    const receiver = await new WebhookReceiver({ secrets: [NEW] }).start();
    await receiver.down();
    const h = await hold('gone');
    await running(deliverer(receiver, { schedule: { baseMs: 50, maxMs: 100, retryForMs: 700 } }), () =>
      waitFor(async () => (await row(h.actions[0].id)).status === 'failed', { timeoutMs: 10_000 }));
    const r = await row(h.actions[0].id);
    expect(r.attempts).toBeGreaterThan(2);
    expect(r.reason).toMatch(/^no answer: ECONNREFUSED \(gave up after \d+ attempts over \d+ s\)$/);
  });

  it('alert transitions go through the same signed channel (alert.fired, alert.resolved in order); replays and silenced ones do not', async () => {
    const receiver = await new WebhookReceiver({ secrets: [NEW] }).start();
    const M = Date.parse('2026-11-21T05:00:00Z');
    const write = (kind: TransitionWrite['kind'], merchantId: string, alertId: string | undefined, o: Partial<TransitionWrite> = {}): TransitionWrite => ({
      kind, rule: 'cancel_rate_spike', merchantId, alertId, ruleVersion: 'v1', replay: false,
      life: { firedAt: M, lastNotifiedAt: M, clearMinutes: kind === 'resolved' ? 5 : 0 },
      evidence: { rule: 'cancel_rate_spike', note: 'test' } as never,
      notification: { status: 'pending', reason: null, silenceId: null }, ...o,
    });
    const silence = (await db.query(`INSERT INTO silences (merchant_id, ends_at, reason) VALUES ('a3', now() + interval '1 hour', 'known') RETURNING id::text`)).rows[0].id;
    const fired = await commitMinute(db, {
      name: 'wh', previous: null, minute: M, clearCounts: [], evaluations: [], ruleVersion: 'v1', ingestLagMs: 0, alertWebhook: true,
      transitions: [write('fired', 'a1', undefined), write('fired', 'a2', undefined, { replay: true }), write('fired', 'a3', undefined, { notification: { status: 'suppressed', reason: 'silenced', silenceId: silence } })],
    });
    const id = fired.messages[0].alert.id;
    await commitMinute(db, { name: 'wh', previous: M, minute: M + 60_000, clearCounts: [], evaluations: [], ruleVersion: 'v1', ingestLagMs: 0, alertWebhook: true, transitions: [write('resolved', 'a1', id)] });
    await running(deliverer(receiver, { channel: 'alert' }), () => waitFor(() => receiver.accepted.size >= 2));
    await new Promise((r) => setTimeout(r, 300));
    const got = [...receiver.accepted.values()];
    expect(got.map((e) => [e.type, e.merchantId])).toEqual([['alert.fired', 'a1'], ['alert.resolved', 'a1']]);
    expect(got[0]).toMatchObject({ alertId: id, at: new Date(M).toISOString(), alert: { id, rule: 'cancel_rate_spike', merchantId: 'a1', state: 'firing' } });
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
    await receiver.stop();
  });
});
