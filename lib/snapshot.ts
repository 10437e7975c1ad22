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
import { parseLsn } from './lsn.ts';
import { createClient } from './pg.ts';

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

export async function slotWithSnapshot(pgUrl: string, slot: string, o: { temporary: boolean; applicationName?: string }): Promise<SnapshotRead> {
  const repl = new pg.Client({ connectionString: pgUrl, replication: 'database', application_name: o.applicationName ?? 'riskmon-backfill' } as pg.ClientConfig);
  repl.on('error', () => {});
  await repl.connect();
  let client: pg.Client | null = null;
  try {
    // the pre-15 spelling, still accepted by later servers
    const r = await repl.query(`CREATE_REPLICATION_SLOT ${ident(slot)}${o.temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput EXPORT_SNAPSHOT`);
    const row = r.rows[0] as { consistent_point: string; snapshot_name: string };
    client = createClient({ connectionString: pgUrl, application_name: o.applicationName ?? 'riskmon-backfill', options: '-c TimeZone=UTC' });
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
        const f = createClient({ connectionString: pgUrl, application_name: o.applicationName ?? 'riskmon-backfill', options: '-c TimeZone=UTC' });
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
