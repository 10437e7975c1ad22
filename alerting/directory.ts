/**
 * The merchant directory the evaluator reads for cohorts: merchant id → category, from the source database's
 * `merchants` table (reference schema), read once per local day with the baselines. Bounded: at most
 * `maxMerchants` rows; a category longer than 64 characters is cut (source data is untrusted).
 */
import type pg from 'pg';

export type MerchantDirectory = () => Promise<ReadonlyMap<string, string>>;

export function sourceDirectory(pool: Pick<pg.Pool, 'query'>, maxMerchants = 5_000_000): MerchantDirectory {
  return async () => {
    const r = await pool.query<{ id: string; category: string | null }>(
      'SELECT merchant_id::text AS id, category FROM merchants LIMIT $1', [maxMerchants]);
    return new Map(r.rows.map((x) => [x.id, String(x.category ?? 'general').slice(0, 64)]));
  };
}
