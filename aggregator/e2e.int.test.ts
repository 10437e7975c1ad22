/** End to end: plain SQL on the source → `riskmon cdc` → Kafka → `riskmon aggregate` → Redis equals the GROUP BY. */
import { afterEach, describe, expect, it } from 'vitest';
import { DAY, MINUTE, dayStart } from '../lib/time.ts';
import { harness, type Harness } from './harness.int.ts';
import { waitFor } from '../test/harness/index.ts';

let h: Harness | null = null;
afterEach(async () => { await h?.close(); h = null; });

describe('source → cdc → aggregator', () => {
  it('buckets equal the SQL GROUP BY after inserts, late rows, partial cancels, updates and deletes', async () => {
    h = await harness({ partitions: 4, createTopic: false });
    const { logs } = await h.startPipeline();
    const { db } = h;
    const midnight = dayStart(Date.now(), h.tz);
    // a burst of payments on both sides of today's Seoul midnight (late rows: committed now)
    await db.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at)
      SELECT g, 1 + g % 37, 1000 + g * 13, to_timestamp($1::double precision / 1000) + (g % 240 - 120) * interval '1 minute'
        FROM generate_series(1, 3000) g`, [midnight]);
    for (let i = 1; i <= 50; i++) {
      await db.query('INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ($1, $2, $3, now() - $4 * interval \'1 second\')',
        [10_000 + i, 1 + (i % 9), 5000 + i, i * 3]);
    }
    await db.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at)
      SELECT payment_id, payment_id, merchant_id, amount / 3 + 1, approved_at + interval '5 minutes' FROM payments WHERE payment_id % 11 = 0`);
    await db.query(`UPDATE payments SET amount = amount + 7 WHERE payment_id % 13 = 0`);
    await db.query(`UPDATE payments SET approved_at = approved_at - interval '1 day' WHERE payment_id % 17 = 0`);
    await db.query(`UPDATE payments SET merchant_id = 150 WHERE payment_id % 19 = 0`);
    await db.query(`UPDATE payment_cancels SET amount = 1 WHERE cancel_id % 3 = 0`);
    await db.query(`DELETE FROM payment_cancels WHERE cancel_id % 4 = 0`);
    await db.query(`DELETE FROM payments p WHERE payment_id % 23 = 0 AND NOT EXISTS (SELECT 1 FROM payment_cancels c WHERE c.payment_id = p.payment_id)`);
    let last: string[] = [];
    await waitFor(async () => (last = await h!.diff(['1m', '1h', '1d'], midnight - 2 * DAY, Date.now() + MINUTE)).length === 0,
      { timeoutMs: 90_000, intervalMs: 1000, message: 'buckets equal to the SQL truth' }).catch((err) => {
      throw new Error(`${err.message}: ${last.slice(0, 5).join('; ')}\n${logs.slice(-20).join('')}`);
    });
    expect(last).toEqual([]);
    expect(await h.reader.watermark()).toBeGreaterThan(Date.now() - 60_000);
  });
});
