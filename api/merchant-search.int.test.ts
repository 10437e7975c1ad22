/**
 * Merchant search is served by a trigram index, not a scan of the source's directory: on a reference directory of
 * 200,000 merchants (migrated by `riskmon migrate`, which creates pg_trgm and the index), the plan of a search by
 * part of a name, by a short prefix and by id uses the index (EXPLAIN), and the results equal the directory
 * filtered in JavaScript. A directory of one's own without the index is reported as such (and the statement the API
 * names creates an index the search then uses).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MerchantDirectory } from './merchant-directory.ts';
import { referenceMapping } from '../lib/mapping.ts';
import { testApi, VIEWER, type TestApi } from './testing.ts';

const N = 200_000;
const FIRST = ['Hangang', 'Busan', 'Jeju', 'Seoul', 'Incheon', 'Daegu', 'Gwangju', 'Suwon', 'Ulsan', 'Mapo', 'Gangnam', 'Itaewon'];
const SECOND = ['Coffee', 'Shoes', 'Books', 'Bakery', 'Motors', 'Pharmacy', 'Florist', 'Noodles', 'Optics', 'Games', 'Travel', 'Tailor'];
const nameOf = (i: number) => `${FIRST[i % 12]} ${SECOND[Math.floor(i / 12) % 12]} ${i}`;
const auth = { authorization: `Bearer ${VIEWER}` };

/** Every index a plan (EXPLAIN FORMAT JSON) scans, and whether it reads the table sequentially. */
function scans(plan: unknown): { indexes: string[]; seq: boolean } {
  const indexes: string[] = [];
  let seq = false;
  const walk = (n: Record<string, unknown>) => {
    if (typeof n['Index Name'] === 'string') indexes.push(n['Index Name']);
    if (n['Node Type'] === 'Seq Scan') seq = true;
    for (const c of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(c);
  };
  walk((plan as { Plan: Record<string, unknown> }[])[0].Plan);
  return { indexes, seq };
}

describe('merchant search served by a trigram index', () => {
  let t: TestApi;
  let admin: pg.Client; // setup statements outlast the API's statement_timeout
  beforeAll(async () => {
    t = await testApi();
    admin = new pg.Client({ connectionString: t.env.PG_URL });
    await admin.connect();
    await admin.query(`INSERT INTO merchants (merchant_id, name, category)
      SELECT g, ($1::text[])[1 + g % 12] || ' ' || ($2::text[])[1 + (g / 12) % 12] || ' ' || g, 'general' FROM generate_series(1, $3::int) g`,
    [FIRST, SECOND, N]);
    // (nameOf in SQL; the truth below is nameOf in JavaScript)
    await admin.query(`INSERT INTO merchants (merchant_id, name) VALUES (${N + 1}, 'Acme_Books 100%'), (${N + 2}, 'Zeta Foods')`);
    await admin.query('ANALYZE merchants');
  }, 300_000);
  afterAll(async () => { await admin?.end(); await t?.close(); });

  const search = async (q: string, limit = 100) => {
    const r = await t.app.inject({ method: 'GET', url: `/api/merchants?q=${encodeURIComponent(q)}&limit=${limit}`, headers: auth });
    expect(r.statusCode).toBe(200);
    return r.json().items as { merchantId: string; name: string }[];
  };
  const all = () => [
    ...Array.from({ length: N }, (_, k) => ({ id: String(k + 1), name: nameOf(k + 1) })),
    { id: String(N + 1), name: 'Acme_Books 100%' }, { id: String(N + 2), name: 'Zeta Foods' },
  ];

  it('the reference directory has the index `riskmon migrate` creates, and every kind of search uses it', async () => {
    const dir = t.deps.merchants;
    expect(await dir.searchIndexed()).toBe(true);
    for (const q of [nameOf(123_456).slice(-12), 'Gangnam Optics 9', 'ze', 'a', '4242', 'books 10']) {
      const plan = scans(await dir.explainSearch(q, 20));
      expect(plan, `plan of "${q}"`).toMatchObject({ seq: false });
      expect(plan.indexes, `plan of "${q}"`).toContain('merchants_name_trgm');
    }
  });

  it('finds what the directory holds: contains (3+ characters), starts with (shorter), by id first; % and _ are literal', async () => {
    const truth = all();
    const expectSame = async (q: string, match: (name: string) => boolean) => {
      const want = truth.filter((m) => match(m.name.toLowerCase())).map((m) => m.id).sort();
      expect(want.length, `"${q}" must match 1 to 99 merchants for this check`).toBeGreaterThan(0);
      expect(want.length, `"${q}" must match 1 to 99 merchants for this check`).toBeLessThan(100);
      expect((await search(q)).map((m) => m.merchantId).sort(), `search "${q}"`).toEqual(want);
    };
    const some = nameOf(123_456).split(' ').slice(1).join(' ').slice(0, -1).toLowerCase(); // "<second> 12345"
    await expectSame(some, (n) => n.includes(some));
    const upper = nameOf(19_990).slice(0, -1).toUpperCase(); // "<FIRST> <SECOND> 1999"
    await expectSame(upper, (n) => n.includes(upper.toLowerCase()));
    await expectSame('ze', (n) => n.startsWith('ze'));
    await expectSame('_bo', (n) => n.includes('_bo'));
    await expectSame('00%', (n) => n.includes('00%'));
    // By id: that merchant first, then names containing the id.
    const byId = await search('4242');
    expect(byId[0]).toMatchObject({ merchantId: '4242', name: nameOf(4242) });
    expect(byId.slice(1).map((m) => m.merchantId).sort()).toEqual(truth.filter((m) => m.name.includes('4242') && m.id !== '4242').map((m) => m.id).sort());
  });

  it('a directory of its own without a trigram index is reported, and the statement the API names makes the search use one', async () => {
    await admin.query(`CREATE SCHEMA own; CREATE TABLE own.stores (code text PRIMARY KEY, display_name varchar(200) NOT NULL);
      INSERT INTO own.stores SELECT 'S-' || g, 'Store ' || md5(g::text) FROM generate_series(1, 50000) g; ANALYZE own.stores`);
    const mapping = { ...referenceMapping, merchants: { table: 'own.stores', id: 'code', name: 'display_name' } };
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as ConstructorParameters<typeof MerchantDirectory>[2];
    const before = new MerchantDirectory(t.sourcePg, mapping, log);
    expect(await before.searchIndexed()).toBe(false);
    await before.search('abc', 10);
    await before.search('abd', 10);
    expect(warnings).toEqual([expect.stringMatching(/merchant search by name scans own\.stores: it has no trigram index on display_name/)]);
    expect(before.indexStatement).toBe('CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE INDEX CONCURRENTLY ON "own"."stores" USING gin ("display_name" gin_trgm_ops);');
    expect(scans(await before.explainSearch('abcdef', 10)).seq).toBe(true);
    for (const stmt of before.indexStatement.split(';').map((x) => x.trim()).filter(Boolean)) await admin.query(stmt);
    await admin.query('ANALYZE own.stores');
    const after = new MerchantDirectory(t.sourcePg, mapping, log);
    expect(await after.searchIndexed()).toBe(true);
    const plan = scans(await after.explainSearch('abcdef', 10));
    expect(plan.seq).toBe(false);
    expect(plan.indexes.some((i) => /display_name/.test(i))).toBe(true);
    expect(warnings).toHaveLength(1);
  });
});
