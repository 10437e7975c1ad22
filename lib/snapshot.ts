/**
 * A logical replication slot created together with a snapshot of the database that equals its start: the snapshot
 * sees exactly the transactions that committed before the slot's consistent point, and the slot streams exactly
 * those that commit after it (CREATE_REPLICATION_SLOT … EXPORT_SNAPSHOT on a replication connection, then
 * SET TRANSACTION SNAPSHOT in a REPEATABLE READ transaction — what PostgreSQL's own table synchronisation and
 * pg_dump do; https://www.postgresql.org/docs/current/protocol-replication.html). So a history read in that
 * transaction and the slot's stream count every row once: the read counts it as it stood at the consistent point,
 * the stream's changes after it (an UPDATE's old and new row, a DELETE's old row) move it from there.
 *
 * A temporary slot (`riskmon backfill` on a running system) only serves to get such a snapshot and its position; it
 * is dropped when its connection closes, right after the snapshot is imported.
 *
 * More connections can read under the same snapshot (`fork`): the first connection's transaction exports its
 * snapshot (pg_export_snapshot, valid while that transaction is open) and each fork imports it, as parallel pg_dump
 * does — every fork sees exactly what the first one sees, so reads spread over forks stay exact with the slot.
 */
import pg from 'pg';
import type { Logger } from './logger.ts';
import { parseLsn } from './lsn.ts';
import { createClient } from './pg.ts';

/** Connecting to the source gives up after this (pg waits for ever by default). */
const CONNECT_TIMEOUT_MS = 15_000;
/** While the slot waits for running transactions, what it waits on is logged this often. */
const WAIT_LOG_MS = 10_000;

/** Creating the slot waited longer than allowed for transactions running on the source. */
export class SnapshotTimeoutError extends Error {
  constructor(message: string, readonly blockers: Blocker[]) {
    super(message);
    this.name = 'SnapshotTimeoutError';
  }
}

/** A transaction the slot's creation waits for (it must end before the slot has a consistent point). */
export interface Blocker { pid: number | null; xid: string | null; since: string | null; state: string | null; application: string | null; query: string | null }

export interface SnapshotRead {
  /** the slot's consistent point: the snapshot holds the transactions committed before it */
  consistentPoint: bigint;
  /** a connection inside a READ ONLY REPEATABLE READ transaction on the snapshot (TimeZone UTC) */
  client: pg.Client;
  /** another connection inside a READ ONLY REPEATABLE READ transaction on the same snapshot; `close` ends it too */
  fork(): Promise<pg.Client>;
  /** ends the transactions and the connections (the forks' too) */
  close(): Promise<void>;
}

const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;

/**
 * `log` gets what the slot's creation waits on: it needs every transaction that holds a transaction id when it starts
 * to end (a long or forgotten transaction, a prepared one, an `idle in transaction` session keep it waiting); those
 * are logged every 10 s and, after `timeoutMs` (default: no limit), the creation is cancelled with a
 * SnapshotTimeoutError naming them.
 */
export async function slotWithSnapshot(pgUrl: string, slot: string, o: { temporary: boolean; applicationName?: string; log?: Logger; timeoutMs?: number }): Promise<SnapshotRead> {
  const app = o.applicationName ?? 'riskmon-backfill';
  const repl = new pg.Client({ connectionString: pgUrl, replication: 'database', application_name: app, connectionTimeoutMillis: CONNECT_TIMEOUT_MS } as pg.ClientConfig);
  repl.on('error', () => {});
  o.log?.info({ slot, temporary: o.temporary }, 'creating a replication slot with a snapshot (it waits for the transactions running on the source to end)');
  await repl.connect();
  let client: pg.Client | null = null;
  try {
    // a walsender in database mode runs plain SQL too: its pid, to see what it waits on
    const pid = Number((await repl.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    // the pre-15 spelling, still accepted by later servers
    const creating = repl.query(`CREATE_REPLICATION_SLOT ${ident(slot)}${o.temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput EXPORT_SNAPSHOT`);
    const r = await watchSlotCreation(pgUrl, app, pid, creating, o.log, o.timeoutMs ?? 0);
    const row = r.rows[0] as { consistent_point: string; snapshot_name: string };
    client = createClient({ connectionString: pgUrl, application_name: app, options: '-c TimeZone=UTC', connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    await client.connect();
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // the exported snapshot lives only while the replication connection is idle: import it before anything else
    await client.query(`SET TRANSACTION SNAPSHOT '${row.snapshot_name.replaceAll("'", "''")}'`);
    const c = client;
    await repl.end().catch(() => {}); // the imported snapshot stays valid; a temporary slot is dropped now
    const forks: pg.Client[] = [];
    let exported: Promise<string> | null = null;
    const end = async (x: pg.Client) => {
      await x.query('COMMIT').catch(() => {});
      await x.end().catch(() => {});
    };
    return {
      consistentPoint: parseLsn(row.consistent_point),
      client: c,
      fork: async () => {
        exported ??= c.query('SELECT pg_export_snapshot() AS id').then((r) => (r.rows[0] as { id: string }).id);
        const id = await exported;
        const f = createClient({ connectionString: pgUrl, application_name: app, options: '-c TimeZone=UTC', connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
        forks.push(f);
        await f.connect();
        await f.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await f.query(`SET TRANSACTION SNAPSHOT '${id.replaceAll("'", "''")}'`);
        return f;
      },
      close: async () => {
        await Promise.all(forks.map(end));
        await end(c);
      },
    };
  } catch (err) {
    await client?.end().catch(() => {});
    await repl.end().catch(() => {});
    throw err;
  }
}

/**
 * Waits for the slot's creation; every WAIT_LOG_MS it is still running, logs what the walsender `pid` waits on and
 * the transactions it must see end (those holding a transaction id, oldest first, and prepared ones); after
 * `timeoutMs` (0: none) cancels it and throws a SnapshotTimeoutError naming them.
 */
async function watchSlotCreation<T>(pgUrl: string, app: string, pid: number, creating: Promise<T>, log: Logger | undefined, timeoutMs: number): Promise<T> {
  const t0 = Date.now();
  let done = false;
  const finished = creating.finally(() => { done = true; });
  for (;;) {
    const tick = new Promise<'tick'>((res) => setTimeout(() => res('tick'), WAIT_LOG_MS).unref());
    const got = await Promise.race([finished.then((v) => ({ v })), tick]);
    if (got !== 'tick') return got.v;
    if (done) return finished;
    const { wait, blockers } = await blockersOf(pgUrl, app, pid).catch((err) => ({ wait: `unknown (${(err as Error).message})`, blockers: [] as Blocker[] }));
    const waited = Math.round((Date.now() - t0) / 1000);
    if (timeoutMs > 0 && Date.now() - t0 >= timeoutMs) {
      await cancel(pgUrl, app, pid);
      await finished.catch(() => {});
      throw new SnapshotTimeoutError(`creating the snapshot's replication slot waited ${waited} s for transactions running on the source to end: ` +
        `${blockers.length ? blockers.map(describe).join('; ') : 'none found holding a transaction id'} — end or commit them (or raise RISKMON_BACKFILL_SNAPSHOT_TIMEOUT_S), then rerun`, blockers);
    }
    log?.warn({ waitedSeconds: waited, walsender: pid, waitEvent: wait, blockers }, 'still creating the snapshot\'s replication slot: waiting for these transactions on the source to end');
  }
}

const describe = (b: Blocker) => b.pid === null ? `prepared transaction ${b.xid} (since ${b.since})` : `pid ${b.pid} (${b.application || 'no application name'}, ${b.state}, transaction since ${b.since}: ${b.query})`;

async function blockersOf(pgUrl: string, app: string, pid: number): Promise<{ wait: string; blockers: Blocker[] }> {
  const c = createClient({ connectionString: pgUrl, application_name: `${app}-watch`, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, statement_timeout: 10_000 });
  await c.connect();
  try {
    const w = (await c.query('SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0] as { wait_event_type: string | null; wait_event: string | null } | undefined;
    const running = (await c.query(`SELECT pid, backend_xid::text AS xid, xact_start::text AS since, state, application_name AS application, left(query, 200) AS query
      FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> $1 AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 10`, [pid])).rows as Blocker[];
    const prepared = (await c.query(`SELECT NULL::int AS pid, transaction::text AS xid, prepared::text AS since, 'prepared' AS state, NULL AS application, gid AS query FROM pg_prepared_xacts ORDER BY prepared LIMIT 10`)).rows as Blocker[];
    return { wait: w ? `${w.wait_event_type ?? '-'}/${w.wait_event ?? '-'}` : 'gone', blockers: [...running, ...prepared] };
  } finally {
    await c.end().catch(() => {});
  }
}

async function cancel(pgUrl: string, app: string, pid: number): Promise<void> {
  const c = createClient({ connectionString: pgUrl, application_name: `${app}-watch`, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  try {
    await c.connect();
    await c.query('SELECT pg_cancel_backend($1)', [pid]);
  } catch { /* the creation is abandoned either way: its connection is closed by the caller */ } finally {
    await c.end().catch(() => {});
  }
}
