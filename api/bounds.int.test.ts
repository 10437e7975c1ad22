/**
 * Bounded work per caller in the API: PostgreSQL statements time out; an HTTP connection that sends nothing (or
 * half a request) is closed; WebSocket connections are capped per key (429) and in total (503); 200 WebSocket
 * clients that never read are closed (no pong, or a send queue over its bound) while a reading client stays, and
 * the process's memory stays bounded; a client flooding messages is closed.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../lib/metrics.ts';
import { waitFor } from '../test/harness/index.ts';
import { ADMIN, ANALYST, testApi, VIEWER, WebSocketClient, type TestApi } from './testing.ts';

let t: TestApi;
let port: number;
const CLIENTS = 200;

beforeAll(async () => {
  t = await testApi({
    RISKMON_HTTP_IDLE_TIMEOUT_MS: '1000', RISKMON_API_STATEMENT_TIMEOUT_MS: '300',
    RISKMON_WS_MAX_PER_KEY: String(CLIENTS + 10), RISKMON_WS_MAX_CONNECTIONS: String(CLIENTS + 10),
    RISKMON_WS_PING_MS: '1000', RISKMON_WS_MAX_BUFFERED_BYTES: '65536', RISKMON_WS_MAX_MESSAGES: '5',
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.address() as { port: number }).port;
});
afterAll(async () => { await t?.close(); });

const counter = async (name: string, label: string) => {
  const m = (await registry.getSingleMetric(name)!.get()).values.find((v) => v.labels.reason === label);
  return m?.value ?? 0;
};

/** A WebSocket client that upgrades and then never reads a byte. */
function deaf(key: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.once('data', (d) => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1'))?.[1];
      s.pause(); // never reads again: the kernel buffers fill, then the server's queue would
      if (status === '101') resolve(s); else reject(new Error(`upgrade answered ${status}`));
    });
    s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  });
}

function reader(key: string, p = port): Promise<{ ws: InstanceType<typeof WebSocketClient>; messages: { type: string }[]; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocketClient(`ws://127.0.0.1:${p}/ws`, { headers: { authorization: `Bearer ${key}` } });
    const messages: { type: string }[] = [];
    let closed = false;
    ws.on('message', (d) => messages.push(JSON.parse(String(d))));
    ws.on('close', () => { closed = true; });
    ws.on('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('open', () => resolve({ ws, messages, closed: () => closed }));
  });
}

describe('bounded work', () => {
  it('a statement longer than the API\'s statement_timeout is cancelled by PostgreSQL', async () => {
    await expect(t.riskPg.query('SELECT pg_sleep(10)')).rejects.toMatchObject({ code: '57014' });
    await expect(t.sourcePg.query('SELECT pg_sleep(10)')).rejects.toMatchObject({ code: '57014' });
  });

  it('an HTTP connection that sends half a request and then nothing is closed', async () => {
    const s = connect(port, '127.0.0.1');
    let closed = false;
    s.on('close', () => { closed = true; });
    s.on('error', () => {});
    s.write('GET /api/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // no end of headers
    await waitFor(() => closed, { timeoutMs: 15_000, message: 'the idle connection was not closed' });
  });

  it('caps WebSocket connections per key (429) and in total (503)', async () => {
    const t2 = await testApi({ RISKMON_WS_MAX_PER_KEY: '3', RISKMON_WS_MAX_CONNECTIONS: '5', RISKMON_WS_PING_MS: '600000' });
    try {
      await t2.app.listen({ port: 0, host: '127.0.0.1' });
      const p2 = (t2.app.server.address() as { port: number }).port;
      const open = [];
      for (let i = 0; i < 3; i++) open.push(await reader(VIEWER, p2));
      await expect(reader(VIEWER, p2)).rejects.toThrow(/HTTP 429/);
      for (let i = 0; i < 2; i++) open.push(await reader(ADMIN, p2));
      await expect(reader(ANALYST, p2)).rejects.toThrow(/HTTP 503/);
      open[0].ws.close();
      await waitFor(() => t2.hub.size === 4);
      open.push(await reader(ANALYST, p2)); // a closed connection frees its place
      for (const c of open) c.ws.close();
    } finally {
      await t2.close();
    }
  });

  it('200 WebSocket clients that never read are closed while a reading one stays; memory stays bounded', async () => {
    const rss0 = process.memoryUsage().rss;
    const deafs = await Promise.all(Array.from({ length: CLIENTS }, () => deaf(VIEWER)));
    const live = await reader(ADMIN);

    // a stream of large alert messages; the clients that never read are closed, the reading one gets them all
    const evidence = { note: 'x'.repeat(32 * 1024) };
    let sent = 0;
    let peakRss = 0;
    await waitFor(async () => {
      for (let i = 0; i < 5; i++) {
        sent++;
        await t.publisher.publish(`${t.deps.cfg.redisPrefix}:alerts`, JSON.stringify({
          type: 'alert', eventId: sent, transition: 'fired',
          alert: { id: String(sent), rule: 'cancel_rate_spike', merchantId: '1', state: 'firing', firedAt: new Date().toISOString(), resolvedAt: null, evidence },
        }));
      }
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      return t.hub.size === 1;
    }, { timeoutMs: 60_000, intervalMs: 100, message: 'clients that never read were not closed' });
    await waitFor(() => live.messages.filter((m) => m.type === 'alert').length === sent, { timeoutMs: 30_000 });
    expect(live.closed()).toBe(false);
    const closedSlow = (await counter('riskmon_api_ws_closed_slow_total', 'ping')) + (await counter('riskmon_api_ws_closed_slow_total', 'buffer'));
    expect(closedSlow).toBeGreaterThanOrEqual(CLIENTS);
    // the test process holds the server and the clients; what the server queued is bounded by 200 × 64 KiB
    console.warn(`[bounds] ${CLIENTS} deaf clients closed after ${sent} messages of 32 KiB; RSS ${Math.round(rss0 / 1048576)} → peak ${Math.round(peakRss / 1048576)} MiB`);
    expect(peakRss - rss0).toBeLessThan(512 * 1048576);
    for (const s of deafs) s.destroy();
    live.ws.close();
  });

  it('a client sending more than RISKMON_WS_MAX_MESSAGES per 10 s is closed', async () => {
    const c = await reader(VIEWER);
    for (let i = 0; i < 8; i++) c.ws.send(JSON.stringify({ type: 'subscribe', merchantIds: [String(i)] }));
    await waitFor(() => c.closed());
    expect(c.messages.some((m) => m.type === 'error')).toBe(true);
  });
});
