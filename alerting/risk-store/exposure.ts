/**
 * merchant_exposure (sql/risk/007_money.sql): the exposure of every merchant that owes a receivable now, kept by the
 * evaluator with each closed minute (alerting/exposure.ts) — the top list of the API and the receivable by which
 * alerts sort. A merchant absent from it owes nothing.
 */
import type pg from 'pg';
import type { Exposure } from '../../lib/exposure.ts';

/** Upserts the merchants that owe and removes those that no longer do (in the minute's transaction). */
export async function writeExposures(client: pg.PoolClient | pg.Pool, x: { upsert: Exposure[]; remove: string[] }, computedAt: number): Promise<void> {
  const at = new Date(computedAt);
  for (let i = 0; i < x.upsert.length; i += 5000) {
    const part = x.upsert.slice(i, i + 5000);
    await client.query(
      `INSERT INTO merchant_exposure (merchant_id, receivable, exposure, computed_at)
       SELECT u.m, u.r, u.e, $4 FROM unnest($1::text[], $2::bigint[], $3::jsonb[]) AS u(m, r, e)
       ON CONFLICT (merchant_id) DO UPDATE SET receivable = excluded.receivable, exposure = excluded.exposure, computed_at = excluded.computed_at`,
      [part.map((e) => e.merchantId), part.map((e) => e.receivable), part.map((e) => JSON.stringify(e)), at]);
  }
  for (let i = 0; i < x.remove.length; i += 5000) {
    await client.query('DELETE FROM merchant_exposure WHERE merchant_id = ANY($1::text[])', [x.remove.slice(i, i + 5000)]);
  }
}

/** Forgets every stored exposure (an evaluator that recomputes all of them writes them again). */
export async function clearExposures(client: pg.PoolClient | pg.Pool): Promise<void> {
  await client.query('DELETE FROM merchant_exposure');
}

/** Merchants by receivable now, largest first (bounded by `limit`; an index scan). */
export async function topExposures(db: pg.Pool, limit: number): Promise<{ items: Exposure[]; computedAt: string | null }> {
  const { rows } = await db.query<{ exposure: Exposure; computed_at: Date }>(
    'SELECT exposure, computed_at FROM merchant_exposure ORDER BY receivable DESC, merchant_id LIMIT $1', [limit]);
  return { items: rows.map((r) => ({ ...r.exposure, holds: r.exposure.holds ?? [] })), computedAt: rows[0]?.computed_at.toISOString() ?? null };
}

/** The merchants that owe now, as stored (the evaluator's start). */
export async function storedReceivables(db: pg.Pool): Promise<Map<string, bigint>> {
  const { rows } = await db.query<{ merchant_id: string; receivable: string }>('SELECT merchant_id, receivable::text FROM merchant_exposure');
  return new Map(rows.map((r) => [r.merchant_id, BigInt(r.receivable)]));
}
