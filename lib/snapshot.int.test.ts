/**
 * Creating a slot with a snapshot waits for the transactions running on the source: the wait is logged with the
 * transactions it waits for, and bounded — after the timeout it gives up naming them; once they end it succeeds.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freshDatabase, uniqueName } from '../test/harness/services.ts';
import { logger } from './logger.ts';
import { slotWithSnapshot, SnapshotTimeoutError } from './snapshot.ts';

describe('the snapshot slot and a long transaction', () => {
  let url: string;
  const slot = uniqueName('snap').replace(/[^a-z0-9_]/g, '_'); // temporary: gone with its connection

  it('logs the transaction it waits for, gives up after the timeout naming it, and succeeds once it ends', async () => {
    url = await freshDatabase('snap');
    const app = new pg.Client({ connectionString: url, application_name: 'long-batch-job' });
    await app.connect();
    await app.query('CREATE TABLE t (x int)');
    await app.query('BEGIN');
    await app.query('INSERT INTO t VALUES (1)'); // holds a transaction id until it ends
    const pid = Number((await app.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    const warned: unknown[] = [];
    const log = logger.child({});
    log.warn = ((obj: unknown) => { warned.push(obj); }) as typeof log.warn;
    const err = await slotWithSnapshot(url, slot, { temporary: true, log, timeoutMs: 15_000 }).catch((e) => e);
    // said after 10 s: who it waits for
    expect(warned).toContainEqual(expect.objectContaining({ blockers: expect.arrayContaining([expect.objectContaining({ pid, application: 'long-batch-job' })]) }));
    expect(err).toBeInstanceOf(SnapshotTimeoutError);
    expect((err as SnapshotTimeoutError).blockers.map((b) => b.pid)).toContain(pid);
    expect((err as Error).message).toMatch(/long-batch-job/);
    await app.query('COMMIT');
    const snap = await slotWithSnapshot(url, slot, { temporary: true, log, timeoutMs: 60_000 });
    expect(snap.consistentPoint).toBeGreaterThan(0n);
    await snap.close();
    await app.end();
  }, 120_000);
});
