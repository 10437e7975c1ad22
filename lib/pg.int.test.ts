/**
 * createPool against a real PostgreSQL: a connection the server terminates — idle in the pool, or checked out
 * between two queries of a transaction (the Slack sender holds one across its HTTP call) — is logged and dropped,
 * and the process goes on: an 'error' nobody listens to would end it (vitest reports it as an unhandled error).
 * The pool then serves new queries on fresh connections.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from './logger.ts';
import { createPool } from './pg.ts';
import { freshDatabase } from '../test/harness/services.ts';
import { waitFor } from '../test/harness/index.ts';

describe('createPool', () => {
  let url: string;
  let admin: pg.Client;
  const lost: string[] = [];
  const log = { ...logger, warn: (o: { err?: string }) => { lost.push(String(o.err)); } } as unknown as typeof logger;

  beforeAll(async () => {
    url = await freshDatabase('pool');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  afterAll(async () => { await admin?.end(); });

  const terminate = (pid: number) => admin.query('SELECT pg_terminate_backend($1)', [pid]);

  it('survives the server closing a checked-out connection between two queries, and an idle one', async () => {
    const pool = createPool({ connectionString: url, max: 2, application_name: 'pool-test' }, log);
    try {
      // checked out, inside a transaction, no query running
      const held = await pool.connect();
      await held.query('BEGIN');
      const pid = (await held.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await terminate(pid);
      await waitFor(async () => lost.length >= 1, { timeoutMs: 10_000, intervalMs: 50, message: 'the lost connection was not reported' });
      await expect(held.query('SELECT 1')).rejects.toThrow();
      held.release(true);

      // idle in the pool
      const c = await pool.connect();
      const idlePid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      c.release();
      const before = lost.length;
      await terminate(idlePid);
      await waitFor(async () => lost.length > before && pool.totalCount === 0, { timeoutMs: 10_000, intervalMs: 50, message: 'the lost idle connection was not reported and dropped' });

      // the pool goes on with fresh connections
      expect((await pool.query('SELECT 41 + 1 AS n')).rows[0].n).toBe(42);
      expect(lost.every((m) => /terminat/i.test(m)), lost.join('; ')).toBe(true);
    } finally {
      await pool.end();
    }
  });

  it('bounds every statement: 30 s by default, tighter where asked; PostgreSQL cancels one that runs longer', async () => {
    const dflt = createPool({ connectionString: url, max: 1, application_name: 'pool-test' }, log);
    const tight = createPool({ connectionString: url, max: 1, application_name: 'pool-test', statement_timeout: 200 }, log);
    try {
      expect((await dflt.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('30s');
      await expect(tight.query('SELECT pg_sleep(30)')).rejects.toMatchObject({ code: '57014' });
      expect((await tight.query('SELECT 1 AS n')).rows[0].n).toBe(1);
    } finally {
      await Promise.all([dflt.end(), tight.end()]);
    }
  });
});
