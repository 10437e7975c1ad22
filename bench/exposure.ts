/**
 * Money at risk when every merchant is paid at once (`npm run bench -- --only exposure`; bench/growth-10x.ts runs it
 * at 100,000 and 1,000,000 merchants). The evaluator's exposure tracker (alerting/exposure.ts) over the real reader
 * and a private Redis written through the aggregator's apply path (the store's BucketWriter):
 *
 * Each merchant has a payment on each of the last three local days, a fifth of them one about 100 minutes ago (active
 * in the first minute's last hour, a tenth of those with a cancel), a tenth a cancel 45 minutes ago; a payout paid two days ago settling it through the start of the day before yesterday, and
 * the next payout, known ahead, settling it through a local midnight at least two hours back and paid at T, a
 * minute 20 minutes ago — as a daily settlement pays every merchant at the same instant. The tracker then decides
 * minutes T − 60 … T, each after the window's read and followed by what the evaluator reads between two minutes at the
 * live edge: the coming settlement's ranges (`prepare`, PREPARE_BUDGET_MS) and merchants left unread (`readUnread`,
 * UNREAD_MS a minute):
 * - exposure_first_minute_ms: T − 60, the first minute after a start: the merchants with a cancel in its last hour
 *   (2%) read whole (their payouts and sums since S), exposure_first_minute_read of them;
 *   the rest are left unread and read by the read ahead and each minute's update (exposure_unread_minutes: minutes
 *   until none is left).
 * - exposure_full_read_ms: every merchant read whole at once (a tracker told to read every unread merchant at the
 *   close), what the first minute cost before merchants were left unread; a payout becoming paid cost this much per
 *   merchant paid before the kept sums were shifted.
 * - exposure_quiet_minute_ms: the largest of the minutes between (nothing paid, nothing named; without the read ahead).
 * - exposure_paid_minute_ms: T, every merchant's payout becomes paid: the kept sums lose the day newly settled
 *   (exposure_paid_minute_shifted merchants; exposure_paid_minute_read_now of them not read ahead;
 *   exposure_read_ahead: merchants read ahead over the 60 minutes; exposure_paid_minute_read_whole: read whole).
 * BENCH_EXPOSURE_MERCHANTS: the number of merchants when run alone (default 100,000).
 */
import { Redis } from 'ioredis';
import { BucketWriter, createBucketReader } from '../aggregator/store/index.ts';
import { ExposureTracker, exposureInstant, PREPARE_BUDGET_MS, WindowSums } from '../alerting/index.ts';
import { dayStart, HOUR, MINUTE, minuteStart } from '../lib/time.ts';
import { privateRedis } from './aggregator.ts';

const TZ = 'Asia/Seoul';
const PARTITIONS = 12;
const HOT_SHARDS = 8;
/** Minutes evaluated before T, each followed by the evaluator's read ahead (`prepare`). */
const AHEAD_MINUTES = 60;
/** The read ahead's time a minute: the 5-s allowed lateness less the second the evaluator keeps. */
const READ_AHEAD_MS = 4000;
/**
 * Merchants left unread after a start are read in that time and while the evaluator waits for the next minute to end
 * (at most half of about 50 s): their reading time a minute.
 */
const UNREAD_MS = READ_AHEAD_MS + 25_000;

export async function benchExposure(_env: NodeJS.ProcessEnv, scale: { merchants?: number } = {}): Promise<Record<string, number>> {
  const N = scale.merchants ?? Number(process.env.BENCH_EXPOSURE_MERCHANTS ?? 100_000);
  const own = await privateRedis();
  if (!own) throw new Error('exposure bench: could not start a private redis-server');
  const redis = new Redis(own.url);
  try {
    const prefix = 'bx';
    const now = Date.now();
    const T = minuteStart(now) - 20 * MINUTE;
    const settled = dayStart(now - 2 * HOUR, TZ); // S': a local midnight before the last hour
    const before = dayStart(settled - HOUR, TZ); // S: the one before
    const w = new BucketWriter(redis, { prefix, partitions: PARTITIONS, hotShards: HOT_SHARDS, tz: TZ });
    const t0 = performance.now();
    let events = 0;
    const flush = async () => { if (w.cdc.queue.length >= 50_000) events += await w.flush(); };
    for (let i = 0; i < N; i++) {
      const m = `m${i}`;
      w.payout(m, 1000, before, before + 2 * HOUR, new Date(before + 2 * HOUR).toISOString());
      await flush();
    }
    for (const day of [dayStart(before - HOUR, TZ), before, settled]) {
      for (let i = 0; i < N; i++) w.approval(`m${i}`, 50_000 + (i % 97) * 1000, Math.min(day + (i % 20) * HOUR + (i % 3600) * 1000, now - 3 * HOUR));
      await flush();
    }
    for (let i = 0; i < N; i++) {
      const m = `m${i}`;
      if (i % 5 === 0) w.approval(m, 20_000, now - 100 * MINUTE + (i % 60) * 1000);
      if (i % 50 === 0) w.cancel(m, 5_000, now - 99 * MINUTE + (i % 60) * 1000);
      if (i % 10 === 0) w.cancel(m, 80_000 + (i % 7) * 10_000, now - 45 * MINUTE + (i % 60) * 1000);
      w.payout(m, 1000, settled, T, new Date(now - 60 * MINUTE).toISOString());
      await flush();
    }
    w.cdc.heartbeats(new Date(now).toISOString());
    events += await w.flush();
    const writeS = (performance.now() - t0) / 1000;

    const reader = createBucketReader(redis, { prefix, partitions: PARTITIONS, hotShards: HOT_SHARDS, tz: TZ });
    const win = new WindowSums(reader, { recent: true });
    const tracker = new ExposureTracker(reader, { kind: 'payouts' }, async () => new Set());
    const minutes: { ms: number; recomputed: number; shifted: number; shiftReads: number; owing: number; unread: number }[] = [];
    let prepared = 0, unreadMinutes = -1;
    for (let M = T - AHEAD_MINUTES * MINUTE; M <= T; M += MINUTE) {
      const end = M + MINUTE;
      const a = performance.now();
      await win.read(end - 60 * MINUTE, Math.max(Math.floor(M / HOUR) * HOUR, dayStart(M, TZ)), end);
      const b = performance.now();
      const u = await tracker.update(exposureInstant(M), win.recent(), { unreadToRead: 0 }); // as for a live minute
      tracker.committed(u);
      minutes.push({ ms: performance.now() - b, recomputed: u.recomputed, shifted: u.shifted, shiftReads: u.shiftReads, owing: u.owing.size, unread: u.unread });
      if (u.unread === 0 && unreadMinutes < 0) unreadMinutes = (M - T) / MINUTE + AHEAD_MINUTES;
      if (M === T - AHEAD_MINUTES * MINUTE || M === T) {
        console.error(`   exposure ${N} merchants, minute T${(M - T) / MINUTE || ''}: window read ${(b - a).toFixed(0)} ms, money at risk ${(performance.now() - b).toFixed(0)} ms (read whole ${u.recomputed}, left unread ${u.unread}, shifted ${u.shifted}, of them read now ${u.shiftReads}, owing ${u.owing.size}; read ahead before: ${prepared})`);
      }
      if (M < T) { // as the evaluator does between two minutes
        const t = performance.now();
        prepared += await tracker.prepare(Math.min(PREPARE_BUDGET_MS, READ_AHEAD_MS));
        await tracker.readUnread(UNREAD_MS - (performance.now() - t));
      }
    }
    if (unreadMinutes < 0) throw new Error(`exposure bench: ${minutes[minutes.length - 1].unread} merchants were still unread at T`);
    // every merchant read at the first minute's close, as before merchants were left unread
    const full = new ExposureTracker(reader, { kind: 'payouts' }, async () => new Set(), { unreadAtClose: Infinity });
    const fullWin = new WindowSums(reader, { recent: true });
    const M0 = T - AHEAD_MINUTES * MINUTE;
    await fullWin.read(M0 + MINUTE - 60 * MINUTE, Math.max(Math.floor(M0 / HOUR) * HOUR, dayStart(M0, TZ)), M0 + MINUTE);
    const c = performance.now();
    const fu = await full.update(exposureInstant(M0), fullWin.recent());
    const fullMs = performance.now() - c;
    console.error(`   exposure ${N} merchants, every merchant read at the first minute: ${fullMs.toFixed(0)} ms (read whole ${fu.recomputed})`);
    const first = minutes[0], paid = minutes[minutes.length - 1], quiet = minutes.slice(1, -1).map((m) => m.ms);
    if (paid.shifted < N * 0.9) throw new Error(`exposure bench: only ${paid.shifted} of ${N} merchants' payouts were seen becoming paid`);
    return {
      exposure_merchants: N,
      exposure_events: events,
      exposure_write_s: Math.round(writeS),
      exposure_first_minute_ms: Math.round(first.ms),
      exposure_first_minute_read: first.recomputed,
      exposure_unread_minutes: unreadMinutes,
      exposure_full_read_ms: Math.round(fullMs),
      exposure_quiet_minute_ms: Math.round(Math.max(...quiet)),
      exposure_paid_minute_ms: Math.round(paid.ms),
      exposure_paid_minute_shifted: paid.shifted,
      exposure_paid_minute_read_whole: paid.recomputed,
      exposure_paid_minute_read_now: paid.shiftReads,
      exposure_read_ahead: prepared,
      exposure_owing: paid.owing,
    };
  } finally {
    redis.disconnect();
    own.stop();
  }
}
