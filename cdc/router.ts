/**
 * The transaction router: pgoutput messages in stream order → change events on explicitly chosen partitions, dead
 * letters, heartbeats on every partition, and units of the ack sink. It skips what a partition's tail already holds
 * (the restart check), routes each change by the hot-merchant set in force at its commit LSN, and puts a newly
 * learned hot set in force only where no earlier run can have routed anything.
 */
import type { Producer } from 'kafkajs';
import { fromSystemTime, type Clock } from '../lib/clock.ts';
import { encodeCdcDeadLetter } from '../lib/dead-letters.ts';
import { encodeEvent, heartbeat, type RowChange } from '../lib/events.ts';
import type { Logger } from '../lib/logger.ts';
import { formatLsn, parseLsn } from '../lib/lsn.ts';
import { columnsOf, isMerchantId, merchantColumnOf, merchantOf, rowIdOf, tablesOf, trimRow } from '../lib/mapping.ts';
import { messageKey, partitionOfKey } from '../lib/partition.ts';
import type { AckSink } from './ack-sink.ts';
import type { Unit } from './ack-tracker.ts';
import { relationDiff, tableOf, toRowChange, type Begin, type ChangeMessage } from './decode.ts';
import type { HotSetLearner } from './hot-set.ts';
import { appendHotEntry, type HotEntry, type HotSchedule } from './hot-schedule.ts';
import { mappedColumnProblem } from './columns.ts';
import { cdcMetrics as M } from './metrics.ts';
import type { CdcConfig } from './pipeline.ts';
import type { Outgoing } from './publisher.ts';
import type { Incoming } from './source.ts';
import { atOrBefore, type Position } from './tails.ts';

export const HEARTBEAT_PREFIX = 'riskmon-heartbeat';

interface Tx { lsn: string; lsnBig: bigint; commitTs: string; xid: number; seq: number; unit: Unit; hot: Set<string> | null }

export interface RouterContext {
  cfg: CdcConfig;
  log: Logger;
  sink: AckSink;
  publisher: { send(o: Outgoing<Unit>): void };
  /** For hot-set entries (a small topic written with kafkajs's producer). */
  producer: Producer;
  /** Last (lsn, seq) of every partition of the change topic and of the dead-letter topic when the session began. */
  tails: Map<number, Position>;
  dlqTails: Map<number, Position>;
  /** Largest LSN any partition's tail holds. */
  maxTail: bigint;
  schedule: HotSchedule;
  learner: HotSetLearner;
  /** "Now" (lib/clock.ts): commit times, read from the source's clock, are moved onto its timeline. */
  now: Clock;
}

export class TransactionRouter {
  #tx: Tx | null = null;
  /** A hot set learned but not yet in force. */
  #staged: Set<string> | null;
  /** Messages handed to the publisher this session (progress log). */
  published = 0;
  // Many transactions commit within one millisecond during catch-up: format their commit time once.
  #lastCommitMs = NaN;
  #lastCommitTs = '';
  readonly #relColumns = new Map<number, string[]>();
  // Counted here and added to the Prometheus counters with each status update (no metric call per change).
  readonly #opCounters = new Map<string, { n: number; metric: { inc(n: number): void } }>();
  readonly #mapped: Set<string>;
  /** per mapped table: the columns its events carry */
  readonly #columns: Map<string, string[]>;
  /** The source's commit time on the clock's timeline (unchanged on the system clock). */
  readonly #fromSource: (t: number) => number;

  constructor(private readonly c: RouterContext, staged: Set<string> | null) {
    this.#fromSource = fromSystemTime(c.now);
    this.#staged = staged;
    const { mapping } = c.cfg;
    this.#mapped = new Set(tablesOf(mapping));
    this.#columns = new Map(tablesOf(mapping).map((t) => [t, columnsOf(t, mapping)]));
  }

  get inTransaction(): boolean { return this.#tx !== null; }

  /** A newly learned hot set, to put in force at the next transaction that may use it. */
  stage(hot: Set<string>): void { this.#staged = hot; }

  flushCounters(): void {
    for (const c of this.#opCounters.values()) if (c.n) { c.metric.inc(c.n); c.n = 0; }
  }

  handle(msg: Incoming): Promise<void> | void {
    const { cfg, log, sink } = this.c;
    switch (msg.tag) {
      case 'begin': return this.#begin(msg);
      case 'insert': case 'update': case 'delete':
        if (!this.#tx) throw new Error(`${msg.tag} outside a transaction`);
        this.#change(msg, this.#tx);
        return;
      case 'truncate': {
        const tx = this.#tx;
        if (!tx) throw new Error('truncate outside a transaction');
        for (const rel of msg.relations) {
          const table = tableOf(rel);
          if (!this.#mapped.has(table)) continue;
          const event = { v: 1, lsn: tx.lsn, seq: tx.seq++, commitTs: tx.commitTs, xid: tx.xid, table, op: 'truncate', row: null, old: null };
          log.error({ table, lsn: tx.lsn }, `TRUNCATE of ${table}: buckets cannot be corrected row by row; rebuild them (riskmon replay) after reloading the table`);
          this.#deadLetter(`TRUNCATE of ${table}`, 'truncate', event, tx.lsnBig, tx.unit);
        }
        return;
      }
      case 'commit': {
        const t = this.#tx!;
        this.#tx = null;
        if (log.isLevelEnabled('debug')) log.debug({ lsn: t.lsn, xid: t.xid, changes: t.seq, pending: t.unit.pending }, 'commit');
        sink.commit(t.unit, msg.endLsn);
        return;
      }
      case 'relation': {
        // PostgreSQL sends a table's Relation message before its first change in a session and after any change
        // of its columns. Unmapped columns may come and go freely (events carry the mapped ones only); a mapped
        // column that is gone or retyped beyond reading stops the cdc here, before any change of the new shape
        // is published or acknowledged, so the fix and a restart lose nothing.
        const table = tableOf(msg);
        const cols = msg.columns.map((col) => col.name);
        const before = this.#relColumns.get(msg.relationOid);
        this.#relColumns.set(msg.relationOid, cols);
        if (before) {
          const { added, dropped } = relationDiff(before, cols);
          if (added.length || dropped.length) log.info({ table, added, dropped }, `source table ${table} changed columns`);
        }
        const problem = mappedColumnProblem(table, msg.columns, cfg.mapping);
        if (problem) throw problem;
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
        const sourceMs = Date.parse(text);
        const commitTs = new Date(Number.isNaN(sourceMs) ? this.c.now() : this.#fromSource(sourceMs)).toISOString();
        const u = sink.begin(NaN);
        const value = encodeEvent(heartbeat(lsn, commitTs));
        for (let p = 0; p < cfg.partitions; p++) if (!atOrBefore(lsnBig, 0, this.c.tails.get(p))) this.#publish(cfg.topic, p, null, value, u);
        M.heartbeats.inc();
        sink.commit(u, lsnBig);
        return;
      }
      case 'keepalive':
        sink.keepalive(parseLsn(msg.walEnd), this.#tx !== null, msg.shouldRespond);
        return;
      default:
        return; // type, origin
    }
  }

  #begin({ lsn, lsnBig, commitMs, xid }: Begin): Promise<void> | void {
    const { cfg, log, schedule } = this.c;
    if (commitMs !== this.#lastCommitMs) { this.#lastCommitMs = commitMs; this.#lastCommitTs = new Date(this.#fromSource(commitMs)).toISOString(); }
    this.#tx = { lsn, lsnBig, commitTs: this.#lastCommitTs, xid, seq: 0, unit: this.c.sink.begin(commitMs), hot: null };
    // A new hot set may take effect only where no earlier run can have routed anything, and only once it is
    // durable (see hot-schedule.ts).
    const staged = this.#staged;
    if (staged && lsnBig > schedule.lastFrom && lsnBig > this.c.maxTail) {
      const e: HotEntry = { from: lsnBig, hot: staged };
      this.#staged = null;
      return appendHotEntry(this.c.producer, cfg.hotsetTopic, e).then(() => {
        schedule.add(e);
        log.info({ fromLsn: lsn, hot: e.hot.size }, 'hot-merchant set in force');
      });
    }
  }

  #change(msg: ChangeMessage, t: Tx): void {
    const { cfg, log } = this.c;
    const { change, unchangedToast } = toRowChange(msg, t, t.seq++);
    const columns = this.#columns.get(change.table);
    if (!columns) {
      this.#deadLetter(`table ${change.table} is not in the mapping (RISKMON_MAPPING); remove it from publication ${cfg.publication} or map it`, 'unmapped_table', stub(change), t.lsnBig, t.unit);
      return;
    }
    if (unchangedToast.length) {
      M.unchangedToast.inc(unchangedToast.length);
      log.debug({ table: change.table, lsn: change.lsn, seq: change.seq, columns: unchangedToast }, 'unchanged TOAST values without an old row: columns left out');
    }
    // only what riskmon reads goes to Kafka: smaller events, and no card numbers or addresses from other columns
    change.row = trimRow(change.row, columns);
    change.old = trimRow(change.old, columns);
    const merchant = merchantOf(change, cfg.mapping);
    if (merchant === null) {
      const col = merchantColumnOf(change.table, cfg.mapping);
      this.#deadLetter(`${change.op} on ${change.table} without ${col}${change.op === 'insert' ? '' : `: set REPLICA IDENTITY FULL on ${change.table}`}`, 'no_merchant', change, t.lsnBig, t.unit);
      return;
    }
    if (!isMerchantId(merchant)) {
      const col = merchantColumnOf(change.table, cfg.mapping);
      this.#deadLetter(`${change.table}.${col}=${JSON.stringify(merchant.slice(0, 80))} is not a merchant id riskmon accepts (1 to 64 characters of A-Z a-z 0-9 _ . : -); the row is counted nowhere`,
        'bad_merchant', stub(change), t.lsnBig, t.unit);
      return;
    }
    const value = encodeEvent(change);
    if (value.length > cfg.maxMessageBytes) {
      // Kafka would refuse it (max.message.bytes) and the session would retry the same change forever
      log.error({ table: change.table, lsn: change.lsn, seq: change.seq, bytes: value.length },
        `a change of ${change.table} is ${value.length} bytes as an event, over RISKMON_MAX_MESSAGE_BYTES=${cfg.maxMessageBytes}: dead-lettered with its position; recover its row with riskmon backfill over its time`);
      this.#deadLetter(`change event of ${value.length} bytes is over RISKMON_MAX_MESSAGE_BYTES=${cfg.maxMessageBytes} (the topic's message limit); the row is counted nowhere until a backfill of its time`,
        'too_large', stub(change, rowIdOf(change, cfg.mapping).slice(0, 200)), t.lsnBig, t.unit);
      return;
    }
    this.c.learner.observe(merchant);
    const hot = (t.hot ??= this.c.schedule.at(t.lsnBig));
    const key = messageKey(merchant, hot.has(merchant), rowIdOf(change, cfg.mapping), cfg.hotShards);
    const p = partitionOfKey(key, cfg.partitions);
    if (atOrBefore(t.lsnBig, change.seq, this.c.tails.get(p))) { M.skipped.inc(); return; }
    this.#publish(cfg.topic, p, key, value, t.unit);
    const ck = `${change.table}\u0000${change.op}`;
    let c = this.#opCounters.get(ck);
    if (!c) this.#opCounters.set(ck, (c = { n: 0, metric: M.changes.labels(change.table, change.op) }));
    c.n++;
  }

  #deadLetter(reason: string, category: string, event: { lsn: string; seq: number }, lsnBig: bigint, u: Unit): void {
    M.dlq.labels(category).inc();
    if (atOrBefore(lsnBig, event.seq, this.c.dlqTails.get(0))) return;
    this.#publish(this.c.cfg.dlqTopic, 0, null, encodeCdcDeadLetter(reason, event), u);
  }

  #publish(topic: string, partition: number, key: string | null, value: string, unit: Unit): void {
    this.published++;
    this.c.sink.sent(unit);
    this.c.publisher.send({ topic, partition, key, value, unit });
  }
}

/** A change without its rows, for a dead letter that must stay small or must not carry the source's data. */
function stub(e: RowChange, id?: string): Omit<RowChange, 'row' | 'old'> & { row: null; old: null; id?: string } {
  return { v: 1, lsn: e.lsn, seq: e.seq, commitTs: e.commitTs, xid: e.xid, table: e.table, op: e.op, row: null, old: null, ...(id === undefined ? {} : { id }) };
}
