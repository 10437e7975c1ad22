/**
 * Rebuild from a source LSN (`riskmon replay --from-lsn X`). The slot cannot rewind, so the retained topic is the
 * source. Steps (docs/operations.md "Replay from an LSN"):
 *  1. locateLsn: per partition, the first offset with lsn ≥ X (clear errors for too old / future / malformed X).
 *  2. Lock every partition (`{pN}:lock`, checked inside apply.lua): running aggregators pause, never half-apply.
 *  3. Scan the events ≥ X up to the current end of each partition (read from their bytes, lib/mapping.ts
 *     FactScanner, records straight from Kafka's response, lib/kafka fetchRecords): the earliest bucket they touch gives the
 *     reset point R = the local midnight of that minute (hours from the hour containing R).
 *  4. Delete every bucket at or after R (all merchants, all tiers, the window index).
 *  5. Re-apply from the topic every fact whose bucket is at or after R, reading from the first offset whose
 *     message timestamp (the cdc's produce time, never before the commit) ≥ R − margin: an event committed before
 *     that cannot touch R unless its row is dated more than `margin` after its own commit (clock skew).
 *  6. Set each partition's offset to where the scan ended and release the locks; aggregators continue from there.
 * Buckets before R stay as they were (they already hold every event, including those ≥ X that touch them).
 * When R − margin is older than the topic retains, R moves up to the first midnight the topic fully covers.
 */
import crypto from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { offsetOf, systemClock, type Clock } from '../lib/clock.ts';
import type { RedisClient } from '../lib/redis.ts';
import { locateLsn, recordValue, TopicReader, type RecordSet } from '../lib/kafka/index.ts';
import { decodeEvent } from '../lib/events.ts';
import type { Logger } from '../lib/logger.ts';
import { FactScanner, factsOf } from '../lib/mapping.ts';
import { DAY, HOUR } from '../lib/time.ts';
import type { AggregatorConfig } from './consumer.ts';
import { DayClock, keys, retentionOf } from './store/layout.ts';
import { candidateCache, comparePos, formatPosition, parsePosition } from './store/plan.ts';
import { PartitionRebuild, resetFrom } from './store/index.ts';

export class ReplayLockedError extends Error {
  constructor(readonly partition: number, readonly owner: string) {
    super(`partition ${partition} is locked by ${owner}: another replay is running, or one was interrupted — rerun with --force to take over`);
    this.name = 'ReplayLockedError';
  }
}

export interface ReplayReport {
  fromLsn: string;
  oldestRetainedLsn: string | null;
  /** the reset point (epoch ms), null when the events ≥ X touch no bucket */
  resetFrom: number | null;
  /** set when the reset point had to move up because the topic no longer holds older events */
  clampedFrom: number | null;
  changes: number;
  facts: number;
  seconds: number;
  /** where the time went: finding the reset point (scan), deleting the range (reset), summing and writing it (rebuild) */
  stages: { scan: number; reset: number; rebuild: number };
}

export interface ReplayOptions {
  kafka: Kafka;
  redis: RedisClient;
  cfg: AggregatorConfig;
  log: Logger;
  fromLsn: string;
  force?: boolean;
  /** how far after its commit a row's transaction time may lie (source clock skew); default 1 h */
  marginMs?: number;
  /** facts per partition summed in memory before they are written (store/rebuild.ts; tests set it low) */
  maxFacts?: number;
  /** "now" (lib/clock.ts): which buckets are still kept; default the system clock */
  now?: Clock;
}

const FETCH_BYTES = 4 << 20;
/**
 * Partitions read at once, and whose sums are being written while the next ones are read: each holds its sums in
 * memory meanwhile (up to maxFacts), so these bound the replay's memory. Reading is this process's CPU and writing
 * mostly Redis', so two of each keep both busy (more did not go faster on 2 cores).
 */
const READING = 2;
const WRITING = 2;

export async function replay(o: ReplayOptions): Promise<ReplayReport> {
  const { kafka, redis, cfg, log } = o;
  const now = o.now ?? systemClock;
  const t0 = performance.now();
  const prefix = cfg.redisPrefix;
  const marginMs = o.marginMs ?? HOUR;
  const clock = new DayClock(cfg.tz);
  const loc = await locateLsn(kafka, cfg.topic, o.fromLsn);
  const token = `replay:${process.pid}:${crypto.randomBytes(4).toString('hex')}:${new Date(now()).toISOString()}`;
  const parts = Array.from({ length: cfg.partitions }, (_, p) => p);
  for (const p of parts) {
    const ok = await redis.set(keys.lock(prefix, p), token, 'NX');
    if (ok === null) {
      const owner = (await redis.get(keys.lock(prefix, p))) ?? '?';
      if (!o.force) { await unlock(redis, prefix, parts, token); throw new ReplayLockedError(p, owner); }
      log.warn({ partition: p, owner }, 'taking over the lock of an earlier replay');
      await redis.set(keys.lock(prefix, p), token);
    }
  }
  const reader = await TopicReader.open(kafka, cfg.topic);
  try {
    const marks = await reader.watermarks();
    // 3. earliest bucket touched by the events ≥ X
    const tScan = performance.now();
    let minMinute = Infinity;
    let retainedFrom = -Infinity; // commit time from which every partition is complete
    await forEachPartition(parts, 4, async (p) => {
      const { low, high } = marks.get(p)!;
      if (low > 0n && high > low) {
        // retention removed the partition's beginning: only commits from its first retained one on are complete
        const [first] = await reader.fetch(p, low, 64 * 1024);
        try { retainedFrom = Math.max(retainedFrom, Date.parse(decodeEvent(first.value).commitTs)); } catch { /* a dead letter */ }
      }
      const facts = new FactScanner(cfg.mapping);
      await scan(reader, p, BigInt(loc.offsets.get(p) ?? high.toString()), high, (r) => {
        for (let i = 0; i < r.count; i++) {
          // read from the bytes (FactScanner); the events it leaves are decoded
          if (r.valueStart[i] >= 0 && facts.read(r.bufs[r.buf[i]], r.valueStart[i], r.valueEnd[i])) {
            for (let j = 0; j < facts.n; j++) if (facts.minuteMs[j] < minMinute) minMinute = facts.minuteMs[j];
            continue;
          }
          try {
            const e = decodeEvent(recordValue(r, i));
            if (e.op === 'heartbeat') continue;
            for (const f of factsOf(e, cfg.mapping)) if (f.minuteMs < minMinute) minMinute = f.minuteMs;
          } catch { /* dead letters: the aggregator already reported them */ }
        }
      });
    });
    if (minMinute === Infinity) {
      log.info({ fromLsn: o.fromLsn }, 'no change at or after this LSN touches a bucket: nothing to rebuild');
      return { fromLsn: o.fromLsn, oldestRetainedLsn: loc.oldestRetainedLsn, resetFrom: null, clampedFrom: null, changes: 0, facts: 0, seconds: (performance.now() - t0) / 1000, stages: { scan: (performance.now() - tScan) / 1000, reset: 0, rebuild: 0 } };
    }
    let dayFrom = clock.dayStart(minMinute);
    let clampedFrom: number | null = null;
    if (Math.floor(dayFrom / HOUR) * HOUR - marginMs < retainedFrom) {
      // Not every event touching buckets from dayFrom on is still in the topic: rebuild what it fully covers.
      clampedFrom = dayFrom;
      dayFrom = clock.dayStart(retainedFrom + marginMs + HOUR + DAY);
      log.warn({ wanted: new Date(clampedFrom).toISOString(), from: new Date(dayFrom).toISOString() },
        'the topic no longer holds every change touching the wanted range: buckets before "from" are kept as they are');
    }
    const from = { minute: dayFrom, hour: Math.floor(dayFrom / HOUR) * HOUR, day: dayFrom };
    log.info({ fromLsn: o.fromLsn, resetFrom: new Date(dayFrom).toISOString() }, 'replay: resetting buckets');
    // 4. reset
    const tReset = performance.now();
    await resetFrom(redis, prefix, parts, clock, from);
    const tRebuild = performance.now();
    // 5. re-apply
    const admin = kafka.admin();
    await admin.connect();
    const startOffsets = new Map<number, bigint>();
    try {
      for (const r of await admin.fetchTopicOffsetsByTimestamp(cfg.topic, from.hour - marginMs)) {
        const hi = marks.get(r.partition)!.high;
        const off = BigInt(r.offset);
        startOffsets.set(r.partition, off < 0n || off > hi ? hi : off);
      }
    } finally {
      await admin.disconnect();
    }
    const candidates = candidateCache(cfg.partitions, cfg.hotShards);
    const at = now();
    let changes = 0, facts = 0;
    // A partition's writes (mostly Redis' work) overlap the reading of the next ones (mostly this process's):
    // up to WRITING partitions are being written while others are read.
    const writing = new Set<Promise<void>>();
    let failed: unknown = null;
    await forEachPartition(parts, READING, async (p) => {
      const [wmRaw, posRaw] = await redis.mget(keys.watermark(prefix, p), keys.position(prefix, p));
      const { low, high } = marks.get(p)!;
      const start = startOffsets.get(p) ?? low;
      // the whole range summed in memory and written as final values (store/rebuild.ts), not chunk by chunk
      const rb = new PartitionRebuild(redis, {
        lockToken: token,
        maxFacts: o.maxFacts,
        ctx: {
          prefix, partition: p, partitions: cfg.partitions, hotShards: cfg.hotShards, mapping: cfg.mapping, clock,
          retention: retentionOf(cfg), windowKeepMinutes: cfg.windowMinutes, allowedLatenessMs: cfg.allowedLatenessMs,
          now: at, clockOffsetMs: offsetOf(now), watermark: wmRaw === null ? null : Number(wmRaw), from, candidates, lastPosition: null,
        },
      });
      await scan(reader, p, start > low ? start : low, high, (r) => rb.add(r));
      const done = (async () => {
        await rb.finish();
        changes += rb.changes;
        facts += rb.facts;
        const pos = rb.position;
        // 6. the partition continues after what the replay applied
        const stored = parsePosition(posRaw);
        const finalPos = pos && (!stored || comparePos(pos, stored) > 0) ? pos : stored;
        const tx = redis.multi().set(keys.offset(prefix, p), high.toString()).incr(keys.generation(prefix, p));
        if (finalPos) tx.set(keys.position(prefix, p), formatPosition(finalPos));
        await tx.exec();
      })();
      writing.add(done);
      done.catch((err) => { failed ??= err; }).finally(() => writing.delete(done));
      while (writing.size >= WRITING) await Promise.race(writing).catch(() => {});
      if (failed) throw failed;
    });
    await Promise.allSettled(writing);
    if (failed) throw failed;
    const seconds = (performance.now() - t0) / 1000;
    log.info({ changes, facts, seconds }, 'replay done');
    const stages = { scan: (tReset - tScan) / 1000, reset: (tRebuild - tReset) / 1000, rebuild: (performance.now() - tRebuild) / 1000 };
    return { fromLsn: o.fromLsn, oldestRetainedLsn: loc.oldestRetainedLsn, resetFrom: dayFrom, clampedFrom, changes, facts, seconds, stages };
  } finally {
    await reader.close();
    await unlock(redis, prefix, parts, token);
  }
}

async function unlock(redis: RedisClient, prefix: string, parts: number[], token: string): Promise<void> {
  for (const p of parts) {
    await redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, keys.lock(prefix, p), token);
  }
}

export async function forEachPartition(parts: number[], concurrency: number, fn: (p: number) => Promise<void>): Promise<void> {
  const queue = [...parts];
  await Promise.all(Array.from({ length: Math.min(concurrency, parts.length) }, async () => {
    for (let p = queue.shift(); p !== undefined; p = queue.shift()) await fn(p);
  }));
}

/**
 * Records [from, to) of one partition, a fetch (up to 4 MiB) at a time, as record sets (no object per message);
 * the next fetch is already on its way while `fn` works on the current one (Kafka's I/O overlaps the decoding).
 */
export async function scan(reader: TopicReader, p: number, from: bigint, to: bigint, fn: (r: RecordSet) => void | Promise<void>): Promise<void> {
  const end = Number(to);
  const fetchAt = (o: bigint) => reader.fetchRecords(p, o, FETCH_BYTES).then((r) => {
    while (r.count > 0 && r.offsets[r.count - 1] >= end) r.count--;
    return r;
  });
  let next = from < to ? fetchAt(from) : null;
  for (let o = from; o < to;) {
    const got = await next!;
    if (!got.count) throw new Error(`partition ${p}: no message at offset ${o} below the end ${to} (retention removed it during the replay?)`);
    o = BigInt(got.offsets[got.count - 1]) + 1n;
    next = o < to ? fetchAt(o) : null;
    next?.catch(() => {}); // awaited on the next round; a failure there is thrown there
    await fn(got);
  }
}
