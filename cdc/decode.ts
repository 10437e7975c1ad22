/**
 * pgoutput messages → change events (DESIGN.md "Change events on Kafka"). Pure.
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

/** pg-logical-replication's pgoutput plugin with raw text values (its default parses timestamps into Date). */
export class TextPgoutputPlugin extends PgoutputPlugin {
  constructor(opts: Pgoutput.Options) {
    super(opts);
    const parser = (this as any).parser;
    const readColumn = parser.readRelationColumn.bind(parser);
    parser.readRelationColumn = (reader: unknown) => ({ ...readColumn(reader), parser: (s: string) => s });
  }
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
