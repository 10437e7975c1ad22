/**
 * Which source tables mean "approval" and "cancel", and which columns hold merchant, amount and transaction time.
 * The reference schema is the default; a user's own schema is given as JSON in RISKMON_MAPPING (see README).
 * `factsOf` turns one row change into bucket deltas: an INSERT adds the new row, a DELETE subtracts the old row,
 * an UPDATE subtracts the old and adds the new, so buckets always reflect the rows as they stand.
 */
import { EventScanner, Json, parseIsoMs, type RowChange, type Row } from './events.ts';
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

/** A merchant id riskmon accepts from the source: up to 64 characters of [A-Za-z0-9_.:-]. */
export const MERCHANT_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Why the merchant column of a change's row (or old row) is not an id riskmon accepts, or null when both are. The
 * value is quoted only by its length and first characters: a 10 KB id must not travel into logs whole.
 */
export function merchantIdProblem(e: RowChange, m: Mapping): string | null {
  const kind = tableKind(e.table, m);
  if (!kind) return null;
  const col = (kind === 'approval' ? m.approvals : m.cancels).merchant;
  for (const row of [e.row, e.old]) {
    const v = row?.[col];
    if (v === null || v === undefined) continue;
    const s = String(v);
    if (!MERCHANT_ID.test(s)) {
      return `${e.table}.${col} is not a merchant id (up to 64 characters of A-Z a-z 0-9 _ . : -): ${s.length} characters starting ${JSON.stringify(s.slice(0, 24))}`;
    }
  }
  return null;
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


/** Largest amount the fact scanner reads as a number (15 digits: exact in a double); longer ones take the plain path. */
const MAX_DIGITS = 15;

/**
 * The facts of one encoded change event read from its bytes (EventScanner: no JSON.parse, no object per event), for
 * the replay. `read` answers false when the event is not in the scanner's common shape or its counted columns are
 * not plain (a merchant that is not a non-empty string, an amount that is not 1–15 digits, a time that is not a
 * string Date.parse reads): the caller then uses decodeEvent + factsOf, which decide and explain. When it answers
 * true, the envelope is in `event` and the `n` facts in the arrays are those factsOf gives (mapping.test.ts).
 */
export class FactScanner {
  readonly event: EventScanner;
  /** per kind (0 approval, 1 cancel): index in the scanner's columns of merchant, amount, time */
  readonly #cols: number[][];
  readonly #ncols: number;
  n = 0;
  /** where fact j's merchant lies in the bytes (merchant(j) makes the string: only callers that need it pay) */
  readonly #mStart = new Int32Array(2);
  readonly #mEnd = new Int32Array(2);
  /** 0 approval, 1 cancel */
  readonly kind = new Uint8Array(2);
  readonly minuteMs = new Float64Array(2);
  readonly sign = new Int8Array(2);
  /** the amount as a number (exact: at most 15 digits) */
  readonly amount = new Float64Array(2);

  constructor(m: Mapping) {
    const cols: string[] = [];
    const at = (c: string) => { let i = cols.indexOf(c); if (i < 0) { i = cols.length; cols.push(c); } return i; };
    this.#cols = [m.approvals, m.cancels].map((t) => [at(t.merchant), at(t.amount), at(t.time)]);
    this.#ncols = cols.length;
    this.event = new EventScanner([m.approvals.table, m.cancels.table], cols);
  }

  read(b: Buffer, start = 0, end = b.length): boolean {
    const e = this.event;
    if (!e.scan(b, start, end)) return false;
    this.n = 0;
    if (e.op === 'heartbeat' || e.table < 0) return true;
    const kind = e.table;
    if (e.op !== 'insert' && !(e.hasOld && this.#fact(kind, this.#ncols, -1))) return false;
    if (e.op !== 'delete' && !this.#fact(kind, 0, 1)) return false;
    // an update that changes no counted column cancels out (factsOf's sameBucket)
    if (this.n === 2 && this.minuteMs[0] === this.minuteMs[1] && this.amount[0] === this.amount[1] && this.merchant(0) === this.merchant(1)) this.n = 0;
    return true;
  }

  /** The merchant of fact j (0 ≤ j < n). */
  merchant(j: number): string {
    return this.event.buf.toString('utf8', this.#mStart[j], this.#mEnd[j]);
  }

  #fact(kind: number, base: number, sign: 1 | -1): boolean {
    const e = this.event, b = e.buf, [mc, ac, tc] = this.#cols[kind];
    const m = base + mc, a = base + ac, t = base + tc;
    if (e.type[m] !== Json.String || e.end[m] === e.start[m]) return false;
    if (e.type[t] !== Json.String) return false;
    if (e.type[a] !== Json.String && e.type[a] !== Json.Number) return false;
    let i = e.start[a];
    const neg = b[i] === 0x2d;
    if (neg) i++;
    if (i === e.end[a] || e.end[a] - i > MAX_DIGITS) return false;
    let amount = 0;
    for (; i < e.end[a]; i++) {
      const d = b[i] - 0x30;
      if (d < 0 || d > 9) return false;
      amount = amount * 10 + d;
    }
    const ms = parseIsoMs(b, e.start[t], e.end[t]);
    if (Number.isNaN(ms)) return false;
    const j = this.n++;
    this.#mStart[j] = e.start[m];
    this.#mEnd[j] = e.end[m];
    this.kind[j] = kind;
    this.minuteMs[j] = minuteStart(ms);
    this.sign[j] = sign;
    this.amount[j] = neg ? -amount : amount;
    return true;
  }
}
