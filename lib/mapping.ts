/**
 * Which source tables mean "approval" and "cancel", and which columns hold merchant, amount and transaction time.
 * The reference schema is the default; a user's own schema is given as JSON in RISKMON_MAPPING (see README).
 * `factsOf` turns one row change into bucket deltas: an INSERT adds the new row, a DELETE subtracts the old row,
 * an UPDATE subtracts the old and adds the new, so buckets always reflect the rows as they stand.
 */
import type { RowChange, Row } from './events.ts';
import { minuteStart } from './time.ts';

export interface FactTable {
  /** schema-qualified, e.g. public.payments */
  table: string;
  id: string;
  merchant: string;
  amount: string;
  time: string;
}

export interface Mapping {
  approvals: FactTable;
  cancels: FactTable;
}

export const referenceMapping: Mapping = Object.freeze({
  approvals: { table: 'public.payments', id: 'payment_id', merchant: 'merchant_id', amount: 'amount', time: 'approved_at' },
  cancels: { table: 'public.payment_cancels', id: 'cancel_id', merchant: 'merchant_id', amount: 'amount', time: 'canceled_at' },
});

export type FactKind = 'approval' | 'cancel';

export interface Fact {
  merchantId: string;
  kind: FactKind;
  /** start of the transaction-time minute, epoch ms */
  minuteMs: number;
  /** +1 for a row that now stands, -1 for a row that no longer does */
  sign: 1 | -1;
  amount: bigint;
}

/** A row the mapping cannot read; goes to the dead-letter topic with `reason`. */
export class BadRowError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'BadRowError';
  }
}

export function validateMapping(v: unknown): Mapping {
  const m = v as Mapping;
  for (const side of ['approvals', 'cancels'] as const) {
    const t = (m as any)?.[side];
    if (!t || typeof t !== 'object') throw new Error(`"${side}" missing`);
    for (const col of ['table', 'id', 'merchant', 'amount', 'time'] as const) {
      if (typeof t[col] !== 'string' || !t[col]) throw new Error(`"${side}.${col}" must be a non-empty string`);
    }
    if (!t.table.includes('.')) throw new Error(`"${side}.table" must be schema-qualified, e.g. public.${t.table}`);
  }
  return Object.freeze({ approvals: { ...m.approvals }, cancels: { ...m.cancels } });
}

export function tableKind(table: string, m: Mapping): FactKind | null {
  if (table === m.approvals.table) return 'approval';
  if (table === m.cancels.table) return 'cancel';
  return null;
}

export function tablesOf(m: Mapping): string[] {
  return [m.approvals.table, m.cancels.table];
}

function fact(row: Row, t: FactTable, kind: FactKind, sign: 1 | -1, table: string): Fact {
  const merchant = row[t.merchant];
  const amount = row[t.amount];
  const time = row[t.time];
  if (merchant === null || merchant === undefined || merchant === '') throw new BadRowError(`${table}.${t.merchant} is missing or NULL`);
  if (amount === null || amount === undefined) throw new BadRowError(`${table}.${t.amount} is missing or NULL`);
  if (time === null || time === undefined) throw new BadRowError(`${table}.${t.time} is missing or NULL`);
  let amt: bigint;
  try { amt = BigInt(String(amount)); } catch { throw new BadRowError(`${table}.${t.amount}=${JSON.stringify(amount)} is not an integer amount`); }
  const ms = Date.parse(String(time));
  if (Number.isNaN(ms)) throw new BadRowError(`${table}.${t.time}=${JSON.stringify(time)} is not a timestamp`);
  return { merchantId: String(merchant), kind, minuteMs: minuteStart(ms), sign, amount: amt };
}

/** Bucket deltas of one row change; [] for a table the mapping does not use. Throws BadRowError. */
export function factsOf(e: RowChange, m: Mapping): Fact[] {
  const kind = tableKind(e.table, m);
  if (!kind) return [];
  const t = kind === 'approval' ? m.approvals : m.cancels;
  const out: Fact[] = [];
  if (e.op === 'update' || e.op === 'delete') {
    if (!e.old) throw new BadRowError(`${e.op} on ${e.table} without the old row: set REPLICA IDENTITY FULL on ${e.table}`);
    out.push(fact(e.old, t, kind, -1, e.table));
  }
  if (e.op === 'insert' || e.op === 'update') {
    if (!e.row) throw new BadRowError(`${e.op} on ${e.table} without a row`);
    out.push(fact(e.row, t, kind, 1, e.table));
  }
  // An update that changes no counted column cancels out; drop the pair so it costs nothing downstream.
  if (out.length === 2 && sameBucket(out[0], out[1])) return [];
  return out;
}

function sameBucket(a: Fact, b: Fact): boolean {
  return a.merchantId === b.merchantId && a.minuteMs === b.minuteMs && a.amount === b.amount;
}

/** The merchant a change is keyed by (the new row's; the old row's for a delete). */
export function merchantOf(e: RowChange, m: Mapping): string | null {
  const kind = tableKind(e.table, m);
  if (!kind) return null;
  const t = kind === 'approval' ? m.approvals : m.cancels;
  const row = e.row ?? e.old;
  const v = row?.[t.merchant];
  return v === null || v === undefined ? null : String(v);
}

/** The row's primary key value, used to pick a hot merchant's shard. */
export function rowIdOf(e: RowChange, m: Mapping): string {
  const kind = tableKind(e.table, m);
  const t = kind === 'cancel' ? m.cancels : m.approvals;
  const row = e.row ?? e.old;
  return String(row?.[t.id] ?? '');
}

const timePatterns = new WeakMap<Mapping, Buffer[]>();

/**
 * A lower bound of the earliest fact minute of one encoded change event (lib/events.ts: JSON.stringify of the event,
 * row values as strings) without parsing it: the minimum over every `"<time column>":"<timestamp>"` in the bytes.
 * Several times faster than decodeEvent + factsOf, for scans that only need the earliest bucket (replay). It may be
 * lower than the exact answer (an unmapped table with a column of that name, an update whose facts cancel out), never
 * higher. Returns null for a heartbeat (no facts) and undefined when the bytes do not tell (the caller decodes).
 */
export function earliestFactMinuteBound(value: Buffer | null, m: Mapping): number | null | undefined {
  if (value === null) return undefined;
  let pats = timePatterns.get(m);
  if (!pats) {
    const cols = [...new Set([m.approvals.time, m.cancels.time])];
    timePatterns.set(m, (pats = cols.map((c) => Buffer.from(`${JSON.stringify(c)}:"`))));
  }
  let min = Infinity;
  let found = 0;
  for (const pat of pats) {
    for (let i = value.indexOf(pat); i >= 0; i = value.indexOf(pat, i + pat.length)) {
      const start = i + pat.length;
      const end = value.indexOf(0x22, start); // the closing quote: timestamps hold no escapes
      if (end < 0) return undefined;
      const ms = Date.parse(value.toString('latin1', start, end));
      if (Number.isNaN(ms)) return undefined;
      found++;
      if (ms < min) min = ms;
    }
  }
  if (found > 0) return minuteStart(min);
  return value.includes(HEARTBEAT) ? null : undefined;
}
const HEARTBEAT = Buffer.from('"op":"heartbeat"');
