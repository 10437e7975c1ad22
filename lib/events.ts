/**
 * The change-event format on the topic (fixed in docs/contracts.md). Values are JSON; bigint/numeric columns are strings,
 * timestamps ISO-8601 UTC. `(lsn, seq)` identifies a change and orders changes inside a partition.
 *
 * Besides row changes the cdc writes *heartbeats* to every partition: `op: "heartbeat"`, `table: null`, the LSN
 * and commit time of the `pg_logical_emit_message` that produced them (or of the last commit when idle). They carry
 * the source's clock into partitions without traffic, so the aggregator's watermark keeps moving.
 */
import { isLsn } from './lsn.ts';

export type RowOp = 'insert' | 'update' | 'delete';
export type Row = Record<string, string | number | boolean | null>;

export interface RowChange {
  v: 1;
  lsn: string;
  seq: number;
  commitTs: string;
  xid: number;
  table: string;
  op: RowOp;
  row: Row | null;
  old: Row | null;
}

export interface Heartbeat {
  v: 1;
  lsn: string;
  seq: number;
  commitTs: string;
  xid: number;
  table: null;
  op: 'heartbeat';
  row: null;
  old: null;
}

export type ChangeEvent = RowChange | Heartbeat;

export function heartbeat(lsn: string, commitTs: string, seq = 0): Heartbeat {
  return { v: 1, lsn, seq, commitTs, xid: 0, table: null, op: 'heartbeat', row: null, old: null };
}

export class BadEventError extends Error {
  constructor(readonly reason: string) {
    super(`malformed change event: ${reason}`);
    this.name = 'BadEventError';
  }
}

/** Parses and checks a message value; throws BadEventError with the reason (for the dead-letter topic). */
export function decodeEvent(value: Buffer | string | null): ChangeEvent {
  if (value === null) throw new BadEventError('empty message value');
  let e: any;
  try { e = JSON.parse(typeof value === 'string' ? value : value.toString('utf8')); } catch (err) {
    throw new BadEventError(`not JSON (${(err as Error).message})`);
  }
  if (typeof e !== 'object' || e === null) throw new BadEventError('not a JSON object');
  if (e.v !== 1) throw new BadEventError(`unsupported version v=${JSON.stringify(e.v)}`);
  if (typeof e.lsn !== 'string' || !isLsn(e.lsn)) throw new BadEventError(`bad lsn ${JSON.stringify(e.lsn)}`);
  if (!Number.isInteger(e.seq) || e.seq < 0) throw new BadEventError(`bad seq ${JSON.stringify(e.seq)}`);
  if (typeof e.commitTs !== 'string' || Number.isNaN(Date.parse(e.commitTs))) throw new BadEventError(`bad commitTs ${JSON.stringify(e.commitTs)}`);
  if (e.op === 'heartbeat') return e as Heartbeat;
  if (e.op !== 'insert' && e.op !== 'update' && e.op !== 'delete') throw new BadEventError(`bad op ${JSON.stringify(e.op)}`);
  if (typeof e.table !== 'string') throw new BadEventError('missing table');
  if (e.op !== 'delete' && (typeof e.row !== 'object' || e.row === null)) throw new BadEventError(`${e.op} without row`);
  if (e.op !== 'insert' && e.old !== null && typeof e.old !== 'object') throw new BadEventError('bad old row');
  return e as RowChange;
}

export function encodeEvent(e: ChangeEvent): string {
  return JSON.stringify(e);
}

// ---- reading without JSON.parse (the replay's fast path) --------------------------------------------------------

const Q = 0x22, BS = 0x5c, COLON = 0x3a, COMMA = 0x2c, OPEN = 0x7b, CLOSE = 0x7d;
const ENVELOPE = ['v', 'lsn', 'seq', 'commitTs', 'xid', 'table', 'op', 'row', 'old'].map((k) => Buffer.from(k));
const OPS = ['insert', 'update', 'delete', 'heartbeat'] as const;
const OP_WORDS = OPS.map((o) => Buffer.from(o));
/** A row value's JSON type as EventScanner saw it (`type`). */
export const Json = { Absent: 0, String: 1, Number: 2, Null: 3, Other: 4 } as const;

/**
 * Reads the fields of one encoded event straight from its bytes: the envelope, and for `row` and `old` where the
 * values of the asked columns lie (no string or object is made per event; the scanner is reused). It reads the
 * common shape only — one JSON object as encodeEvent writes it, row values that are strings without escapes,
 * numbers, null or booleans, no whitespace — and answers false for anything else, valid or not: the caller then
 * uses decodeEvent, which decides and explains. When it answers true, decodeEvent would accept the event and give
 * these same values (events.test.ts checks both on the same inputs).
 */
export class EventScanner {
  readonly #tables: Buffer[];
  readonly #columns: Buffer[];
  buf: Buffer = Buffer.alloc(0);
  lsnHi = 0;
  lsnLo = 0;
  seq = 0;
  commitMs = 0;
  op: ChangeEvent['op'] = 'heartbeat';
  /** index of the event's table in `tables`, -1 for another table (or a heartbeat's null) */
  table = -1;
  hasRow = false;
  hasOld = false;
  /** per asked column, for row (index c) and old (index columns + c): JSON type and [start, end) of the value (a string's without quotes) */
  readonly type: Uint8Array;
  readonly start: Int32Array;
  readonly end: Int32Array;

  constructor(tables: string[], columns: string[]) {
    this.#tables = tables.map((t) => Buffer.from(t));
    this.#columns = columns.map((c) => Buffer.from(c));
    this.type = new Uint8Array(2 * columns.length);
    this.start = new Int32Array(2 * columns.length);
    this.end = new Int32Array(2 * columns.length);
  }

  /** Reads value[start, end); false when the bytes are not in the common shape (use decodeEvent). */
  scan(b: Buffer, start = 0, end = b.length): boolean {
    this.buf = b;
    this.type.fill(Json.Absent);
    this.hasRow = this.hasOld = false;
    let seen = 0, v = -1, opAt = -1, opEnd = -1, tableNull = false;
    this.table = -1;
    let i = start;
    if (b[i++] !== OPEN) return false;
    if (b[i] === CLOSE) return false;
    for (;;) {
      // a key of the envelope
      if (b[i++] !== Q) return false;
      const k = i;
      while (i < end && b[i] !== Q && b[i] !== BS && b[i] >= 0x20) i++;
      if (b[i] !== Q) return false;
      const key = matchOf(ENVELOPE, b, k, i);
      if (key < 0 || seen & (1 << key)) return false; // another key, or a repeated one: JSON.parse decides
      seen |= 1 << key;
      i++;
      if (b[i++] !== COLON) return false;
      if (key === 7 || key === 8) { // row, old
        if (b[i] === 0x6e) { // null
          if (!isWord(b, i, NULL_WORD)) return false;
          i += 4;
        } else {
          i = this.#row(b, i, end, key === 7 ? 0 : this.#columns.length);
          if (i < 0) return false;
          if (key === 7) this.hasRow = true; else this.hasOld = true;
        }
      } else if (b[i] === Q) {
        const s = ++i;
        while (i < end && b[i] !== Q && b[i] !== BS && b[i] >= 0x20) i++;
        if (b[i] !== Q) return false;
        if (key === 1) { if (!this.#lsn(b, s, i)) return false; }
        else if (key === 3) { const ms = parseIsoMs(b, s, i); if (Number.isNaN(ms)) return false; this.commitMs = ms; }
        else if (key === 5) this.table = matchOf(this.#tables, b, s, i);
        else if (key === 6) { opAt = s; opEnd = i; }
        else return false;
        i++;
      } else if (key === 5 && b[i] === 0x6e) {
        if (!isWord(b, i, NULL_WORD)) return false;
        tableNull = true;
        i += 4;
      } else {
        // v, seq, xid: plain non-negative integers
        const s = i;
        let n = 0;
        while (i < end && b[i] >= 0x30 && b[i] <= 0x39) n = n * 10 + b[i++] - 0x30;
        if (i === s || i - s > 15 || (b[s] === 0x30 && i - s > 1)) return false; // JSON.parse refuses leading zeros
        if (key === 0) v = n; else if (key === 2) this.seq = n; else if (key !== 4) return false;
      }
      if (b[i] === COMMA) { i++; continue; }
      if (b[i] !== CLOSE || i + 1 !== end) return false;
      break;
    }
    // what decodeEvent checks (v, lsn, seq and commitTs are required; xid is not read)
    if (v !== 1 || (seen & 0b1111) !== 0b1111 || opAt < 0) return false;
    const k = matchOf(OP_WORDS, b, opAt, opEnd);
    if (k < 0) return false;
    const op = (this.op = OPS[k]);
    if (op === 'heartbeat') return true;
    if (tableNull || !(seen & (1 << 5))) return false;
    if (op !== 'delete' && !this.hasRow) return false;
    return true;
  }

  #lsn(b: Buffer, s: number, e: number): boolean {
    let i = s, hi = 0, lo = 0;
    for (; i < e && b[i] !== 0x2f; i++) { const d = hexDigit(b[i]); if (d < 0) return false; hi = hi * 16 + d; }
    if (i === s || i - s > 8 || i === e) return false;
    const t = ++i;
    for (; i < e; i++) { const d = hexDigit(b[i]); if (d < 0) return false; lo = lo * 16 + d; }
    if (i === t || i - t > 8) return false;
    this.lsnHi = hi;
    this.lsnLo = lo;
    return true;
  }

  /** A row object at b[i]: records the asked columns' values at `base`; the index after it, or -1. */
  #row(b: Buffer, i: number, end: number, base: number): number {
    if (b[i++] !== OPEN) return -1;
    if (b[i] === CLOSE) return i + 1;
    for (;;) {
      if (b[i++] !== Q) return -1;
      const k = i;
      while (i < end && b[i] !== Q && b[i] !== BS && b[i] >= 0x20) i++;
      if (b[i] !== Q) return -1;
      const c = matchOf(this.#columns, b, k, i);
      i++;
      if (b[i++] !== COLON) return -1;
      let t: number, s: number, e: number;
      if (b[i] === Q) {
        s = ++i;
        while (i < end && b[i] !== Q && b[i] !== BS && b[i] >= 0x20) i++;
        if (b[i] !== Q) return -1;
        e = i++;
        t = Json.String;
      } else {
        s = i;
        while (i < end && b[i] !== COMMA && b[i] !== CLOSE) i++;
        e = i;
        if (isWord(b, s, NULL_WORD) && e - s === 4) t = Json.Null;
        else if ((isWord(b, s, TRUE_WORD) && e - s === 4) || (isWord(b, s, FALSE_WORD) && e - s === 5)) t = Json.Other;
        else if (isNumber(b, s, e)) t = Json.Number;
        else return -1;
      }
      if (c >= 0) {
        if (this.type[base + c] !== Json.Absent) return -1; // a repeated column: JSON.parse keeps the last, so decide there
        this.type[base + c] = t;
        this.start[base + c] = s;
        this.end[base + c] = e;
      }
      if (b[i] === COMMA) { i++; continue; }
      if (b[i] !== CLOSE) return -1;
      return i + 1;
    }
  }
}

const NULL_WORD = Buffer.from('null'), TRUE_WORD = Buffer.from('true'), FALSE_WORD = Buffer.from('false');

function isWord(b: Buffer, i: number, w: Buffer): boolean {
  for (let j = 0; j < w.length; j++) if (b[i + j] !== w[j]) return false;
  return true;
}

/** A JSON number token (what JSON.parse accepts) in b[s, e). */
function isNumber(b: Buffer, s: number, e: number): boolean {
  let i = s;
  if (b[i] === 0x2d) i++;
  const d0 = i;
  while (i < e && b[i] >= 0x30 && b[i] <= 0x39) i++;
  if (i === d0 || (b[d0] === 0x30 && i - d0 > 1)) return false;
  if (i < e && b[i] === 0x2e) { const f = ++i; while (i < e && b[i] >= 0x30 && b[i] <= 0x39) i++; if (i === f) return false; }
  if (i < e && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    const x = i;
    while (i < e && b[i] >= 0x30 && b[i] <= 0x39) i++;
    if (i === x) return false;
  }
  return i === e;
}

/** Index of the name equal to b[s, e), or -1. */
function matchOf(names: Buffer[], b: Buffer, s: number, e: number): number {
  const n = e - s;
  outer: for (let k = 0; k < names.length; k++) {
    const w = names[k];
    if (w.length !== n) continue;
    for (let j = 0; j < n; j++) if (b[s + j] !== w[j]) continue outer;
    return k;
  }
  return -1;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function digits(b: Buffer, i: number, n: number): number {
  let v = 0;
  for (let j = i; j < i + n; j++) {
    const d = b[j] - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Date.parse of the timestamp in b[s, e) (latin1): `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form toISOString writes, is read
 * from its digits; any other form goes to Date.parse itself (so the answer is always Date.parse's).
 */
export function parseIsoMs(b: Buffer, s: number, e: number): number {
  if (e - s === 24 && b[s + 4] === 0x2d && b[s + 7] === 0x2d && b[s + 10] === 0x54 && b[s + 13] === COLON && b[s + 16] === COLON && b[s + 19] === 0x2e && b[s + 23] === 0x5a) {
    const y = digits(b, s, 4), mo = digits(b, s + 5, 2), d = digits(b, s + 8, 2);
    const h = digits(b, s + 11, 2), mi = digits(b, s + 14, 2), sec = digits(b, s + 17, 2), ms = digits(b, s + 20, 3);
    // days past the 28th, hour 24 and the like: Date.parse's own rules
    if (y >= 1000 && mo >= 1 && mo <= 12 && d >= 1 && d <= 28 && h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && sec >= 0 && sec <= 59 && ms >= 0) {
      return Date.UTC(y, mo - 1, d, h, mi, sec, ms);
    }
  }
  return Date.parse(b.toString('latin1', s, e));
}
