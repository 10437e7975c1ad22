/**
 * `riskmon aggregate`: consumes the change topic in the aggregators' consumer group and applies each partition's
 * batch, in chunks, to Redis together with that partition's next offset (apply.lua). Redis — not Kafka's committed
 * offset — says where a partition continues: a chunk is applied only when its first offset equals the stored one,
 * so duplicate deliveries, rebalances, zombies and restarts never double count. Kafka offsets are committed too,
 * for lag monitoring only.
 */
import { Partitioners, type Admin, type Kafka, type Consumer, type EachBatchPayload, type Producer } from 'kafkajs';
import { createRedis, verifyRedis, type RedisClient } from '../lib/redis.ts';
import type { ConfigOf } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { RunState, runSessions, type Service } from '../lib/service.ts';
import { serveMetrics } from '../lib/metrics.ts';
import { Applier } from './store/apply.ts';
import type { aggregatorSpec } from './config.ts';
import { DayClock, keys, retentionOf } from './store/layout.ts';
import { metrics, watchRedisMemory } from './metrics.ts';
import { buildPlan, candidateCache, parsePosition, type BadMessage, type Msg, type Position } from './store/plan.ts';
import { aggregatorDeadLetter } from '../lib/dead-letters.ts';
import { createKafka, createTopics, kafkaSetupProblem, verifyKafka } from '../lib/kafka/index.ts';

export type AggregatorConfig = ConfigOf<typeof aggregatorSpec>;

/** The topic's partition count differs from RISKMON_PARTITIONS: every key's partition would be wrong. Not retried. */
export class TopicMismatchError extends Error {
  override name = 'TopicMismatchError';
}

/**
 * The change topic holds fewer events in a partition than Redis says were applied from it: it was recreated (or
 * truncated), and its events would be skipped as duplicates of what the old topic held. Not retried.
 */
export class TopicRecreatedError extends TopicMismatchError {
  override name = 'TopicRecreatedError';
  constructor(topic: string, prefix: string, p: number, high: bigint, stored: bigint) {
    super(`partition ${p} of topic ${topic} ends at offset ${high}, but Redis (prefix ${prefix}) holds buckets applied up to offset ${stored}: ` +
      `the topic was recreated or truncated, and its events would be skipped as duplicates. The aggregator stopped without applying any. ` +
      `Fix: rebuild the buckets from the source (riskmon backfill over the days the new topic does not cover) and let the aggregator start the new topic ` +
      `from its beginning by removing the stored offsets (redis-cli --scan --pattern '${prefix}:{p*}:off' | xargs redis-cli del), ` +
      `or start on a fresh RISKMON_REDIS_PREFIX`);
  }
}

const STALL_MS = 20_000;
const STALL_CHECK_MS = 5_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error('timed out')), ms); })]).finally(() => clearTimeout(t));
}

/** Seconds since the record was produced (its timestamp; 0 when it has none). */
function sinceProduced(m: { timestamp: string }): number {
  const t = Number(m.timestamp);
  return t > 0 ? Math.max(0, Date.now() - t) / 1000 : 0;
}

/** What to do after trying one chunk. */
type Step = { kind: 'applied' } | { kind: 'skipTo'; offset: bigint } | { kind: 'seek'; offset: string } | { kind: 'stopped' };

export class AggregatorService implements Service {
  readonly name = 'aggregator';
  readonly #state = new RunState();
  readonly #clock: DayClock;
  readonly #candidates: (m: string) => number[];
  /** per partition: watermark and last applied position, as stored in Redis (valid while our applies succeed) */
  readonly #known = new Map<number, { wm: number | null; pos: Position | null }>();
  #kafka: Kafka;
  #redis: RedisClient;
  #applier: Applier;
  #consumer: Consumer | null = null;
  #producer: Producer | null = null;
  #admin: Admin | null = null;
  #lockLogged = 0;
  /** partition → next offset applied (resolved) / last committed to Kafka (for lag monitoring only) */
  readonly #resolved = new Map<number, string>();
  readonly #committed = new Map<number, string>();
  #committer: NodeJS.Timeout | undefined;
  /** ends the current session with an error that is not retried (TopicRecreatedError) */
  #failSession: ((err: Error) => void) | null = null;
  #rollbackLogged = 0;
  /** per partition: when a chunk was last applied or skipped (the stall watch) */
  readonly #progressAt = new Map<number, number>();
  /** applies waiting for Redis right now */
  #applying = 0;

  constructor(readonly cfg: AggregatorConfig, readonly log: Logger, opts: { clientId?: string } = {}) {
    this.#clock = new DayClock(cfg.tz);
    this.#candidates = candidateCache(cfg.partitions, cfg.hotShards);
    this.#kafka = createKafka(cfg, { clientId: opts.clientId ?? 'riskmon-aggregator', log: this.log });
    this.#redis = createRedis(cfg, { lazyConnect: true, maxRetriesPerRequest: null, connectionName: 'riskmon-aggregator' });
    this.#applier = new Applier(this.#redis, cfg.redisPrefix);
  }

  async run(): Promise<void> {
    const { cfg, log } = this;
    // Redis queues commands while it is down (maxRetriesPerRequest: null): an outage pauses the applies, loses nothing.
    let redisDown = 0;
    // a wrong password or an untrusted certificate stops here, naming the setting
    await verifyRedis(cfg);
    await verifyKafka(cfg);
    this.#redis.on('error', (err: Error) => {
      if (Date.now() - redisDown > 30_000) { log.warn({ err }, 'redis unreachable: applies wait until it is back'); redisDown = Date.now(); }
    });
    this.#redis.connect().catch(() => {}); // ioredis keeps reconnecting by itself
    watchRedisMemory(this.#redis);
    const server = cfg.metricsPort ? await serveMetrics(cfg.metricsPort, cfg.metricsHost) : null;
    try {
      // A broker outage (at start or while consuming) ends a session; the next one continues from Redis' offsets.
      await runSessions(this.#state, () => this.#session(), {
        fatal: (err) => err instanceof TopicMismatchError || kafkaSetupProblem(err) !== null,
        onRetry: (err, retryInMs) => {
          metrics.restarts.inc();
          log.warn({ err, retryInMs }, 'consumer session ended; resuming from the offsets stored in Redis');
        },
      });
    } finally {
      server?.close();
      this.#redis.disconnect();
    }
  }

  /** One consumer-group session: resolves when stopped, rejects when the consumer crashed for good. */
  async #session(): Promise<void> {
    const { cfg, log } = this;
    let assigned: number[] = [];
    let stalled: { promise: Promise<never>; cancel(): void } | null = null;
    const admin = (this.#admin = this.#kafka.admin());
    try {
      await admin.connect();
      await this.#waitForTopic();
      if (!this.#state.shouldRun()) return;
      await this.#ensureDeadLetterTopic();
      // idempotent: a retried send (leader moved) must not write a dead letter twice
      this.#producer = this.#kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await this.#producer.connect();
      // A session of 15 s (heartbeat every 3 s, also between chunks of a batch): the group notices a dead member,
      // or one a restarted session left behind when its coordinator was gone (it could not leave), within 15 s.
      // kafkajs' 30 s and 60 s rebalance wait made a leader failover cost the partitions up to a minute and more.
      const consumer = (this.#consumer = this.#kafka.consumer({
        groupId: cfg.group, maxBytesPerPartition: 1 << 20, maxBytes: 8 << 20, maxWaitTimeInMs: 100,
        sessionTimeout: 15_000, rebalanceTimeout: 30_000, heartbeatInterval: 3_000,
      }));
      await consumer.connect();
      await consumer.subscribe({ topic: cfg.topic, fromBeginning: true });
      // On every assignment continue each partition from the offset stored in Redis (apply.lua re-checks anyway).
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        const parts = e.payload.memberAssignment[cfg.topic] ?? [];
        log.info({ partitions: parts }, 'partitions assigned');
        // another process may have written these partitions meanwhile: re-read their state, re-set TTLs
        this.#known.clear();
        this.#applier.forget();
        void this.#seekToStored(parts).catch((err) => {
          if (err instanceof TopicRecreatedError) this.#failSession?.(err);
          else log.warn({ err }, 'seek to stored offsets failed; apply.lua will correct');
        });
      });
      const crashed = new Promise<never>((_, reject) => consumer.on(consumer.events.CRASH, (e) => {
        if (!e.payload.restart) reject(e.payload.error);
      }));
      // Kafka offsets are only for lag monitoring (Redis decides where a partition continues): kafkajs' autoCommit
      // sends an OffsetCommit after EVERY batch, a broker round trip in the path between a fetch and the next one
      // (commit → bucket latency). They are committed once a second instead, off that path.
      this.#committed.clear();
      this.#resolved.clear();
      this.#committer = setInterval(() => void this.#commitResolved(consumer), 1000);
      assigned = [];
      consumer.on(consumer.events.GROUP_JOIN, (e) => { assigned = e.payload.memberAssignment[cfg.topic] ?? []; });
      stalled = this.#watchStall(() => assigned);
      const failed = new Promise<never>((_, reject) => { this.#failSession = reject; });
      failed.catch(() => {});
      // Every partition of a fetch response at once by default: with fewer workers the next fetch waits for several
      // rounds of applies (commit → bucket p99), and Redis runs the Lua scripts one after another anyway.
      await consumer.run({
        autoCommit: false, eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: cfg.concurrency || cfg.partitions,
        eachBatch: (b) => this.#eachBatch(b),
      });
      log.info({ topic: cfg.topic, group: cfg.group, prefix: cfg.redisPrefix }, 'aggregating');
      const stopped = new Promise<void>((resolve) => this.#state.signal.addEventListener('abort', () => resolve(), { once: true }));
      await Promise.race([stopped, crashed, stalled.promise, failed]);
    } finally {
      this.#failSession = null;
      clearInterval(this.#committer);
      if (this.#consumer) await this.#commitResolved(this.#consumer);
      stalled?.cancel();
      await this.#consumer?.disconnect().catch(() => {});
      await this.#producer?.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
      this.#consumer = this.#producer = null;
    }
  }

  async stop(): Promise<void> { this.#state.stop(); }

  async #commitResolved(consumer: Consumer): Promise<void> {
    const changed = [...this.#resolved].filter(([p, o]) => this.#committed.get(p) !== o);
    if (!changed.length) return;
    try {
      await consumer.commitOffsets(changed.map(([partition, offset]) => ({ topic: this.cfg.topic, partition, offset })));
      for (const [p, o] of changed) this.#committed.set(p, o);
    } catch (err) {
      this.log.debug({ err }, 'committing offsets for lag monitoring failed; retried in a second');
    }
  }

  /**
   * Rejects when an assigned partition has messages to apply but nothing was applied for STALL_MS. kafkajs'
   * consumer can keep fetching from a broker that is gone or no longer leads a partition (a leader change during
   * a broker restart) without failing; a new session fetches fresh metadata and continues from Redis' offsets.
   */
  #watchStall(assignedNow: () => number[]): { promise: Promise<never>; cancel(): void } {
    let timer: NodeJS.Timeout | null = null;
    const promise = new Promise<never>((_, reject) => {
      const check = async () => {
        // an apply waiting for Redis (an outage, a failover) is not a stalled consumer
        if (this.#applying > 0) for (const p of assignedNow()) this.#progressAt.set(p, Date.now());
        const quiet = (p: number) => Date.now() - (this.#progressAt.get(p) ?? since) > STALL_MS;
        const parts = assignedNow().filter(quiet);
        if (parts.length) {
          const stall = (why: string) => reject(new Error(`no progress for ${STALL_MS / 1000} s on partitions ${parts.join(',')}: ${why}; restarting the consumer`));
          // Kafka that cannot even list offsets while nothing moves: the session is stuck with the brokers (bounded
          // wait: kafkajs' own retries of a dead broker take minutes)
          const offs = await withTimeout(this.#admin!.fetchTopicOffsets(this.cfg.topic), STALL_CHECK_MS * 2).catch(() => null);
          if (!offs) { stall('the brokers do not answer offset requests'); return; }
          // Redis that does not answer is an outage the applies wait out, not a stall
          const stored = await withTimeout(Promise.all(parts.map((p) => this.#redis.get(keys.offset(this.cfg.redisPrefix, p)))), STALL_CHECK_MS).catch(() => null);
          if (stored) {
            const behind = parts.filter((p, i) => quiet(p) && BigInt(offs.find((o) => o.partition === p)?.high ?? '0') > BigInt(stored[i] ?? '0'));
            if (behind.length) { stall(`partitions ${behind.join(',')} have messages to apply`); return; }
          }
        }
        timer = setTimeout(run, STALL_CHECK_MS);
      };
      const run = () => { check().catch(() => { timer = setTimeout(run, STALL_CHECK_MS); }); };
      timer = setTimeout(run, STALL_CHECK_MS);
    });
    promise.catch(() => {});
    const since = Date.now();
    this.#progressAt.clear();
    return { promise, cancel: () => { if (timer) clearTimeout(timer); } };
  }

  /** The cdc creates the topic; a topic with another partition count would break every key's partition. */
  async #waitForTopic(): Promise<void> {
    const { cfg } = this;
    for (let attempt = 0; this.#state.shouldRun(); attempt++) {
      const topics = await this.#admin!.listTopics();
      if (topics.includes(cfg.topic)) {
        const md = await this.#admin!.fetchTopicMetadata({ topics: [cfg.topic] });
        const n = md.topics[0].partitions.length;
        if (n !== cfg.partitions) {
          throw new TopicMismatchError(`topic ${cfg.topic} has ${n} partitions but RISKMON_PARTITIONS=${cfg.partitions}: set RISKMON_PARTITIONS=${n} for every component`);
        }
        return;
      }
      if (attempt % 30 === 0) this.log.info({ topic: cfg.topic }, 'waiting for the cdc to create the topic');
      await this.#state.sleep(1000);
    }
  }

  async #ensureDeadLetterTopic(): Promise<void> {
    const topic = this.cfg.dlqTopic;
    await createTopics(this.#admin!, [{ topic, numPartitions: 1 }], { replication: this.cfg.topicReplication }).catch((err) => {
      this.log.warn({ err, topic }, 'could not create the dead-letter topic (it may exist already)');
    });
  }

  async #lowWatermark(p: number): Promise<bigint> {
    const rows = await this.#admin!.fetchTopicOffsets(this.cfg.topic);
    return BigInt(rows.find((r) => r.partition === p)!.low);
  }

  async #seekToStored(parts: number[]): Promise<void> {
    for (const p of parts) {
      const stored = await this.#redis.get(keys.offset(this.cfg.redisPrefix, p));
      if (stored !== null) await this.#checkNotRecreated(p, BigInt(stored));
      const offset = stored ?? (await this.#lowWatermark(p)).toString();
      this.#consumer!.seek({ topic: this.cfg.topic, partition: p, offset });
    }
  }

  /**
   * Throws TopicRecreatedError if partition p ends before `stored`, an offset Redis held before this call: the
   * topic's end is read after it, and both only grow, so an old fetch, a concurrent apply or a rebalance cannot
   * make a topic that merely moved on look recreated.
   */
  async #checkNotRecreated(p: number, stored: bigint): Promise<void> {
    // a partition leader just elected may briefly answer an older end: only an end that stays behind counts
    for (let attempt = 0; ; attempt++) {
      const high = (await this.#admin!.fetchTopicOffsets(this.cfg.topic)).find((m) => m.partition === p)?.high;
      if (high === undefined || stored <= BigInt(high)) return;
      if (attempt === 2) throw new TopicRecreatedError(this.cfg.topic, this.cfg.redisPrefix, p, BigInt(high), stored);
      await this.#state.sleep(2_000);
      if (!this.#state.shouldRun()) return;
    }
  }

  async #partitionState(p: number): Promise<{ wm: number | null; pos: Position | null }> {
    let k = this.#known.get(p);
    if (!k) {
      const [wm, pos] = await this.#redis.mget(keys.watermark(this.cfg.redisPrefix, p), keys.position(this.cfg.redisPrefix, p));
      this.#known.set(p, (k = { wm: wm === null ? null : Number(wm), pos: parsePosition(pos) }));
    }
    return k;
  }

  async #eachBatch(b: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = b;
    const p = batch.partition;
    metrics.lag.set({ partition: String(p) }, Number(batch.offsetLag()));
    const msgs = batch.messages;
    if (msgs.length) metrics.receiveLatency.observe(sinceProduced(msgs[0]));
    let i = 0;
    while (i < msgs.length && isRunning() && !isStale()) {
      const chunk = msgs.slice(i, i + this.cfg.chunk);
      const step = await this.#applyChunk(p, chunk, b);
      if (step.kind !== 'stopped') this.#progressAt.set(p, Date.now());
      if (step.kind === 'applied') {
        metrics.appliedLatency.observe(sinceProduced(chunk[0]));
        resolveOffset(chunk[chunk.length - 1].offset);
        this.#resolved.set(p, String(BigInt(chunk[chunk.length - 1].offset) + 1n));
        i += chunk.length;
        await heartbeat();
      } else if (step.kind === 'skipTo') {
        // applied beyond the end of the batch's partition: a batch fetched before later applies, or a new topic
        // under the old name (then its events must not be skipped as duplicates)
        if (step.offset > BigInt(batch.highWatermark)) {
          try { await this.#checkNotRecreated(p, step.offset); } catch (err) {
            if (err instanceof TopicRecreatedError) { this.#failSession?.(err); return; }
            throw err;
          }
        }
        // Already applied up to step.offset (a duplicate delivery): drop what precedes it, continue with the rest.
        let j = i;
        while (j < msgs.length && BigInt(msgs[j].offset) < step.offset) j++;
        metrics.duplicates.inc(j - i);
        if (j > i) { resolveOffset(msgs[j - 1].offset); this.#resolved.set(p, String(BigInt(msgs[j - 1].offset) + 1n)); }
        i = j;
      } else if (step.kind === 'seek') {
        this.log.info({ partition: p, offset: step.offset, batchFirst: msgs[i].offset }, 'continuing from the offset stored in Redis');
        this.#consumer!.seek({ topic: this.cfg.topic, partition: p, offset: step.offset });
        return;
      } else {
        return;
      }
    }
  }

  async #applyChunk(p: number, chunk: Msg[], b: EachBatchPayload): Promise<Step> {
    const { cfg } = this;
    const first = chunk[0].offset;
    const last = BigInt(chunk[chunk.length - 1].offset);
    const t0 = performance.now();
    const known = await this.#partitionState(p);
    const wm = known.wm;
    const plan = buildPlan(chunk, {
      prefix: cfg.redisPrefix, partition: p, partitions: cfg.partitions, hotShards: cfg.hotShards, mapping: cfg.mapping,
      clock: this.#clock, retention: retentionOf(cfg), windowKeepMinutes: cfg.windowMinutes,
      allowedLatenessMs: cfg.allowedLatenessMs, now: Date.now(), watermark: wm, candidates: this.#candidates,
      lastPosition: known.pos,
    });
    if (plan.bad.length) {
      // Dead letters before the apply (at least once); skipped when this chunk is a duplicate delivery.
      const stored = await this.#redis.get(keys.offset(cfg.redisPrefix, p));
      if (stored === null || stored === first) await this.#deadLetter(p, plan.bad);
    }
    let mode: 'live' | 'init' = 'live';
    for (;;) {
      if (!b.isRunning() || b.isStale()) return { kind: 'stopped' };
      this.#applying++;
      const res = await this.#applier.apply(p, plan, { mode, first, next: String(last + 1n), windowKeepMinutes: cfg.windowMinutes })
        .finally(() => { this.#applying--; });
      if (res.status === 'ok') {
        if (plan.watermark !== null && (wm === null || plan.watermark > wm)) known.wm = plan.watermark;
        if (plan.position !== null) known.pos = parsePosition(plan.position);
        metrics.duplicates.inc(plan.duplicates);
        metrics.changes.inc(plan.changes);
        metrics.late.inc(plan.late);
        metrics.applySeconds.observe((performance.now() - t0) / 1000);
        return { kind: 'applied' };
      }
      if (res.status === 'locked') {
        this.#progressAt.set(p, Date.now()); // waiting for a replay is not a stall
        if (Date.now() - this.#lockLogged > 30_000) {
          this.log.warn({ partition: p, owner: res.owner }, 'a replay holds the partition: waiting (an interrupted replay must be rerun)');
          this.#lockLogged = Date.now();
        }
        await this.#state.sleep(1000);
        await b.heartbeat();
        continue;
      }
      this.#known.delete(p);
      if (res.stored === null || BigInt(res.stored) < BigInt(first)) {
        // Redis holds less than this process applied (a failover promoted a replica that missed the last writes,
        // or a replay moved the offset): buckets, offset and watermark rolled back together (one hash slot).
        // Keys re-created from here on need their TTL again, and the partition continues from the stored offset.
        this.#applier.forget();
        if (res.stored !== null) {
          metrics.rollbacks.inc();
          if (Date.now() - this.#rollbackLogged > 5_000) {
            this.log.warn({ partition: p, stored: res.stored, applying: first }, 'Redis is behind what was applied (failover?): re-consuming from its stored offset');
            this.#rollbackLogged = Date.now();
          }
        }
      }
      if (res.stored === null) {
        // Nothing stored for this partition (a fresh prefix, or Redis lost its data): start at the topic's beginning.
        const low = await this.#lowWatermark(p);
        if (BigInt(first) <= low && mode === 'live') { mode = 'init'; continue; }
        return { kind: 'seek', offset: low.toString() };
      }
      const stored = BigInt(res.stored);
      if (stored > BigInt(first) && stored <= last + 1n) return { kind: 'skipTo', offset: stored };
      if (stored > last) return { kind: 'skipTo', offset: stored };
      return { kind: 'seek', offset: res.stored };
    }
  }

  async #deadLetter(p: number, bad: BadMessage[]): Promise<void> {
    const { cfg } = this;
    await this.#producer!.send({
      topic: cfg.dlqTopic, acks: -1,
      messages: bad.map((m) => aggregatorDeadLetter(m, cfg.topic, p, m.offset)),
    });
    for (const m of bad) {
      metrics.dlq.inc({ kind: /^malformed/.test(m.reason) ? 'bad_event' : 'bad_row' });
      this.log.warn({ partition: p, offset: m.offset, reason: m.reason }, 'sent to the dead-letter topic');
    }
  }
}
