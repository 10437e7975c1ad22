/**
 * pgoutput messages → change events (docs/contracts.md "Change events"). Pure.
 *
 * The plugin below keeps every column value as PostgreSQL's text output, and `convertValue` turns it into the
 * event's JSON: bigint/numeric as strings (no precision loss), timestamps as ISO-8601 UTC, small integers and
 * booleans as JSON numbers/booleans, anything else as its text. pgoutput's 'u' (unchanged TOAST value, sent in an
 * UPDATE's new row when the value was not modified) is filled from the old row when the replica identity sent it;
 * otherwise the column is left out of the row and reported in `unchangedToast`.
 * https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
 */
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import type { Row, RowChange } from '../lib/events.ts';

/** A transaction's begin as the router needs it: its commit LSN (as formatLsn writes it, and as a number) and time. */
export interface Begin { tag: 'begin'; lsn: string; lsnBig: bigint; commitMs: number; xid: number }
/** A transaction's commit: the end LSN of its commit record (what the slot may confirm once it is in Kafka). */
export interface Commit { tag: 'commit'; endLsn: bigint }
/** What the plugin delivers: begin and commit read by this module, every other message as pg-logical-replication reads it. */
export type DecodedMessage = Exclude<Pgoutput.Message, Pgoutput.MessageBegin | Pgoutput.MessageCommit> | Begin | Commit;

// PostgreSQL's epoch (2000-01-01) in Unix milliseconds: pgoutput times are microseconds since then.
const PG_EPOCH_MS = 946_684_800_000;
const hex = (n: number) => n.toString(16).toUpperCase();

/**
 * pg-logical-replication's pgoutput plugin with raw text values (its default parses timestamps into Date), and its
 * three messages of every transaction — Begin, Insert, Commit — read here without the library's per-message
 * reader, padded LSN strings, BigInt times and a Buffer per column value: on a catch-up those were half the cdc's
 * garbage. Inserts come out exactly as the library makes them (its relation cache; a null-prototype tuple of
 * column → text, null, undefined for an unchanged TOAST value, a Buffer for a binary value); every other message
 * goes to the library's parser. Message formats (protocol version 1):
 * https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
 */
export class TextPgoutputPlugin extends PgoutputPlugin {
  readonly #relations: Map<number, Pgoutput.MessageRelation>;
  readonly #decoder = new TextDecoder();

  constructor(opts: Pgoutput.Options) {
    super(opts);
    const parser = (this as any).parser;
    const readColumn = parser.readRelationColumn.bind(parser);
    parser.readRelationColumn = (reader: unknown) => ({ ...readColumn(reader), parser: (s: string) => s });
    this.#relations = parser._relationCache;
    if (!(this.#relations instanceof Map)) throw new Error('pg-logical-replication internals changed: no relation cache on its pgoutput parser (2.x expected)');
  }

  /** What the replication service emits for each XLogData message: a DecodedMessage (typed as the library's). */
  override parse(buf: Buffer): Pgoutput.Message { return this.decode(buf) as unknown as Pgoutput.Message; }

  decode(buf: Buffer): DecodedMessage {
    switch (buf[0]) {
      case 0x42: { // B: Int64 final (commit) LSN, Int64 commit time, Int32 xid
        if (buf.length < 21) throw new Error('unexpected end of message');
        const hi = buf.readUInt32BE(1), lo = buf.readUInt32BE(5);
        return { tag: 'begin', lsn: `${hex(hi)}/${hex(lo)}`, lsnBig: (BigInt(hi) << 32n) | BigInt(lo), commitMs: pgTimeMs(buf, 9), xid: buf.readInt32BE(17) };
      }
      case 0x43: // C: Int8 flags, Int64 commit LSN, Int64 end LSN, Int64 commit time
        if (buf.length < 26) throw new Error('unexpected end of message');
        return { tag: 'commit', endLsn: buf.readBigUInt64BE(10) };
      case 0x49: return this.#insert(buf);
      default: return super.parse(buf) as Exclude<DecodedMessage, Begin | Commit>;
    }
  }

  /** I: Int32 relation id, 'N', TupleData (Int16 columns; per column 'n' | 'u' | 't' Int32 text | 'b' Int32 bytes). */
  #insert(buf: Buffer): Pgoutput.MessageInsert {
    if (buf.length < 8) throw new Error('unexpected end of message');
    const relation = this.#relations.get(buf.readInt32BE(1));
    if (!relation) throw new Error('missing relation');
    const { columns } = relation;
    const n = buf.readInt16BE(6);
    const tuple = Object.create(null) as Record<string, unknown>;
    let at = 8;
    for (let i = 0; i < n; i++) {
      if (at >= buf.length) throw new Error('unexpected end of message');
      const kind = buf[at++];
      const { name } = columns[i];
      if (kind === 0x74 || kind === 0x62) { // 't' text, 'b' binary
        if (at + 4 > buf.length) throw new Error('unexpected end of message');
        const len = buf.readInt32BE(at);
        const end = (at += 4) + len;
        if (end > buf.length) throw new Error('unexpected end of message');
        // the library decodes text with a TextDecoder, which drops a leading byte-order mark: so does this
        tuple[name] = kind === 0x62 ? buf.subarray(at, end) : buf[at] === 0xef && len >= 3 ? this.#decoder.decode(buf.subarray(at, end)) : buf.toString('utf8', at, end);
        at = end;
      } else if (kind === 0x6e) tuple[name] = null; // 'n' null
      else if (kind === 0x75) tuple[name] = undefined; // 'u' unchanged TOAST value (an insert has no old row)
      else throw new Error(`unknown attribute kind ${String.fromCharCode(kind)}`);
    }
    return { tag: 'insert', relation, new: tuple };
  }
}

/** A pgoutput time (Int64 microseconds since 2000-01-01) at `at`, as Unix milliseconds (exact below 2^53 µs). */
function pgTimeMs(buf: Buffer, at: number): number {
  const us = buf.readInt32BE(at) * 2 ** 32 + buf.readUInt32BE(at + 4);
  return (us - (((us % 1000) + 1000) % 1000)) / 1000 + PG_EPOCH_MS; // floor, as the library's BigInt division of a positive time
}

const OID = { bool: 16, int8: 20, int2: 21, int4: 23, oid: 26, float4: 700, float8: 701, timestamp: 1114, timestamptz: 1184 } as const;
const TS_RE = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?$/;

/** PostgreSQL ISO timestamp text → ISO-8601 UTC with milliseconds; anything unusual (infinity, BC) stays as text. */
export function timestampToIso(text: string, assumeUtc: boolean): string {
  // Cheap path for what a UTC session sends: "2026-11-21 08:00:07[.123456][+00]".
  const n = text.length;
  if (text.charCodeAt(10) === 32 && text.charCodeAt(4) === 45 && text.charCodeAt(0) >= 49 && (assumeUtc ? !text.includes('+', 19) && !text.includes('-', 19) : text.endsWith('+00'))) {
    const end = assumeUtc ? n : n - 3;
    if (end === 19) return `${text.slice(0, 10)}T${text.slice(11, 19)}.000Z`;
    if (end > 20 && end <= 26 && text.charCodeAt(19) === 46) return `${text.slice(0, 10)}T${text.slice(11, Math.min(end, 23)).padEnd(12, '0')}Z`;
  }
  const m = TS_RE.exec(text);
  if (!m || (!m[8] && !assumeUtc)) return text;
  const ms = Number(((m[7] ?? '') + '000').slice(0, 3));
  let t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], ms);
  if (+m[1] < 100) return text; // Date.UTC maps years 0–99 to 1900+; keep such text as it is
  if (m[8]) {
    const off = (+m[9] * 3600 + +(m[10] ?? 0) * 60 + +(m[11] ?? 0)) * 1000;
    t -= m[8] === '+' ? off : -off;
  }
  return new Date(t).toISOString();
}

export function convertValue(text: string | null | undefined, typeOid: number): string | number | boolean | null | undefined {
  if (text === null || text === undefined) return text;
  switch (typeOid) {
    case OID.bool: return text === 't';
    case OID.int2: case OID.int4: case OID.oid: return Number(text);
    case OID.float4: case OID.float8: { const n = Number(text); return Number.isFinite(n) ? n : text; }
    case OID.timestamptz: return timestampToIso(text, false);
    case OID.timestamp: return timestampToIso(text, true);
    default: return text; // int8, numeric, money, text, json…: the exact text
  }
}

/** Converts a decoded tuple; columns whose value is undefined (unchanged TOAST without an old row) are listed. */
export function convertTuple(tuple: Record<string, any> | null, rel: Pgoutput.MessageRelation, missing?: string[]): Row | null {
  if (!tuple) return null;
  const row: Row = {};
  for (const col of rel.columns) {
    if (!(col.name in tuple)) continue; // key-only tuple: the other columns are absent
    const v = convertValue(tuple[col.name], col.typeOid);
    if (v === undefined) { missing?.push(col.name); continue; }
    row[col.name] = v;
  }
  return row;
}

export interface TxContext { lsn: string; commitTs: string; xid: number }

export type ChangeMessage = Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete;

export function tableOf(rel: Pgoutput.MessageRelation): string { return `${rel.schema}.${rel.name}`; }

/** One change event; `unchangedToast` names the columns left out of `row`. */
export function toRowChange(msg: ChangeMessage, tx: TxContext, seq: number): { change: RowChange; unchangedToast: string[] } {
  const rel = msg.relation;
  const unchangedToast: string[] = [];
  let row: Row | null = null;
  let old: Row | null = null;
  if (msg.tag === 'insert') row = convertTuple(msg.new, rel, unchangedToast);
  else if (msg.tag === 'update') {
    old = convertTuple(msg.old ?? msg.key, rel);
    row = convertTuple(msg.new, rel, unchangedToast);
  } else old = convertTuple(msg.old ?? msg.key, rel);
  return {
    change: { v: 1, lsn: tx.lsn, seq, commitTs: tx.commitTs, xid: tx.xid, table: tableOf(rel), op: msg.tag, row, old },
    unchangedToast,
  };
}

/** Column-level difference between two versions of a relation (schema change report). */
export function relationDiff(before: string[], after: string[]): { added: string[]; dropped: string[] } {
  const b = new Set(before), a = new Set(after);
  return { added: after.filter((c) => !b.has(c)), dropped: before.filter((c) => !a.has(c)) };
}
