/**
 * The merchant directory the evaluator reads for cohorts: merchant id → category, from RISKMON_MAPPING's
 * "merchants" (or the reference public.merchants(merchant_id, name, category)) in the source database, read once
 * per local day with the baselines. Bounded: at most `maxMerchants` rows; a category longer than 64 characters is
 * cut (source data is untrusted). A directory without a category column puts every merchant in "general".
 */
import type pg from 'pg';
import { merchantDirectory, type Mapping } from '../lib/mapping.ts';

export type MerchantDirectory = () => Promise<ReadonlyMap<string, string>>;

const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;
const qualified = (t: string) => t.split('.').map(ident).join('.');

export function sourceDirectory(pool: Pick<pg.Pool, 'query'>, mapping: Mapping, maxMerchants = 5_000_000): MerchantDirectory {
  const d = merchantDirectory(mapping);
  const category = d.category ? `coalesce(${ident(d.category)}::text, 'general')` : `'general'`;
  const sql = `SELECT ${ident(d.id)}::text AS id, left(${category}, 64) AS category FROM ${qualified(d.table)} LIMIT $1`;
  return async () => {
    const r = await pool.query<{ id: string; category: string }>(sql, [maxMerchants]);
    return new Map(r.rows.map((x) => [x.id, x.category]));
  };
}
