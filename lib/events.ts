/**
 * The change-event format on the topic (fixed in DESIGN.md). Values are JSON; bigint/numeric columns are strings,
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
