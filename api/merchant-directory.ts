/**
 * The merchant directory the API reads names and categories from: RISKMON_MAPPING's "merchants" (table, id, name,
 * category?) or the reference public.merchants(merchant_id, name, category). Ids are compared in the id column's
 * own type (learned once from the catalog), so an index on it is used and text ids such as "S-0003" work; an id
 * that cannot be of that type (text against an integer column) matches nothing instead of failing.
 *
 * Search by name is served by a trigram index on the name column (pg_trgm; `riskmon migrate` creates it on the
 * reference directory, sql/source/007_merchant_search.sql): a query of 3 characters or more matches names that
 * contain it, a shorter one names that start with it (both patterns a trigram index answers). Without such an index
 * the search still answers but scans the directory: the API logs once, with the statement that creates the index.
 */
import type pg from 'pg';
import type { Logger } from '../lib/logger.ts';
import { isMerchantId, merchantDirectory, type Mapping, type MerchantDirectory as Dir } from '../lib/mapping.ts';

export interface MerchantInfo { id: string; name: string; category: string }

const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;
const qualified = (t: string) => t.split('.').map(ident).join('.');
const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);
const isInteger = (s: string) => /^-?\d{1,18}$/.test(s);

export class MerchantDirectory {
  readonly #dir: Dir;
  /** the id column's type (format_type), once known */
  #type: Promise<string> | null = null;
  /** whether a trigram index serves the name search, once known */
  #indexed: Promise<boolean> | null = null;

  constructor(private readonly db: pg.Pool | pg.Client, mapping: Mapping, private readonly log?: Logger) {
    this.#dir = merchantDirectory(mapping);
  }

  /** The statement that creates the index the name search needs (docs/security.md). */
  get indexStatement(): string {
    return `CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE INDEX CONCURRENTLY ON ${qualified(this.#dir.table)} USING gin (${ident(this.#dir.name)} gin_trgm_ops);`;
  }

  /** Whether a trigram index (GIN or GiST, gin_trgm_ops/gist_trgm_ops) on the name column serves the search. */
  searchIndexed(): Promise<boolean> {
    this.#indexed ??= this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[])
         JOIN pg_opclass o ON o.oid = ANY(i.indclass::oid[])
        WHERE i.indrelid = to_regclass($1) AND a.attname = $2 AND o.opcname IN ('gin_trgm_ops', 'gist_trgm_ops') AND i.indisvalid`,
      [qualified(this.#dir.table), this.#dir.name]).then((r) => {
      const ok = r.rows[0].n > 0;
      if (!ok) {
        this.log?.warn({ directory: this.#dir.table, create: this.indexStatement },
          `merchant search by name scans ${this.#dir.table}: it has no trigram index on ${this.#dir.name}; create one (docs/security.md "Merchant search") and restart the API`);
      }
      return ok;
    });
    this.#indexed.catch(() => { this.#indexed = null; }); // look again next time
    return this.#indexed;
  }

  get table(): string { return this.#dir.table; }

  /** SQL pieces over the directory: its columns and the cast that makes an id parameter the id column's type. */
  async #sql(): Promise<{ from: string; id: string; name: string; category: string; cast: string; integer: boolean }> {
    this.#type ??= this.db.query<{ t: string | null }>(
      `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`,
      [qualified(this.#dir.table), this.#dir.id]).then((r) => {
      if (!r.rows[0]?.t) throw new Error(`merchant directory ${this.#dir.table}.${this.#dir.id} does not exist: create it or set RISKMON_MAPPING "merchants"`);
      return r.rows[0].t;
    });
    this.#type.catch(() => { this.#type = null; }); // look again next time
    const type = await this.#type;
    const integer = INTEGER_TYPES.has(type) || /^numeric\(\d+(,0)?\)$/.test(type);
    const d = this.#dir;
    const text = type === 'text' || type.startsWith('character varying');
    return {
      from: qualified(d.table), name: ident(d.name), category: d.category ? `coalesce(${ident(d.category)}::text, 'general')` : `'general'`,
      // text and integer columns compare in their own type (their index serves); any other (uuid…) as text
      id: text || integer ? ident(d.id) : `${ident(d.id)}::text`, cast: integer ? `::${type}` : '::text', integer,
    };
  }

  /** Whether `id` can be a value of the id column (an integer column holds no "S-0003"). */
  #fits(id: string, integer: boolean): boolean {
    return isMerchantId(id) && (!integer || isInteger(id));
  }

  async get(id: string): Promise<MerchantInfo | null> {
    const s = await this.#sql();
    if (!this.#fits(id, s.integer)) return null;
    const { rows } = await this.db.query<{ name: string; category: string }>(
      `SELECT ${s.name}::text AS name, ${s.category} AS category FROM ${s.from} WHERE ${s.id} = $1${s.cast} LIMIT 1`, [id]);
    return rows[0] ? { id, name: rows[0].name, category: rows[0].category } : null;
  }

  /** Names of the given ids (those in the directory). */
  async names(ids: string[]): Promise<Map<string, string>> {
    const s = await this.#sql();
    const ok = [...new Set(ids)].filter((id) => this.#fits(id, s.integer));
    if (!ok.length) return new Map();
    const { rows } = await this.db.query<{ id: string; name: string }>(
      `SELECT ${s.id}::text AS id, ${s.name}::text AS name FROM ${s.from} WHERE ${s.id} = ANY($1${s.cast}[])`, [ok]);
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  /** The merchant whose id is `q` first, then those whose name contains it (starts with it, under 3 characters). */
  async search(q: string, limit: number): Promise<MerchantInfo[]> {
    await this.searchIndexed().catch(() => false);
    const { text, values } = await this.#searchQuery(q, limit);
    return (await this.db.query<MerchantInfo>(text, values)).rows;
  }

  /** The search's plan (EXPLAIN, JSON): which index serves it. */
  async explainSearch(q: string, limit: number): Promise<unknown> {
    const { text, values } = await this.#searchQuery(q, limit);
    return (await this.db.query(`EXPLAIN (FORMAT JSON) ${text}`, values)).rows[0]['QUERY PLAN'];
  }

  async #searchQuery(q: string, limit: number): Promise<{ text: string; values: unknown[] }> {
    const s = await this.#sql();
    // Trigrams need 3 characters to narrow "contains"; a shorter query matches names starting with it (the index
    // pads a name's start, so that prefix is indexed too).
    const literal = q.replace(/[\\%_]/g, (c) => `\\${c}`);
    const pattern = [...q].length >= 3 ? `%${literal}%` : `${literal}%`;
    return {
      text: `SELECT ${s.id}::text AS id, ${s.name}::text AS name, ${s.category} AS category FROM ${s.from}
        WHERE ($1::text IS NOT NULL AND ${s.id} = $1${s.cast}) OR ${s.name}::text ILIKE $2
        ORDER BY (${s.id} = $1${s.cast}) IS TRUE DESC, 2 LIMIT $3`,
      values: [this.#fits(q, s.integer) ? q : null, pattern, limit],
    };
  }
}
