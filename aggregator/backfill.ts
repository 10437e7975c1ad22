/**
 * History backfill: the buckets of a time range rebuilt from the source tables themselves, in bulk — the source
 * sums each chunk of time per (merchant, minute) (`GROUP BY`, or per hour where the minute tier no longer keeps the
 * minutes), and the sums are written as final values through the store's rebuild (store/rebuild.ts), never row by
 * row. The history is read in a transaction on a snapshot that equals a replication slot's start (lib/snapshot.ts),
 * so every row is counted once: by this read as it stood at the slot's consistent point C, or by the changes
 * committed after C (inserts, an UPDATE's −old +new, a DELETE's −old), which land on the backfilled values.
 *
 * Two uses:
 *  - `initial`: the cdc's first start. The cdc creates its slot with the snapshot and streams only after this
 *    returns, so no change after C is in the topic yet and the aggregators have nothing to apply before the
 *    backfilled values are written.
 *  - `range` (`riskmon backfill`): a running system, live alerting going on. A temporary slot gives the snapshot
 *    and C. The range is rebuilt aside (store/swap.ts: the same layout under `<P>:bf`) while the aggregators go on
 *    applying to the live keys: the snapshot's sums, then the changes after C they have applied so far (re-read from
 *    the topic, [first offset with lsn ≥ C, stored offset)). Then, one partition at a time, once its aggregator is
 *    past C: lock it a moment, add the changes it applied since, swap its range in, bump its generation, unlock —
 *    it holds snapshot + every change after C up to its stored offset, from which its aggregator continues.
 *
 * Steps (initial): lock every partition → record `running` (store/backfill.ts) → delete the range → read the source
 * chunk by chunk (newest first, paced by `maxRowsPerSecond`), summing into one rebuild per partition (a merchant's
 * sums go to its first candidate partition; readers merge every candidate) → write → bump the generations (readers
 * drop cached slices), unlock, record `done`. Killed anywhere: the record stays `running` (the evaluator judges
 * nobody meanwhile) and the partitions locked; the next start deletes the range again and rebuilds it whole, so it
 * ends exact. (range) the same reads into the aside keys, then the swap; its locks expire unless renewed, so a
 * killed run holds nothing for long and the rerun clears what was left aside and rebuilds.
 */
import crypto from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import { locateLsn, LsnInFutureError, LsnTooOldError, TopicReader } from '../lib/kafka/index.ts';
import { offsetOf, systemClock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { formatLsn } from '../lib/lsn.ts';
import { isMerchantId, payoutsOf, type FactTable, type Mapping, type PayoutDelta } from '../lib/mapping.ts';
import { candidatePartitions } from '../lib/partition.ts';
import type { RedisClient } from '../lib/redis.ts';
import { DAY, HOUR, iso, MINUTE } from '../lib/time.ts';
import { metrics as M } from './metrics.ts';
import { forEachPartition, scan } from './replay.ts';
import {
  chunksOf, clearAside, closeGapCoveredBy, DayClock, keys, LOCK_TTL_MS, LockKeeper, PartitionRebuild, PayoutRebuild, rangeOf, resetRange, retentionOf,
  swapPartition, writeBackfill, type BackfillRecord, type SwapRange,
} from './store/index.ts';
import { candidateCache } from './store/plan.ts';

export interface BackfillConfig {
  redisPrefix: string;
  partitions: number;
  hotShards: number;
  mapping: Mapping;
  tz: string;
  topic: string;
  minuteTtlDays: number;
  hourTtlDays: number;
  dayTtlDays: number;
  windowMinutes: number;
  allowedLatenessMs: number;
}

export interface BackfillOptions {
  redis: RedisClient;
  cfg: BackfillConfig;
  log: Logger;
  /**
   * a connection inside a transaction on the slot's snapshot, the slot's consistent point, and more connections on
   * the same snapshot (lib/snapshot.ts `fork`) for parallel reads
   */
  source: { client: pg.Client; consistentPoint: bigint; fork?: () => Promise<pg.Client> };
  /** source connections reading chunks at once (default 1; more need `source.fork`) */
  readers?: number;
  kind: 'initial' | 'range';
  slot: string | null;
  fromMs: number;
  /** null: no end (the initial backfill) */
  toMs: number | null;
  /** range backfills: the topic, to re-read the changes after the consistent point the aggregators applied */
  kafka: Kafka | null;
  /** source rows per second at most (0: no limit) */
  maxRowsPerSecond: number;
  /** hours of transaction time per source query */
  chunkHours: number;
  /** take over partition locks another backfill or replay left */
  force?: boolean;
  /** cells summed per partition before they are written (tests set it low) */
  maxFacts?: number;
  now?: () => number;
}

export interface BackfillReport {
  rows: number;
  /** source groups not taken in (a merchant or amount the stream would dead-letter too) */
  skipped: number;
  topicChanges: number;
  seconds: number;
  rowsPerSecond: number;
  from: string;
  to: string | null;
}

export class BackfillLockedError extends Error {
  constructor(readonly partition: number, readonly owner: string) {
    super(`partition ${partition} is locked by "${owner}": a replay or another backfill is running, or one was interrupted — rerun with --force to take over`);
    this.name = 'BackfillLockedError';
  }
}

/** The aggregators did not get past the snapshot's position in time (nothing of the live buckets was changed). */
export class AggregatorsBehindError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AggregatorsBehindError';
  }
}

const FETCH_ROWS = 20_000;
/** How long the aggregators may take to get past the snapshot's position before a range is swapped in. */
export const CATCH_UP_MS = 120_000;
/** partitions whose last sums are written at once at the end (each pipelines its rebuild.lua calls) */
const FINISHING = 4;
const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;
const qualified = (t: string) => t.split('.').map(ident).join('.');
/** Every value as the server's text (no Date or number parsing per row). */
const TEXT = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

/** The source query of one chunk and side: per merchant and minute (or hour), the count and the amount. */
export function chunkQuery(t: FactTable, a: number, b: number, grain: 'minute' | 'hour'): string {
  return groupQuery(t, `'${grain}'`, a, b, '');
}

/**
 * The source query of pages [p0, p1) of a table (p1 = null: to its end) over [a, b): per merchant and minute, or
 * hour for rows before `hourBefore`, the count and the amount. A TID range scan reads those pages only.
 */
export function pageQuery(t: FactTable, a: number, b: number, hourBefore: number, p0: number, p1: number | null): string {
  const grain = `CASE WHEN ${ident(t.time)} < '${iso(hourBefore)}'::timestamptz THEN 'hour' ELSE 'minute' END`;
  return groupQuery(t, grain, a, b, `ctid >= '(${p0},0)'::tid${p1 === null ? '' : ` AND ctid < '(${p1},0)'::tid`} AND `);
}

function groupQuery(t: FactTable, grain: string, a: number, b: number, where: string): string {
  const m = ident(t.merchant), time = ident(t.time), amount = ident(t.amount);
  const upTo = Number.isFinite(b) ? ` AND ${time} < '${iso(b)}'::timestamptz` : '';
  return `SELECT m::text, extract(epoch FROM g)::bigint, n, s::text FROM (
    SELECT ${m} AS m, date_trunc(${grain}, ${time}) AS g, count(*)::int AS n, sum(${amount}) AS s
      FROM ${qualified(t.table)}
     WHERE ${where}${time} >= '${iso(a)}'::timestamptz${upTo} AND ${m} IS NOT NULL AND ${amount} IS NOT NULL
     GROUP BY 1, 2) x`;
}

interface ReadTask {
  side: 0 | 1;
  table: string;
  /** how the table is read: by time chunks (an index leads with its time column, or it is partitioned), or by pages */
  by: 'time' | 'pages';
  query: string;
  /** for the progress log */
  span: Record<string, string>;
}

/**
 * What the backfill reads, newest first. A table with an index leading with its time column (or a partitioned
 * one, pruned by time) is read by time chunks: each an index range scan. Without such an index, each time chunk
 * would scan the whole table — so the table is read once instead, in `pieces` ranges of pages (TID range scans,
 * newest pages first: an append-mostly table keeps its rows roughly in time order), each grouped per merchant
 * and minute (hour before `hourBefore`, where the minute tier keeps nothing). A cell summed from several pieces
 * adds up in the rebuild's sums, so the result is the same GROUP BY.
 */
async function readTasks(c: pg.Client, mapping: Mapping, chunks: [number, number][], hourBefore: number, pieces: number): Promise<ReadTask[]> {
  const sides = [mapping.approvals, mapping.cancels] as const;
  const plans = await Promise.all(sides.map(async (t) => {
    const r = await c.query(`SELECT c.relkind, (pg_relation_size(c.oid) / current_setting('block_size')::int)::float8 AS pages,
        EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = c.oid AND a.attname = $2 AND i.indisvalid) AS indexed
      FROM pg_class c WHERE c.oid = $1::regclass`, [qualified(t.table), t.time]);
    const row = r.rows[0] as { relkind: string; pages: number; indexed: boolean };
    return { byPages: row.relkind === 'r' && !row.indexed, pages: row.pages };
  }));
  const a = Math.min(...chunks.map(([x]) => x)), b = Math.max(...chunks.map(([, y]) => y));
  const grainOf = (end: number) => (end <= hourBefore ? 'hour' : 'minute');
  const tasks: ReadTask[] = [];
  const byTime = (side: 0 | 1) => chunks.map(([x, y]): ReadTask => ({
    side, table: sides[side].table, by: 'time', query: chunkQuery(sides[side], x, y, grainOf(y)),
    span: { from: iso(x), to: Number.isFinite(y) ? iso(y) : 'now', grain: grainOf(y) },
  }));
  const byPages = (side: 0 | 1, pages: number): ReadTask[] => {
    const n = Math.max(1, Math.min(pieces, pages));
    const step = Math.ceil(pages / n);
    const out: ReadTask[] = [];
    // the last piece has no end: pages added since the size was read hold no row of the snapshot, but nothing is left out
    for (let k = n - 1; k >= 0; k--) {
      const p0 = k * step, p1 = k === n - 1 ? null : (k + 1) * step;
      out.push({ side, table: sides[side].table, by: 'pages', query: pageQuery(sides[side], a, b, hourBefore, p0, p1), span: { pages: `${p0}..${p1 ?? 'end'}` } });
    }
    return out;
  };
  const lists = plans.map((pl, side) => (pl.byPages ? byPages(side as 0 | 1, pl.pages) : byTime(side as 0 | 1)));
  // interleaved, so the two tables' reads overlap
  for (let k = 0; k < Math.max(lists[0].length, lists[1].length); k++) for (const l of lists) if (k < l.length) tasks.push(l[k]);
  return tasks;
}

/** An integer amount from a sum's text ("123", "123.000"); null when it is not an integer (the stream dead-letters such rows). */
function integerAmount(s: string): bigint | null {
  const i = s.indexOf('.');
  if (i >= 0) {
    if (!/^0*$/.test(s.slice(i + 1))) return null;
    s = s.slice(0, i);
  }
  try { return BigInt(s); } catch { return null; }
}

export async function runBackfill(o: BackfillOptions): Promise<BackfillReport> {
  const { redis, cfg, log } = o;
  const now = o.now ?? systemClock;
  const prefix = cfg.redisPrefix;
  const clock = new DayClock(cfg.tz);
  const parts = Array.from({ length: cfg.partitions }, (_, p) => p);
  const { from, to } = rangeOf(o.fromMs, o.toMs, clock);
  const t0 = now();
  const id = `backfill:${o.kind}:${o.slot ?? ''}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`;
  const chunks = chunksOf(from, to, t0, Math.max(1, o.chunkHours) * HOUR);
  const retention = retentionOf(cfg);
  // the minute tier keeps nothing of rows before this (their minute keys' 6-hour block plus the TTL has passed):
  // the source sums them per hour
  const hourBefore = Math.floor((t0 - retention.minuteTtlMs - 6 * HOUR - HOUR) / HOUR) * HOUR;
  const readers = Math.max(1, o.readers ?? 1);
  const tasks = await readTasks(o.source.client, cfg.mapping, chunks, hourBefore, Math.max(chunks.length, 4 * readers));
  const record: BackfillRecord = {
    state: 'running', kind: o.kind, id, slot: o.slot, from: iso(from.day), to: to ? iso(to.day) : null,
    consistentPoint: formatLsn(o.source.consistentPoint), startedAt: iso(t0), finishedAt: null,
    rows: 0, chunksDone: 0, chunks: tasks.length, topicChanges: 0, rowsPerSecond: null,
    ...(o.kind === 'range' ? { aside: true, swapping: false } : {}),
  };
  // Taking over: the interrupted initial backfill of the same slot (this one redoes it), or anything with --force.
  const takeOver = (owner: string) => o.force === true || (o.kind === 'initial' && owner.startsWith(`backfill:initial:${o.slot ?? ''}:`));
  // A range backfill rebuilds aside (store/swap.ts) and locks the live partitions only to swap them in, one at a
  // time; its locks expire unless renewed, so a killed run holds nothing for long. The initial one writes the live
  // keys: nothing of its slot is in the topic yet, and it holds every partition throughout.
  const aside = o.kind === 'range';
  if (aside && !o.kafka) throw new Error('a range backfill needs the topic (kafka): the changes after its snapshot are re-read from it');
  const writePrefix = aside ? keys.aside(prefix) : prefix;
  const keeper = new LockKeeper(redis);
  const locked: number[] = [];
  const takenOver = new Map<string, number[]>();
  try {
    for (const p of parts) {
      if (aside) {
        const owner = await keeper.acquire(keys.lock(writePrefix, p), id, {
          force: o.force, waitMs: LOCK_TTL_MS + 10_000,
          onWait: (who, ttl) => log.info({ partition: p, owner: who, expiresInMs: ttl }, 'another range backfill holds the aside range: waiting for it to end or its lock to expire'),
        });
        if (owner !== null) throw new BackfillLockedError(p, owner);
        continue;
      }
      if ((await redis.set(keys.lock(prefix, p), id, 'NX')) === null) {
        const owner = (await redis.get(keys.lock(prefix, p))) ?? '';
        if (!takeOver(owner)) throw new BackfillLockedError(p, owner);
        takenOver.set(owner, [...(takenOver.get(owner) ?? []), p]);
        await redis.set(keys.lock(prefix, p), id);
      }
      locked.push(p);
    }
    for (const [owner, ps] of takenOver) log.warn({ owner, partitions: ps }, 'taking over the partition locks of an interrupted run');
  } catch (err) {
    await unlock(redis, prefix, locked, id);
    await keeper.releaseAll();
    throw err;
  }
  M.backfillRunning.set(1);
  M.backfillProgress.set(0);
  try {
    await writeBackfill(redis, prefix, record);
    log.info({ from: record.from, to: record.to ?? 'now', chunks: tasks.length, by: [...new Set(tasks.map((t) => `${t.table}: ${t.by}`))], consistentPoint: record.consistentPoint, kind: o.kind },
      'backfill: rebuilding the range from the source');
    if (aside) await clearAside(redis, prefix);
    else await resetRange(redis, prefix, parts, clock, from, to);

    // one GET per key: a Redis Cluster refuses an MGET across partitions' hash slots (CROSSSLOT)
    const stored = await getEach(redis, parts.map((p) => keys.watermark(prefix, p)));
    const candidates = candidateCache(cfg.partitions, cfg.hotShards);
    const windowFrom = t0 - cfg.windowMinutes * MINUTE;
    // only changes at or after the consistent point are added from the topic: the snapshot holds the others
    const afterSnapshot = { lsn: o.source.consistentPoint - 1n, seq: Number.MAX_SAFE_INTEGER };
    const ctxs = parts.map((p) => ({
      prefix: writePrefix, partition: p, partitions: cfg.partitions, hotShards: cfg.hotShards, mapping: cfg.mapping, clock, retention,
      windowKeepMinutes: cfg.windowMinutes, allowedLatenessMs: cfg.allowedLatenessMs, now: t0, clockOffsetMs: offsetOf(now),
      watermark: stored[p] === null ? null : Number(stored[p]), from, to: to ?? undefined, candidates,
      lastPosition: afterSnapshot,
    }));
    const rebuilds = parts.map((p) => new PartitionRebuild(redis, { lockToken: id, maxFacts: o.maxFacts, windowFrom, ctx: ctxs[p] }));
    const home = new Map<string, number>();
    const homeOf = (m: string) => {
      let p = home.get(m);
      if (p === undefined) {
        p = candidatePartitions(m, cfg.partitions, cfg.hotShards)[0];
        if (home.size > 1_000_000) home.clear();
        home.set(m, p);
      }
      return p;
    };

    // the source: every task (a time chunk or a range of pages of one table, readTasks) read by `readers`
    // connections on the snapshot at once; each fetch is summed as it comes, and a partition's sums are written in
    // the background once full (PartitionRebuild.flushBehind) while the reads go on
    let rows = 0, skipped = 0;
    /** the latest minute the source's rows lie in (a range without an end swaps keys up to it) */
    let latest = t0;
    const tRead = now();
    // where the time goes (the progress log), summed over the readers and the background writes, so overlapping:
    // waiting for the source, summing, writing to Redis
    const ms = { source: 0, sum: 0, write: 0 };
    const clients = [o.source.client];
    if (o.source.fork) {
      for (let k = 1; k < Math.min(readers, tasks.length); k++) clients.push(await o.source.fork());
    }
    // every row of a cursor is fetched: plan for all of them, not the first 10 % (a fast-start plan walks an index
    // on (merchant, time) and the heap at random instead of scanning and hashing)
    for (const c of clients) await c.query('SET LOCAL cursor_tuple_fraction = 1');
    const writeMs = () => rebuilds.reduce((x, rb) => x + rb.writeMs, 0);
    let next = 0;
    let progress = Promise.resolve();
    const read = async (c: pg.Client, k: number) => {
      const cursor = `riskmon_backfill_${k}`;
      for (let x = next++; x < tasks.length; x = next++) {
        const { side, query } = tasks[x];
        await c.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${query}`);
        for (;;) {
          let tt = performance.now();
          const r = await c.query({ text: `FETCH ${FETCH_ROWS} FROM ${cursor}`, rowMode: 'array', types: TEXT });
          const t1 = performance.now();
          ms.source += t1 - tt;
          tt = t1;
          let fetched = 0;
          const full: PartitionRebuild[] = [];
          for (const [m, epoch, n, sum] of r.rows as [string, string, string, string][]) {
            const amount = integerAmount(sum);
            if (amount === null || !isMerchantId(m)) { skipped++; continue; } // the stream dead-letters such rows
            const count = Number(n);
            const rb = rebuilds[homeOf(m)];
            const at = Number(epoch) * 1000;
            if (at > latest) latest = at;
            const due = side === 0 ? rb.addTotalsSync(m, at, count, amount, 0, 0n) : rb.addTotalsSync(m, at, 0, 0n, count, amount);
            fetched += count;
            if (due && !full.includes(rb)) full.push(rb);
          }
          ms.sum += performance.now() - tt;
          // a full partition's sums go to Redis behind the reads (waiting only for its previous write)
          for (const rb of full) await rb.flushBehind();
          rows += fetched;
          M.backfillRows.inc(fetched);
          if (o.maxRowsPerSecond > 0) {
            const ahead = (rows / o.maxRowsPerSecond) * 1000 - (now() - tRead);
            if (ahead > 0) await new Promise((res) => setTimeout(res, Math.min(ahead, 10_000)));
          }
          if (r.rows.length < FETCH_ROWS) break;
        }
        await c.query(`CLOSE ${cursor}`);
        // the task's sums go to Redis while the next tasks are read, unless there are few (a later write adds to
        // what an earlier one wrote: fewer, larger writes are cheaper)
        for (const rb of rebuilds) await rb.flushBehind(rb.maxFacts / 2);
        record.chunksDone++;
        record.rows = rows;
        const secs = (now() - tRead) / 1000;
        record.rowsPerSecond = secs > 0 ? Math.round(rows / secs) : null;
        const snapshot = { ...record };
        M.backfillProgress.set(snapshot.chunksDone / snapshot.chunks);
        log.info({ chunk: `${snapshot.chunksDone}/${snapshot.chunks}`, table: tasks[x].table, ...tasks[x].span, rows, rowsPerSecond: snapshot.rowsPerSecond,
          ms: { source: Math.round(ms.source), sum: Math.round(ms.sum), write: Math.round(writeMs()) } }, 'backfill progress');
        // the record's writes in order (a later one never overwritten by an earlier)
        progress = progress.then(() => writeBackfill(redis, prefix, snapshot));
        await progress;
      }
    };
    const results = await Promise.allSettled(clients.map((c, k) => read(c, k).catch((err) => { next = tasks.length; throw err; })));
    const failed = results.find((x) => x.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;

    // payouts: the whole table as it stood at the consistent point, whatever the range (store/payout-rebuild.ts)
    const payouts = cfg.mapping.payouts ? new PayoutRebuild(redis, (p) => ctxs[p], id, cfg.windowMinutes) : null;
    if (payouts) {
      await PayoutRebuild.reset(redis, writePrefix, parts);
      const n = await readPayouts(o.source.client, cfg.mapping, (m, d) => payouts.add(homeOf(m), d));
      log.info({ payouts: n }, 'backfill: payouts taken in');
    }

    // range backfills: the changes after the consistent point that the aggregators have applied so far (re-read
    // from the topic); the partitions' later ones are added when each is swapped in
    let topicChanges = 0;
    const tailFrom = new Map<number, bigint>();
    if (o.kafka) {
      const reader = await TopicReader.open(o.kafka, cfg.topic);
      try {
        const marks = await reader.watermarks();
        const starts = await firstOffsetsAtOrAfter(o.kafka, cfg.topic, o.source.consistentPoint, marks);
        const offs = await getEach(redis, parts.map((p) => keys.offset(prefix, p)));
        await forEachPartition(parts, 2, async (p) => {
          const start = starts.get(p) ?? marks.get(p)!.high;
          const end = offs[p] === null ? marks.get(p)!.low : BigInt(offs[p]!);
          tailFrom.set(p, end > start ? end : start);
          if (end > start) {
            await scan(reader, p, start, end, async (r) => {
              await rebuilds[p].add(r);
              if (payouts) await payouts.addRecords(p, r, afterSnapshot, cfg.mapping.payouts!.table);
            });
          }
        });
        await payouts?.finish();
        await forEachPartition(parts, FINISHING, async (p) => { await rebuilds[p].finish(); });
        if (aside) {
          // the swap: each partition, locked a moment, gets the changes applied since, then its range swapped in
          await waitForAggregators(o.kafka, redis, cfg, o.source.consistentPoint, { timeoutMs: CATCH_UP_MS, log });
          record.swapping = true;
          await writeBackfill(redis, prefix, { ...record });
          const range: SwapRange = {
            from, to, clock, retention, now: now(), untilMs: Math.max(now() + 2 * DAY, latest + DAY), windowMinutes: cfg.windowMinutes, payouts: payouts !== null,
          };
          for (const p of parts) {
            const tSwap = now();
            const owner = await keeper.acquire(keys.lock(prefix, p), id, {
              force: o.force, waitMs: LOCK_TTL_MS + 10_000,
              onWait: (who, ttl) => log.info({ partition: p, owner: who, expiresInMs: ttl }, 'the partition is locked: waiting for its lock to be released or to expire'),
            });
            if (owner !== null) throw new BackfillLockedError(p, owner);
            try {
              const stored = await redis.get(keys.offset(prefix, p));
              const end = stored === null ? marks.get(p)!.low : BigInt(stored);
              const start = tailFrom.get(p)!;
              if (end > start) {
                await scan(reader, p, start, end, async (r) => {
                  await rebuilds[p].add(r);
                  if (payouts) await payouts.addRecords(p, r, afterSnapshot, cfg.mapping.payouts!.table);
                });
              }
              await payouts?.finish();
              await rebuilds[p].finish();
              const n = await swapPartition(redis, prefix, p, id, range);
              log.info({ partition: p, keys: n, tail: Number(end > start ? end - start : 0n), ms: now() - tSwap }, 'backfill: partition swapped in');
            } finally {
              await keeper.release(keys.lock(prefix, p));
            }
          }
        }
      } finally {
        await reader.close();
      }
    } else {
      await payouts?.finish();
    }
    await forEachPartition(parts, FINISHING, async (p) => {
      const rb = rebuilds[p];
      await rb.finish();
      topicChanges += rb.changes;
    });
    ms.write = writeMs();
    // readers (the evaluator's window) drop what they cached of these partitions (a swap bumped them already)
    if (!aside) await Promise.all(parts.map((p) => redis.incr(keys.generation(prefix, p))));
    else await clearAside(redis, prefix);
    const seconds = (now() - t0) / 1000;
    Object.assign(record, { state: 'done', swapping: false, finishedAt: iso(now()), topicChanges, rowsPerSecond: seconds > 0 ? Math.round(rows / seconds) : null });
    await writeBackfill(redis, prefix, record);
    if (await closeGapCoveredBy(redis, prefix, record)) log.info({ from: record.from, to: record.to ?? 'now' }, 'backfill: the known gap in the stream is closed');
    M.backfillProgress.set(1);
    log.info({ rows, skipped, topicChanges, seconds, rowsPerSecond: record.rowsPerSecond, from: record.from, to: record.to ?? 'now',
      ms: { source: Math.round(ms.source), sum: Math.round(ms.sum), write: Math.round(ms.write) } }, 'backfill done');
    return { rows, skipped, topicChanges, seconds, rowsPerSecond: record.rowsPerSecond ?? 0, from: record.from, to: record.to };
  } finally {
    M.backfillRunning.set(0);
    await keeper.releaseAll();
    if (!aside) await unlock(redis, prefix, parts, id);
  }
}

/**
 * Every row of the mapped payouts table under the snapshot, as the change events carry them (lib/mapping.ts
 * `payoutsOf` decodes both), through a cursor. A row riskmon cannot read (the stream would dead-letter it) is skipped.
 */
async function readPayouts(c: pg.Client, mapping: Mapping, add: (merchant: string, d: PayoutDelta) => Promise<void>): Promise<number> {
  const t = mapping.payouts!;
  const cols = [t.merchant, t.coversTo, t.paidAt, ...(t.amount ? [t.amount] : []), ...(t.id ? [t.id] : [])];
  // to_json: timestamps as ISO-8601 with their offset whatever the session's zone, bigints as digits
  await c.query(`DECLARE riskmon_payouts NO SCROLL CURSOR FOR SELECT ${cols.map((x) => `to_json(${ident(x)})#>>'{}'`).join(', ')} FROM ${qualified(t.table)}`);
  let n = 0;
  for (;;) {
    const r = await c.query({ text: `FETCH ${FETCH_ROWS} FROM riskmon_payouts`, rowMode: 'array', types: TEXT });
    for (const vals of r.rows as (string | null)[][]) {
      const row = Object.fromEntries(cols.map((col, i) => [col, vals[i]]));
      let ds: PayoutDelta[];
      try { ds = payoutsOf({ v: 1, lsn: '0/0', seq: 0, commitTs: new Date(0).toISOString(), xid: 0, table: t.table, op: 'insert', row, old: null }, mapping); } catch { continue; }
      for (const d of ds) { await add(d.payout.merchantId, d); n++; }
    }
    if (r.rows.length < FETCH_ROWS) break;
  }
  await c.query('CLOSE riskmon_payouts');
  return n;
}

/** Per partition, the first offset whose change has lsn ≥ `lsn` (the partition's end when none has yet). */
async function firstOffsetsAtOrAfter(kafka: Kafka, topic: string, lsn: bigint, marks: Map<number, { low: bigint; high: bigint }>): Promise<Map<number, bigint>> {
  try {
    const loc = await locateLsn(kafka, topic, formatLsn(lsn));
    return new Map([...loc.offsets].map(([p, off]) => [p, BigInt(off)]));
  } catch (err) {
    if (err instanceof LsnInFutureError || (err instanceof LsnTooOldError && err.oldestLsn === null)) {
      return new Map([...marks].map(([p, m]) => [p, m.high]));
    }
    throw err;
  }
}

/** GET of each key (in parallel): the keys of several partitions lie in several hash slots of a Redis Cluster. */
function getEach(redis: RedisClient, ks: string[]): Promise<(string | null)[]> {
  return Promise.all(ks.map((k) => redis.get(k)));
}

async function unlock(redis: RedisClient, prefix: string, parts: number[], token: string): Promise<void> {
  for (const p of parts) {
    await redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, keys.lock(prefix, p), token);
  }
}

/**
 * Range backfills: waits until the aggregators have applied every change before `lsn` (each partition's stored
 * offset at or past the first change at or after it), so that the snapshot and the applied changes meet exactly.
 */
export async function waitForAggregators(kafka: Kafka, redis: RedisClient, cfg: BackfillConfig, lsn: bigint, o: { timeoutMs: number; now?: () => number; log?: Logger }): Promise<void> {
  const now = o.now ?? systemClock;
  const reader = await TopicReader.open(kafka, cfg.topic);
  let marks: Map<number, { low: bigint; high: bigint }>;
  try { marks = await reader.watermarks(); } finally { await reader.close(); }
  const starts = await firstOffsetsAtOrAfter(kafka, cfg.topic, lsn, marks);
  const deadline = now() + o.timeoutMs;
  let logged = now();
  for (;;) {
    const offs = await getEach(redis, [...starts.keys()].map((p) => keys.offset(cfg.redisPrefix, p)));
    const behind = [...starts].filter(([p, s], i) => s > (offs[i] === null ? marks.get(p)!.low : BigInt(offs[i]!)));
    if (!behind.length) return;
    if (now() - logged >= 10_000) {
      o.log?.info({ lsn: formatLsn(lsn), partitions: behind.map(([p]) => p), waitedMs: now() - (deadline - o.timeoutMs) }, 'waiting for the aggregators to apply every change before the snapshot');
      logged = now();
    }
    if (now() > deadline) {
      throw new AggregatorsBehindError(`the aggregators have not applied the changes before ${formatLsn(lsn)} within ${o.timeoutMs / 1000} s (partitions ${behind.map(([p]) => p).join(', ')} behind): start riskmon aggregate (or wait for it to catch up), then rerun`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}
