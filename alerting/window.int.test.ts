/**
 * The in-memory window (window.ts) over the real reader (aggregator/read.ts) and buckets written through the
 * aggregator's apply path: after every step — a new closed minute, late rows into old minutes, DELETEs and an
 * UPDATE that moves a payment to another merchant, hot-merchant shards — its sums equal a full `totalsByMerchant`.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Applier } from '../aggregator/apply.ts';
import { retentionOf } from '../aggregator/config.ts';
import { DayClock, keys } from '../aggregator/layout.ts';
import { buildPlan, candidateCache, type Msg } from '../aggregator/plan.ts';
import { createBucketReader } from '../aggregator/read.ts';
import { FakeCdc } from '../aggregator/testing.ts';
import type { Totals } from '../lib/buckets.ts';
import { referenceMapping } from '../lib/mapping.ts';
import { HOUR, MINUTE } from '../lib/time.ts';
import { services, uniqueName } from '../test/helpers/services.ts';
import { WindowSums } from './window.ts';

const TZ = 'Asia/Seoul';
const PARTITIONS = 6;
const SHARDS = 4;

/** Applies what the fake cdc queued, per partition, as the aggregator does. */
async function flush(redis: Redis, prefix: string, cdc: FakeCdc, applier: Applier, next: Map<number, bigint>): Promise<void> {
  const clock = new DayClock(TZ);
  const candidates = candidateCache(PARTITIONS, SHARDS);
  const byPartition = new Map<number, string[]>();
  for (const k of cdc.queue.splice(0)) (byPartition.get(k.partition) ?? byPartition.set(k.partition, []).get(k.partition)!).push(k.value);
  for (const [p, values] of byPartition) {
    const first = next.get(p) ?? 0n;
    const msgs: Msg[] = values.map((v, j) => ({ offset: String(first + BigInt(j)), value: Buffer.from(v) }));
    const wm = await redis.get(keys.watermark(prefix, p));
    const plan = buildPlan(msgs, {
      prefix, partition: p, partitions: PARTITIONS, hotShards: SHARDS, mapping: referenceMapping, clock,
      retention: retentionOf({ minuteTtlDays: 2, hourTtlDays: 36, dayTtlDays: 400 }), windowKeepMinutes: 240,
      allowedLatenessMs: 5000, now: Date.now(), watermark: wm ? Number(wm) : null, candidates,
    });
    const res = await applier.apply(p, plan, { mode: first === 0n ? 'init' : 'live', first: String(first), next: String(first + BigInt(values.length)), windowKeepMinutes: 240 });
    expect(res.status).toBe('ok');
    next.set(p, first + BigInt(values.length));
  }
}

function plain(m: Map<string, Totals>): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [k, t] of [...m].sort(([a], [b]) => a.localeCompare(b))) o[k] = `${t.approvals}/${t.approvedAmount}/${t.cancels}/${t.canceledAmount}`;
  return o;
}

describe('WindowSums', () => {
  let redis: Redis;
  const prefix = uniqueName('win');
  beforeAll(() => { redis = new Redis(services().REDIS_URL); });
  afterAll(async () => {
    const ks = await redis.keys(`${prefix}:*`);
    if (ks.length) await redis.del(...ks);
    redis.disconnect();
  });

  it('equals a full read after new minutes, late rows, deletes, a merchant move and hot shards', async () => {
    const cdc = new FakeCdc(PARTITIONS, SHARDS, new Set(['hot']));
    const applier = new Applier(redis, prefix);
    const next = new Map<number, bigint>();
    const reader = createBucketReader(redis, { prefix, partitions: PARTITIONS, hotShards: SHARDS, tz: TZ });
    const win = new WindowSums(reader);
    const t0 = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR + 17 * MINUTE; // window crosses an hour
    let id = 0;
    const iso = (ms: number) => new Date(ms).toISOString();
    const pay = (m: string, at: number, amount = 1000) => {
      const row = { payment_id: String(++id), merchant_id: m, amount: String(amount), approved_at: iso(at) };
      cdc.change('public.payments', 'insert', row, null, iso(at + 1000));
      return row;
    };
    const cancel = (m: string, at: number) => {
      const row = { cancel_id: String(++id), payment_id: '1', merchant_id: m, amount: '300', canceled_at: iso(at) };
      cdc.change('public.payment_cancels', 'insert', row, null, iso(at + 1000));
      return row;
    };
    let seed = 1;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const merchants = ['hot', ...Array.from({ length: 30 }, (_, i) => `m${i}`)];
    const rows: { row: Record<string, string>; table: string }[] = [];

    for (let M = t0; M < t0 + 75 * MINUTE; M += MINUTE) {
      for (let k = 0; k < 8; k++) rows.push({ row: pay(merchants[rnd(merchants.length)], M + rnd(60) * 1000, 100 + rnd(5000)), table: 'payments' });
      rows.push({ row: cancel(merchants[rnd(merchants.length)], M + rnd(60) * 1000), table: 'payment_cancels' });
      const step = (M - t0) / MINUTE;
      if (step % 7 === 3) {
        // late rows well inside the window, any age
        pay(merchants[rnd(merchants.length)], M - (5 + rnd(50)) * MINUTE);
        cancel('hot', M - 40 * MINUTE);
      }
      if (step % 11 === 5 && rows.length > 50) {
        // DELETE of an old payment, and an UPDATE moving another to a different merchant (corrections)
        const del = rows[rows.length - 1 - rnd(40)];
        cdc.change(`public.${del.table}`, 'delete', null, del.row, iso(M + 30_000));
        const mv = rows.find((r) => r.table === 'payments' && r.row.merchant_id !== 'm29')!;
        const moved = { ...mv.row, merchant_id: 'm29' };
        cdc.change('public.payments', 'update', moved, mv.row, iso(M + 30_000));
        mv.row = moved;
      }
      cdc.heartbeats(iso(M + MINUTE + 5000));
      await flush(redis, prefix, cdc, applier, next);

      const end = M + MINUTE;
      const from = end - 60 * MINUTE;
      const hs = Math.floor(M / HOUR) * HOUR;
      const got = await win.read(from, hs, end);
      expect(plain(got.window)).toEqual(plain(await reader.totalsByMerchant(from, end, '1m')));
      expect(plain(got.hour)).toEqual(plain(await reader.totalsByMerchant(hs, end, '1m')));
      if (step > 0 && step % 7 !== 3 && step % 11 !== 5) expect(got.slicesRead).toBeLessThanOrEqual(PARTITIONS);
    }
  });
});
