/**
 * REST contract against a real PostgreSQL and Redis: shapes, authentication and roles, 400s naming the field,
 * keyset pagination, silences, evaluations and the top lists. Alerts are rows in the real risk-store schema.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, insertAlert, testApi, VIEWER, type TestApi } from './testing.ts';
import { BucketWriter } from '../aggregator/store/index.ts';
import { referenceMapping } from '../lib/mapping.ts';
import { dayStart } from '../lib/time.ts';

let t: TestApi;
const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const get = (url: string, key: string | null = VIEWER) => t.app.inject({ method: 'GET', url, headers: key ? auth(key) : {} });

beforeAll(async () => {
  t = await testApi();
  await t.sourcePg.query(`INSERT INTO merchants (merchant_id, name, category) VALUES (42, 'Acme Shoes', 'fashion'), (43, 'Acme_Books', 'books'), (7, 'Zeta Foods', 'food')`);
});
afterAll(async () => { await t?.close(); });
let bucketWriter: BucketWriter | null = null;
/** One writer for the file: it numbers each partition's offsets, so a second one would be refused. */
const writer = () => (bucketWriter ??= new BucketWriter(t.deps.redis, { prefix: t.deps.cfg.redisPrefix, partitions: t.deps.cfg.partitions, hotShards: t.deps.cfg.hotShards, tz: t.deps.cfg.tz }));

describe('authentication and roles', () => {
  it('401 without a key or with an unknown key, 403 for a viewer on admin routes', async () => {
    const none = await get('/api/alerts', null);
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ error: 'unauthorized' });
    expect((await get('/api/alerts', 'not-a-real-key-000')).statusCode).toBe(401);
    const forbidden = await t.app.inject({ method: 'POST', url: '/api/silences', headers: auth(VIEWER), payload: { merchantId: '42', minutes: 30 } });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toMatchObject({ error: 'forbidden' });
  });

  it('health, metrics and the OpenAPI document need no key', async () => {
    expect((await get('/health', null)).json()).toEqual({ status: 'ok' });
    expect((await get('/ready', null)).json()).toEqual({ status: 'ready' });
    const m = await get('/metrics', null);
    expect(m.body).toContain('riskmon_api_request_seconds');
    const doc = (await get('/docs/json', null)).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/merchants/{id}/series', '/api/alerts', '/api/silences']));
  });
});

describe('GET /api/merchants/:id/series input', () => {
  it('400 naming the field, never a 500', async () => {
    const cases: [string, string][] = [
      ['/api/merchants/42/series?to=2026-11-21T08:00:00Z&step=1m', 'from'],
      ['/api/merchants/42/series?from=yesterday&to=2026-11-21T08:00:00Z', 'from'],
      ['/api/merchants/42/series?from=2026-11-21T08:00:00Z&to=2026-11-21T07:00:00Z', 'to'],
      ['/api/merchants/42/series?from=2026-11-21T07:00:00Z&to=2026-11-21T08:00:00Z&step=5m', 'step'],
      ['/api/merchants/4%202/series?from=2026-11-21T07:00:00Z&to=2026-11-21T08:00:00Z', 'id'],
    ];
    for (const [url, field] of cases) {
      const r = await get(url);
      expect(r.statusCode, url).toBe(400);
      expect(r.json(), url).toMatchObject({ error: 'bad_request', field });
      expect(r.body).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    }
  });

  it('refuses a range too large for the step and says which step to use', async () => {
    const r = await get('/api/merchants/42/series?from=2026-11-14T00:00:00Z&to=2026-11-21T00:00:00Z&step=1m');
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ error: 'bad_request', field: 'step' });
    expect(r.json().message).toContain('step=1h');
  });
});

describe('GET /api/alerts', () => {
  const ids: string[] = [];
  beforeAll(async () => {
    // 7 alerts, two sharing a fired time (the keyset must order them by id), one resolved, one other rule.
    // At most one alert per (rule, merchant) may be firing, as in the store.
    for (let i = 0; i < 5; i++) ids.push((await insertAlert(t.riskPg, { merchantId: String(100 + i), firedAt: `2026-11-21T08:0${i}:00Z` })).id);
    ids.push((await insertAlert(t.riskPg, { merchantId: '42', firedAt: '2026-11-21T08:04:00Z', state: 'resolved', resolvedAt: '2026-11-21T08:30:00Z' })).id);
    ids.push((await insertAlert(t.riskPg, { merchantId: '7', rule: 'volume_drop', firedAt: '2026-11-21T09:00:00Z', evidence: { todayVsBaseline: 0.3 } })).id);
  });

  it('has the contract shape', async () => {
    const r = await get('/api/alerts?merchantId=7');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      items: [{
        id: ids[6], rule: 'volume_drop', merchantId: '7', state: 'firing', firedAt: '2026-11-21T09:00:00.000Z', resolvedAt: null, evidence: { todayVsBaseline: 0.3 },
        ruleVersion: 'test', ack: null, assignee: null, disposition: null, exposureAtFiring: null, receivableNow: '0',
      }],
      nextCursor: null,
    });
  });

  it('pages with an opaque cursor through every alert exactly once, newest first', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await get(`/api/alerts?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(r.statusCode).toBe(200);
      const body = r.json() as { items: { id: string }[]; nextCursor: string | null };
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((i) => i.id));
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    // fired times: 09:00 (id6), 08:04 (id5 > id4), 08:03 …
    expect(seen).toEqual([ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]]);
  });

  it('filters by rule, state and fired time', async () => {
    expect((await get('/api/alerts?state=resolved')).json().items.map((i: { id: string }) => i.id)).toEqual([ids[5]]);
    expect((await get('/api/alerts?rule=volume_drop')).json().items).toHaveLength(1);
    const r = await get('/api/alerts?from=2026-11-21T08:01:00Z&to=2026-11-21T08:03:00Z');
    expect(r.json().items.map((i: { id: string }) => i.id)).toEqual([ids[2], ids[1]]);
  });

  it('400 naming the field for bad filters and a forged cursor', async () => {
    for (const [url, field] of [
      ['/api/alerts?limit=0', 'limit'], ['/api/alerts?limit=abc', 'limit'], ['/api/alerts?state=open', 'state'],
      ['/api/alerts?rule=x', 'rule'], ['/api/alerts?cursor=garbage', 'cursor'], ['/api/alerts?from=2026-13-99', 'from'],
    ] as const) {
      const r = await get(url);
      expect(r.statusCode, url).toBe(400);
      expect(r.json().field, url).toBe(field);
    }
  });
});

describe('merchants, evaluations, top lists', () => {
  it('searches by id and by part of the name', async () => {
    expect((await get('/api/merchants?q=42')).json().items[0]).toEqual({ merchantId: '42', name: 'Acme Shoes', category: 'fashion' });
    expect((await get('/api/merchants?q=acme')).json().items.map((m: { merchantId: string }) => m.merchantId).sort()).toEqual(['42', '43']);
    expect((await get('/api/merchants?q=e_b')).json().items.map((m: { merchantId: string }) => m.merchantId)).toEqual(['43']); // _ is literal
    expect((await get('/api/merchants?q=ze')).json().items.map((m: { merchantId: string }) => m.merchantId)).toEqual(['7']); // under 3 characters: names starting with it
    expect((await get('/api/merchants?q=oe')).json().items).toEqual([]);
    expect((await get('/api/merchants?q=')).json()).toMatchObject({ field: 'q' });
    expect((await get('/api/merchants/42')).json()).toEqual({ merchantId: '42', name: 'Acme Shoes', category: 'fashion' });
    expect((await get('/api/merchants/999')).statusCode).toBe(404);
  });

  it('says why a merchant was not evaluated', async () => {
    await t.riskPg.query(`INSERT INTO evaluations (rule, merchant_id, minute, status, reason, evidence) VALUES
      ('cancel_rate_spike', '42', '2026-11-21T09:00:00Z', 'not_evaluated', 'too little history: needs at least 100 approvals over the baseline days', '{}'),
      ('volume_drop', '42', '2026-11-21T09:00:00Z', 'clear', NULL, '{"todayVsBaseline": 0.9}')`);
    const r = (await get('/api/merchants/42/evaluations')).json();
    expect(r.items).toEqual([
      { rule: 'cancel_rate_spike', minute: '2026-11-21T09:00:00.000Z', status: 'not_evaluated', reason: 'too little history: needs at least 100 approvals over the baseline days', evidence: {} },
      { rule: 'volume_drop', minute: '2026-11-21T09:00:00.000Z', status: 'clear', reason: null, evidence: { todayVsBaseline: 0.9 } },
    ]);
    const none = (await get('/api/merchants/777/evaluations')).json();
    expect(none.items).toEqual([]);
    expect(none.note).toMatch(/not evaluated/);
  });

  it('ranks the latest minute by cancel rate against baseline and by volume drop', async () => {
    const ev = (rate: number, base: number) => JSON.stringify({ window: { rate }, baseline: { rate: base } });
    await t.riskPg.query(`INSERT INTO evaluations (rule, merchant_id, minute, status, reason, evidence) VALUES
      ('cancel_rate_spike', '7', '2026-11-21T09:00:00Z', 'breach', NULL, $1),
      ('cancel_rate_spike', '43', '2026-11-21T09:00:00Z', 'clear', NULL, $2),
      ('cancel_rate_spike', '44', '2026-11-21T08:00:00Z', 'breach', NULL, $3),
      ('volume_drop', '7', '2026-11-21T09:00:00Z', 'breach', NULL, '{"todayVsBaseline": 0.2}')`,
    [ev(0.3, 0.05), ev(0.06, 0.05), ev(0.9, 0.01)]);
    const top = (await get('/api/top?by=cancel_rate')).json();
    expect(top.minute).toBe('2026-11-21T09:00:00.000Z');
    expect(top.items.map((i: { merchantId: string; ratio: number; name: string | null }) => [i.merchantId, i.name, Number(i.ratio.toFixed(2))]))
      .toEqual([['7', 'Zeta Foods', 6], ['43', 'Acme_Books', 1.2]]); // 44 is from an older minute
    const drop = (await get('/api/top?by=volume_drop')).json();
    expect(drop.items.map((i: { merchantId: string; ratio: number }) => [i.merchantId, i.ratio])).toEqual([['42', 0.9], ['7', 0.2]].reverse());
  });
});

describe('silences', () => {
  it('admin creates, everyone lists, admin deletes', async () => {
    const c = await t.app.inject({ method: 'POST', url: '/api/silences', headers: auth(ADMIN), payload: { merchantId: '42', rule: 'volume_drop', minutes: 60, reason: 'planned maintenance' } });
    expect(c.statusCode).toBe(201);
    const s = c.json();
    expect(s).toMatchObject({ merchantId: '42', rule: 'volume_drop', reason: 'planned maintenance', active: true });
    expect(Date.parse(s.endsAt) - Date.parse(s.startsAt)).toBe(3_600_000);
    expect((await get('/api/silences')).json().items.map((x: { id: string }) => x.id)).toContain(s.id);
    const { rows } = await t.riskPg.query('SELECT merchant_id, rule FROM silences WHERE id = $1', [s.id]);
    expect(rows).toEqual([{ merchant_id: '42', rule: 'volume_drop' }]);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/silences/${s.id}`, headers: auth(VIEWER) })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/silences/${s.id}`, headers: auth(ADMIN) })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/silences/${s.id}`, headers: auth(ADMIN) })).statusCode).toBe(404);
  });

  it('400 naming the field for a bad silence', async () => {
    const post = (payload: object) => t.app.inject({ method: 'POST', url: '/api/silences', headers: auth(ADMIN), payload });
    expect((await post({ minutes: 10 })).json()).toMatchObject({ error: 'bad_request', field: 'merchantId' });
    expect((await post({ merchantId: '42' })).json()).toMatchObject({ field: 'endsAt' });
    expect((await post({ merchantId: '42', endsAt: '2020-01-01T00:00:00Z' })).json()).toMatchObject({ field: 'endsAt' });
    expect((await post({ merchantId: '42', minutes: 10, color: 'red' })).statusCode).toBe(400);
    const notJson = await t.app.inject({ method: 'POST', url: '/api/silences', headers: { ...auth(ADMIN), 'content-type': 'application/json' }, payload: '{nope' });
    expect(notJson.statusCode).toBe(400);
    const huge = await post({ merchantId: '42', minutes: 10, reason: 'x'.repeat(100_000) });
    expect(huge.statusCode).toBe(413);
  });
});

describe('pipeline status', () => {
  it('reports each stage, with the reason when a stage has nothing yet', async () => {
    await t.riskPg.query(`INSERT INTO evaluator_progress (name, last_minute) VALUES ('evaluator', '2026-11-21T09:00:00Z')`);
    const st = (await get('/api/status')).json();
    expect(st.slot.error).toMatch(/does not exist/);
    expect(st.evaluator.lastClosedMinute).toBe('2026-11-21T09:00:00.000Z');
    expect(st.consumer).toMatchObject({ group: t.deps.cfg.group, topic: t.deps.cfg.topic });
    expect(st.alerts.firing).toBeGreaterThan(0);
  });
});

describe('series through the aggregator apply path', () => {
  beforeAll(async () => {
    const w = writer();
    // Recent minutes (the minute tier holds ~2 days): 3 approvals and 1 cancel in one minute, 1 approval two minutes later.
    const m0 = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
    w.approval('42', 15000, m0 + 1000); w.approval('42', 15000, m0 + 20_000); w.approval('42', 15000, m0 + 59_999);
    w.cancel('42', 15000, m0 + 30_000);
    w.approval('42', '12345678901', m0 + 2 * 60_000 + 5); // amounts are decimal strings
    w.approval('43', 1, m0);
    await w.flush();
  });

  it('returns minute buckets with the contract shape, empty buckets omitted, amounts exact', async () => {
    const m0 = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
    const r = await get(`/api/merchants/42/series?from=${new Date(m0 - 60_000).toISOString()}&to=${new Date(m0 + 5 * 60_000).toISOString()}&step=1m`);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      merchantId: '42', step: '1m',
      points: [
        { t: new Date(m0).toISOString(), approvals: 3, approvedAmount: '45000', cancels: 1, canceledAmount: '15000' },
        { t: new Date(m0 + 120_000).toISOString(), approvals: 1, approvedAmount: '12345678901', cancels: 0, canceledAmount: '0' },
      ],
    });
  });

  it('rolls the same facts up into the hour and the day', async () => {
    const m0 = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
    const day = (await get(`/api/merchants/42/series?from=${new Date(m0 - 3 * 86_400_000).toISOString()}&to=${new Date(m0 + 86_400_000).toISOString()}&step=1d`)).json();
    const total = day.points.reduce((s: bigint, p: { approvedAmount: string }) => s + BigInt(p.approvedAmount), 0n);
    expect(total).toBe(45000n + 12_345_678_901n);
    expect(day.points.reduce((s: number, p: { approvals: number }) => s + p.approvals, 0)).toBe(4);
    const hour = (await get(`/api/merchants/42/series?from=${new Date(m0 - 86_400_000).toISOString()}&to=${new Date(m0 + 3_600_000).toISOString()}&step=1h`)).json();
    expect(hour.points.reduce((s: number, p: { cancels: number }) => s + p.cancels, 0)).toBe(1);
  });
});

describe('money at risk', () => {
  it('GET /api/merchants/:id/exposure: the exposure JSON (holds [] until a hold exists), 404 unknown, 400 bad id, 401 without a key', async () => {
    const r = await get('/api/merchants/42/exposure');
    expect(r.statusCode).toBe(200);
    const e = r.json();
    // no payouts: nothing is settled; the amounts are what the test's buckets hold for merchant 42
    expect(e).toMatchObject({ merchantId: '42', settledThrough: null, nextPayoutAt: null, holds: [] });
    expect(Object.keys(e).sort()).toEqual(['approvedSinceSettled', 'canceledSinceSettled', 'holds', 'merchantId', 'netSinceSettled', 'nextPayoutAt', 'projectedReceivable', 'receivable', 'settledThrough']);
    const net = BigInt(e.approvedSinceSettled) - BigInt(e.canceledSinceSettled);
    expect(e.netSinceSettled).toBe(net.toString());
    expect(e.receivable).toBe((net < 0n ? -net : 0n).toString());
    expect((await get('/api/merchants/999/exposure')).statusCode).toBe(404);
    expect((await get('/api/merchants/4%202/exposure')).statusCode).toBe(400);
    expect((await get('/api/merchants/42/exposure', null)).statusCode).toBe(401);
  });

  it('GET /api/exposure/top lists the merchants that owe, bounded; alerts sort by the receivable now', async () => {
    const r = await get('/api/exposure/top?limit=5');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ computedAt: null, items: [] });
    expect((await get('/api/exposure/top?limit=201')).statusCode).toBe(400);
    const s = await get('/api/alerts?sort=receivable&limit=3');
    expect(s.statusCode).toBe(200);
    expect(s.json().items.length).toBe(3);
    expect(s.json().nextCursor).toBe(null);
    expect((await get('/api/alerts?sort=amount')).statusCode).toBe(400);
  });
});

describe("a merchant's payouts", () => {
  it('GET /api/merchants/:id/payouts lists the payout rows oldest first, paid or scheduled, bounded by limit; 404, 400, 401', async () => {
    const w = writer();
    const d0 = Math.floor(Date.now() / 86_400_000) * 86_400_000;
    w.payout('43', '900000', d0 - 3 * 86_400_000, d0 - 86_400_000);
    w.payout('43', '1200000', d0 - 2 * 86_400_000, d0);
    w.payout('43', '700000', d0 - 86_400_000, d0 + 86_400_000); // scheduled
    await w.flush();
    const r = await get('/api/merchants/43/payouts');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ merchantId: '43', settlement: 'payouts' });
    const items = r.json().items;
    expect(items.map((p: { amount: string }) => p.amount)).toEqual(['900000', '1200000', '700000']);
    expect(items[0]).toMatchObject({ coversTo: new Date(d0 - 3 * 86_400_000).toISOString(), paidAt: new Date(d0 - 86_400_000).toISOString(), paid: true });
    expect(items[2]).toMatchObject({ paid: false, paidAt: new Date(d0 + 86_400_000).toISOString() });
    expect(typeof items[0].id).toBe('string');
    // the exposure settles through the latest paid payout's covers_to
    expect((await get('/api/merchants/43/exposure')).json().settledThrough).toBe(new Date(d0 - 2 * 86_400_000).toISOString());
    const latest = (await get('/api/merchants/43/payouts?limit=2')).json().items;
    expect(latest.map((p: { amount: string }) => p.amount)).toEqual(['1200000', '700000']);
    expect((await get('/api/merchants/7/payouts')).json()).toEqual({ merchantId: '7', settlement: 'payouts', items: [] });
    expect((await get('/api/merchants/999/payouts')).statusCode).toBe(404);
    expect((await get('/api/merchants/4%202/payouts')).json()).toMatchObject({ error: 'bad_request', field: 'id' });
    expect((await get('/api/merchants/43/payouts?limit=501')).json()).toMatchObject({ error: 'bad_request', field: 'limit' });
    expect((await get('/api/merchants/43/payouts', null)).statusCode).toBe(401);
  });

  it('on the D+N schedule (no payouts table): one payout per local midnight, settling through N − 1 days before it', async () => {
    const { payouts: _, ...noPayouts } = referenceMapping;
    const d = await testApi({ RISKMON_MAPPING: JSON.stringify(noPayouts), RISKMON_SETTLEMENT_DAYS: '2' });
    try {
      await d.sourcePg.query(`INSERT INTO merchants (merchant_id, name, category) VALUES (42, 'Acme Shoes', 'fashion')`);
      const r = await d.app.inject({ url: '/api/merchants/42/payouts?limit=3', headers: auth(VIEWER) });
      expect(r.statusCode).toBe(200);
      const body = r.json();
      expect(body.settlement).toBe('days');
      const tz = d.deps.cfg.tz;
      const today = dayStart(Date.now(), tz);
      const tomorrow = dayStart(today + 26 * 3_600_000, tz);
      const yesterday = dayStart(today - 3_600_000, tz);
      expect(body.items).toEqual([
        { id: null, amount: null, coversTo: new Date(dayStart(yesterday - 3_600_000, tz)).toISOString(), paidAt: new Date(yesterday).toISOString(), paid: true },
        { id: null, amount: null, coversTo: new Date(yesterday).toISOString(), paidAt: new Date(today).toISOString(), paid: true },
        { id: null, amount: null, coversTo: new Date(today).toISOString(), paidAt: new Date(tomorrow).toISOString(), paid: false },
      ]);
      // the exposure agrees: settled through the latest paid payout's coversTo, next payout the scheduled one
      const e = (await d.app.inject({ url: '/api/merchants/42/exposure', headers: auth(VIEWER) })).json();
      expect(e).toMatchObject({ settledThrough: body.items[1].coversTo, nextPayoutAt: body.items[2].paidAt });
    } finally {
      await d.close();
    }
  });
});

describe('money at risk for a viewer (read allowed, holds refused)', () => {
  it('a viewer reads exposure, the top list and holds, and gets 403 on holding or releasing', async () => {
    expect((await get('/api/merchants/42/exposure')).json()).toMatchObject({ merchantId: '42', holds: [] });
    expect((await get('/api/exposure/top')).statusCode).toBe(200);
    const holds = await get('/api/holds?merchantId=42&state=active');
    expect(holds.statusCode).toBe(200);
    expect(holds.json()).toEqual({ items: [], nextCursor: null });
    const hold = await t.app.inject({ method: 'POST', url: '/api/merchants/42/holds', headers: auth(VIEWER), payload: { reason: 'bust-out' } });
    expect(hold.statusCode).toBe(403);
    expect(hold.json()).toMatchObject({ error: 'forbidden' });
    const release = await t.app.inject({ method: 'POST', url: '/api/holds/1/release', headers: auth(VIEWER), payload: { reason: 'cleared' } });
    expect(release.statusCode).toBe(403);
    expect((await get('/api/holds?merchantId=42')).json().items).toEqual([]); // nothing was written
  });
});
