/**
 * `generate merchants`: the reference merchants 1..n, idempotent (only missing ids are written), by COPY into a
 * temporary table and one INSERT … ON CONFLICT DO NOTHING, so concurrent runs cannot fail on each other.
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { merchantName, merchantProfile } from './distribution.ts';

/** Ensures merchants 1..n exist; returns how many were added. */
export async function ensureMerchants(pgUrl: string, n: number): Promise<number> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`merchant count must be a positive integer, got ${n}`);
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    await assertReferenceSchema(client);
    const { rows } = await client.query<{ c: string }>('SELECT count(*) AS c FROM merchants WHERE merchant_id BETWEEN 1 AND $1', [n]);
    if (Number(rows[0].c) === n) return 0;
    await client.query('BEGIN');
    await client.query('CREATE TEMP TABLE riskmon_new_merchants (merchant_id bigint, name text, category text) ON COMMIT DROP');
    const lines = function* () {
      let buf = '';
      for (let id = 1; id <= n; id++) {
        const p = merchantProfile(id);
        buf += `${id}\t${merchantName(p)}\t${p.category}\n`;
        if (buf.length > 65_536) { yield buf; buf = ''; }
      }
      if (buf) yield buf;
    };
    await pipeline(Readable.from(lines()), client.query(copyFrom('COPY riskmon_new_merchants FROM STDIN')));
    const res = await client.query(`INSERT INTO merchants (merchant_id, name, category)
      SELECT merchant_id, name, category FROM riskmon_new_merchants ON CONFLICT (merchant_id) DO NOTHING`);
    await client.query('COMMIT');
    return res.rowCount ?? 0;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await client.end();
  }
}

export class SchemaMissingError extends Error {
  constructor(table: string) {
    super(`table "${table}" does not exist in the source database: run \`riskmon migrate --source-only\` first`);
    this.name = 'SchemaMissingError';
  }
}

export async function assertReferenceSchema(db: Pick<pg.Client, 'query'>, withPayouts = false): Promise<void> {
  for (const t of ['merchants', 'payments', 'payment_cancels', ...(withPayouts ? ['payouts'] : [])]) {
    const { rows } = await db.query<{ ok: string | null }>('SELECT to_regclass($1) AS ok', [t]);
    if (!rows[0].ok) throw new SchemaMissingError(t);
  }
}
