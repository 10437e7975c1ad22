/**
 * Payout holds over REST against a real PostgreSQL: who may hold and release, bad input, one active hold per merchant
 * (also under concurrent requests), the audit trail, and the webhook events each action leaves in the outbox with the
 * merchant's exposure as the injected reader gave it. Delivery itself: alerting/webhooks/deliverer.int.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ANALYST, ANALYST2, ANALYST_NAME, insertAlert, testApi, VIEWER, type TestApi } from './testing.ts';

let t: TestApi;
let exposureFails = false;
beforeAll(async () => {
  t = await testApi({}, null, {
    exposureOf: async (merchantId) => {
      if (exposureFails) throw new Error('money reader down');
      return { merchantId, receivable: '31000000' };
    },
  });
  await t.sourcePg.query(`INSERT INTO merchants (merchant_id, name, category) SELECT g, 'm' || g, 'general' FROM generate_series(1, 40) g`);
});
afterAll(async () => { await t?.close(); });

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const get = (url: string, key: string = VIEWER) => t.app.inject({ method: 'GET', url, headers: auth(key) });
const post = (url: string, body: unknown, key: string | null = ANALYST) =>
  t.app.inject({ method: 'POST', url, headers: key ? auth(key) : {}, payload: body as object });
const hold = (m: string, reason = 'cancel surge: holding settlement', key: string | null = ANALYST, extra: object = {}) =>
  post(`/api/merchants/${m}/holds`, { reason, ...extra }, key);

describe('holds', () => {
  it('an analyst holds a merchant: 201 with the hold, its payout.hold event pending, audited', async () => {
    const r = await hold('1');
    expect(r.statusCode).toBe(201);
    const h = r.json();
    expect(h).toMatchObject({ id: expect.stringMatching(/^\d+$/), merchantId: '1', state: 'active', reason: 'cancel surge: holding settlement', createdBy: ANALYST_NAME, alertId: null, delivery: 'pending' });
    expect(Date.parse(h.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(h.actions).toEqual([expect.objectContaining({ type: 'payout.hold', status: 'pending', attempts: 0, holdId: h.id, channel: 'action' })]);
    const audit = (await get(`/api/audit?target=hold:${h.id}`)).json().items;
    expect(audit).toEqual([expect.objectContaining({ actor: ANALYST_NAME, action: 'hold.create', detail: expect.objectContaining({ merchantId: '1', event: h.actions[0].id }) })]);
    // The event as it will be sent: the contract's fields, the exposure from the reader, the same id as the row.
    const { rows } = await t.riskPg.query('SELECT body FROM webhook_outbox WHERE event_id = $1', [h.actions[0].id]);
    expect(JSON.parse(rows[0].body)).toEqual({
      id: h.actions[0].id, type: 'payout.hold', holdId: h.id, merchantId: '1', reason: 'cancel surge: holding settlement', actor: ANALYST_NAME,
      at: h.createdAt, exposure: { merchantId: '1', receivable: '31000000' },
    });
  });

  it('viewer 403, no key 401, admin may; unknown merchant 404; nothing written for a refusal', async () => {
    expect((await hold('2', 'x', VIEWER)).statusCode).toBe(403);
    expect((await hold('2', 'x', VIEWER)).json().message).toContain('analyst');
    expect((await hold('2', 'x', null)).statusCode).toBe(401);
    const unknown = await hold('999999');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'not_found', message: expect.stringContaining('merchant 999999 is not in the merchant directory') });
    expect((await get('/api/holds?merchantId=2')).json().items).toEqual([]);
    expect((await get('/api/holds?merchantId=999999')).json().items).toEqual([]);
    expect((await hold('2', 'admin hold', ADMIN)).statusCode).toBe(201);
  });

  it('bad bodies are 400 naming the field', async () => {
    const cases: [object, string, RegExp][] = [
      [{}, 'reason', /reason/],
      [{ reason: '   ' }, 'reason', /must not be blank/],
      [{ reason: 'x'.repeat(1001) }, 'reason', /more than 1000/],
      [{ reason: 'ok', extra: 1 }, 'extra', /not a field/],
      [{ reason: 'ok', alertId: 'abc' }, 'alertId', /pattern/],
    ];
    for (const [body, field, msg] of cases) {
      const r = await post('/api/merchants/3/holds', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json()).toMatchObject({ error: 'bad_request', field, message: expect.stringMatching(msg) });
    }
    const other = await insertAlert(t.riskPg, { merchantId: '4', firedAt: new Date().toISOString() });
    const wrong = await hold('3', 'from the wrong alert', ANALYST, { alertId: other.id });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ field: 'alertId', message: `alert ${other.id} is not an alert of merchant 3` });
    expect((await hold('3', 'no such alert', ANALYST, { alertId: '987654321' })).json().message).toBe('alert 987654321 does not exist');
    expect((await get('/api/holds?merchantId=3')).json().items).toEqual([]);
    const right = await hold('4', 'from its alert', ANALYST, { alertId: other.id });
    expect(right.json()).toMatchObject({ alertId: other.id });
  });

  it('a second hold on a held merchant is 409 naming the active hold; under concurrent requests exactly one wins', async () => {
    const first = (await hold('5')).json();
    const again = await hold('5', 'again', ANALYST2);
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'conflict', hold: { id: first.id, state: 'active' }, message: expect.stringContaining(`hold ${first.id}`) });
    const racing = await Promise.all(Array.from({ length: 8 }, (_, i) => hold('6', `race ${i}`)));
    expect(racing.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    const winner = racing.find((r) => r.statusCode === 201)!.json();
    for (const r of racing.filter((x) => x.statusCode === 409)) expect(r.json().hold.id).toBe(winner.id);
    const { rows } = await t.riskPg.query(`SELECT count(*)::int AS n FROM webhook_outbox WHERE merchant_id = '6'`);
    expect(rows[0].n).toBe(1); // the losers left no event
  });

  it('release: 200 released with a payout.release event queued behind the hold\'s; again 409; unknown 404; viewer 403; then a new hold is allowed', async () => {
    const h = (await hold('7')).json();
    expect((await post(`/api/holds/${h.id}/release`, { reason: 'x' }, VIEWER)).statusCode).toBe(403);
    expect((await post(`/api/holds/${h.id}/release`, {})).json()).toMatchObject({ error: 'bad_request', field: 'reason' });
    const r = await post(`/api/holds/${h.id}/release`, { reason: 'merchant shipped the orders' }, ANALYST2);
    expect(r.statusCode).toBe(200);
    const released = r.json();
    expect(released).toMatchObject({ id: h.id, state: 'released', releaseReason: 'merchant shipped the orders', releasedBy: 'Min Kim', delivery: 'pending' });
    expect(released.actions.map((a: { type: string; waitingFor: string | null }) => [a.type, a.waitingFor])).toEqual([['payout.hold', null], ['payout.release', h.actions[0].id]]);
    const again = await post(`/api/holds/${h.id}/release`, { reason: 'twice' });
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toContain(`hold ${h.id} was already released by Min Kim`);
    expect((await post('/api/holds/987654321/release', { reason: 'x' })).statusCode).toBe(404);
    expect((await get(`/api/audit?target=hold:${h.id}`)).json().items.map((a: { action: string }) => a.action)).toEqual(['hold.release', 'hold.create']);
    expect((await hold('7', 'held again')).statusCode).toBe(201);
  });

  it('an exposure reader that fails does not stop the hold: the event carries null', async () => {
    exposureFails = true;
    try {
      const h = (await hold('8')).json();
      const { rows } = await t.riskPg.query('SELECT body FROM webhook_outbox WHERE event_id = $1', [h.actions[0].id]);
      expect(JSON.parse(rows[0].body).exposure).toBeNull();
    } finally { exposureFails = false; }
  });

  it('GET /api/holds filters by merchant and state and pages by cursor; GET /api/webhooks lists the outbox', async () => {
    for (const m of ['20', '21', '22']) await hold(m);
    const held20 = (await get('/api/holds?merchantId=20')).json().items[0];
    await post(`/api/holds/${held20.id}/release`, { reason: 'done' });
    expect((await get('/api/holds?merchantId=20&state=active')).json().items).toEqual([]);
    expect((await get('/api/holds?merchantId=20&state=released')).json().items).toHaveLength(1);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { id: string }[]; nextCursor: string | null } = (await get(`/api/holds?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json();
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((x) => x.id));
      cursor = page.nextCursor;
    } while (cursor);
    const { rows } = await t.riskPg.query('SELECT h.id::text FROM holds h ORDER BY h.id DESC');
    expect(seen).toEqual(rows.map((r) => r.id));
    expect((await get('/api/holds?limit=201')).statusCode).toBe(400);
    expect((await get('/api/holds?state=paused')).json()).toMatchObject({ error: 'bad_request', field: 'state' });
    const hooks = (await get('/api/webhooks?merchantId=20')).json().items;
    expect(hooks.map((x: { type: string }) => x.type)).toEqual(['payout.release', 'payout.hold']);
    expect((await get('/api/webhooks?status=failed')).json().items).toEqual([]);
  });

  it('retry and discard are for admins and only for failed events', async () => {
    const h = (await hold('30')).json();
    const ev = h.actions[0].id;
    expect((await post(`/api/webhooks/${ev}/retry`, undefined, ANALYST)).statusCode).toBe(403);
    const notFailed = await post(`/api/webhooks/${ev}/retry`, undefined, ADMIN);
    expect(notFailed.statusCode).toBe(409);
    expect(notFailed.json().message).toContain('is pending, not failed');
    await t.riskPg.query(`UPDATE webhook_outbox SET status = 'failed', attempts = 1, reason = 'HTTP 400: bad' WHERE event_id = $1`, [ev]);
    const retried = await post(`/api/webhooks/${ev}/retry`, undefined, ADMIN);
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ id: ev, status: 'pending', attempts: 0, reason: 'retried by an operator after: HTTP 400: bad' });
    await t.riskPg.query(`UPDATE webhook_outbox SET status = 'failed' WHERE event_id = $1`, [ev]);
    expect((await post(`/api/webhooks/${ev}/discard`, undefined, ADMIN)).json()).toMatchObject({ status: 'discarded' });
    expect((await get(`/api/audit?target=webhook:${ev}`)).json().items.map((a: { action: string }) => a.action)).toEqual(['webhook.discard', 'webhook.retry']);
    expect((await post('/api/webhooks/00000000-0000-0000-0000-000000000000/retry', undefined, ADMIN)).statusCode).toBe(404);
  });
});
