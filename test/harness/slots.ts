/** Replication slots of tests and benchmarks: is a cdc streaming from one yet, and dropping it afterwards. */
import { waitFor } from './wait.ts';

interface Db { query: (q: string, v?: unknown[]) => Promise<{ rows: any[]; rowCount?: number | null }> }

/**
 * True once a walsender streams from `slot`. (pg_replication_slots.active alone is also true while the slot is
 * being created, before changes are captured.)
 */
export async function streaming(db: Db, slot: string): Promise<boolean> {
  const { rows } = await db.query(
    'SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = $1', [slot]);
  return rows.length > 0;
}

/**
 * Drops a slot once its cdc has let go of it: a leftover slot keeps the shared server's WAL forever. With
 * `terminate`, a walsender still holding it is ended first (benchmarks, whose cdc may be killed mid-stream).
 * Never throws: a slot that cannot be dropped within 15 s is left (the stack's reset drops it later).
 */
export async function dropSlot(db: Db, slot: string, opts: { terminate?: boolean } = {}): Promise<void> {
  await waitFor(async () => {
    if (opts.terminate) await db.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
    await db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    return true;
  }, { timeoutMs: 15_000, intervalMs: 200, message: 'slot still active' }).catch(() => {});
}

/** Drops every inactive slot of a database (before the database itself is dropped and recreated). */
export async function dropInactiveSlots(db: Db, database: string): Promise<void> {
  await db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active', [database]);
}
