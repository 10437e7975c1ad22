/**
 * The cdc service: one logical replication session on the slot, decoded in order into change events that go to
 * explicitly chosen partitions; PostgreSQL gets a standby status update confirming only the commit LSNs of
 * transactions whose every message Kafka acknowledged. A leader change or a broker gone is retried inside the
 * idempotent partition writer (lib/kafka producer.ts). Any other failure (PostgreSQL, Kafka, a bug) ends the session;
 * the next session re-reads the partition tails and the hot-set schedule and resumes from the slot without
 * duplicates, exactly as after `kill -9`.
 *
 * A session wires three parts: the pausable replication source (source.ts: the slot's stream, one message at a
 * time, paused while its queue or the bytes waiting for Kafka are too large), the transaction router (router.ts:
 * messages → change events, dead letters and heartbeats on their partitions, through the publisher) and the ack
 * sink (ack-sink.ts: Kafka's acknowledgements → the confirmed LSN → standby status updates, also on a timer).
 */
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { systemClock, type Clock } from '../lib/clock.ts';
import { createClient } from '../lib/pg.ts';
import type { ConfigOf } from '../lib/config.ts';
import { cdcDeadLetterPosition } from '../lib/dead-letters.ts';
import { kafkaSetupProblem, PartitionWriter } from '../lib/kafka/index.ts';
import type { Logger } from '../lib/logger.ts';
import { formatLsn, parseLsn } from '../lib/lsn.ts';
import { RunState, runSessions, type Service } from '../lib/service.ts';
import { AckSink } from './ack-sink.ts';
import type { Unit } from './ack-tracker.ts';
import type { cdcSpec } from './config.ts';
import { MappedColumnError, SetupError, SlotLostError } from './errors.ts';
import { HotSetLearner, sameSet } from './hot-set.ts';
import { loadHotSchedule, type HotSchedule } from './hot-schedule.ts';
import { cdcMetrics as M } from './metrics.ts';
import { startCpuProfile, startHeapProfile } from './profile.ts';
import { Publisher } from './publisher.ts';
import { TransactionRouter } from './router.ts';
import { ReplicationSource } from './source.ts';
import { readTails } from './tails.ts';

export type CdcConfig = ConfigOf<typeof cdcSpec> & { hotsetTopic: string };

/** Received messages waiting for the router before the replication socket is paused. */
const MAX_QUEUED_MESSAGES = 5_000;
/**
 * The change topic's high watermarks must stand still this long before its tails are read (tails.ts): longer than
 * a follower's fetch wait (replica.fetch.wait.max.ms, 500 ms by default), so writes of the previous session that a
 * new leader holds become visible first.
 */
const TAIL_SETTLE_MS = 1_200;

export class CdcService implements Service {
  readonly name = 'cdc';
  readonly #state = new RunState();
  readonly #learner: HotSetLearner;
  #seeded = false;
  #stopSession: (() => void) | null = null;

  constructor(private readonly cfg: CdcConfig, private readonly kafka: Kafka, private readonly log: Logger, private readonly now: Clock = systemClock) {
    this.#learner = new HotSetLearner({ fraction: cfg.hotFraction, halfLifeMs: cfg.hotHalfLifeMs });
  }

  async run(): Promise<void> {
    const stopProfile = startCpuProfile(process.env.RISKMON_CDC_CPU_PROFILE);
    const stopHeapProfile = startHeapProfile(process.env.RISKMON_CDC_HEAP_PROFILE);
    try { await this.#run(); } finally { stopProfile(); stopHeapProfile(); }
  }

  async #run(): Promise<void> {
    await runSessions(this.#state, () => this.#session(), {
      // Retried at least every 2 s: PostgreSQL restarts in seconds, and with the default cap (15 s) the backoff of the
      // failed attempts during its restart held the cdc up to 8 s after it was back. One attempt per 2 s costs nothing.
      baseMs: 250, maxMs: 2_000,
      // credentials or certificates refused by Kafka (e.g. rotated while running) cannot be retried away
      fatal: (err, attempt) => err instanceof SlotLostError || err instanceof MappedColumnError || (err instanceof SetupError && attempt > 5) || kafkaSetupProblem(err) !== null,
      onRetry: (err, retryInMs) => {
        M.restarts.inc();
        this.log.warn({ err, retryInMs }, 'replication session ended; resuming from the slot and the topic tails');
      },
    });
  }

  async drain(): Promise<void> { return this.stop(); }

  async stop(): Promise<void> {
    this.#state.stop();
    this.#stopSession?.();
  }

  async #seed(): Promise<void> {
    const t = this.cfg.mapping.approvals;
    const c = createClient({ connectionString: this.cfg.pgUrl, statement_timeout: 60_000 });
    try {
      await c.connect();
      const q = (s: string) => s.split('.').map((x) => `"${x.replaceAll('"', '""')}"`).join('.');
      const { rows } = await c.query(
        `SELECT ${q(t.merchant)}::text AS m, count(*)::float8 AS n FROM ${q(t.table)} WHERE ${q(t.time)} > $1::timestamptz - interval '1 day' GROUP BY 1`, [new Date(this.now()).toISOString()]);
      this.#learner.seed(rows.map((r) => [r.m, r.n] as [string, number]));
      this.log.info({ merchants: rows.length, hot: this.#learner.top().size }, 'hot-merchant learner seeded from the last day of approvals');
    } catch (err) {
      this.log.warn({ err }, 'could not seed the hot-merchant learner from the source; it learns from the stream instead');
    } finally {
      await c.end().catch(() => {});
    }
    this.#learner.tick(performance.now()); // decay: elapsed time
    this.#seeded = true;
  }

  async #slotPosition(): Promise<bigint> {
    const c = createClient({ connectionString: this.cfg.pgUrl });
    await c.connect();
    try {
      const r = (await c.query('SELECT confirmed_flush_lsn::text AS lsn, wal_status FROM pg_replication_slots WHERE slot_name = $1', [this.cfg.slot])).rows[0];
      if (!r) throw new SetupError(`replication slot "${this.cfg.slot}" disappeared`, 'restart riskmon cdc with --accept-gap to recreate it, then backfill what was committed meanwhile (riskmon backfill --from <the last change in the topic> --to <now>)');
      if (r.wal_status === 'lost') throw new SlotLostError(this.cfg.slot);
      return r.lsn ? parseLsn(r.lsn) : 0n;
    } finally {
      await c.end().catch(() => {});
    }
  }

  async #session(): Promise<void> {
    const { cfg, log } = this;
    const producer: Producer = this.kafka.producer({
      retry: { retries: 0 }, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner,
    });
    let writer: PartitionWriter | null = null;
    let repl: ReplicationSource | null = null;
    const timers: NodeJS.Timeout[] = [];
    const ms: Record<string, number> = {};
    let t = performance.now();
    const step = (name: string) => { const n = performance.now(); ms[name] = Math.round(n - t); t = n; };
    try {
      await producer.connect();
      step('producer');
      writer = await PartitionWriter.open(this.kafka, [cfg.topic, cfg.dlqTopic], {
        maxInFlight: cfg.produceInFlight, lanes: cfg.produceLanes,
        onRetry: (r) => {
          M.produceRetries.inc();
          if (r.attempt === 1 || r.attempt % 10 === 0) log.warn({ produceTopic: r.topic, partition: r.partition, batches: r.batches, error: r.error, attempt: r.attempt }, 'produce retried: re-sending the partition\'s unacknowledged batches with their sequence numbers');
        },
      });
      step('writer');
      const confirmed0 = await this.#slotPosition();
      step('slot');
      const [tails, dlqTails] = await Promise.all([readTails(this.kafka, cfg.topic, undefined, { settleMs: TAIL_SETTLE_MS }), readTails(this.kafka, cfg.dlqTopic, cdcDeadLetterPosition)]);
      let maxTail = -1n;
      for (const t of tails.values()) if (t.lsn > maxTail) maxTail = t.lsn;
      step('tails');
      const schedule: HotSchedule = await loadHotSchedule(this.kafka, cfg.hotsetTopic, confirmed0);
      step('hotSchedule');
      if (!schedule.size && tails.size) log.warn('the hot-set topic holds nothing for this position: changes already in the topic may be routed differently and published twice once');
      if (!this.#seeded) await this.#seed();
      step('seed');
      const staged: Set<string> | null = sameSet(this.#learner.top(), schedule.at(1n << 63n)) && schedule.size ? null : this.#learner.top();
      log.info({ confirmed: formatLsn(confirmed0), partitionsWithData: tails.size, tailLsn: maxTail >= 0n ? formatLsn(maxTail) : null, hotSetEntries: schedule.size, ms },
        'replication session starting');

      let fail!: (err: Error) => void;
      const ended = new Promise<never>((_, reject) => { fail = reject; });
      ended.catch(() => {});
      this.#stopSession = () => fail(new Error('stopping'));
      if (!this.#state.shouldRun()) fail(new Error('stopping'));

      // source → router → publisher → Kafka; Kafka's acks → sink → PostgreSQL. (The closures run only once the
      // stream starts, when all four exist.)
      const publisher = new Publisher<Unit>(writer, (u) => sink.acked(u), (err) => fail(new Error(`Kafka produce failed: ${err.message}`, { cause: err })));
      const source = new ReplicationSource(
        { pgUrl: cfg.pgUrl, slot: cfg.slot, publication: cfg.publication, maxQueued: MAX_QUEUED_MESSAGES },
        (m) => router.handle(m),
        () => (publisher.bufferedBytes > cfg.maxBufferedBytes ? publisher.waitBelow(cfg.maxBufferedBytes / 2) : null),
        fail,
      );
      repl = source;
      const sink = new AckSink(confirmed0, source, () => {
        M.bufferedBytes.set(publisher.bufferedBytes);
        router.flushCounters();
      });
      const router = new TransactionRouter({ cfg, log, sink, publisher, producer, tails, dlqTails, maxTail, schedule, learner: this.#learner, now: this.now }, staged);

      timers.push(setInterval(() => sink.status(), cfg.statusIntervalMs));
      timers.push(setInterval(() => {
        const mem = process.memoryUsage();
        log.info({ published: router.published, confirmed: formatLsn(sink.confirmed), inFlight: sink.inFlight, bufferedBytes: publisher.bufferedBytes, paused: source.paused, received: source.received,
          rssMb: Math.round(mem.rss / 2 ** 20), heapMb: Math.round(mem.heapUsed / 2 ** 20), externalMb: Math.round(mem.external / 2 ** 20) }, 'progress');
      }, 10_000));
      timers.push(setInterval(() => {
        this.#learner.tick(performance.now());
        const top = this.#learner.top();
        if (!sameSet(top, schedule.at(1n << 63n))) router.stage(top);
        schedule.prune(sink.confirmed);
      }, cfg.hotRefreshMs));

      const streaming = source.stream(confirmed0);
      await Promise.race([streaming, ended]);
    } finally {
      this.#stopSession = null;
      for (const t of timers) clearInterval(t);
      await repl?.destroy();
      await producer.disconnect().catch(() => {});
      await writer?.close();
    }
  }
}

