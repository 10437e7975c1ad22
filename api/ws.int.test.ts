/**
 * WebSocket against a real Redis and PostgreSQL: a transition published on `<prefix>:alerts` reaches a client;
 * a client reconnecting with lastEventId first receives what it missed from alert_transitions, then live ones;
 * a triage change made through one API instance reaches the clients of another as alert_update.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../test/harness/index.ts';
import { ANALYST, ANALYST_NAME, insertAlert, testApi, VIEWER, WebSocketClient, type TestApi } from './testing.ts';

let t: TestApi;
let base: string;

beforeAll(async () => {
  t = await testApi();
  const addr = await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = addr.replace('http', 'ws');
});
afterAll(async () => { await t?.close(); });

interface Msg { type: string; eventId?: number; transition?: string; alert?: { id: string; merchantId: string; state: string } }

/** A client that authenticates as a program does: `Authorization: Bearer` on the upgrade (browsers use the session cookie). */
function connect(query: string, key: string | null = VIEWER): Promise<{ messages: Msg[]; close(): void; send(m: object): void }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocketClient(`${base}/ws?${query}`, key ? { headers: { authorization: `Bearer ${key}` } } : {});
    const messages: Msg[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(String(d))));
    ws.on('error', reject);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('open', () => resolve({ messages, close: () => ws.close(), send: (m) => ws.send(JSON.stringify(m)) }));
  });
}

/** Writes a transition the way the alert store does (row, then publish) and returns its message. */
async function transition(merchantId: string, firedAt: string) {
  const a = await insertAlert(t.riskPg, { merchantId, firedAt });
  const msg = {
    type: 'alert', eventId: a.eventId, transition: 'fired',
    alert: { id: a.id, rule: 'cancel_rate_spike', merchantId, state: 'firing', firedAt: new Date(firedAt).toISOString(), resolvedAt: null, evidence: { note: 'test' } },
  };
  await t.publisher.publish(`${t.deps.cfg.redisPrefix}:alerts`, JSON.stringify(msg));
  return msg;
}

describe('/ws', () => {
  it('refuses a missing or unknown token', async () => {
    await expect(connect('', null)).rejects.toThrow(/401/);
    await expect(connect('', 'wrong-token-0123456789abcdef')).rejects.toThrow(/401/);
    await expect(connect(`token=${VIEWER}`, null)).rejects.toThrow(/401/);
    await expect(connect('lastEventId=abc')).rejects.toThrow(/400/);
  });

  it('relays an alert published on the channel to every client', async () => {
    const a = await connect('');
    const b = await connect('');
    await waitFor(() => t.hub.size >= 2);
    const sent = await transition('501', '2026-11-21T08:00:00Z');
    for (const c of [a, b]) {
      const got = await waitFor(() => c.messages.find((m) => m.type === 'alert' && m.eventId === sent.eventId));
      expect(got).toEqual(sent);
    }
    a.close(); b.close();
  });

  it('replays missed transitions after lastEventId, in order, before live ones and without doubles', async () => {
    const first = await transition('601', '2026-11-21T08:00:00Z');
    const missed1 = await transition('602', '2026-11-21T08:01:00Z');
    const missed2 = await transition('603', '2026-11-21T08:02:00Z');
    const c = await connect(`lastEventId=${first.eventId}`);
    await waitFor(() => c.messages.filter((m) => m.type === 'alert').length >= 2);
    const live = await transition('604', '2026-11-21T08:03:00Z');
    await waitFor(() => c.messages.some((m) => m.eventId === live.eventId));
    const alerts = c.messages.filter((m) => m.type === 'alert');
    const mine = alerts.filter((m) => ['602', '603', '604'].includes(m.alert!.merchantId));
    expect(mine.map((m) => m.eventId)).toEqual([missed1.eventId, missed2.eventId, live.eventId]);
    expect(mine[0]).toMatchObject({ transition: 'fired', alert: { id: missed1.alert.id, merchantId: '602', state: 'firing' } });
    expect(new Set(alerts.map((m) => m.eventId)).size).toBe(alerts.length);
    c.close();
  });

  it('answers a subscription and rejects an unknown message type', async () => {
    const c = await connect('');
    c.send({ type: 'subscribe', merchantIds: ['42', 'bad id!'] });
    c.send({ type: 'dance' });
    const sub = await waitFor(() => c.messages.find((m) => m.type === 'subscribed')) as unknown as { merchantIds: string[] };
    expect(sub.merchantIds).toEqual(['42']);
    await waitFor(() => c.messages.find((m) => m.type === 'error'));
    c.close();
  });
});

describe('alert_update across API instances', () => {
  it('a triage change made on one instance reaches the WebSocket clients of another', async () => {
    // A second API over the same risk store and alert channel, as behind a load balancer.
    const t2 = await testApi({ PG_URL: t.env.PG_URL, RISK_PG_URL: t.env.RISK_PG_URL, RISKMON_REDIS_PREFIX: t.env.RISKMON_REDIS_PREFIX });
    try {
      const base2 = (await t2.app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws');
      const ws = new WebSocketClient(`${base2}/ws`, { headers: { authorization: `Bearer ${VIEWER}` } });
      const messages: { type: string; alert?: Record<string, unknown> }[] = [];
      ws.on('message', (d) => messages.push(JSON.parse(String(d))));
      await new Promise<void>((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
      await waitFor(() => t2.hub.size >= 1);

      const a = await insertAlert(t.riskPg, { merchantId: '701', firedAt: '2026-11-21T08:00:00Z' });
      const auth = { authorization: `Bearer ${ANALYST}` };
      expect((await t.app.inject({ method: 'POST', url: `/api/alerts/${a.id}/ack`, headers: auth, payload: {} })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'POST', url: `/api/alerts/${a.id}/notes`, headers: auth, payload: { text: 'on it' } })).statusCode).toBe(200);
      const updates = await waitFor(() => {
        const u = messages.filter((m) => m.type === 'alert_update' && m.alert?.id === a.id);
        return u.length >= 2 ? u : null;
      });
      expect(updates[0].alert).toMatchObject({ id: a.id, merchantId: '701', state: 'firing', ack: { by: ANALYST_NAME }, assignee: null, disposition: null, notes: 0 });
      expect(updates[1].alert).toMatchObject({ notes: 1 });
      ws.close();
    } finally {
      await t2.close();
    }
  });
});
