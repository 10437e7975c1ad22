/**
 * Which source tables mean "approval" and "cancel", and which columns hold merchant, amount and transaction time.
 * The reference schema is the default; a user's own schema is given as JSON in RISKMON_MAPPING (see docs/configuration.md).
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

/** The merchant directory the API reads names and categories from. */
export interface MerchantDirectory {
  /** schema-qualified, e.g. public.merchants */
  table: string;
  id: string;
  name: string;
  /** absent: every merchant's category reads as "general" */
  category?: string;
}

/**
 * The settlement table: one row per payout. A payout settles its merchant's approvals and cancels with a
 * transaction time before `coversTo` and counts once `paidAt` has passed (docs/contracts.md "Payouts").
 */
export interface PayoutTable {
  /** schema-qualified, e.g. public.payouts */
  table: string;
  merchant: string;
  coversTo: string;
  paidAt: string;
  /** the payout's id (absent: payouts are told apart by their other columns) */
  id?: string;
  /** the amount paid out (absent: read as 0) */
  amount?: string;
}

export interface Mapping {
  approvals: FactTable;
  cancels: FactTable;
  /** absent: the reference directory public.merchants(merchant_id, name, category) */
  merchants?: MerchantDirectory;
  /** absent: no payouts are read; the settlement schedule comes from RISKMON_SETTLEMENT_DAYS */
  payouts?: PayoutTable;
}

export const referenceMapping: Mapping = Object.freeze({
  approvals: { table: 'public.payments', id: 'payment_id', merchant: 'merchant_id', amount: 'amount', time: 'approved_at' },
  cancels: { table: 'public.payment_cancels', id: 'cancel_id', merchant: 'merchant_id', amount: 'amount', time: 'canceled_at' },
  payouts: { table: 'public.payouts', id: 'payout_id', merchant: 'merchant_id', amount: 'amount', coversTo: 'covers_to', paidAt: 'paid_at' },
});

export const referenceMerchants: MerchantDirectory = Object.freeze({ table: 'public.merchants', id: 'merchant_id', name: 'name', category: 'category' });

export function merchantDirectory(m: Mapping): MerchantDirectory {
  return m.merchants ?? referenceMerchants;
}

/** A merchant id riskmon accepts: it becomes part of Kafka keys, Redis keys and URLs. */
export const MERCHANT_ID_PATTERN = '^[A-Za-z0-9_.:-]{1,64}$';
const MERCHANT_ID_RE = new RegExp(MERCHANT_ID_PATTERN);
export const isMerchantId = (s: string): boolean => MERCHANT_ID_RE.test(s);
const MERCHANT_ID_RULE = '1 to 64 characters of A-Z a-z 0-9 _ . : -';

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

const IDENT_RE = /^[^\u0000]{1,63}$/;

export function validateMapping(v: unknown): Mapping {
  const m = v as Mapping;
  if (!m || typeof m !== 'object') throw new Error('must be a JSON object with "approvals" and "cancels"');
  const check = (where: string, t: any, cols: readonly string[], optional: readonly string[] = []) => {
    if (!t || typeof t !== 'object') throw new Error(`"${where}" missing`);
    for (const col of cols) {
      if (optional.includes(col) && t[col] === undefined) continue;
      if (typeof t[col] !== 'string' || !t[col]) throw new Error(`"${where}.${col}" must be a non-empty string`);
      if (!IDENT_RE.test(col === 'table' ? t[col].split('.').pop() ?? '' : t[col])) throw new Error(`"${where}.${col}" is not a PostgreSQL name`);
    }
    if (!t.table.includes('.')) throw new Error(`"${where}.table" must be schema-qualified, e.g. public.${t.table}`);
    if (t.table.split('.').length !== 2) throw new Error(`"${where}.table" must be schema.table, got ${JSON.stringify(t.table)}`);
  };
  for (const side of ['approvals', 'cancels'] as const) check(side, (m as any)[side], ['table', 'id', 'merchant', 'amount', 'time']);
  const a = m.approvals, c = m.cancels;
  if (a.table === c.table) {
    // one row carries both facts: each side needs a time column of its own, NULL while the fact does not exist
    if (a.time === c.time) throw new Error(`"approvals.time" and "cancels.time" name the same column ${a.table}.${a.time}: when both sides are one table, each needs its own time column (e.g. approved_at and canceled_at)`);
  }
  const out: Mapping = { approvals: { ...a }, cancels: { ...c } };
  if (m.merchants !== undefined) {
    check('merchants', m.merchants, ['table', 'id', 'name', 'category'], ['category']);
    const d = m.merchants;
    out.merchants = { table: d.table, id: d.id, name: d.name, ...(d.category ? { category: d.category } : {}) };
  }
  if (m.payouts !== undefined) {
    check('payouts', m.payouts, ['table', 'merchant', 'coversTo', 'paidAt', 'id', 'amount'], ['id', 'amount']);
    const t = m.payouts;
    if (t.table === a.table || t.table === c.table) throw new Error(`"payouts.table" ${t.table} is also an approvals or cancels table: payouts need a table of their own`);
    if (t.coversTo === t.paidAt) throw new Error(`"payouts.coversTo" and "payouts.paidAt" name the same column ${t.table}.${t.coversTo}: a payout needs both the time it settles up to and the time it is paid`);
    out.payouts = { table: t.table, merchant: t.merchant, coversTo: t.coversTo, paidAt: t.paidAt, ...(t.id ? { id: t.id } : {}), ...(t.amount ? { amount: t.amount } : {}) };
  }
  return Object.freeze(out);
}

const APPROVAL: readonly FactKind[] = Object.freeze(['approval']);
const CANCEL: readonly FactKind[] = Object.freeze(['cancel']);
const BOTH: readonly FactKind[] = Object.freeze(['approval', 'cancel']);
const NONE: readonly FactKind[] = Object.freeze([]);

/** The facts a row of `table` may carry: none, one side, or both (approvals and cancels on one table). */
export function sidesOf(table: string, m: Mapping): readonly FactKind[] {
  const a = table === m.approvals.table, c = table === m.cancels.table;
  return a ? (c ? BOTH : APPROVAL) : c ? CANCEL : NONE;
}

export function sideOf(kind: FactKind, m: Mapping): FactTable {
  return kind === 'approval' ? m.approvals : m.cancels;
}

/** The tables of approvals and cancels, each once (the ones with bucket facts). */
export function factTablesOf(m: Mapping): string[] {
  return m.approvals.table === m.cancels.table ? [m.approvals.table] : [m.approvals.table, m.cancels.table];
}

/** The mapped tables, each once: the fact tables, then the payouts table when mapped. */
export function tablesOf(m: Mapping): string[] {
  const out = factTablesOf(m);
  return m.payouts ? [...out, m.payouts.table] : out;
}

/** Whether `table` is the mapped payouts table. */
export function isPayoutTable(table: string, m: Mapping): boolean {
  return m.payouts !== undefined && table === m.payouts.table;
}

/** The payouts table's mapped columns: role and mapping field of each. */
function payoutColumns(t: PayoutTable): { column: string; role: ColumnRole; field: string }[] {
  const out: { column: string; role: ColumnRole; field: string }[] = [];
  if (t.id) out.push({ column: t.id, role: 'id', field: 'payouts.id' });
  out.push({ column: t.merchant, role: 'merchant', field: 'payouts.merchant' });
  if (t.amount) out.push({ column: t.amount, role: 'amount', field: 'payouts.amount' });
  out.push({ column: t.coversTo, role: 'time', field: 'payouts.coversTo' }, { column: t.paidAt, role: 'time', field: 'payouts.paidAt' });
  return out;
}

/** The columns riskmon reads from a mapped table (what change events carry), in a fixed order. */
export function columnsOf(table: string, m: Mapping): string[] {
  const out: string[] = [];
  if (isPayoutTable(table, m)) return payoutColumns(m.payouts!).map((c) => c.column);
  for (const k of sidesOf(table, m)) {
    const t = sideOf(k, m);
    for (const c of [t.id, t.merchant, t.amount, t.time]) if (!out.includes(c)) out.push(c);
  }
  return out;
}

/** The column holding the merchant in a mapped table (for messages), or null for an unmapped table. */
export function merchantColumnOf(table: string, m: Mapping): string | null {
  if (isPayoutTable(table, m)) return m.payouts!.merchant;
  const kind = sidesOf(table, m)[0];
  return kind ? sideOf(kind, m).merchant : null;
}

/** What a mapped column is for, to check its type against (see compatibleType). */
export type ColumnRole = 'id' | 'merchant' | 'amount' | 'time';

/** Each mapped column of `table` with its role and the mapping field that names it (e.g. "cancels.amount"). */
export function mappedColumns(table: string, m: Mapping): { column: string; role: ColumnRole; field: string }[] {
  if (isPayoutTable(table, m)) return payoutColumns(m.payouts!);
  const out: { column: string; role: ColumnRole; field: string }[] = [];
  for (const k of sidesOf(table, m)) {
    const t = sideOf(k, m), side = k === 'approval' ? 'approvals' : 'cancels';
    for (const role of ['id', 'merchant', 'amount', 'time'] as const) out.push({ column: t[role], role, field: `${side}.${role}` });
  }
  return out;
}

const T = { int2: 21, int4: 23, int8: 20, numeric: 1700, text: 25, varchar: 1043, uuid: 2950, timestamp: 1114, timestamptz: 1184 } as const;

/**
 * Whether a column of PostgreSQL type `typeOid` (with `typeMod`, as pg_attribute and pgoutput's Relation message
 * give them) can play `role`: null if it can, else why not. Amounts must be integers (numeric only with scale 0),
 * times timestamps, merchants integers, text or uuid; a row id may be anything (it only picks a hot merchant's shard).
 */
export function incompatibleType(role: ColumnRole, typeOid: number, typeMod: number): string | null {
  switch (role) {
    case 'id': return null;
    case 'amount':
      if (typeOid === T.int2 || typeOid === T.int4 || typeOid === T.int8) return null;
      if (typeOid === T.numeric && typeMod >= 4 && ((typeMod - 4) & 0xffff) === 0) return null; // numeric(p, 0)
      return 'an amount must be an integer type (bigint, integer, smallint or numeric(p, 0))';
    case 'time':
      if (typeOid === T.timestamptz || typeOid === T.timestamp) return null;
      return 'a transaction time must be timestamptz (or timestamp, read as UTC)';
    case 'merchant':
      if (typeOid === T.int2 || typeOid === T.int4 || typeOid === T.int8 || typeOid === T.text || typeOid === T.varchar || typeOid === T.uuid) return null;
      if (typeOid === T.numeric && typeMod >= 4 && ((typeMod - 4) & 0xffff) === 0) return null;
      return 'a merchant id must be an integer, text, varchar or uuid column';
  }
}

/**
 * The fact of one side in one row version, or null when the side's time column is NULL in a table that carries
 * both sides (the fact does not exist yet, or was revoked).
 */
function fact(row: Row, t: FactTable, kind: FactKind, sign: 1 | -1, table: string, shared: boolean): Fact | null {
  const time = row[t.time];
  if (shared && time === null) return null;
  const merchant = row[t.merchant];
  const amount = row[t.amount];
  if (merchant === null || merchant === undefined || merchant === '') throw new BadRowError(`${table}.${t.merchant} is missing or NULL`);
  if (amount === null || amount === undefined) throw new BadRowError(`${table}.${t.amount} is missing or NULL`);
  if (time === null || time === undefined) throw new BadRowError(`${table}.${t.time} is missing or NULL`);
  const merchantId = String(merchant);
  if (!isMerchantId(merchantId)) throw new BadRowError(`${table}.${t.merchant}=${JSON.stringify(merchantId.slice(0, 80))} is not a merchant id riskmon accepts (${MERCHANT_ID_RULE})`);
  let amt: bigint;
  try { amt = BigInt(String(amount)); } catch { throw new BadRowError(`${table}.${t.amount}=${JSON.stringify(amount)} is not an integer amount`); }
  const ms = Date.parse(String(time));
  if (Number.isNaN(ms)) throw new BadRowError(`${table}.${t.time}=${JSON.stringify(time)} is not a timestamp`);
  return { merchantId, kind, minuteMs: minuteStart(ms), sign, amount: amt };
}

/**
 * Bucket deltas of one row change; [] for a table the mapping does not use. Throws BadRowError. Per side of the
 * table: the old row's fact with sign -1, the new row's with +1; a pair that lands in the same bucket with the
 * same amount cancels out and is dropped (an update that changes nothing counted costs nothing downstream).
 */
export function factsOf(e: RowChange, m: Mapping): Fact[] {
  const sides = sidesOf(e.table, m);
  if (!sides.length) return [];
  if ((e.op === 'update' || e.op === 'delete') && !e.old) throw new BadRowError(`${e.op} on ${e.table} without the old row: set REPLICA IDENTITY FULL on ${e.table}`);
  if ((e.op === 'insert' || e.op === 'update') && !e.row) throw new BadRowError(`${e.op} on ${e.table} without a row`);
  const shared = sides.length === 2;
  const out: Fact[] = [];
  for (const kind of sides) {
    const t = sideOf(kind, m);
    const before = e.op === 'insert' ? null : fact(e.old!, t, kind, -1, e.table, shared);
    const after = e.op === 'delete' ? null : fact(e.row!, t, kind, 1, e.table, shared);
    if (before && after && sameBucket(before, after)) continue;
    if (before) out.push(before);
    if (after) out.push(after);
  }
  return out;
}

function sameBucket(a: Fact, b: Fact): boolean {
  return a.merchantId === b.merchantId && a.minuteMs === b.minuteMs && a.amount === b.amount;
}

/** The merchant a change is keyed by (the new row's; the old row's for a delete), as the row holds it. */
export function merchantOf(e: RowChange, m: Mapping): string | null {
  const col = merchantColumnOf(e.table, m);
  if (col === null) return null;
  const row = e.row ?? e.old;
  const v = row?.[col];
  return v === null || v === undefined ? null : String(v);
}

/** The row's primary key value, used to pick a hot merchant's shard. */
export function rowIdOf(e: RowChange, m: Mapping): string {
  const row = e.row ?? e.old;
  if (isPayoutTable(e.table, m)) {
    const t = m.payouts!;
    return String(row?.[t.id ?? t.coversTo] ?? '');
  }
  const t = sideOf(sidesOf(e.table, m)[0] ?? 'approval', m);
  return String(row?.[t.id] ?? '');
}

/** One payout row as it stands (times epoch ms, amount exact). */
export interface Payout {
  /** the payout's id as the row holds it ('' when the mapping names no id column) */
  id: string;
  merchantId: string;
  amount: bigint;
  coversToMs: number;
  paidAtMs: number;
}

/** A payout row that now stands (+1) or no longer does (-1). */
export interface PayoutDelta { sign: 1 | -1; payout: Payout }

function payoutOf(row: Row, t: PayoutTable, table: string): Payout {
  const merchant = row[t.merchant];
  if (merchant === null || merchant === undefined || merchant === '') throw new BadRowError(`${table}.${t.merchant} is missing or NULL`);
  const merchantId = String(merchant);
  if (!isMerchantId(merchantId)) throw new BadRowError(`${table}.${t.merchant}=${JSON.stringify(merchantId.slice(0, 80))} is not a merchant id riskmon accepts (${MERCHANT_ID_RULE})`);
  const time = (col: string) => {
    const v = row[col];
    if (v === null || v === undefined) throw new BadRowError(`${table}.${col} is missing or NULL`);
    const ms = Date.parse(String(v));
    if (Number.isNaN(ms)) throw new BadRowError(`${table}.${col}=${JSON.stringify(v)} is not a timestamp`);
    return ms;
  };
  let amount = 0n;
  if (t.amount) {
    const v = row[t.amount];
    if (v !== null && v !== undefined) {
      try { amount = BigInt(String(v)); } catch { throw new BadRowError(`${table}.${t.amount}=${JSON.stringify(v)} is not an integer amount`); }
    }
  }
  const id = t.id ? String(row[t.id] ?? '') : '';
  if (id.length > 200) throw new BadRowError(`${table}.${t.id} is longer than 200 characters: not a payout id riskmon reads`);
  // the store joins payout rows with control characters (aggregator/store/scripts.ts)
  if (/[\x00-\x1f]/.test(id)) throw new BadRowError(`${table}.${t.id}=${JSON.stringify(id.slice(0, 80))} holds a control character: not a payout id riskmon reads`);
  return { id, merchantId, amount, coversToMs: time(t.coversTo), paidAtMs: time(t.paidAt) };
}

/**
 * The payout rows a change of the payouts table removes (-1, the old row) and adds (+1, the new row); [] for
 * any other table, and for an update that changes nothing riskmon reads. Throws BadRowError.
 */
export function payoutsOf(e: RowChange, m: Mapping): PayoutDelta[] {
  if (!isPayoutTable(e.table, m)) return [];
  const t = m.payouts!;
  if ((e.op === 'update' || e.op === 'delete') && !e.old) throw new BadRowError(`${e.op} on ${e.table} without the old row: set REPLICA IDENTITY FULL on ${e.table}`);
  if ((e.op === 'insert' || e.op === 'update') && !e.row) throw new BadRowError(`${e.op} on ${e.table} without a row`);
  const before = e.op === 'insert' ? null : payoutOf(e.old!, t, e.table);
  const after = e.op === 'delete' ? null : payoutOf(e.row!, t, e.table);
  if (before && after && samePayout(before, after)) return [];
  const out: PayoutDelta[] = [];
  if (before) out.push({ sign: -1, payout: before });
  if (after) out.push({ sign: 1, payout: after });
  return out;
}

function samePayout(a: Payout, b: Payout): boolean {
  return a.id === b.id && a.merchantId === b.merchantId && a.amount === b.amount && a.coversToMs === b.coversToMs && a.paidAtMs === b.paidAtMs;
}

/**
 * A row cut down to `columns` (the mapped ones): change events carry only what riskmon reads, so they stay small
 * and card numbers or addresses in other columns never reach Kafka.
 */
export function trimRow(row: Row | null, columns: readonly string[]): Row | null {
  if (!row) return row;
  const out: Row = {};
  for (const c of columns) if (c in row) out[c] = row[c];
  return out;
}


/** Largest amount the fact scanner reads as a number (15 digits: exact in a double); longer ones take the plain path. */
const MAX_DIGITS = 15;

/**
 * The facts of one encoded change event read from its bytes (EventScanner: no JSON.parse, no object per event), for
 * the replay. `read` answers false when the event is not in the scanner's common shape or its counted columns are
 * not plain (a merchant that is not a string of merchant-id characters, an amount that is not 1–15 digits, a time
 * that is not a string Date.parse reads): the caller then uses decodeEvent + factsOf, which decide and explain. When
 * it answers true, the envelope is in `event` and the `n` facts in the arrays are those factsOf gives, in its order
 * (mapping.test.ts).
 */
export class FactScanner {
  readonly event: EventScanner;
  /** per kind (0 approval, 1 cancel): index in the scanner's columns of merchant, amount, time */
  readonly #cols: number[][];
  readonly #ncols: number;
  /** per table index of the scanner: the kinds its rows carry */
  readonly #kinds: number[][];
  readonly #shared: boolean;
  n = 0;
  /** where fact j's merchant lies in the bytes (merchant(j) makes the string: only callers that need it pay) */
  readonly #mStart = new Int32Array(4);
  readonly #mEnd = new Int32Array(4);
  /** 0 approval, 1 cancel */
  readonly kind = new Uint8Array(4);
  readonly minuteMs = new Float64Array(4);
  readonly sign = new Int8Array(4);
  /** the amount as a number (exact: at most 15 digits) */
  readonly amount = new Float64Array(4);

  constructor(m: Mapping) {
    const cols: string[] = [];
    const at = (c: string) => { let i = cols.indexOf(c); if (i < 0) { i = cols.length; cols.push(c); } return i; };
    this.#cols = [m.approvals, m.cancels].map((t) => [at(t.merchant), at(t.amount), at(t.time)]);
    this.#ncols = cols.length;
    // payout events are no facts: the scanner reads them as a table it does not know (no facts)
    const tables = factTablesOf(m);
    this.#shared = tables.length === 1;
    this.#kinds = this.#shared ? [[0, 1]] : [[0], [1]];
    this.event = new EventScanner(tables, cols);
  }

  read(b: Buffer, start = 0, end = b.length): boolean {
    const e = this.event;
    if (!e.scan(b, start, end)) return false;
    this.n = 0;
    if (e.op === 'heartbeat' || e.table < 0) return true;
    if (e.op !== 'insert' && !e.hasOld) return false;
    for (const kind of this.#kinds[e.table]) {
      const j0 = this.n;
      if (e.op !== 'insert' && !this.#fact(kind, this.#ncols, -1)) return false;
      if (e.op !== 'delete' && !this.#fact(kind, 0, 1)) return false;
      // a pair that changes nothing counted cancels out (factsOf's sameBucket)
      if (this.n === j0 + 2 && this.minuteMs[j0] === this.minuteMs[j0 + 1] && this.amount[j0] === this.amount[j0 + 1] && this.merchant(j0) === this.merchant(j0 + 1)) this.n = j0;
    }
    return true;
  }

  /** The merchant of fact j (0 ≤ j < n). */
  merchant(j: number): string {
    return this.event.buf.toString('utf8', this.#mStart[j], this.#mEnd[j]);
  }

  /** Records the fact of `kind` in the row at `base` (none for a NULL time on a shared table); false: not plain. */
  #fact(kind: number, base: number, sign: 1 | -1): boolean {
    const e = this.event, b = e.buf, [mc, ac, tc] = this.#cols[kind];
    const m = base + mc, a = base + ac, t = base + tc;
    if (this.#shared && e.type[t] === Json.Null) return true;
    if (e.type[m] !== Json.String || e.end[m] === e.start[m] || e.end[m] - e.start[m] > 64) return false;
    for (let i = e.start[m]; i < e.end[m]; i++) if (!ID_CHAR[b[i]]) return false;
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

/** The bytes a merchant id may hold (MERCHANT_ID_PATTERN). */
const ID_CHAR = (() => {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = /[A-Za-z0-9_.:-]/.test(String.fromCharCode(c)) ? 1 : 0;
  return t;
})();
