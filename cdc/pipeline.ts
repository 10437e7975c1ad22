/**
 * The cdc service: one logical replication session on the slot, decoded in order into change events that go to
 * explicitly chosen partitions; PostgreSQL gets a standby status update confirming only the commit LSNs of
 * transactions whose every message Kafka acknowledged. Any failure (PostgreSQL, Kafka, a bug) ends the session;
 * the next session re-reads the partition tails and the hot-set schedule and resumes from the slot without
 * duplicates, exactly as after `kill -9`.
 *
 * Backpressure: received messages go to an in-process queue; the replication socket is paused while that queue
 * or the bytes waiting for Kafka are too large, and status updates (keepalives) still go out on a timer.
 */
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import pg from 'pg';
import { LogicalReplicationService, type Pgoutput } from 'pg-logical-replication';
import type { ConfigOf } from '../lib/config.ts';
import { encodeEvent, heartbeat } from '../lib/events.ts';
import type { Logger } from '../lib/logger.ts';
import { formatLsn, parseLsn } from '../lib/lsn.ts';
import { merchantOf, rowIdOf, tableKind, tablesOf } from '../lib/mapping.ts';
import { messageKey, partitionOfKey } from '../lib/partition.ts';
import { RunState, runSessions, type Service } from '../lib/service.ts';
import { AckTracker, type Unit } from './ack-tracker.ts';
import type { cdcSpec } from './config.ts';
import { relationDiff, tableOf, TextPgoutputPlugin, toRowChange, type ChangeMessage } from './decode.ts';
import { SetupError, SlotLostError } from './errors.ts';
import { HotSetLearner, sameSet } from './hot-set.ts';
import { appendHotEntry, loadHotSchedule, type HotEntry, type HotSchedule } from './hot-schedule.ts';
import { cdcMetrics as M } from './metrics.ts';
import { PartitionWriter } from '../lib/kafka/index.ts';
import { startCpuProfile } from './profile.ts';
import { Publisher } from './publisher.ts';
import { atOrBefore, readTails } from './tails.ts';
import { cdcDeadLetterPosition, encodeCdcDeadLetter } from '../lib/dead-letters.ts';

export type CdcConfig = ConfigOf<typeof cdcSpec> & { hotsetTopic: string };
export const HEARTBEAT_PREFIX = 'riskmon-heartbeat';

const MAX_QUEUED_MESSAGES = 5_000;

interface Tx { lsn: string; lsnBig: bigint; commitTs: string; xid: number; seq: number; unit: Unit; hot: Set<string> | null }
type Keepalive = { tag: 'keepalive'; walEnd: string; shouldRespond: boolean };
type Incoming = Pgoutput.Message | Keepalive;

export class CdcService implements Service {
  readonly name = 'cdc';
  readonly #state = new RunState();
  readonly #learner: HotSetLearner;
  #seeded = false;
  #stopSession: (() => void) | null = null;

  constructor(private readonly cfg: CdcConfig, private readonly kafka: Kafka, private readonly log: Logger) {
    this.#learner = new HotSetLearner({ fraction: cfg.hotFraction, halfLifeMs: cfg.hotHalfLifeMs });
  }

  async run(): Promise<void> {
    const stopProfile = startCpuProfile(process.env.RISKMON_CDC_CPU_PROFILE);
    try { await this.#run(); } finally { stopProfile(); }
  }

  async #run(): Promise<void> {
    await runSessions(this.#state, () => this.#session(), {
      fatal: (err, attempt) => err instanceof SlotLostError || (err instanceof SetupError && attempt > 5),
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
    const c = new pg.Client({ connectionString: this.cfg.pgUrl, statement_timeout: 60_000 });
    try {
      await c.connect();
      const q = (s: string) => s.split('.').map((x) => `"${x.replaceAll('"', '""')}"`).join('.');
      const { rows } = await c.query(
        `SELECT ${q(t.merchant)}::text AS m, count(*)::float8 AS n FROM ${q(t.table)} WHERE ${q(t.time)} > now() - interval '1 day' GROUP BY 1`);
      this.#learner.seed(rows.map((r) => [r.m, r.n] as [string, number]));
      this.log.info({ merchants: rows.length, hot: this.#learner.top().size }, 'hot-merchant learner seeded from the last day of approvals');
    } catch (err) {
      this.log.warn({ err }, 'could not seed the hot-merchant learner from the source; it learns from the stream instead');
    } finally {
      await c.end().catch(() => {});
    }
    this.#learner.tick(Date.now());
    this.#seeded = true;
  }

  async #slotPosition(): Promise<bigint> {
    const c = new pg.Client({ connectionString: this.cfg.pgUrl });
    await c.connect();
    try {
      const r = (await c.query('SELECT confirmed_flush_lsn::text AS lsn, wal_status FROM pg_replication_slots WHERE slot_name = $1', [this.cfg.slot])).rows[0];
      if (!r) throw new SetupError(`replication slot "${this.cfg.slot}" disappeared`, 'restart riskmon cdc to recreate it, then replay (see README "Slot lost")');
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
    let repl: LogicalReplicationService | null = null;
    const timers: NodeJS.Timeout[] = [];
    try {
      await producer.connect();
      writer = await PartitionWriter.open(this.kafka, [cfg.topic, cfg.dlqTopic]);
      const confirmed0 = await this.#slotPosition();
      const [tails, dlqTails] = await Promise.all([readTails(this.kafka, cfg.topic), readTails(this.kafka, cfg.dlqTopic, cdcDeadLetterPosition)]);
      let maxTail = -1n;
      for (const t of tails.values()) if (t.lsn > maxTail) maxTail = t.lsn;
      const schedule: HotSchedule = await loadHotSchedule(this.kafka, cfg.hotsetTopic, confirmed0);
      if (!schedule.size && tails.size) log.warn('the hot-set topic holds nothing for this position: changes already in the topic may be routed differently and published twice once');
      if (!this.#seeded) await this.#seed();
      let staged: Set<string> | null = sameSet(this.#learner.top(), schedule.at(1n << 63n)) && schedule.size ? null : this.#learner.top();
      log.info({ confirmed: formatLsn(confirmed0), partitionsWithData: tails.size, tailLsn: maxTail >= 0n ? formatLsn(maxTail) : null, hotSetEntries: schedule.size },
        'replication session starting');

      const tracker = new AckTracker(confirmed0);
      let fail!: (err: Error) => void;
      const ended = new Promise<never>((_, reject) => { fail = reject; });
      ended.catch(() => {});
      const publisher = new Publisher<Unit>(writer, (u) => onAcked(u), (err) => fail(new Error(`Kafka produce failed: ${err.message}`, { cause: err })));
      this.#stopSession = () => fail(new Error('stopping'));
      if (!this.#state.shouldRun()) fail(new Error('stopping'));

      repl = new LogicalReplicationService(
        { connectionString: cfg.pgUrl, options: '-c DateStyle=ISO -c TimeZone=UTC' } as pg.ClientConfig, // UTC: the cheap path of timestampToIso
        { acknowledge: { auto: false, timeoutSeconds: 0 } },
      );
      const service = repl;
      // pg-logical-replication's acknowledge(lsn) reports lsn+1; we report exact positions.
      const sendStatus = () => {
        const c = tracker.confirmed;
        if (c > 0n) void service.acknowledge(formatLsn(c - 1n));
        M.confirmedLsn.set(Number(c));
        M.ackLag.set(tracker.inFlight);
        M.bufferedBytes.set(publisher.bufferedBytes);
        flushCounters();
      };
      const socket = () => (service as any)._connection?.stream as { pause(): void; resume(): void } | undefined;
      let paused = false;
      const pause = () => { if (!paused) { paused = true; socket()?.pause(); M.paused.set(1); } };
      const resume = () => { if (paused) { paused = false; socket()?.resume(); M.paused.set(0); } };

      const queue: Incoming[] = [];
      let head = 0;
      let processing = false;
      let tx: Tx | null = null;
      // Many transactions commit within one millisecond during catch-up: format their commit time once.
      let lastCommitMs = NaN, lastCommitTs = '';
      const relColumns = new Map<number, string[]>();
      // Counted here and added to the Prometheus counters with each status update (no metric call per change).
      const opCounters = new Map<string, { n: number; metric: { inc(n: number): void } }>();
      const flushCounters = () => { for (const c of opCounters.values()) if (c.n) { c.metric.inc(c.n); c.n = 0; } };
      const mapped = new Set(tablesOf(cfg.mapping));
      const requiredCols = new Map(tablesOf(cfg.mapping).map((t) => {
        const f = cfg.mapping.approvals.table === t ? cfg.mapping.approvals : cfg.mapping.cancels;
        return [t, [f.id, f.merchant, f.amount, f.time]];
      }));

      const onAcked = (u: Unit) => {
        for (const d of tracker.acked(u)) if (!Number.isNaN(d.commitMs)) M.publishLatency.observe((Date.now() - d.commitMs) / 1000);
      };
      let published = 0;
      const publish = (topic: string, partition: number, key: string | null, value: string, u: Unit) => {
        published++;
        tracker.sent(u);
        publisher.send({ topic, partition, key, value, unit: u });
      };
      const dlq = (reason: string, category: string, event: { lsn: string; seq: number }, lsnBig: bigint, u: Unit) => {
        M.dlq.labels(category).inc();
        if (atOrBefore(lsnBig, event.seq, dlqTails.get(0))) return;
        publish(cfg.dlqTopic, 0, null, encodeCdcDeadLetter(reason, event), u);
      };

      const onChange = (msg: ChangeMessage, t: Tx) => {
        const { change, unchangedToast } = toRowChange(msg, t, t.seq++);
        if (unchangedToast.length) {
          M.unchangedToast.inc(unchangedToast.length);
          log.debug({ table: change.table, lsn: change.lsn, seq: change.seq, columns: unchangedToast }, 'unchanged TOAST values without an old row: columns left out');
        }
        if (!mapped.has(change.table) || !tableKind(change.table, cfg.mapping)) {
          dlq(`table ${change.table} is not in the mapping (RISKMON_MAPPING); remove it from publication ${cfg.publication} or map it`, 'unmapped_table', change, t.lsnBig, t.unit);
          return;
        }
        const merchant = merchantOf(change, cfg.mapping);
        if (merchant === null) {
          const col = tableKind(change.table, cfg.mapping) === 'approval' ? cfg.mapping.approvals.merchant : cfg.mapping.cancels.merchant;
          dlq(`${change.op} on ${change.table} without ${col}${change.op === 'insert' ? '' : `: set REPLICA IDENTITY FULL on ${change.table}`}`, 'no_merchant', change, t.lsnBig, t.unit);
          return;
        }
        this.#learner.observe(merchant);
        const hot = (t.hot ??= schedule.at(t.lsnBig));
        const key = messageKey(merchant, hot.has(merchant), rowIdOf(change, cfg.mapping), cfg.hotShards);
        const p = partitionOfKey(key, cfg.partitions);
        if (atOrBefore(t.lsnBig, change.seq, tails.get(p))) { M.skipped.inc(); return; }
        publish(cfg.topic, p, key, encodeEvent(change), t.unit);
        const ck = `${change.table}\u0000${change.op}`;
        let c = opCounters.get(ck);
        if (!c) opCounters.set(ck, (c = { n: 0, metric: M.changes.labels(change.table, change.op) }));
        c.n++;
      };

      const handle = (msg: Incoming): Promise<void> | void => {
        switch (msg.tag) {
          case 'begin': {
            const lsnBig = parseLsn(msg.commitLsn!);
            const lsn = formatLsn(lsnBig);
            const commitMs = Number((msg.commitTime as bigint) / 1000n);
            if (commitMs !== lastCommitMs) { lastCommitMs = commitMs; lastCommitTs = new Date(commitMs).toISOString(); }
            tx = { lsn, lsnBig, commitTs: lastCommitTs, xid: msg.xid, seq: 0, unit: tracker.begin(commitMs), hot: null };
            // A new hot set may take effect only where no earlier run can have routed anything, and only once
            // it is durable (see hot-schedule.ts).
            if (staged && lsnBig > schedule.lastFrom && lsnBig > maxTail) {
              const e: HotEntry = { from: lsnBig, hot: staged };
              staged = null;
              return appendHotEntry(producer, cfg.hotsetTopic, e).then(() => {
                schedule.add(e);
                log.info({ fromLsn: lsn, hot: e.hot.size }, 'hot-merchant set in force');
              });
            }
            return;
          }
          case 'insert': case 'update': case 'delete':
            if (!tx) throw new Error(`${msg.tag} outside a transaction`);
            onChange(msg, tx);
            return;
          case 'truncate':
            if (!tx) throw new Error('truncate outside a transaction');
            for (const rel of msg.relations) {
              const table = tableOf(rel);
              if (!mapped.has(table)) continue;
              const event = { v: 1, lsn: tx.lsn, seq: tx.seq++, commitTs: tx.commitTs, xid: tx.xid, table, op: 'truncate', row: null, old: null };
              log.error({ table, lsn: tx.lsn }, `TRUNCATE of ${table}: buckets cannot be corrected row by row; rebuild them (riskmon replay) after reloading the table`);
              dlq(`TRUNCATE of ${table}`, 'truncate', event, tx.lsnBig, tx.unit);
            }
            return;
          case 'commit': {
            const t = tx!;
            tx = null;
            if (log.isLevelEnabled('debug')) log.debug({ lsn: t.lsn, xid: t.xid, changes: t.seq, pending: t.unit.pending }, 'commit');
            for (const d of tracker.commit(t.unit, parseLsn(msg.commitEndLsn!))) {
              if (!Number.isNaN(d.commitMs)) M.publishLatency.observe((Date.now() - d.commitMs) / 1000);
            }
            return;
          }
          case 'relation': {
            const table = tableOf(msg);
            const cols = msg.columns.map((c) => c.name);
            const before = relColumns.get(msg.relationOid);
            relColumns.set(msg.relationOid, cols);
            if (before) {
              const { added, dropped } = relationDiff(before, cols);
              if (added.length || dropped.length) log.warn({ table, added, dropped }, `source table ${table} changed columns; events carry the new columns from here on`);
            }
            const missing = (requiredCols.get(table) ?? []).filter((c) => !cols.includes(c));
            if (missing.length) log.error({ table, missing }, `mapped table ${table} has no column ${missing.join(', ')}: its changes go to the dead-letter topic. Fix RISKMON_MAPPING or the table`);
            return;
          }
          case 'message': {
            if (msg.transactional || msg.prefix !== HEARTBEAT_PREFIX || !msg.messageLsn) return;
            // pgoutput reports the END of the message record, which may be the start (= commit LSN) of the next
            // transaction's commit record. One byte earlier lies strictly between the previous commit and the
            // next, so heartbeat positions never collide with a change's (lsn, seq).
            const lsnBig = parseLsn(msg.messageLsn) - 1n;
            const lsn = formatLsn(lsnBig);
            const text = Buffer.from(msg.content).toString('utf8');
            const commitTs = Number.isNaN(Date.parse(text)) ? new Date().toISOString() : new Date(Date.parse(text)).toISOString();
            const u = tracker.begin(NaN);
            const value = encodeEvent(heartbeat(lsn, commitTs));
            for (let p = 0; p < cfg.partitions; p++) if (!atOrBefore(lsnBig, 0, tails.get(p))) publish(cfg.topic, p, null, value, u);
            M.heartbeats.inc();
            tracker.commit(u, lsnBig);
            return;
          }
          case 'keepalive':
            // Everything the server sent before this keepalive is processed; with nothing in flight the slot
            // may advance to the server's position, so an idle source does not hold WAL.
            if (!tx && tracker.idleAdvance(parseLsn(msg.walEnd))) sendStatus();
            else if (msg.shouldRespond) sendStatus();
            return;
          default:
            return; // type, origin
        }
      };

      const processQueue = async () => {
        processing = true;
        try {
          while (head < queue.length) {
            const msg = queue[head];
            queue[head++] = undefined as never;
            const r = handle(msg);
            if (r) await r;
            if (publisher.bufferedBytes > cfg.maxBufferedBytes) {
              pause();
              await publisher.waitBelow(cfg.maxBufferedBytes / 2);
            }
            if (head > 4096 && head * 2 > queue.length) { queue.splice(0, head); head = 0; }
          }
          queue.length = 0;
          head = 0;
          resume();
        } catch (err) {
          fail(err as Error);
        } finally {
          processing = false;
        }
      };
      const received: Record<string, number> = {};
      const enqueue = (m: Incoming) => {
        received[m.tag] = (received[m.tag] ?? 0) + 1;
        queue.push(m);
        if (queue.length - head > MAX_QUEUED_MESSAGES) pause();
        if (!processing) void processQueue();
      };

      service.on('data', (_lsn: string, msg: Pgoutput.Message) => enqueue(msg));
      service.on('heartbeat', (walEnd: string, _ts: number, shouldRespond: boolean) => enqueue({ tag: 'keepalive', walEnd, shouldRespond }));
      service.on('error', (err: Error) => fail(err));

      timers.push(setInterval(sendStatus, cfg.statusIntervalMs));
      timers.push(setInterval(() => {
        const mem = process.memoryUsage();
        log.info({ published, confirmed: formatLsn(tracker.confirmed), inFlight: tracker.inFlight, bufferedBytes: publisher.bufferedBytes, paused, received,
          rssMb: Math.round(mem.rss / 2 ** 20), heapMb: Math.round(mem.heapUsed / 2 ** 20), externalMb: Math.round(mem.external / 2 ** 20) }, 'progress');
      }, 10_000));
      timers.push(setInterval(() => {
        this.#learner.tick(Date.now());
        const top = this.#learner.top();
        if (!sameSet(top, schedule.at(1n << 63n))) staged = top;
        schedule.prune(tracker.confirmed);
      }, cfg.hotRefreshMs));

      const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [cfg.publication], messages: true });
      const streaming = service.subscribe(plugin, cfg.slot, formatLsn(confirmed0)).then(
        () => { throw new Error('replication stream ended'); },
      );
      await Promise.race([streaming, ended]);
    } finally {
      this.#stopSession = null;
      for (const t of timers) clearInterval(t);
      await repl?.destroy().catch(() => {});
      await producer.disconnect().catch(() => {});
      await writer?.close();
    }
  }
}

