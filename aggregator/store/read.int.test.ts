/**
 * The reader's range reads: a short range out of a full hash (read with HMGET inside the script) and ranges that
 * cut tier keys at odd edges give exactly the buckets written, at every step; a merchant's facts in a partition
 * outside its own (an UPDATE moved a row to it) are read there.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketWriter } from './writer.ts';
import { HOUR, MINUTE } from '../../lib/time.ts';
import { services, uniqueName } from '../../test/harness/services.ts';
import { createBucketReader } from './read.ts';
import { defineScripts, hashesOf, readHashes, run } from './scripts.ts';
import { dropKeys } from '../../test/harness/index.ts';
import { candidatePartitions, partitionOfKey } from '../../lib/partition.ts';

const TZ = 'Asia/Seoul';

describe('bucket reader ranges', () => {
  let redis: Redis;
  const prefix = uniqueName('rd');
  beforeAll(() => { redis = new Redis(services().REDIS_URL); });
  afterAll(async () => {
    await dropKeys(redis, `${prefix}:*`);
    redis.disconnect();
  });

  it('returns exactly the buckets inside [from, to) at 1m, 1h and 1d', async () => {
    const w = new BucketWriter(redis, { prefix, partitions: 4, hotShards: 2, tz: TZ });
    const start = Math.floor(Date.now() / HOUR) * HOUR - 30 * HOUR;
    const truth = new Map<number, { n: number; a: bigint; c: number }>(); // minute → totals
    for (let i = 0; i < 26 * 60; i++) { // every minute of 26 hours: full quarter hashes
      const t = start + i * MINUTE;
      const n = 1 + (i % 3);
      for (let k = 0; k < n; k++) w.approval('42', 1000 + i, t + k * 1000);
      if (i % 7 === 0) w.cancel('42', 500, t + 30_000);
      truth.set(t, { n, a: BigInt(n * (1000 + i)), c: i % 7 === 0 ? 1 : 0 });
    }
    await w.flush();
    const reader = createBucketReader(redis, { prefix, partitions: 4, hotShards: 2, tz: TZ });
    const expected = (from: number, to: number, bucket: (t: number) => number) => {
      const m = new Map<number, { approvals: number; approvedAmount: bigint; cancels: number }>();
      for (const [t, x] of truth) {
        if (t < from || t >= to) continue;
        const b = bucket(t);
        const cur = m.get(b) ?? { approvals: 0, approvedAmount: 0n, cancels: 0 };
        m.set(b, { approvals: cur.approvals + x.n, approvedAmount: cur.approvedAmount + x.a, cancels: cur.cancels + x.c });
      }
      return [...m].sort(([a], [b]) => a - b).map(([t, x]) => ({ t, ...x }));
    };
    const got = async (from: number, to: number, step: '1m' | '1h' | '1d') =>
      (await reader.series('42', from, to, step)).map(({ t, approvals, approvedAmount, cancels }) => ({ t, approvals, approvedAmount, cancels }));

    for (const [from, to] of [
      [start + 400 * MINUTE, start + 420 * MINUTE], // 20 minutes out of a 360-minute quarter
      [start + 355 * MINUTE, start + 725 * MINUTE], // across quarters
      [start + 17 * MINUTE + 1, start + 23 * HOUR], // unaligned start
    ]) {
      expect(await got(from, to, '1m')).toEqual(expected(from, to, (t) => t));
      // hour buckets starting inside the range, each whole
      expect(await got(from, to, '1h')).toEqual(expected(Math.ceil(from / HOUR) * HOUR, Math.ceil(to / HOUR) * HOUR, (t) => Math.floor(t / HOUR) * HOUR));
    }
    const days = await reader.series('42', start - 2 * 86_400_000, start + 2 * 86_400_000, '1d');
    expect(days.reduce((s, p) => s + p.approvals, 0)).toBe([...truth.values()].reduce((s, x) => s + x.n, 0));
    const totals = await reader.totals(['42'], start + 400 * MINUTE, start + 420 * MINUTE);
    expect(totals.get('42')!.approvals).toBe(expected(start + 400 * MINUTE, start + 420 * MINUTE, () => 0)[0].approvals);
  });

  it('reads a merchant in a partition outside its own when an UPDATE moved its row away (its foreign set)', async () => {
    const o = { prefix: `${prefix}f`, partitions: 4, hotShards: 2, tz: TZ };
    const w = new BucketWriter(redis, o);
    const reader = createBucketReader(redis, o);
    // rows of x1 and x2 moved to y: the UPDATE is keyed to y's partition, none of x1's and x2's own, so x1's and x2's
    // removals stand there (that partition's foreign set names them)
    const ids = Array.from({ length: 200 }, (_, i) => String(1000 + i));
    const outside = (y: string) => ids.filter((m) => !candidatePartitions(m, 4, 2).includes(partitionOfKey(y, 4)));
    const y = ids.find((m) => outside(m).length >= 2)!;
    const [x1, x2] = outside(y);
    const at = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const iso = (t: number) => new Date(t).toISOString();
    const row = (id: string, m: string, amount: number) => ({ payment_id: id, merchant_id: m, amount: String(amount), approved_at: iso(at) });
    for (const [id, x, amount] of [['1', x1, 700], ['2', x2, 900]] as const) {
      w.cdc.change('public.payments', 'insert', row(id, x, amount), null, iso(at));
      w.cdc.change('public.payments', 'update', row(id, y, amount), row(id, x, amount), iso(at + MINUTE));
    }
    w.approval(x1, 50, at + 2 * MINUTE); // and one that stays
    await w.flush();
    // x1 alone (y's partition's foreign set is larger than the merchants asked: asked member by member), then all
    // three (the set read whole), over a range the day tier and finer tiers cut
    for (const asked of [[x1], [x1, x2, y]]) {
      const t = await reader.sinceTotals(asked, at - 10 * HOUR - 7 * MINUTE, at + HOUR);
      expect(t.get(x1)).toMatchObject({ approvals: 1, approvedAmount: 50n });
      if (asked.length > 1) expect([t.get(x2)!.approvedAmount, t.get(y)!.approvedAmount]).toEqual([0n, 1600n]);
    }
  });

  it('a hash read larger than a reply string holds comes back in several strings, each hash whole and in order', async () => {
    defineScripts(redis);
    const ks = ['a', 'empty', 'b', 'c'].map((x) => `${prefix}:big:${x}`);
    for (const k of [ks[0], ks[2], ks[3]]) {
      const fields: string[] = [];
      for (let i = 0; i < 12_000; i++) fields.push(String(i), `${k}:${'v'.repeat(40)}:${i}`);
      await redis.hset(k, ...fields);
    }
    const [reply] = await run(redis, [readHashes(ks)]);
    expect((reply as string[]).length).toBeGreaterThan(1); // ~0.7 MiB a hash: not one string
    const parts = hashesOf(reply, ks.length);
    expect(parts[1]).toBe('');
    for (const i of [0, 2, 3]) {
      const fv = parts[i].split('\0');
      expect(fv).toHaveLength(24_000);
      const h = new Map<string, string>();
      for (let j = 0; j < fv.length; j += 2) h.set(fv[j], fv[j + 1]);
      expect(h.size).toBe(12_000);
      expect([h.get('0'), h.get('11999')]).toEqual([`${ks[i]}:${'v'.repeat(40)}:0`, `${ks[i]}:${'v'.repeat(40)}:11999`]);
    }
    // and a range of fields out of one of them
    const [few] = await run(redis, [readHashes([ks[2]], [{ lo: 100, hi: 102 }])]);
    expect(hashesOf(few, 1)[0].split('\0').filter((_, j) => j % 2 === 0)).toEqual(['100', '101', '102']);
  });
});
