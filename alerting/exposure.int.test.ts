/**
 * The exposure tracker (exposure.ts) over the real reader and buckets written through the aggregator's apply path:
 * at every closed minute its owing set and exposures equal a full read (store `readExposures`) of every merchant —
 * through new minutes, rows late by minutes (inside the last hour), about an hour, hours and days (named by the
 * changed-merchant index once 30 minutes late), a DELETE and an UPDATE moving a payment to another merchant, a hot merchant's shards,
 * payouts becoming paid, one settling through a minute inside the last hour, a payout corrected, and on the D+N
 * schedule across a local midnight; at that midnight most merchants' payouts become paid (their kept sums lose the
 * range newly settled — read ahead of the midnight — instead of being read whole; a cancel landing in that range after
 * it was read ahead drops it). Most minutes read nothing from the store for money at all. A
 * backtest's history of the same minutes (backtest/exposure.ts) equals a full read at every minute too.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketWriter, createBucketReader, readExposures, type Exposure, type Settlement } from '../aggregator/store/index.ts';
import { DAY, dayStart, HOUR, MINUTE, minuteStart } from '../lib/time.ts';
import { services, uniqueName } from '../test/harness/services.ts';
import { dropKeys } from '../test/harness/index.ts';
import { ExposureHistory } from './backtest/exposure.ts';
import { ExposureTracker, exposureInstant } from './exposure.ts';
import { WindowSums } from './window.ts';

const TZ = 'Asia/Seoul';
const PARTITIONS = 4;
const SHARDS = 3;

function owingOf(all: Map<string, Exposure>): Record<string, Exposure> {
  const o: Record<string, Exposure> = {};
  for (const [m, e] of [...all].sort(([a], [b]) => a.localeCompare(b))) if (e.receivable !== '0') o[m] = e;
  return o;
}

describe('ExposureTracker', () => {
  let redis: Redis;
  const prefix = uniqueName('exp');
  beforeAll(() => { redis = new Redis(services().REDIS_URL); });
  afterAll(async () => {
    await dropKeys(redis, `${prefix}*`);
    redis.disconnect();
  });

  for (const settlement of [{ kind: 'payouts' }, { kind: 'days', days: 2, tz: TZ }] as Settlement[]) {
    it(`equals a full read every minute (${settlement.kind})`, async () => {
      const p = `${prefix}${settlement.kind}`;
      const writer = new BucketWriter(redis, { prefix: p, partitions: PARTITIONS, hotShards: SHARDS, tz: TZ, hot: new Set(['hot']) });
      const cdc = writer.cdc;
      const reader = createBucketReader(redis, { prefix: p, partitions: PARTITIONS, hotShards: SHARDS, tz: TZ });
      const win = new WindowSums(reader, { recent: true });
      const tracker = new ExposureTracker(reader, settlement, async () => new Set(), { unreadAtClose: Infinity });
      // yesterday's local midnight inside the run (the D+N schedule moves there); always hours in the past
      const midnight = dayStart(Date.now(), TZ) - DAY;
      const t0 = midnight - 100 * MINUTE;
      const iso = (ms: number) => new Date(ms).toISOString();
      let id = 0, seed = 7;
      const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
      const merchants = ['hot', ...Array.from({ length: 16 }, (_, i) => `m${i}`)];
      const pay = (m: string, at: number, amount: number, commit: number) => {
        const row = { payment_id: String(++id), merchant_id: m, amount: String(amount), approved_at: iso(at) };
        cdc.change('public.payments', 'insert', row, null, iso(commit));
        return row;
      };
      const cancel = (m: string, at: number, amount: number, commit: number) =>
        cdc.change('public.payment_cancels', 'insert', { cancel_id: String(++id), payment_id: '1', merchant_id: m, amount: String(amount), canceled_at: iso(at) }, null, iso(commit));
      const payout = (m: string, coversTo: number, paidAt: number, commit: number) => {
        const row = { payout_id: String(++id), merchant_id: m, amount: '1000', covers_to: iso(coversTo), paid_at: iso(paidAt) };
        cdc.change('public.payouts', 'insert', row, null, iso(commit));
        return row;
      };

      // history: days of sales, some canceled later; payouts settling most merchants through two days ago
      for (const m of merchants) {
        for (let d = 6; d >= 1; d--) pay(m, t0 - d * DAY + rnd(20) * HOUR, 50_000 + rnd(50_000), t0 - 2 * HOUR);
        if (rnd(3) > 0 || m === 'm8' || m === 'm9') payout(m, dayStart(t0, TZ) - DAY, dayStart(t0, TZ) + HOUR - DAY, t0 - 2 * HOUR);
        // the next payouts, known ahead and paid at the midnight inside the run: through the day before (a whole local
        // day moves from S to S'), one through the middle of that day, one through the last hour's start
        if (m !== 'm3') payout(m, m === 'm6' ? midnight - DAY + 7 * HOUR + 13 * MINUTE : m === 'm7' || m === 'm9' ? midnight - 60 * MINUTE : dayStart(t0, TZ), midnight, t0 - 2 * HOUR);
      }
      cdc.heartbeats(iso(t0 - HOUR));
      await writer.flush();

      const rows: Record<string, string>[] = [];
      let reads = 0, quiet = 0, departed = 0, owingSeen = 0, prepared = 0, atMidnight = { shifted: 0, recomputed: 0, shiftReads: 0 };
      let corrected: Record<string, string> | null = null;
      for (let M = t0; M < t0 + 140 * MINUTE; M += MINUTE) {
        const step = (M - t0) / MINUTE;
        const commit = M + 30_000;
        for (let k = 0; k < 6; k++) rows.push(pay(merchants[rnd(merchants.length)], M + rnd(60) * 1000, 1000 + rnd(9000), commit));
        cancel(merchants[rnd(merchants.length)], M + rnd(60) * 1000, 5000 + rnd(30_000), commit);
        if (step % 9 === 4) cancel(merchants[rnd(merchants.length)], M - (3 + rnd(40)) * MINUTE, 40_000, commit); // late, inside the hour
        if (step % 11 === 2) cancel(merchants[rnd(merchants.length)], M - (50 + rnd(30)) * MINUTE, 45_000, commit); // about an hour late
        if (step % 13 === 6) cancel(merchants[rnd(merchants.length)], M - (2 * HOUR + rnd(5) * MINUTE), 60_000, commit); // hours late
        if (step % 29 === 10) cancel('hot', M - 3 * DAY, 200_000, commit); // a payment settled days ago, canceled now
        if (step % 17 === 8 && rows.length > 40) {
          const del = rows.splice(rows.length - 1 - rnd(30), 1)[0];
          cdc.change('public.payments', 'delete', null, del, iso(commit));
          const mv = rows[rnd(rows.length - 1)];
          const moved = { ...mv, merchant_id: mv.merchant_id === 'm15' ? 'm14' : 'm15' };
          cdc.change('public.payments', 'update', moved, mv, iso(commit));
          rows[rows.indexOf(mv)] = moved;
        }
        if (step === 20) payout('m3', M - 10 * MINUTE, M + 5 * MINUTE, commit); // S inside the last hour, paid in 5 minutes
        if (step === 30) corrected = payout('m4', dayStart(t0, TZ), M + 2 * MINUTE, commit);
        if (step === 40 && corrected) {
          const moved = { ...corrected, covers_to: iso(M - 90 * MINUTE) };
          cdc.change('public.payouts', 'update', moved, corrected, iso(commit));
        }
        if (step === 50) payout('m5', M - 3 * HOUR, M + 30 * MINUTE, commit);
        // a cancel inside the range the midnight's payouts settle, read ahead by then: it names m8, which drops that
        if (step === 70) cancel('m8', midnight - DAY - 5 * HOUR, 5_000_000, commit);
        // m9's payout settles through a minute still inside the last hour until just before midnight: not read ahead
        // before then, so this cancel 23 minutes late (not named) is in what is taken off at midnight
        if (step === 61) cancel('m9', midnight - 62 * MINUTE, 5_000_000, commit);
        await writer.flush(); // the minute's rows, then the heartbeat that closes it
        cdc.heartbeats(iso(M + MINUTE + 5000));
        await writer.flush();

        const end = M + MINUTE;
        await win.read(end - 60 * MINUTE, Math.max(Math.floor(M / HOUR) * HOUR, dayStart(M, TZ)), end);
        const recent = win.recent();
        departed += recent.departed.length;
        const now = exposureInstant(M);
        const u = await tracker.update(now, recent);
        tracker.committed(u);
        prepared += await tracker.prepare(Infinity); // as the evaluator does between two minutes
        if (M === midnight) atMidnight = { shifted: u.shifted, recomputed: u.recomputed, shiftReads: u.shiftReads };
        if (step > 0) {
          reads += u.recomputed;
          if (u.recomputed === 0) quiet++;
        }
        const full = await readExposures(reader, merchants, now, settlement);
        const want = owingOf(full);
        expect(owingOf(u.owing), `minute ${step} (${iso(M)})`).toEqual(want);
        owingSeen += Object.keys(want).length;
      }
      expect(departed).toBeGreaterThan(50); // minutes left the last hour and were carried on here
      expect(owingSeen).toBeGreaterThan(20); // merchants owed: the comparison was not of empty sets
      expect(quiet).toBeGreaterThan(60); // most minutes read no merchant's money from the store
      expect(reads).toBeLessThan(merchants.length * 30);
      // at midnight every merchant's settled-through time moved (payouts paid; the D+N schedule's new day): their
      // kept sums were adjusted, and only the merchants without a payout before were read whole
      expect(atMidnight.shifted).toBeGreaterThan(merchants.length / 2);
      expect(atMidnight.recomputed).toBeLessThan(merchants.length / 2);
      // … from ranges read ahead (m8's, dropped when its late cancel named it, was read ahead again)
      expect(prepared).toBeGreaterThan(merchants.length / 2);
      expect(atMidnight.shiftReads).toBe(0);

      // A backtest's history of the same minutes, over the buckets as they stand now (backtest/exposure.ts), fed the
      // minutes' totals as the engine reads them: every merchant's receivable equals a full read at each instant.
      const history = new ExposureHistory(reader, settlement, { from: t0, to: t0 + 140 * MINUTE });
      const minutes = await reader.minuteTotals(t0, t0 + 140 * MINUTE);
      for (let M = t0; M < t0 + 140 * MINUTE; M += MINUTE) {
        await history.advance(M, minutes.get(M) ?? new Map());
        const full = await readExposures(reader, merchants, exposureInstant(M), settlement);
        const got = Object.fromEntries(merchants.map((m) => [m, history.receivable(m).toString()]));
        expect(got, `backtest minute ${(M - t0) / MINUTE}`).toEqual(Object.fromEntries(merchants.map((m) => [m, full.get(m)!.receivable])));
      }
    });
  }

  it('after a start reads what the minute judges, and every other merchant within minutes', async () => {
    const p = `${prefix}lazy`;
    const settlement: Settlement = { kind: 'payouts' };
    const writer = new BucketWriter(redis, { prefix: p, partitions: PARTITIONS, hotShards: SHARDS, tz: TZ, hot: new Set() });
    const cdc = writer.cdc;
    const reader = createBucketReader(redis, { prefix: p, partitions: PARTITIONS, hotShards: SHARDS, tz: TZ });
    const win = new WindowSums(reader, { recent: true });
    // merchant_exposure held q0 and a1 at the last committed minute; two unread merchants are read at each close
    const tracker = new ExposureTracker(reader, settlement, async () => new Set(['q0', 'a1']), { unreadAtClose: 2 });
    const t0 = minuteStart(Date.now()) - 3 * HOUR;
    const S = dayStart(t0, TZ) - DAY;
    const iso = (ms: number) => new Date(ms).toISOString();
    let id = 0;
    const pay = (m: string, at: number, amount: number, commit: number) =>
      cdc.change('public.payments', 'insert', { payment_id: String(++id), merchant_id: m, amount: String(amount), approved_at: iso(at) }, null, iso(commit));
    const cancel = (m: string, at: number, amount: number, commit: number) =>
      cdc.change('public.payment_cancels', 'insert', { cancel_id: String(++id), payment_id: '1', merchant_id: m, amount: String(amount), canceled_at: iso(at) }, null, iso(commit));
    const payout = (m: string, coversTo: number, paidAt: number, commit: number) =>
      cdc.change('public.payouts', 'insert', { payout_id: String(++id), merchant_id: m, amount: '1000', covers_to: iso(coversTo), paid_at: iso(paidAt) }, null, iso(commit));
    const active = ['a0', 'a1', 'a2'];
    const quiet = Array.from({ length: 20 }, (_, i) => `q${i}`);
    const merchants = [...active, ...quiet];
    // history: settled through S, sales since; every fourth quiet merchant (and a1) canceled more than it sold since S
    for (const m of merchants) {
      payout(m, S, S + HOUR, S + HOUR);
      pay(m, S - 2 * HOUR, 300_000, S - HOUR);
      pay(m, S + 2 * HOUR, m === 'q2' ? 1_000_000 : 100_000, S + 3 * HOUR);
      if ((m.startsWith('q') && Number(m.slice(1)) % 4 === 0) || m === 'a1') cancel(m, S + 4 * HOUR, 250_000, S + 5 * HOUR);
    }
    // q5 owes until a payout settling its sale (not its cancel) is paid mid-run: it then owes more
    cancel('q5', S + 5 * HOUR, 150_000, S + 6 * HOUR);
    payout('q5', S + 3 * HOUR, t0 + 9 * MINUTE + 30_000, t0 - HOUR);
    cdc.heartbeats(iso(t0 - HOUR));
    await writer.flush();

    const readers: number[] = [];
    for (let M = t0; M < t0 + 20 * MINUTE; M += MINUTE) {
      const step = (M - t0) / MINUTE;
      const commit = M + 30_000;
      for (const m of active) pay(m, M + 10_000, 5_000, commit);
      if (step === 1) cancel('q17', S + 7 * HOUR, 5_000_000, commit); // hours late: named, read at once
      if (step === 3) cancel('q2', M + 20_000, 100_000, commit); // an unread merchant cancels: read, owes nothing
      await writer.flush();
      cdc.heartbeats(iso(M + MINUTE + 5000));
      await writer.flush();
      const end = M + MINUTE;
      await win.read(end - 60 * MINUTE, Math.max(Math.floor(M / HOUR) * HOUR, dayStart(M, TZ)), end);
      const now = exposureInstant(M);
      const unreadBefore = new Set(tracker.unread);
      const u = await tracker.update(now, win.recent());
      tracker.committed(u);
      readers.push(u.recomputed);
      const full = owingOf(await readExposures(reader, merchants, now, settlement));
      const got = owingOf(u.owing);
      // what was read is exact; what was not is neither judged nor counted owing
      const read = Object.fromEntries(Object.entries(full).filter(([m]) => !tracker.unread.has(m)));
      expect(got, `minute ${step}`).toEqual(read);
      expect(u.unread).toBe(tracker.unread.size);
      if (step === 0) {
        expect(u.recomputed).toBe(4); // q0 and a1 (owing when last committed) and two unread: not the active merchants' sales
        expect(Object.keys(got)).toEqual(expect.arrayContaining(['a1', 'q0']));
        expect(Object.keys(full).length).toBeGreaterThan(Object.keys(got).length); // some owing merchants are still unread
      } else if (step < 4) {
        expect(u.unread).toBe(Math.max(0, unreadBefore.size - 2 - (unreadBefore.has('q17') && step === 1 ? 1 : 0) - (unreadBefore.has('q2') && step === 3 ? 1 : 0)));
      }
      if (step === 1) expect(got.q17?.receivable).toBeDefined();
      // the evaluator reads the rest between minutes, judged from the next minute on
      if (step === 4) {
        expect(await tracker.readUnread(Infinity)).toBe(u.unread);
        expect(tracker.unread.size).toBe(0);
      }
      if (step > 4) expect(got).toEqual(full);
      if (step === 10) expect(got.q5?.canceledSinceSettled).toBe('150000');
    }
    expect(readers.slice(6).every((n) => n < 3)).toBe(true); // once all were read, a minute reads (almost) nothing
  });
});
