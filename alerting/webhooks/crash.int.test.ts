/**
 * A payout hold survives a kill -9 of the alerting process between the API's 201 and the delivery: the API (in this
 * process) answers, the alerting process (a child, as in production) starts delivering to a receiver that fails
 * first (503s), then holds one request without answering while the process is killed with SIGKILL; more actions
 * arrive while it is dead and while the receiver is down. After a restart every action reaches the receiver exactly
 * once by idempotency key — the killed attempt's event again under its own id — in order per merchant, signed.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ANALYST, testApi, type TestApi } from '../../api/testing.ts';
import { spawnRiskmon, stopChild, waitExit, waitFor, WebhookReceiver } from '../../test/harness/index.ts';

const NEW = 'new-secret-0123456789abcdef';
const OLD = 'old-secret-0123456789abcdef';

let t: TestApi;
let receiver: WebhookReceiver;
const children: ChildProcess[] = [];
const logs: string[] = [];
beforeAll(async () => {
  t = await testApi();
  await t.sourcePg.query(`INSERT INTO merchants (merchant_id, name) VALUES (101, 'Hanbit Electronics'), (102, 'Seoul Books'), (103, 'Busan Foods')`);
  receiver = await new WebhookReceiver({ secrets: [OLD] }).start(); // mid-rotation: the receiver still has the old secret
});
afterAll(async () => {
  for (const c of children) await stopChild(c, 5000);
  await receiver?.stop();
  await t?.close();
});

function alerting(): ChildProcess {
  const child = spawnRiskmon(['alerting'], {
    env: {
      ...process.env, ...t.env, RISKMON_LOG_LEVEL: 'info',
      RISKMON_ACTION_WEBHOOK_URL: receiver.url, RISKMON_ACTION_WEBHOOK_SECRET: NEW, RISKMON_ACTION_WEBHOOK_SECRET_PREVIOUS: OLD,
      RISKMON_WEBHOOK_RETRY_BASE_MS: '100', RISKMON_WEBHOOK_RETRY_MAX_MS: '500', RISKMON_WEBHOOK_TIMEOUT_MS: '60000',
    },
    logs,
  });
  children.push(child);
  return child;
}

const auth = { authorization: `Bearer ${ANALYST}` };
const hold = async (m: string) => {
  const r = await t.app.inject({ method: 'POST', url: `/api/merchants/${m}/holds`, headers: auth, payload: { reason: `holding ${m}` } });
  expect(r.statusCode).toBe(201);
  return r.json();
};
const release = async (id: string) => {
  const r = await t.app.inject({ method: 'POST', url: `/api/holds/${id}/release`, headers: auth, payload: { reason: 'shipped' } });
  expect(r.statusCode).toBe(200);
  return r.json();
};

it('every action is delivered exactly once per id across a kill -9 and an endpoint outage, in order per merchant', async () => {
  receiver.script.push({ status: 503 }, { status: 503 }, 'hang');
  const first = alerting();
  const h101 = await hold('101'); // 201: stored with its event; the delivery is the alerting process's
  const holdEvent = h101.actions[0].id;
  await waitFor(() => receiver.held === 1, { timeoutMs: 60_000, message: `a request held by the receiver (log: ${logs.join('').slice(-2000)})` });
  expect(receiver.requests.map((r) => r.answered)).toEqual([503, 503, null]);
  first.kill('SIGKILL'); // the attempt in flight had no answer: its transaction dies with the process
  expect(await waitExit(first)).toBeNull();
  await receiver.down();

  // While the deliverer is dead and the endpoint down, analysts keep acting.
  const r101 = await release(h101.id);
  const h102 = await hold('102');
  const h103 = await hold('103');
  const r103 = await release(h103.id);
  const h103b = await hold('103');
  const expected = [
    [holdEvent, 'payout.hold', '101'], [r101.actions[1].id, 'payout.release', '101'], [h102.actions[0].id, 'payout.hold', '102'],
    [h103.actions[0].id, 'payout.hold', '103'], [r103.actions[1].id, 'payout.release', '103'], [h103b.actions[0].id, 'payout.hold', '103'],
  ];
  const second = alerting();
  // The restarted deliverer finds the endpoint down for a while, then up.
  await waitFor(async () => (await t.riskPg.query(`SELECT count(*)::int AS n FROM webhook_outbox WHERE attempts > 3 AND status = 'pending'`)).rows[0].n > 0,
    { timeoutMs: 60_000, message: 'retrying against the down endpoint' });
  await receiver.up();
  await waitFor(() => receiver.accepted.size === expected.length, { timeoutMs: 60_000, message: `every action accepted (log: ${logs.join('').slice(-2000)})` });
  await stopChild(second);

  // Every action arrived, under the id it was stored with; none under a second id.
  expect([...receiver.accepted.keys()].sort()).toEqual(expected.map((e) => e[0]).sort());
  for (const [id, type, merchant] of expected) expect(receiver.accepted.get(id)).toMatchObject({ id, type, merchantId: merchant });
  const idsPerAction = new Map<string, Set<string>>();
  for (const r of receiver.requests) {
    const k = `${r.body.holdId}/${r.body.type}`;
    idsPerAction.set(k, (idsPerAction.get(k) ?? new Set()).add(r.body.id));
  }
  expect([...idsPerAction.values()].every((s) => s.size === 1)).toBe(true);
  // The killed attempt's event came again with the same id (the receiver would dedupe a second 2xx by its key).
  expect(receiver.requests.filter((r) => r.idempotencyKey === holdEvent).length).toBeGreaterThanOrEqual(4);
  // Signed under both secrets; the receiver verified with the old one.
  expect(receiver.requests.every((r) => r.verified && r.signature!.split(',').length === 3)).toBe(true);
  // In order per merchant.
  const order = (m: string) => [...receiver.accepted.values()].filter((e) => e.merchantId === m).map((e) => `${e.type}:${e.holdId}`);
  expect(order('101')).toEqual([`payout.hold:${h101.id}`, `payout.release:${h101.id}`]);
  expect(order('103')).toEqual([`payout.hold:${h103.id}`, `payout.release:${h103.id}`, `payout.hold:${h103b.id}`]);
  // And the dashboard's view: every action delivered.
  const holds = (await t.app.inject({ url: '/api/holds?limit=10', headers: auth })).json().items;
  expect(holds.map((h: { delivery: string }) => h.delivery)).toEqual(['delivered', 'delivered', 'delivered', 'delivered']);
}, 180_000);
