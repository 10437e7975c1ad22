/**
 * The merchant directory named in RISKMON_MAPPING ("merchants": table, id, name, category?) with text ids, against
 * a real PostgreSQL: one merchant, the search by id and by name, and names in the top list all come from it; ids
 * are compared as the column's own type (never cast to bigint), and the reference directory still answers a text
 * id with a 404, not an error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, VIEWER, type TestApi } from './testing.ts';

const mapping = {
  approvals: { table: 'pay.payments', id: 'payment_id', merchant: 'store_code', amount: 'amount', time: 'approved_at' },
  cancels: { table: 'pay.payments', id: 'payment_id', merchant: 'store_code', amount: 'canceled_amount', time: 'canceled_at' },
  merchants: { table: 'pay.stores', id: 'store_code', name: 'display_name', category: 'segment' },
};
const auth = { authorization: `Bearer ${VIEWER}` };

describe('merchant directory from the mapping, text ids', () => {
  let t: TestApi;
  let ref: TestApi;
  beforeAll(async () => {
    t = await testApi({ RISKMON_MAPPING: JSON.stringify(mapping) });
    await t.sourcePg.query(`CREATE SCHEMA pay;
      CREATE TABLE pay.stores (store_code varchar(32) PRIMARY KEY, display_name text NOT NULL, segment text);
      INSERT INTO pay.stores VALUES ('S-0001', 'Hangang Coffee', 'food'), ('S-0003', 'Busan Shoes', NULL), ('shop.kr:7', 'Dot Colon', 'retail');`);
    await t.riskPg.query(`INSERT INTO evaluations (rule, merchant_id, minute, status, reason, evidence)
      VALUES ('cancel_rate_spike', 'S-0003', now(), 'clear', NULL, '{"rate": 0.1, "baselineRate": 0.05}')`);
    ref = await testApi();
  });
  afterAll(async () => { await t?.close(); await ref?.close(); });
  const get = (api: TestApi, url: string) => api.app.inject({ method: 'GET', url, headers: auth });

  it('reads one merchant, searches by id and by name, and names the top list from the mapped directory', async () => {
    expect((await get(t, '/api/merchants/S-0003')).json()).toEqual({ merchantId: 'S-0003', name: 'Busan Shoes', category: 'general' });
    expect((await get(t, '/api/merchants/shop.kr:7')).json()).toMatchObject({ name: 'Dot Colon', category: 'retail' });
    const missing = await get(t, '/api/merchants/S-0009');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toMatch(/not in the merchant directory pay\.stores/);
    expect((await get(t, '/api/merchants?q=S-0001')).json().items).toEqual([{ merchantId: 'S-0001', name: 'Hangang Coffee', category: 'food' }]);
    expect((await get(t, '/api/merchants?q=shoes')).json().items.map((m: any) => m.merchantId)).toEqual(['S-0003']);
    const top = (await get(t, '/api/top?by=cancel_rate')).json();
    expect(top.items.map((i: any) => [i.merchantId, i.name])).toEqual([['S-0003', 'Busan Shoes']]);
  });

  it('answers a text id on the reference (bigint) directory with a 404', async () => {
    const r = await get(ref, '/api/merchants/S-0003');
    expect(r.statusCode).toBe(404);
    expect(r.json().message).toMatch(/not in the merchant directory public\.merchants/);
    expect((await get(ref, '/api/merchants?q=S-0003')).json().items).toEqual([]);
  });
});
