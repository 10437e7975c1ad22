/**
 * `riskmon aggregate`: reads its share of the change topic's partitions from their leaders and applies each
 * partition's records, in chunks, to Redis together with that partition's next offset (apply.lua). Redis — not a
 * Kafka consumer group — says where a partition continues: a chunk is applied only when its first offset equals the
 * stored one, so duplicate deliveries, partitions moving between aggregators, and restarts never double count.
 * Which aggregator reads which partition comes from their registrations in Redis (store/members.ts): no group
 * coordinator, no rebalance and no session timeout stand between a fault and the resume. Offsets are committed to
 * the consumer group RISKMON_GROUP too, for lag monitoring only.
 */
import { Partitioners, type Admin, type Kafka, type Producer } from 'kafkajs';
import { createRedis, verifyRedis, type RedisClient } from '../lib/redis.ts';
import { offsetOf, systemClock, type Clock } from '../lib/clock.ts';
import { withTimeout } from '../lib/timeout.ts';
import type { ConfigOf } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { RunState, runSessions, type Service } from '../lib/service.ts';
import { serveMetrics } from '../lib/metrics.ts';
import { Applier } from './store/apply.ts';
import type { aggregatorSpec } from './config.ts';
import { DayClock, keys, retentionOf } from './store/layout.ts';
import { assign, Membership } from './store/members.ts';
import { metrics, watchRedisMemory } from './metrics.ts';
import { buildPlan, candidateCache, parsePosition, type BadMessage, type Msg, type Position } from './store/plan.ts';
import { aggregatorDeadLetter } from '../lib/dead-letters.ts';
import { createKafka, createTopics, kafkaSetupProblem, OffsetOutOfRangeError, PartitionFetcher, verifyKafka, type FetchedRecord } from '../lib/kafka/index.ts';

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

/** A member not renewed for this long is dropped; renewed every MEMBER_RENEW_MS. */
const MEMBER_TTL_MS = 5_000;
const MEMBER_RENEW_MS = 1_000;
/** The broker holds a Fetch at most this long for data; a Fetch not answered FETCH_TIMEOUT_MS later is given up. */
const FETCH_WAIT_MS = 100;
const FETCH_TIMEOUT_MS = 5_000;
/**
 * Admin requests (list offsets) are given up after this long: kafkajs' own retries against a dead broker can take
 * far longer, and a partition waiting on one would not be fetched meanwhile.
 */
const ADMIN_TIMEOUT_MS = 10_000;
/** Bytes a Fetch asks for per partition; up to MAX_PARTITION_BYTES while a larger record batch stands in the way. */
const PARTITION_BYTES = 1 << 20;
const MAX_PARTITION_BYTES = 16 << 20;
/** Each clean-up step of an ending session waits at most this long. */
const CLEANUP_MS = 5_000;
/** A partition no Fetch answered for this long ends the session (#pump). */
const STALL_MS = 20_000;
/** The pump looks at its partitions at least this often (retries after a backoff). */
const PUMP_IDLE_MS = 50;

/** A partition this aggregator holds: where it continues, and what is being done with it. */
interface Owned {
  /** next offset to fetch; null until read from Redis (#start) */
  next: bigint | null;
  fetching: boolean;
  applying: Promise<void> | null;
  /** no fetch before this time (a backoff after a failed fetch) */
  retryAt: number;
  /** when a Fetch last answered for it (or it was taken): the stall watch */
  answeredAt: number;
  /** bytes asked for per Fetch; grown while a record batch larger than it stands at `next` */
  maxBytes: number;
  starting?: Promise<void>;
}

const within = <T>(p: Promise<T>, ms: number): Promise<T> => withTimeout(p, ms, () => new Error('timed out'));

/** Seconds since the record was produced (its timestamp; 0 when it has none). */
function sinceProduced(m: { timestamp?: string }): number {
  const t = Number(m.timestamp);
  return t > 0 ? Math.max(0, systemClock() - t) / 1000 : 0; // the producer's clock against ours: real time
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
  #fetcher: PartitionFetcher | null = null;
  /** the partitions this aggregator holds now */
  readonly #owned = new Map<number, Owned>();
  #waiter: (() => void) | null = null;
  #renewLogged = -Infinity;
  #renewing = false;
  #producer: Producer | null = null;
  #admin: Admin | null = null;
  #lockLogged = -Infinity;
  /** partition → next offset applied (resolved) / last committed to Kafka (for lag monitoring only) */
  readonly #resolved = new Map<number, string>();
  readonly #committed = new Map<number, string>();
  /** ends the current session with an error that is not retried (TopicRecreatedError) */
  #failSession: ((err: Error) => void) | null = null;
  #rollbackLogged = -Infinity;

  /** "Now" (lib/clock.ts) for which buckets are still kept; the timers and throttles here run on performance.now(). */
  readonly #now: Clock;

  constructor(readonly cfg: AggregatorConfig, readonly log: Logger, opts: { clientId?: string; now?: Clock } = {}) {
    this.#now = opts.now ?? systemClock;
    this.#clock = new DayClock(cfg.tz);
    this.#candidates = candidateCache(cfg.partitions, cfg.hotShards);
    this.#kafka = createKafka(cfg, { clientId: opts.clientId ?? 'riskmon-aggregator', log: this.log });
    this.#redis = createRedis(cfg, { lazyConnect: true, maxRetriesPerRequest: null, connectionName: 'riskmon-aggregator' });
    this.#applier = new Applier(this.#redis, cfg.redisPrefix);
  }

  async run(): Promise<void> {
    const { cfg, log } = this;
    // Redis queues commands while it is down (maxRetriesPerRequest: null): an outage pauses the applies, loses nothing.
    let redisDown = -Infinity;
    // a wrong password or an untrusted certificate stops here, naming the setting
    await verifyRedis(cfg);
    await verifyKafka(cfg);
    this.#redis.on('error', (err: Error) => {
      if (performance.now() - redisDown > 30_000) { log.warn({ err }, 'redis unreachable: applies wait until it is back'); redisDown = performance.now(); }
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

  /**
   * One session: registers in the aggregators' membership (Redis), takes its share of the partitions and reads them
   * from their leaders at the offsets stored in Redis. Resolves when stopped; rejects on an error that ends the
   * session (Kafka unreachable at its start, a recreated topic).
   */
  async #session(): Promise<void> {
    const { cfg, log } = this;
    const admin = (this.#admin = this.#kafka.admin());
    let fetcher: PartitionFetcher | null = null;
    const timers: NodeJS.Timeout[] = [];
    const membership = new Membership(this.#redis, cfg.redisPrefix, MEMBER_TTL_MS);
    let live = true;
    try {
      await admin.connect();
      await this.#waitForTopic();
      if (!this.#state.shouldRun()) return;
      await this.#ensureDeadLetterTopic();
      // idempotent: a retried send (leader moved) must not write a dead letter twice
      this.#producer = this.#kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await this.#producer.connect();
      fetcher = this.#fetcher = await PartitionFetcher.open(this.#kafka, cfg.topic);
      const failed = new Promise<never>((_, reject) => { this.#failSession = reject; });
      failed.catch(() => {});
      this.#owned.clear();
      this.#committed.clear();
      this.#resolved.clear();
      // Kafka offsets are only for lag monitoring (Redis decides where a partition continues): committed once a
      // second, off the path between a fetch and the next one.
      timers.push(setInterval(() => void this.#commitResolved(), 1000));
      await this.#renew(membership);
      timers.push(setInterval(() => void this.#renew(membership), MEMBER_RENEW_MS));
      log.info({ topic: cfg.topic, group: cfg.group, prefix: cfg.redisPrefix, member: membership.id }, 'aggregating');
      const stopped = new Promise<void>((resolve) => this.#state.signal.addEventListener('abort', () => resolve(), { once: true }));
      await Promise.race([stopped, failed, this.#pump(fetcher, () => live && this.#state.shouldRun())]).catch((err) => {
        // said at once: the clean-up below may take a while with a broker gone
        log.warn({ err: String((err as Error)?.message ?? err) }, 'consumer session ending');
        throw err;
      });
    } finally {
      live = false;
      this.#failSession = null;
      for (const t of timers) clearInterval(t);
      const owned = [...this.#owned.values()];
      this.#owned.clear();
      this.#wake();
      // the applies in progress end at their chunk's end; then the last offsets are committed and we leave. Each
      // step is bounded: kafkajs' disconnect from a broker that died can wait for good, and the next session must start.
      const bounded = (p: Promise<unknown> | undefined, ms = CLEANUP_MS) => (p ? within(p, ms).catch(() => {}) : undefined);
      await bounded(Promise.allSettled(owned.map((o) => o.applying)));
      await bounded(this.#commitResolved());
      await bounded(membership.leave(), 2_000);
      await bounded(fetcher?.close());
      this.#fetcher = null;
      await bounded(this.#producer?.disconnect());
      await bounded(admin.disconnect());
      this.#producer = null;
    }
  }

  async stop(): Promise<void> { this.#state.stop(); }

  /** Renews this member's registration and takes or gives up partitions when the members changed. */
  async #renew(membership: Membership): Promise<void> {
    if (this.#renewing) return;
    let members: string[];
    this.#renewing = true;
    try {
      members = await within(membership.renew(), MEMBER_TTL_MS);
    } catch (err) {
      // Redis unreachable: keep what we hold (the applies wait for Redis anyway; the others cannot take over before it is back)
      if (performance.now() - this.#renewLogged > 30_000) { this.log.warn({ err }, 'could not renew the aggregator membership in Redis; keeping the partitions held'); this.#renewLogged = performance.now(); }
      return;
    } finally {
      this.#renewing = false;
    }
    if (!this.#state.shouldRun()) return;
    const mine = new Set(assign(members, membership.id, this.cfg.partitions));
    const held = [...this.#owned.keys()];
    const gained = [...mine].filter((p) => !this.#owned.has(p));
    const lost = held.filter((p) => !mine.has(p));
    if (!gained.length && !lost.length) return;
    for (const p of lost) this.#owned.delete(p);
    // another process may have written these partitions meanwhile: re-read their state, re-set TTLs
    for (const p of gained) { this.#known.delete(p); this.#owned.set(p, { next: null, fetching: false, applying: null, retryAt: 0, answeredAt: performance.now(), maxBytes: PARTITION_BYTES }); }
    if (gained.length) this.#applier.forget();
    this.log.info({ partitions: [...mine].sort((a, b) => a - b), members: members.length }, 'partitions assigned');
    this.#wake();
  }

  /** Wakes the pump (a fetch or an apply finished, the assignment changed). */
  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  /**
   * The fetch loop: one Fetch per leader in flight, carrying every owned partition that is neither being fetched nor
   * applied; each partition's records are applied as they arrive, its next fetch waits for its apply. A failed
   * fetch (broker gone, leader moved) refreshes the metadata and retries that leader's partitions after a short
   * backoff; the others go on.
   */
  async #pump(fetcher: PartitionFetcher, live: () => boolean): Promise<never> {
    const { cfg } = this;
    const busyLeaders = new Set<number>();
    const failures = new Map<number, number>();
    let rotation = 0;
    while (live()) {
      const now = performance.now();
      // A partition no Fetch has answered for STALL_MS (not even empty) while it is neither applying nor starting:
      // the session ends and the next one starts with new connections and fresh metadata. A leader election takes
      // 9–13 s; kafkajs' connection state after a broker's death is what this guards against.
      for (const [p, o] of this.#owned) {
        if (!o.applying && !o.starting && now - o.answeredAt > STALL_MS) {
          throw new Error(`no Fetch answered for partition ${p} in ${STALL_MS / 1000} s (leader ${[...fetcher.leaders([p]).keys()][0] ?? 'unknown'}); restarting the consumer with new connections`);
        }
      }
      const ready: number[] = [];
      for (const [p, o] of this.#owned) {
        if (o.fetching || o.applying || now < o.retryAt) continue;
        if (o.next === null) { if (!o.starting) o.starting = this.#start(p, o); continue; }
        ready.push(p);
      }
      const byLeader = fetcher.leaders(ready);
      // a partition without a leader in the metadata (an election under way): ask again, at most twice a second
      let led = 0;
      for (const parts of byLeader.values()) led += parts.length;
      if (led < ready.length) void fetcher.refresh(500).catch(() => {});
      for (const [leader, parts] of byLeader) {
        if (busyLeaders.has(leader)) continue;
        const ask = new Map<number, bigint>();
        let maxBytesPerPartition = PARTITION_BYTES;
        // A different partition first in each request: a broker returns a batch larger than the per-partition limit
        // only for the first partition with data, so every partition gets its turn.
        const r = rotation++ % parts.length;
        const ordered = parts.slice(r).concat(parts.slice(0, r));
        for (const p of ordered) {
          const o = this.#owned.get(p)!;
          o.fetching = true;
          ask.set(p, o.next!);
          maxBytesPerPartition = Math.max(maxBytesPerPartition, o.maxBytes);
        }
        busyLeaders.add(leader);
        const ownedNow = new Map([...ask.keys()].map((p) => [p, this.#owned.get(p)!]));
        void within(fetcher.fetch(leader, ask, { maxWaitMs: FETCH_WAIT_MS, maxBytesPerPartition, maxBytes: Math.max(8 << 20, maxBytesPerPartition) }), FETCH_WAIT_MS + FETCH_TIMEOUT_MS)
          .then((got) => {
            const failed = failures.get(leader);
            if (failed) {
              failures.delete(leader);
              this.log.info({ leader, partitions: [...ask.keys()], failures: failed }, 'fetch answered again');
            }
            for (const f of got) {
              const o = ownedNow.get(f.partition);
              if (!o) continue;
              o.answeredAt = performance.now();
              if (this.#owned.get(f.partition) !== o || o.next !== ask.get(f.partition)) continue;
              metrics.lag.set({ partition: String(f.partition) }, Number(f.high - o.next!));
              // Nothing returned below the high watermark: the batch at `next` may be larger than what was asked for
              // per partition (a broker returns an oversized batch whole only as the first data of a response, and the
              // client drops a partial one), or the response's limit was reached before it. Ask for more, up to
              // MAX_PARTITION_BYTES: the cdc's batches are under 2 MiB at the default message limit; a larger cap let
              // a catch-up's responses reach 64 MiB and the aggregator run out of heap.
              if (!f.records.length && f.high > o.next!) o.maxBytes = Math.min(o.maxBytes * 4, MAX_PARTITION_BYTES);
              else if (f.records.length) o.maxBytes = PARTITION_BYTES;
              if (f.records.length) {
                o.applying = this.#applyRecords(f.partition, o, f.records, f.high)
                  .catch((err) => {
                    // the partition goes on from o.next (what was applied) after a second: nothing skipped
                    this.log.warn({ err, partition: f.partition }, 'applying fetched records failed; retrying from the last applied offset');
                    o.retryAt = performance.now() + 1000;
                  })
                  .finally(() => { o.applying = null; o.answeredAt = performance.now(); this.#wake(); });
              }
            }
          })
          .catch((err) => {
            const n = (failures.get(leader) ?? 0) + 1;
            failures.set(leader, n);
            if (err instanceof OffsetOutOfRangeError) {
              const o = ownedNow.get(err.partition);
              if (o && this.#owned.get(err.partition) === o) { o.next = null; o.starting = undefined; o.retryAt = performance.now() + 1000; }
            }
            for (const o of ownedNow.values()) o.retryAt = Math.max(o.retryAt, performance.now() + Math.min(50 * 2 ** Math.min(n, 4), 1000));
            if (n === 1 || n % 5 === 0) this.log.warn({ leader, partitions: [...ask.keys()], err: String((err as Error)?.message ?? err), failures: n }, 'fetch failed: refreshing the partition leaders and retrying');
            // not awaited: the partitions' retry waits for their backoff, not for the refresh (bounded, but slow
            // against a dead broker)
            void fetcher.refresh().catch(() => {});
          })
          .finally(() => {
            busyLeaders.delete(leader);
            for (const o of ownedNow.values()) o.fetching = false;
            this.#wake();
          });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { this.#waiter = null; resolve(); }, PUMP_IDLE_MS);
        this.#waiter = () => { clearTimeout(t); resolve(); };
      });
    }
    return new Promise<never>(() => {});
  }

  /** A partition just taken: continue from the offset stored in Redis, or from the topic's start when none is. */
  async #start(p: number, o: Owned): Promise<void> {
    try {
      const stored = await this.#redis.get(keys.offset(this.cfg.redisPrefix, p));
      if (stored !== null) await this.#checkNotRecreated(p, BigInt(stored));
      const next = stored !== null ? BigInt(stored) : await this.#lowWatermark(p);
      if (this.#owned.get(p) === o && o.next === null) o.next = next;
    } catch (err) {
      if (err instanceof TopicRecreatedError) { this.#failSession?.(err); return; }
      this.log.warn({ err, partition: p }, 'could not read where the partition continues; retrying');
      o.retryAt = performance.now() + 1000;
    } finally {
      o.starting = undefined;
      o.answeredAt = performance.now();
      this.#wake();
    }
  }

  async #commitResolved(): Promise<void> {
    const changed = new Map([...this.#resolved].filter(([p, o]) => this.#committed.get(p) !== o));
    if (!changed.size || !this.#fetcher) return;
    try {
      await within(this.#fetcher.commit(this.cfg.group, changed), 5_000);
      for (const [p, o] of changed) this.#committed.set(p, o);
    } catch (err) {
      this.log.debug({ err }, 'committing offsets for lag monitoring failed; retried in a second');
    }
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
    const rows = await within(this.#admin!.fetchTopicOffsets(this.cfg.topic), ADMIN_TIMEOUT_MS);
    return BigInt(rows.find((r) => r.partition === p)!.low);
  }

  /**
   * Throws TopicRecreatedError if partition p ends before `stored`, an offset Redis held before this call: the
   * topic's end is read after it, and both only grow, so an old fetch, a concurrent apply or a rebalance cannot
   * make a topic that merely moved on look recreated.
   */
  async #checkNotRecreated(p: number, stored: bigint): Promise<void> {
    // a partition leader just elected may briefly answer an older end: only an end that stays behind counts
    for (let attempt = 0; ; attempt++) {
      const high = (await within(this.#admin!.fetchTopicOffsets(this.cfg.topic), ADMIN_TIMEOUT_MS)).find((m) => m.partition === p)?.high;
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

  /** Applies the records fetched for partition p in chunks; leaves `o.next` where the partition continues. */
  async #applyRecords(p: number, o: Owned, msgs: FetchedRecord[], high: bigint): Promise<void> {
    const mine = () => this.#owned.get(p) === o && this.#state.shouldRun();
    if (msgs.length) metrics.receiveLatency.observe(sinceProduced(msgs[0]));
    let i = 0;
    while (i < msgs.length && mine()) {
      const chunk = msgs.slice(i, i + this.cfg.chunk);
      const step = await this.#applyChunk(p, chunk, mine);
      if (step.kind === 'applied') {
        metrics.appliedLatency.observe(sinceProduced(chunk[0]));
        o.next = BigInt(chunk[chunk.length - 1].offset) + 1n;
        this.#resolved.set(p, o.next.toString());
        i += chunk.length;
      } else if (step.kind === 'skipTo') {
        // applied beyond the end of the fetched partition: records fetched before later applies (another member's),
        // or a new topic under the old name (then its events must not be skipped as duplicates)
        if (step.offset > high) {
          try { await this.#checkNotRecreated(p, step.offset); } catch (err) {
            if (err instanceof TopicRecreatedError) { this.#failSession?.(err); return; }
            throw err;
          }
        }
        // Already applied up to step.offset (a duplicate delivery): drop what precedes it, continue with the rest.
        let j = i;
        while (j < msgs.length && BigInt(msgs[j].offset) < step.offset) j++;
        metrics.duplicates.inc(j - i);
        o.next = step.offset;
        if (j > i) this.#resolved.set(p, step.offset.toString());
        i = j;
      } else if (step.kind === 'seek') {
        this.log.info({ partition: p, offset: step.offset, batchFirst: msgs[i].offset }, 'continuing from the offset stored in Redis');
        o.next = BigInt(step.offset);
        return;
      } else {
        return;
      }
    }
  }

  async #applyChunk(p: number, chunk: Msg[], mine: () => boolean): Promise<Step> {
    const { cfg } = this;
    const first = chunk[0].offset;
    const last = BigInt(chunk[chunk.length - 1].offset);
    const t0 = performance.now();
    const known = await this.#partitionState(p);
    const wm = known.wm;
    const plan = buildPlan(chunk, {
      prefix: cfg.redisPrefix, partition: p, partitions: cfg.partitions, hotShards: cfg.hotShards, mapping: cfg.mapping,
      clock: this.#clock, retention: retentionOf(cfg), windowKeepMinutes: cfg.windowMinutes,
      allowedLatenessMs: cfg.allowedLatenessMs, now: this.#now(), clockOffsetMs: offsetOf(this.#now), watermark: wm, candidates: this.#candidates,
      lastPosition: known.pos,
    });
    if (plan.bad.length) {
      // Dead letters before the apply (at least once); skipped when this chunk is a duplicate delivery.
      const stored = await this.#redis.get(keys.offset(cfg.redisPrefix, p));
      if (stored === null || stored === first) await this.#deadLetter(p, plan.bad);
    }
    let mode: 'live' | 'init' = 'live';
    for (;;) {
      if (!mine()) return { kind: 'stopped' };
      const res = await this.#applier.apply(p, plan, { mode, first, next: String(last + 1n), windowKeepMinutes: cfg.windowMinutes });
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
        if (performance.now() - this.#lockLogged > 30_000) {
          this.log.warn({ partition: p, owner: res.owner }, 'a replay holds the partition: waiting (an interrupted replay must be rerun)');
          this.#lockLogged = performance.now();
        }
        await this.#state.sleep(1000);
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
          if (performance.now() - this.#rollbackLogged > 5_000) {
            this.log.warn({ partition: p, stored: res.stored, applying: first }, 'Redis is behind what was applied (failover?): re-consuming from its stored offset');
            this.#rollbackLogged = performance.now();
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
