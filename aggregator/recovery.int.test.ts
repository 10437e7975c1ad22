/**
 * Crashes, scale-out and rebuilds: kill -9 of an aggregator process during load, two aggregators sharing the
 * partitions, Redis losing the state (rebuild by replay), replay from an LSN while an aggregator runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { harness, loadPayments, type Harness } from './harness.int.ts';
import { readConfig } from '../lib/config.ts';
import { createKafka } from '../lib/kafka/index.ts';
import { logger } from '../lib/logger.ts';
import { aggregatorSpec } from './config.ts';
import { replay } from './replay.ts';
import { keys } from './store/layout.ts';
import { runRiskmon, waitFor } from '../test/harness/index.ts';
import { WindowSums } from '../alerting/window.ts';
import { MINUTE } from '../lib/time.ts';
import type { Totals } from './store/index.ts';

let h: Harness | null = null;
afterEach(async () => { await h?.close(); h = null; });

const load = loadPayments;

const runCli = (h: Harness, args: string[]) => runRiskmon(args, h.env);

const plain = (m: ReadonlyMap<string, Totals>) => Object.fromEntries([...m].map(([k, t]) => [k, `${t.approvals}/${t.approvedAmount}/${t.cancels}/${t.canceledAmount}`]));

/** The evaluator's in-memory 60-minute window (re-reading only slices whose version changed) equals a full read. */
async function expectWindowExact(h: Harness, win: WindowSums): Promise<void> {
  const end = Math.floor(Date.now() / MINUTE) * MINUTE + MINUTE;
  const got = await win.read(end - 60 * MINUTE, end - 60 * MINUTE, end);
  expect(plain(got.window)).toEqual(plain(await h.reader.totalsByMerchant(end - 60 * MINUTE, end, '1m')));
}

async function storedTotal(h: Harness): Promise<number> {
  const v = await h.redis.mget(Array.from({ length: h.partitions }, (_, p) => keys.offset(h!.prefix, p)));
  return v.reduce((n, x) => n + Number(x ?? 0), 0);
}

describe('aggregator recovery', () => {
  it('kill -9 during load, then two aggregators sharing the partitions: exact counts', async () => {
    h = await harness({ partitions: 6, hot: ['1', '2', '3'] });
    const first = h.spawnAggregator();
    await load(h, 1, 20_000);
    await waitFor(async () => (await storedTotal(h!)) > 2_000, { timeoutMs: 60_000, message: 'first aggregator applying' });
    first.kill('SIGKILL');
    await load(h, 20_001, 20_000);
    h.spawnAggregator();
    h.spawnAggregator();
    // the two register; the killed one's registration is dropped (its process is gone), not left to expire
    await waitFor(async () => (await h!.redis.zrange(keys.members(h!.prefix), '0', '-1')).length === 2, { timeoutMs: 60_000, message: 'two aggregators registered' });
    await load(h, 40_001, 10_000);
    // twice the longest recovery after an aggregator kill -9 the faults bench measured (docs/faults.md)
    await h.caughtUp(15_000);
    expect(await h.diff()).toEqual([]);
  });

  it('rebuilds a flushed Redis by replay, and replays from an LSN while an aggregator runs', async () => {
    h = await harness({ partitions: 4, hot: ['5'] });
    h.cdc.heartbeats(); // the cdc's first heartbeats: every partition starts with them
    await load(h, 1, 3_000);
    const middle = h.cdc.nextLsn();
    await load(h, 3_001, 3_000);
    const svc = h.startInProcess();
    await h.caughtUp();
    expect(await h.diff()).toEqual([]);

    // a bad LSN gets a clear error naming what is available
    const tooOld = await runCli(h, ['replay', '--from-lsn', '0/10']);
    expect(tooOld.code).toBe(2);
    expect(tooOld.stderr).toMatch(/older than the topic retains.*oldest LSN every partition still holds is \d+\/[0-9A-F]+/);
    const oldest = /holds is (\S+);/.exec(tooOld.stderr)![1];
    expect((await runCli(h, ['replay', '--from-lsn', 'zz'])).stderr).toMatch(/not an LSN/);

    // Redis loses the state (only this test's keys: the dev Redis is shared) → replay from the oldest LSN rebuilds it
    await svc.service.stop();
    await svc.done;
    const all = await h.redis.keys(`${h.prefix}:*`);
    await h.redis.del(...all);
    expect((await h.diff()).length).toBeGreaterThan(0);
    const rebuilt = await runCli(h, ['replay', '--from-lsn', oldest]);
    expect(rebuilt.stderr).toBe('');
    expect(rebuilt.code).toBe(0);
    expect(await h.diff()).toEqual([]);

    // damage buckets after the middle LSN, replay from it while an aggregator runs and more changes arrive
    const svc2 = h.startInProcess();
    const minuteKeys = await h.redis.keys(`${h.prefix}:{p*}:m:*`);
    for (const k of minuteKeys.slice(0, 20)) await h.redis.hset(k, '0', '999,999');
    const dayKeys = await h.redis.keys(`${h.prefix}:{p*}:d:*`);
    for (const k of dayKeys.slice(0, 5)) await h.redis.del(k);
    expect((await h.diff()).length).toBeGreaterThan(0);
    const replaying = runCli(h, ['replay', '--from-lsn', middle]);
    await load(h, 6_001, 2_000);
    const r = await replaying;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await h.caughtUp();
    expect(await h.diff()).toEqual([]);
    await svc2.service.stop();
  });

  it('replay rebuilds every bucket exactly: hot merchants, late rows, updates, deletes, sums written in several rounds', async () => {
    h = await harness({ partitions: 4, hot: ['1', '2', '3'] });
    h.cdc.heartbeats();
    await load(h, 1, 4_000);
    // hot merchants: a few hundred more payments each, in the same minutes
    const now = Date.now();
    await h.cdc.bulkInsert(h.db, 'payments',
      `INSERT INTO payments (payment_id, merchant_id, amount, approved_at)
         SELECT g, 1 + g % 3, 1000 + g, to_timestamp($2::double precision / 1000 - (g % 5) * 60) FROM generate_series($1::bigint, $1::bigint + 899) g RETURNING *`, [100_001, now]);
    // late rows: committed now, dated 26 and 40 hours back (closed minutes of earlier days)
    for (let i = 0; i < 30; i++) {
      await h.cdc.insertPayment(h.db, { id: 200_000 + i, merchant: 1 + (i % 7), amount: 5000 + i, at: new Date(now - 26 * 3600_000 - i * 61_000) });
      await h.cdc.insertPayment(h.db, { id: 200_100 + i, merchant: 1 + (i % 4), amount: 7000 + i, at: new Date(now - 40 * 3600_000 + i * 60_000) });
    }
    // updates (amount, time, merchant: rows move between merchants and partitions) and deletes, of payments and cancels
    // (at most 46 hours back: a minute bucket's key lives 2 days after the end of its 6-hour block, so a row dated
    // 47–49 hours back may already be past the minute tier, depending on the hour the test runs)
    for (let id = 7; id <= 4_000; id += 97) await h.cdc.update(h.db, 'payments', id, { amount: 123_456 + id, approved_at: new Date(now - (id % 47) * 3_600_000) });
    for (let id = 11; id <= 4_000; id += 131) await h.cdc.update(h.db, 'payments', id, { merchant_id: 1 + ((id * 13) % 150) });
    for (let id = 5; id <= 4_000; id += 89) if (id % 10 !== 0) await h.cdc.delete(h.db, 'payments', id); // (every 10th has a cancel)
    for (let id = 20; id <= 4_000; id += 170) await h.cdc.delete(h.db, 'payment_cancels', id);
    for (let id = 30; id <= 4_000; id += 210) if ((id - 20) % 170 !== 0) await h.cdc.update(h.db, 'payment_cancels', id, { amount: 42 });
    await h.cdc.update(h.db, 'payments', 100_002, { amount: 1 }); // a hot merchant's row
    await h.cdc.delete(h.db, 'payments', 100_003);
    h.cdc.heartbeats();
    await h.publish();
    const svc = h.startInProcess();
    await h.caughtUp();
    expect(await h.diff()).toEqual([]);
    const win = new WindowSums(h.reader);
    await expectWindowExact(h, win);
    await svc.service.stop();
    await svc.done;

    // Redis loses this test's state; a replay from the oldest LSN writing its sums every 700 facts (so later rounds
    // add to keys the earlier ones set) rebuilds every bucket
    const all = await h.redis.keys(`${h.prefix}:*`);
    await h.redis.del(...all);
    expect((await h.diff()).length).toBeGreaterThan(0);
    await expectWindowExact(h, win);
    const cfg = readConfig(aggregatorSpec, h.env);
    const kafka = createKafka(cfg, { clientId: 'replay-test' });
    const tooOld = await runCli(h, ['replay', '--from-lsn', '0/10']);
    const oldest = /holds is (\S+);/.exec(tooOld.stderr)![1];
    const r = await replay({ kafka, redis: h.redis, cfg, log: logger.child({ test: h.prefix }), fromLsn: oldest, maxFacts: 700 });
    expect(r.changes).toBeGreaterThan(5_000);
    expect(await h.diff()).toEqual([]);
    // the rebuilt window-index hashes carry a version (the replay's token and call), so the window re-reads them
    const windowKeys = await h.redis.keys(`${h.prefix}:*:xm:*`);
    expect(windowKeys.length).toBeGreaterThan(0);
    for (const k of windowKeys) expect(await h.redis.hget(k, '~v')).toMatch(/:\d+$/);
    await expectWindowExact(h, win);

    // the live path continues exactly after the replay (offsets, positions, watermarks, TTL records)
    const svc2 = h.startInProcess();
    for (let k = 0; k < 20; k++) await h.cdc.update(h.db, 'payments', 100_010 + 7 * k, { amount: 99, merchant_id: 4 + k });
    for (let k = 0; k < 10; k++) await h.cdc.delete(h.db, 'payments', 200_000 + k);
    await load(h, 300_001, 500);
    await h.caughtUp();
    expect(await h.diff()).toEqual([]);
    await expectWindowExact(h, win);
    await svc2.service.stop();
  });
});
