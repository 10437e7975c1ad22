/** PostgreSQL helpers shared by the components. */
import type pg from 'pg';

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
