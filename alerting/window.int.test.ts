/**
 * The in-memory window (window.ts) over the real reader (aggregator/store) and buckets written through the
 * aggregator's apply path: after every step — a new closed minute, late rows into old minutes, DELETEs and an
 * UPDATE that moves a payment to another merchant, hot-merchant shards — its sums equal a full `totalsByMerchant`.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketWriter, createBucketReader, keys, type Totals } from '../aggregator/store/index.ts';
import { HOUR, MINUTE } from '../lib/time.ts';
import { services, uniqueName } from '../test/harness/services.ts';
import { WindowSums } from './window.ts';
import { dropKeys } from '../test/harness/index.ts';

const TZ = 'Asia/Seoul';
const PARTITIONS = 6;
const SHARDS = 4;

function plain(m: ReadonlyMap<string, Totals>): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [k, t] of [...m].sort(([a], [b]) => a.localeCompare(b))) o[k] = `${t.approvals}/${t.approvedAmount}/${t.cancels}/${t.canceledAmount}`;
  return o;
}

describe('WindowSums', () => {
  let redis: Redis;
  const prefix = uniqueName('win');
  beforeAll(() => { redis = new Redis(services().REDIS_URL); });
  afterAll(async () => {
    await dropKeys(redis, `${prefix}:*`);
    redis.disconnect();
  });

  it('equals a full read after new minutes, late rows, deletes, a merchant move and hot shards', async () => {
    const writer = new BucketWriter(redis, { prefix, partitions: PARTITIONS, hotShards: SHARDS, tz: TZ, hot: new Set(['hot']) });
    const cdc = writer.cdc;
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

    let deltas = 0;
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
      await writer.flush(); // throws unless every partition's apply is accepted

      const end = M + MINUTE;
      const from = end - 60 * MINUTE;
      const hs = Math.floor(M / HOUR) * HOUR;
      const got = await win.read(from, hs, end);
      expect(plain(got.window)).toEqual(plain(await reader.totalsByMerchant(from, end, '1m')));
      expect(plain(got.hour)).toEqual(plain(await reader.totalsByMerchant(hs, end, '1m')));
      if (step > 0 && step % 7 !== 3 && step % 11 !== 5) expect(got.slicesRead).toBeLessThanOrEqual(PARTITIONS);
      deltas += got.deltas;
    }
    // every read came after its minute ended: late rows, deletes and moves into older minutes came back as deltas
    expect(deltas).toBeGreaterThan(5);
  });
  it('re-reads a slice whose hash has no version (rebuilt by a replay) when it changes, and every slice after a replay', async () => {
    const p2 = `${prefix}x`;
    const writer = new BucketWriter(redis, { prefix: p2, partitions: 1, hotShards: 1, tz: TZ });
    const reader = createBucketReader(redis, { prefix: p2, partitions: 1, hotShards: 1, tz: TZ });
    const win = new WindowSums(reader);
    const M = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
    for (let k = 0; k < 5; k++) writer.approval(`m${k}`, 1000 + k, M - k * MINUTE + 1000);
    writer.cdc.heartbeats(new Date(M + MINUTE + 5000).toISOString());
    await writer.flush();
    const from = M - 59 * MINUTE, end = M + MINUTE;
    const full = async () => plain(await reader.totalsByMerchant(from, end, '1m'));

    let got = await win.read(from, from, end);
    expect(plain(got.window)).toEqual(await full());
    expect(got.slicesRead).toBe(60); // every minute of the window, once (55 of them empty)
    // unchanged: nothing read
    expect((await win.read(from, from, end)).slicesRead).toBe(0);

    // A hash as a replay's rebuild.lua leaves it: no version field; a write to it must still be seen (DUMP fallback).
    const key = keys.window(p2, 0, (M - 2 * MINUTE) / MINUTE);
    expect(await redis.hdel(key, '~v')).toBe(1);
    got = await win.read(from, from, end);
    expect(got.slicesRead).toBe(1); // the fingerprint changed kind: read once
    expect((await win.read(from, from, end)).slicesRead).toBe(0);
    await redis.hincrby(key, 'n:m2', 4);
    got = await win.read(from, from, end);
    expect(got.slicesRead).toBe(1);
    expect(got.window.get('m2')!.approvals).toBe(5);
    expect(plain(got.window)).toEqual(await full());

    // A replay bumps the partition's generation: every slice with a versioned hash is read again (the one without a
    // version is fingerprinted by its content).
    await redis.incr(keys.generation(p2, 0));
    expect((await win.read(from, from, end)).slicesRead).toBe(4);

    // A live apply into an old minute changes that slice's version only, and is read as a delta (the slice was read
    // after its minute ended: the late write is in the hash's late log).
    writer.approval('m9', 7, M - 3 * MINUTE + 2000);
    await writer.flush();
    got = await win.read(from, from, end);
    expect(got.slicesRead).toBe(1);
    expect(got.deltas).toBe(1);
    expect(plain(got.window)).toEqual(await full());
    // …and so is a late write that takes the merchant's amount back to 0 (its field comes back as 0)
    writer.approval('m9', -7, M - 3 * MINUTE + 2000);
    await writer.flush();
    got = await win.read(from, from, end);
    expect(got.deltas).toBe(1);
    expect(got.window.get('m9')).toEqual({ approvals: 2, approvedAmount: 0n, cancels: 0, canceledAmount: 0n });
    expect(plain(got.window)).toEqual(await full());

    // A hash a rebuild wrote (its marker field) is read whole from then on: the late log does not hold a rebuild's writes.
    const k4 = keys.window(p2, 0, (M - 4 * MINUTE) / MINUTE);
    await redis.hset(k4, '~r', '1');
    writer.approval('m4', 5, M - 4 * MINUTE + 2000);
    await writer.flush();
    got = await win.read(from, from, end);
    expect([got.slicesRead, got.deltas]).toEqual([1, 0]);
    expect(plain(got.window)).toEqual(await full());
    await dropKeys(redis, `${p2}:*`);
  });

  it('reads a slice whole when it was read before its minute ended, and as a delta after', async () => {
    const p3 = `${prefix}y`;
    const writer = new BucketWriter(redis, { prefix: p3, partitions: 1, hotShards: 1, tz: TZ });
    const reader = createBucketReader(redis, { prefix: p3, partitions: 1, hotShards: 1, tz: TZ });
    const win = new WindowSums(reader);
    const M = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
    const from = M - 59 * MINUTE, end = M + MINUTE;
    const full = async () => plain(await reader.totalsByMerchant(from, end, '1m'));
    for (let k = 0; k < 50; k++) writer.approval(`m${k}`, 1000 + k, M + 1000);
    writer.cdc.heartbeats(new Date(M + 30_000).toISOString()); // the minute is still open
    await writer.flush();
    expect((await win.read(from, from, end)).slicesRead).toBe(60);
    writer.approval('m1', 5, M + 40_000);
    writer.cdc.heartbeats(new Date(M + MINUTE + 1000).toISOString()); // now it ended (not closed: 5 s lateness)
    await writer.flush();
    let got = await win.read(from, from, end);
    expect([got.slicesRead, got.deltas]).toEqual([1, 0]); // read before the end: whole
    expect(plain(got.window)).toEqual(await full());
    // rows within the lateness, after the read: only their merchants are read
    writer.approval('m2', 9, M + 59_000);
    writer.cancel('m60', 300, M + 59_500);
    await writer.flush();
    got = await win.read(from, from, end);
    expect([got.slicesRead, got.deltas]).toEqual([1, 1]);
    expect(plain(got.window)).toEqual(await full());
    expect(await redis.zrange(keys.windowLate(p3, 0, M / MINUTE), '0', '-1')).toEqual(['m2', 'm60']);
    await dropKeys(redis, `${p3}:*`);
  });
});
