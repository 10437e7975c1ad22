/**
 * Minute totals rebuilt from the retained topic, for minutes the minute tier no longer holds (a backtest of a period
 * older than RISKMON_MINUTE_TTL_DAYS). Nothing is written to Redis: the minutes stream through memory, so the Redis
 * memory target holds, and the process keeps only a few minutes of facts at a time.
 *
 * The topic is in commit order per partition, but a row counts in the minute of its transaction time, and a row may
 * be committed late or corrected days later (UPDATE/DELETE), so the buckets "as they stand now" need every change up
 * to the end of the topic. Two passes:
 *  1. from each partition's first offset whose timestamp ≥ lo − margin to its current end: keep only *late* facts —
 *     committed `boundMs` or more after the end of their minute (late rows, corrections): few;
 *  2. on demand, in minute order: read each partition forward until its commit time passes the end of the minutes
 *     asked for plus `boundMs`; by then every on-time fact of those minutes has been read. A minute's totals are its
 *     on-time facts plus its late ones. An on-time fact of a minute already handed out (commit times out of order by
 *     more than the slack) fails the rebuild instead of being lost.
 * Changes are deduplicated by (lsn, seq) per partition, and rows the mapping cannot read are skipped, as the
 * aggregator does.
 */
import type { Kafka } from 'kafkajs';
import { decodeEvent, type ChangeEvent } from '../lib/events.ts';
import { TopicReader } from '../lib/kafka/index.ts';
import { comparePosition } from '../lib/lsn.ts';
import { factsOf, type Fact, type Mapping } from '../lib/mapping.ts';
import { HOUR, iso, MINUTE } from '../lib/time.ts';
import { emptyTotals, type Totals } from './store/counters.ts';

export interface TopicMinutesOptions {
  kafka: Kafka;
  topic: string;
  mapping: Mapping;
  /** A fact committed this long or longer after the end of its minute is "late" (pass 1). Default 10 min. */
  boundMs?: number;
  /** How far before its transaction time a row may be committed (source clock skew). Default 1 h. */
  marginMs?: number;
}

export class TopicTooShortError extends Error {
  constructor(readonly retainedFrom: number, wanted: number) {
    super(`the topic no longer holds every change from ${iso(wanted)} (it starts at ${iso(retainedFrom)}): minutes before ${iso(retainedFrom + HOUR)} cannot be rebuilt`);
    this.name = 'TopicTooShortError';
  }
}

type ByMinute = Map<number, Map<string, Totals>>;
type Resolved = Required<Omit<TopicMinutesOptions, 'kafka'>>;

function addFact(into: ByMinute, f: Fact): void {
  let m = into.get(f.minuteMs);
  if (!m) into.set(f.minuteMs, (m = new Map()));
  let t = m.get(f.merchantId);
  if (!t) m.set(f.merchantId, (t = emptyTotals()));
  const amount = f.sign === 1 ? f.amount : -f.amount;
  if (f.kind === 'approval') { t.approvals += f.sign; t.approvedAmount += amount; } else { t.cancels += f.sign; t.canceledAmount += amount; }
}

const FETCH_BYTES = 4 << 20;
const ORDER_SLACK_MS = MINUTE;

interface Cursor { p: number; next: bigint; end: bigint; frontier: number; last: { lsn: string; seq: number } | null }

export class TopicMinutes {
  readonly #reader: TopicReader;
  readonly #o: Resolved;
  readonly #lo: number;
  readonly #hi: number;
  readonly #late: ByMinute;
  readonly #pending: ByMinute = new Map();
  readonly #cursors: Cursor[];
  #handedOutTo: number;
  /** Changes read in both passes (for the log). */
  changes = 0;

  private constructor(reader: TopicReader, o: Resolved, lo: number, hi: number, late: ByMinute, cursors: Cursor[], changes: number) {
    this.#reader = reader;
    this.#o = o;
    this.#lo = lo;
    this.#hi = hi;
    this.#late = late;
    this.#cursors = cursors;
    this.#handedOutTo = lo;
    this.changes = changes;
  }

  /** Prepares the minutes [lo, hi): positions every partition and collects the late facts (pass 1). */
  static async open(opts: TopicMinutesOptions, lo: number, hi: number): Promise<TopicMinutes> {
    const o: Resolved = { topic: opts.topic, mapping: opts.mapping, boundMs: opts.boundMs ?? 10 * MINUTE, marginMs: opts.marginMs ?? HOUR };
    const reader = await TopicReader.open(opts.kafka, o.topic);
    try {
      const marks = await reader.watermarks();
      const admin = opts.kafka.admin();
      await admin.connect();
      const starts = new Map<number, bigint>();
      try {
        for (const r of await admin.fetchTopicOffsetsByTimestamp(o.topic, lo - o.marginMs)) {
          const { high } = marks.get(r.partition)!;
          const off = BigInt(r.offset);
          starts.set(r.partition, off < 0n || off > high ? high : off);
        }
      } finally {
        await admin.disconnect();
      }
      const late: ByMinute = new Map();
      const cursors: Cursor[] = [];
      let changes = 0;
      for (const [p, { low, high }] of marks) {
        const start = starts.get(p) ?? low;
        if (low > 0n && start <= low && high > low) {
          // Retention removed this partition's beginning: is what remains early enough?
          const [first] = await reader.fetch(p, low, 64 * 1024);
          const at = first ? Date.parse(decodeEvent(first.value).commitTs) : Infinity;
          if (at > lo - o.marginMs) throw new TopicTooShortError(at, lo - o.marginMs);
        }
        let last: Cursor['last'] = null;
        await scan(reader, p, start, high, (e) => {
          if (last && comparePosition(e, last) <= 0) return;
          last = { lsn: e.lsn, seq: e.seq };
          if (e.op === 'heartbeat') return;
          changes++;
          const ts = Date.parse(e.commitTs);
          for (const f of safeFacts(e, o.mapping)) {
            if (f.minuteMs >= lo && f.minuteMs < hi && ts >= f.minuteMs + MINUTE + o.boundMs) addFact(late, f);
          }
        });
        cursors.push({ p, next: start, end: high, frontier: -Infinity, last: null });
      }
      return new TopicMinutes(reader, o, lo, hi, late, cursors, changes);
    } catch (err) {
      await reader.close();
      throw err;
    }
  }

  /** Minute totals of [from, to), asked for in order (from = where the previous call ended, or lo). */
  async read(from: number, to: number): Promise<ByMinute> {
    if (from !== this.#handedOutTo || to > this.#hi || to <= from) throw new Error(`TopicMinutes.read(${iso(from)}, ${iso(to)}) out of order (next is ${iso(this.#handedOutTo)}, up to ${iso(this.#hi)})`);
    const need = to + this.#o.boundMs + ORDER_SLACK_MS;
    for (const c of this.#cursors) {
      while (c.frontier < need && c.next < c.end) {
        const got = (await this.#reader.fetch(c.p, c.next, FETCH_BYTES)).filter((m) => m.offset < c.end);
        if (!got.length) throw new Error(`partition ${c.p}: no message at offset ${c.next} below ${c.end} (retention removed it during the rebuild?)`);
        for (const m of got) {
          let e: ChangeEvent;
          try { e = decodeEvent(m.value); } catch { continue; }
          const ts = Date.parse(e.commitTs);
          if (ts > c.frontier) c.frontier = ts;
          if (c.last && comparePosition(e, c.last) <= 0) continue;
          c.last = { lsn: e.lsn, seq: e.seq };
          if (e.op === 'heartbeat') continue;
          this.changes++;
          for (const f of safeFacts(e, this.#o.mapping)) {
            if (f.minuteMs < this.#lo || f.minuteMs >= this.#hi || ts >= f.minuteMs + MINUTE + this.#o.boundMs) continue;
            if (f.minuteMs < this.#handedOutTo) {
              throw new Error(`partition ${c.p}: a change committed at ${e.commitTs} for ${iso(f.minuteMs)} arrived after that minute was rebuilt (commit times out of order by more than ${ORDER_SLACK_MS / 1000} s)`);
            }
            addFact(this.#pending, f);
          }
        }
        c.next = got[got.length - 1].offset + 1n;
      }
    }
    const out: ByMinute = new Map();
    for (let t = from; t < to; t += MINUTE) {
      const m = this.#pending.get(t) ?? new Map<string, Totals>();
      this.#pending.delete(t);
      for (const [id, x] of this.#late.get(t) ?? []) {
        const cur = m.get(id);
        if (!cur) { m.set(id, { ...x }); continue; }
        cur.approvals += x.approvals; cur.approvedAmount += x.approvedAmount; cur.cancels += x.cancels; cur.canceledAmount += x.canceledAmount;
      }
      this.#late.delete(t);
      for (const [id, x] of m) if (!x.approvals && !x.cancels && !x.approvedAmount && !x.canceledAmount) m.delete(id);
      out.set(t, m);
    }
    this.#handedOutTo = to;
    return out;
  }

  async close(): Promise<void> { await this.#reader.close(); }
}

function safeFacts(e: ChangeEvent, mapping: Mapping): Fact[] {
  if (e.op === 'heartbeat') return [];
  try { return factsOf(e, mapping); } catch { return []; } // rows the aggregator sent to the dead letters
}

async function scan(reader: TopicReader, p: number, from: bigint, to: bigint, fn: (e: ChangeEvent) => void): Promise<void> {
  for (let o = from; o < to;) {
    const got = (await reader.fetch(p, o, FETCH_BYTES)).filter((m) => m.offset < to);
    if (!got.length) throw new Error(`partition ${p}: no message at offset ${o} below the end ${to} (retention removed it during the rebuild?)`);
    for (const m of got) {
      try { fn(decodeEvent(m.value)); } catch { /* a message that is not a change event: the aggregator skipped it too */ }
    }
    o = got[got.length - 1].offset + 1n;
  }
}
