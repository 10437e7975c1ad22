/** PostgreSQL helpers shared by the components. */
import pg from 'pg';
import type { Logger } from './logger.ts';

/**
 * Every pool's bounds unless its caller sets tighter ones: no statement runs longer than 30 s (PostgreSQL cancels it,
 * SQLSTATE 57014), and a query waiting for a connection gives up after 10 s instead of queueing for as long as
 * PostgreSQL is unreachable.
 */
export const POOL_BOUNDS = { statement_timeout: 30_000, connectionTimeoutMillis: 10_000 } as const;

/**
 * A pool whose lost connections never end the process. PostgreSQL closing a connection (a restart, a failover, an
 * administrator's pg_terminate_backend) makes pg emit 'error' on the client, and on the pool when the client was
 * idle; an 'error' nobody listens to ends a Node process. pg-pool listens only while a client is idle: a client
 * checked out between two queries (a transaction waiting on an HTTP call or on Redis) had nobody listening. Every
 * client of this pool has a listener from its first connection on; the query waiting on a lost connection still
 * fails, its caller handles that as any outage, and pg-pool discards the broken client on release.
 */
export function createPool(config: pg.PoolConfig, log: Logger): pg.Pool {
  const pool = new pg.Pool({ ...POOL_BOUNDS, ...config });
  pool.on('connect', (client) => client.on('error', (err) => log.warn({ err: err.message, pool: config.application_name }, 'PostgreSQL connection lost')));
  pool.on('error', () => {}); // an idle client's error: logged by the client's own listener above
  return pool;
}

/**
 * A single connection for a short task (a migration, the cdc's setup and heartbeats): a connection PostgreSQL closes
 * fails the query waiting on it, which the caller reports or retries, instead of an 'error' event nobody listens
 * to ending the process.
 */
export function createClient(config: pg.ClientConfig): pg.Client {
  const client = new pg.Client(config);
  client.on('error', () => {});
  return client;
}

/**
 * Runs `fn` in one transaction on a pooled connection: COMMIT when it returns, ROLLBACK when it throws (the error is
 * rethrown), the connection released either way.
 */
export async function inTransaction<T>(db: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * PostgreSQL is down or restarting (refused or lost connection, "the database system is starting up" / "shutting
 * down": SQLSTATE class 57P), not a mistake in the request or the configuration (pure).
 */
export function pgUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  if (typeof e.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|57P0[1-3])$/.test(e.code)) return true;
  return /Connection terminated|connection timeout|timeout expired/i.test(String(e.message ?? ''));
}

/**
 * Runs `fn` (a start-up step: migrations, seeding) until PostgreSQL answers: while it is down or restarting, `fn`
 * is retried every `everyMs` with a warning every 30 s; any other error is thrown. A component started during a
 * PostgreSQL restart waits for it instead of exiting.
 */
export async function whenPgAnswers<T>(fn: () => Promise<T>, log: Logger, what: string, everyMs = 1_000): Promise<T> {
  for (let warned = 0; ;) {
    try {
      return await fn();
    } catch (err) {
      if (!pgUnavailable(err)) throw err;
      if (Date.now() - warned > 30_000) { log.warn({ err: (err as Error).message }, `${what}: PostgreSQL is not answering; retrying until it does`); warned = Date.now(); }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}
