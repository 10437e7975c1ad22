/**
 * The analyst's desk over REST against a real PostgreSQL and Redis: every endpoint and role, bad input naming the
 * field, concurrent triage of one alert losing nothing, rule precision from dispositions, and the audit trail with
 * the right actor for every write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, ANALYST, ANALYST2, ANALYST2_NAME, ANALYST_NAME, insertAlert, testApi, VIEWER, type TestApi } from './testing.ts';

let t: TestApi;
let adminName: string;
beforeAll(async () => {
  t = await testApi();
  adminName = (await t.app.inject({ url: '/api/me', headers: auth(ADMIN) })).json().name;
});
afterAll(async () => { await t?.close(); });

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const get = (url: string, key: string | null = VIEWER) => t.app.inject({ method: 'GET', url, headers: key ? auth(key) : {} });
const post = (url: string, body: unknown, key: string | null = ANALYST) =>
  t.app.inject({ method: 'POST', url, headers: key ? auth(key) : {}, ...(body === undefined ? {} : { payload: body as object }) });
const newAlert = (merchantId: string, extra: Partial<Parameters<typeof insertAlert>[1]> = {}) =>
  insertAlert(t.riskPg, { merchantId, firedAt: new Date(Date.now() - 10 * 60_000).toISOString(), ...extra });
const auditOf = async (target: string) => (await get(`/api/audit?target=${target}&limit=500`)).json().items as { actor: string; action: string; detail: Record<string, unknown> }[];

describe('roles and keys', () => {
  it('/api/me names the actor of a key: its name, or key <id> without one', async () => {
    expect((await get('/api/me', ANALYST)).json()).toMatchObject({ role: 'analyst', name: ANALYST_NAME });
    expect(adminName).toMatch(/^key [0-9a-f]{12}$/);
  });

  it('a viewer reads but gets 403 on every triage write; no key 401; analysts and admins write', async () => {
    const { id } = await newAlert('100');
    const writes: [string, unknown][] = [
      [`/api/alerts/${id}/ack`, {}], [`/api/alerts/${id}/assign`, { assignee: 'x' }],
      [`/api/alerts/${id}/notes`, { text: 'x' }], [`/api/alerts/${id}/disposition`, { disposition: 'benign', note: '' }],
    ];
    for (const [url, body] of writes) {
      const v = await post(url, body, VIEWER);
      expect(v.statusCode, url).toBe(403);
      expect(v.json()).toMatchObject({ error: 'forbidden' });
      expect(v.json().message).toContain('analyst');
      expect((await post(url, body, null)).statusCode).toBe(401);
    }
    expect(await auditOf(`alert:${id}`)).toEqual([]); // refused writes leave nothing
    for (const [url, body] of writes) expect((await post(url, body, ANALYST)).statusCode, url).toBe(200);
    for (const [url, body] of writes) expect((await post(url, body, ADMIN)).statusCode, url).toBe(200);
    for (const url of [`/api/alerts/${id}`, '/api/rules/quality', '/api/audit']) expect((await get(url, VIEWER)).statusCode, url).toBe(200);
    // Silences stay admin-only: an analyst triages, an admin also manages silences.
    expect((await t.app.inject({ method: 'POST', url: '/api/silences', headers: auth(ANALYST), payload: { merchantId: '100', minutes: 5 } })).statusCode).toBe(403);
  });
});

describe('one alert', () => {
  it('GET /api/alerts/:id has the alert, its transitions, notes, ack, assignee and disposition; unknown ids 404', async () => {
    const { id, eventId } = await newAlert('200', { evidence: { window: { rate: 0.2 } } });
    const r = await get(`/api/alerts/${id}`);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({
      id, rule: 'cancel_rate_spike', merchantId: '200', state: 'firing', ruleVersion: 'test', evidence: { window: { rate: 0.2 } },
      ack: null, assignee: null, disposition: null, notes: [], history: [],
      transitions: [{ id: String(eventId), kind: 'fired', evidence: { window: { rate: 0.2 } } }],
    });
    const missing = await get('/api/alerts/987654321');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found', message: 'alert 987654321 does not exist' });
    for (const path of ['ack', 'notes', 'assign', 'disposition']) {
      const body = { ack: {}, notes: { text: 'x' }, assign: { assignee: null }, disposition: { disposition: 'benign' } }[path];
      expect((await post(`/api/alerts/987654321/${path}`, body)).statusCode, path).toBe(404);
    }
    expect(await auditOf('alert:987654321')).toEqual([]);
    expect((await get('/api/alerts/abc')).json()).toMatchObject({ error: 'bad_request', field: 'id' });
  });

  it('acknowledge, assign, note and close with a disposition, attributed to the acting key; a changed disposition keeps its history', async () => {
    const { id } = await newAlert('300', { state: 'resolved', resolvedAt: new Date().toISOString() }); // resolved alerts are triaged too
    const ack = await post(`/api/alerts/${id}/ack`, undefined); // no body at all is an acknowledgement too
    expect(ack.statusCode).toBe(200);
    expect(ack.json().ack).toMatchObject({ by: ANALYST_NAME });
    const firstAckAt = ack.json().ack.at;
    // A second acknowledgement does not take it over; it is kept in the history.
    expect((await post(`/api/alerts/${id}/ack`, {}, ANALYST2)).json().ack).toEqual({ by: ANALYST_NAME, at: firstAckAt });

    expect((await post(`/api/alerts/${id}/assign`, { assignee: ANALYST2_NAME })).json().assignee).toBe(ANALYST2_NAME);
    expect((await post(`/api/alerts/${id}/assign`, { assignee: null })).json().assignee).toBeNull();
    expect((await post(`/api/alerts/${id}/assign`, { assignee: ` ${ANALYST_NAME} ` })).json().assignee).toBe(ANALYST_NAME);

    const noted = await post(`/api/alerts/${id}/notes`, { text: 'Called the merchant: <b>flash sale</b> refunds.' }, ANALYST2);
    expect(noted.json().notes).toEqual([expect.objectContaining({ by: ANALYST2_NAME, text: 'Called the merchant: <b>flash sale</b> refunds.' })]);

    const fp = await post(`/api/alerts/${id}/disposition`, { disposition: 'false_positive', note: 'flash sale' });
    expect(fp.statusCode).toBe(200);
    expect(fp.json().disposition).toMatchObject({ value: 'false_positive', by: ANALYST_NAME, note: 'flash sale' });
    const changed = await post(`/api/alerts/${id}/disposition`, { disposition: 'confirmed', note: 'refunds kept coming' }, ANALYST2);
    const d = changed.json();
    expect(d.disposition).toMatchObject({ value: 'confirmed', by: ANALYST2_NAME, note: 'refunds kept coming' });
    expect(d.state).toBe('resolved');
    expect(d.history.map((h: { action: string; by: string; value: string | null }) => [h.action, h.by, h.value])).toEqual([
      ['ack', ANALYST_NAME, null], ['ack', ANALYST2_NAME, null],
      ['assign', ANALYST_NAME, ANALYST2_NAME], ['assign', ANALYST_NAME, null], ['assign', ANALYST_NAME, ANALYST_NAME],
      ['note', ANALYST2_NAME, null],
      ['disposition', ANALYST_NAME, 'false_positive'], ['disposition', ANALYST2_NAME, 'confirmed'],
    ]);
    // What GET returns is what the writes answered.
    expect((await get(`/api/alerts/${id}`)).json()).toEqual(d);
  });

  it('a disposition on an unacknowledged alert acknowledges it', async () => {
    const { id } = await newAlert('310');
    const r = (await post(`/api/alerts/${id}/disposition`, { disposition: 'benign' }, ANALYST2)).json();
    expect(r.disposition).toMatchObject({ value: 'benign', by: ANALYST2_NAME, note: '' });
    expect(r.ack).toMatchObject({ by: ANALYST2_NAME });
  });

  it('bad input is a 400 naming the field; nothing is written', async () => {
    const { id } = await newAlert('400');
    const bad = async (path: string, body: unknown) => {
      const r = await post(`/api/alerts/${id}/${path}`, body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      return r.json() as { error: string; field: string; message: string };
    };
    expect(await bad('disposition', { disposition: 'maybe', note: '' })).toMatchObject({ field: 'disposition', message: expect.stringContaining('confirmed, false_positive, benign') });
    expect(await bad('disposition', { note: 'x' })).toMatchObject({ field: 'disposition' });
    expect(await bad('disposition', { disposition: 'benign', note: 'x'.repeat(4001) })).toMatchObject({ field: 'note', message: expect.stringContaining('4000') });
    expect(await bad('notes', { text: 'x'.repeat(4001) })).toMatchObject({ field: 'text', message: expect.stringContaining('4000') });
    expect(await bad('notes', { text: '   ' })).toMatchObject({ field: 'text' });
    expect(await bad('notes', {})).toMatchObject({ field: 'text' });
    expect(await bad('notes', { text: 'ok', by: 'someone else' })).toMatchObject({ field: 'by', message: 'by is not a field of this request' });
    expect(await bad('assign', {})).toMatchObject({ field: 'assignee' });
    expect(await bad('assign', { assignee: '  ' })).toMatchObject({ field: 'assignee' });
    expect(await bad('assign', { assignee: 'x'.repeat(101) })).toMatchObject({ field: 'assignee' });
    expect((await post(`/api/alerts/${id}/notes`, { text: 'x'.repeat(4000) })).statusCode).toBe(200); // the limit itself is fine
    const after = (await get(`/api/alerts/${id}`)).json();
    expect(after.history).toHaveLength(1);
    expect(after.disposition).toBeNull();
    expect(await auditOf(`alert:${id}`)).toHaveLength(1);
  });
});

describe('concurrent triage of one alert', () => {
  it('two analysts acting at once lose no write', async () => {
    const { id } = await newAlert('500');
    const N = 20;
    const writes = [
      ...Array.from({ length: N }, (_, i) => post(`/api/alerts/${id}/notes`, { text: `note ${i}` }, i % 2 ? ANALYST : ANALYST2)),
      post(`/api/alerts/${id}/ack`, {}, ANALYST), post(`/api/alerts/${id}/ack`, {}, ANALYST2),
      post(`/api/alerts/${id}/assign`, { assignee: ANALYST_NAME }, ANALYST2),
      post(`/api/alerts/${id}/disposition`, { disposition: 'confirmed', note: 'a' }, ANALYST),
      post(`/api/alerts/${id}/disposition`, { disposition: 'false_positive', note: 'b' }, ANALYST2),
    ];
    const results = await Promise.all(writes);
    for (const r of results) expect(r.statusCode).toBe(200);
    const a = (await get(`/api/alerts/${id}`)).json();
    expect(a.notes.map((n: { text: string }) => n.text).sort()).toEqual(Array.from({ length: N }, (_, i) => `note ${i}`).sort());
    expect(a.history).toHaveLength(N + 5);
    expect(a.history.filter((h: { action: string }) => h.action === 'disposition').map((h: { value: string }) => h.value).sort()).toEqual(['confirmed', 'false_positive']);
    // The current disposition is the last one in the history; the first acknowledgement stands.
    const lastDisposition = a.history.filter((h: { action: string }) => h.action === 'disposition').at(-1);
    expect(a.disposition).toMatchObject({ value: lastDisposition.value, by: lastDisposition.by });
    expect(a.ack.by).toBe(a.history.find((h: { action: string }) => h.action === 'ack' || h.action === 'disposition').by);
    expect(a.assignee).toBe(ANALYST_NAME);
    expect(await auditOf(`alert:${id}`)).toHaveLength(N + 5);
  });
});

describe('alert list', () => {
  it('items carry ack, assignee and disposition, and the list filters on them', async () => {
    const m = 'L600';
    const resolved = { state: 'resolved' as const, resolvedAt: new Date().toISOString() }; // one firing alert per (rule, merchant)
    const [a, b, c] = [await newAlert(m, resolved), await newAlert(m, resolved), await newAlert(m)];
    await post(`/api/alerts/${a.id}/ack`, {});
    await post(`/api/alerts/${a.id}/assign`, { assignee: ANALYST2_NAME });
    await post(`/api/alerts/${b.id}/disposition`, { disposition: 'false_positive', note: 'test order' });
    const ids = async (q: string) => ((await get(`/api/alerts?merchantId=${m}&${q}`)).json().items as { id: string }[]).map((x) => x.id).sort();
    const all = (await get(`/api/alerts?merchantId=${m}`)).json().items as Record<string, unknown>[];
    expect(all.find((x) => x.id === a.id)).toMatchObject({ ack: { by: ANALYST_NAME }, assignee: ANALYST2_NAME, disposition: null });
    expect(all.find((x) => x.id === b.id)).toMatchObject({ disposition: { value: 'false_positive', by: ANALYST_NAME, note: 'test order' } });
    expect(await ids(`assignee=${encodeURIComponent(ANALYST2_NAME)}`)).toEqual([a.id]);
    expect(await ids('acked=true')).toEqual([a.id, b.id].sort());
    expect(await ids('acked=false')).toEqual([c.id]);
    expect(await ids('disposition=none')).toEqual([a.id, c.id].sort());
    expect(await ids('disposition=false_positive')).toEqual([b.id]);
    expect((await get(`/api/alerts?disposition=wrong`)).json()).toMatchObject({ field: 'disposition' });
    expect((await get(`/api/alerts?acked=maybe`)).json()).toMatchObject({ field: 'acked' });
  });
});

describe('rule precision', () => {
  it('GET /api/rules/quality counts dispositions per rule and rule version over the period', async () => {
    const at = (min: number) => new Date(Date.UTC(2025, 0, 10, 12, min)).toISOString();
    const mk = async (rule: string, version: string, min: number, disposition?: string) => {
      const { id } = await insertAlert(t.riskPg, { merchantId: 'Q1', rule, firedAt: at(min), state: 'resolved', resolvedAt: at(min + 5) });
      await t.riskPg.query('UPDATE alerts SET rule_version = $2 WHERE id = $1', [id, version]);
      if (disposition) expect((await post(`/api/alerts/${id}/disposition`, { disposition, note: '' })).statusCode).toBe(200);
      return id;
    };
    await mk('cancel_rate_spike', 'v1', 1, 'confirmed');
    await mk('cancel_rate_spike', 'v1', 2, 'confirmed');
    await mk('cancel_rate_spike', 'v1', 3, 'false_positive');
    await mk('cancel_rate_spike', 'v1', 4, 'benign');
    const open = await mk('cancel_rate_spike', 'v1', 5);
    await mk('cancel_rate_spike', 'v2', 6, 'false_positive');
    await mk('volume_drop', 'v1', 7, 'benign');
    await mk('volume_drop', 'v1', 90, 'confirmed'); // outside the period below
    const q = async () => (await get(`/api/rules/quality?from=${at(0)}&to=${at(60)}`)).json();
    const r = await q();
    expect(r).toMatchObject({ from: at(0), to: at(60) });
    const byKey = (items: { rule: string; ruleVersion: string }[]) => Object.fromEntries(items.map((i) => [`${i.rule}@${i.ruleVersion}`, i]));
    expect(byKey(r.items)).toEqual({
      'cancel_rate_spike@v1': { rule: 'cancel_rate_spike', ruleVersion: 'v1', fired: 5, dispositioned: 4, confirmed: 2, falsePositive: 1, benign: 1, precision: 2 / 3 },
      'cancel_rate_spike@v2': { rule: 'cancel_rate_spike', ruleVersion: 'v2', fired: 1, dispositioned: 1, confirmed: 0, falsePositive: 1, benign: 0, precision: 0 },
      'volume_drop@v1': { rule: 'volume_drop', ruleVersion: 'v1', fired: 1, dispositioned: 1, confirmed: 0, falsePositive: 0, benign: 1, precision: null },
    });
    await post(`/api/alerts/${open}/disposition`, { disposition: 'false_positive', note: '' });
    expect(byKey((await q()).items)['cancel_rate_spike@v1']).toMatchObject({ dispositioned: 5, falsePositive: 2, precision: 0.5 });
    expect((await get('/api/rules/quality?from=yesterday')).json()).toMatchObject({ error: 'bad_request', field: 'from' });
    expect((await get(`/api/rules/quality?from=${at(60)}&to=${at(0)}`)).json()).toMatchObject({ field: 'to' });
  });
});

describe('audit trail', () => {
  it('records every write with actor, time, action, target and detail; lists, filters and pages; cannot be changed', async () => {
    const { id } = await newAlert('700');
    const since = new Date(Date.now() - 1000).toISOString();
    await post(`/api/alerts/${id}/ack`, {}, ANALYST);
    await post(`/api/alerts/${id}/assign`, { assignee: ANALYST2_NAME }, ANALYST);
    await post(`/api/alerts/${id}/notes`, { text: 'merchant says: courier strike' }, ANALYST2);
    await post(`/api/alerts/${id}/disposition`, { disposition: 'benign', note: 'courier strike' }, ANALYST2);
    const s = await t.app.inject({ method: 'POST', url: '/api/silences', headers: auth(ADMIN), payload: { merchantId: '700', minutes: 30, reason: 'investigating' } });
    expect(s.statusCode).toBe(201);
    expect(s.json().createdBy).toBe(adminName);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/silences/${s.json().id}`, headers: auth(ADMIN) })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'DELETE', url: '/api/silences/987654321', headers: auth(ADMIN) })).statusCode).toBe(404);

    const trail = (await get(`/api/audit?from=${since}&limit=500`)).json().items as { id: string; at: string; actor: string; action: string; target: string; detail: Record<string, unknown> }[];
    const mine = trail.filter((e) => e.target === `alert:${id}` || e.target === `silence:${s.json().id}`).reverse(); // oldest first
    expect(mine.map((e) => [e.actor, e.action, e.target])).toEqual([
      [ANALYST_NAME, 'alert.ack', `alert:${id}`],
      [ANALYST_NAME, 'alert.assign', `alert:${id}`],
      [ANALYST2_NAME, 'alert.note', `alert:${id}`],
      [ANALYST2_NAME, 'alert.disposition', `alert:${id}`],
      [adminName, 'silence.create', `silence:${s.json().id}`],
      [adminName, 'silence.delete', `silence:${s.json().id}`],
    ]);
    expect(mine[1].detail).toEqual({ assignee: ANALYST2_NAME });
    expect(mine[2].detail).toEqual({ text: 'merchant says: courier strike' });
    expect(mine[3].detail).toEqual({ disposition: 'benign', note: 'courier strike' });
    expect(mine[4].detail).toMatchObject({ merchantId: '700', reason: 'investigating' });
    for (const e of mine) expect(Date.parse(e.at)).toBeGreaterThanOrEqual(Date.parse(since));

    // Filters and keyset pages.
    const byActor = (await get(`/api/audit?actor=${encodeURIComponent(ANALYST2_NAME)}&from=${since}`)).json().items as { actor: string }[];
    expect(byActor.length).toBeGreaterThanOrEqual(2);
    expect(byActor.every((e) => e.actor === ANALYST2_NAME)).toBe(true);
    expect((await get(`/api/audit?action=silence.create&from=${since}`)).json().items).toHaveLength(1);
    const p1 = (await get(`/api/audit?from=${since}&limit=2`)).json();
    const p2 = (await get(`/api/audit?from=${since}&limit=2&cursor=${p1.nextCursor}`)).json();
    expect(p1.items.map((e: { id: string }) => e.id)).toEqual(trail.slice(0, 2).map((e) => e.id));
    expect(p2.items.map((e: { id: string }) => e.id)).toEqual(trail.slice(2, 4).map((e) => e.id));
    expect((await get('/api/audit?cursor=abc')).json()).toMatchObject({ field: 'cursor' });

    // Nothing changes it: no route, and the database refuses.
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
      expect((await t.app.inject({ method, url: '/api/audit', headers: auth(ADMIN), payload: {} })).statusCode).toBe(404);
    }
    await expect(t.riskPg.query(`UPDATE audit_log SET actor = 'nobody'`)).rejects.toThrow(/append-only/);
    await expect(t.riskPg.query('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
  });
});

describe('OpenAPI', () => {
  it('documents the desk with its roles and bodies', async () => {
    const doc = (await t.app.inject({ url: '/docs/json' })).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
      '/api/alerts/{id}', '/api/alerts/{id}/ack', '/api/alerts/{id}/assign', '/api/alerts/{id}/notes', '/api/alerts/{id}/disposition',
      '/api/rules/quality', '/api/audit',
    ]));
    expect(JSON.stringify(doc.paths['/api/alerts/{id}/disposition'].post)).toContain('false_positive');
  });
});

describe('security headers', () => {
  it('every response carries a CSP without inline script, frame-ancestors none and nosniff', async () => {
    for (const url of ['/', '/api/me', '/health']) {
      const r = await t.app.inject({ url, headers: auth(VIEWER) });
      const csp = String(r.headers['content-security-policy']);
      expect(csp, url).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['x-frame-options']).toBe('DENY');
    }
  });
});
