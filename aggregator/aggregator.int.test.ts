import { afterEach, describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE, dayStart } from '../lib/time.ts';
import { diffTotals, sqlTruth, truthTotals } from '../test/harness/truth.ts';
import { harness, type Harness } from './harness.int.ts';
import { testKafka } from './testing.ts';
import { services } from '../test/harness/services.ts';

let h: Harness | null = null;
afterEach(async () => { await h?.close(); h = null; });

/** Deterministic pseudo-random numbers, so a failure reproduces. */
function rng(seed: number) {
  return () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
}

describe('aggregator', () => {
  it('every bucket equals the SQL GROUP BY: partial cancels, updates, deletes, late rows, a Seoul midnight, hot merchants', async () => {
    h = await harness({ partitions: 6, hotShards: 4, hot: ['1', '2'] });
    const { db, cdc } = h;
    const rand = rng(7);
    // The last Seoul midnight at least 3 h ago (3–27 h): rows on both sides of it land in two local days, none in the
    // future (a cancel is at most 130 minutes after midnight), and all inside the minute tier whatever the hour the test
    // runs (a midnight 24–48 h ago left it between 13:00 and 15:00 UTC, and `totals` then read whole hours).
    const midnight = dayStart(Date.now() - 3 * HOUR, 'Asia/Seoul');
    const times = (i: number) => new Date(midnight - 90 * MINUTE + Math.floor(rand() * 180 * MINUTE) + (i % 2) * 1234);
    let cancelId = 1;
    for (let i = 1; i <= 400; i++) {
      const merchant = i % 3 === 0 ? 1 + (i % 2) : 1 + Math.floor(rand() * 40); // merchants 1 and 2 hot
      const amount = 1000 + Math.floor(rand() * 900_000);
      const at = times(i);
      await cdc.insertPayment(db, { id: i, merchant, amount, at });
      if (rand() < 0.3) {
        await cdc.insertCancel(db, { id: cancelId++, payment: i, merchant, amount: Math.max(1, Math.floor(amount / 3)), at: new Date(at.getTime() + rand() * 40 * MINUTE) });
      }
    }
    // a few rows with very large amounts (beyond 2^32; totals stay exact)
    await cdc.insertPayment(db, { id: 10_001, merchant: 3, amount: 987_654_321_987n, at: times(1) });
    await cdc.insertPayment(db, { id: 10_002, merchant: 3, amount: 912_345_678_901n, at: times(1) });
    // updates: amount, time (another minute / another day), merchant (the old row's partition stays foreign)
    for (let i = 5; i <= 400; i += 17) await cdc.update(db, 'payments', i, { amount: 4242 + i });
    for (let i = 7; i <= 400; i += 23) await cdc.update(db, 'payments', i, { approved_at: new Date(midnight + (i % 5 - 2) * 37 * MINUTE) });
    for (let i = 11; i <= 400; i += 29) await cdc.update(db, 'payments', i, { merchant_id: 100 + (i % 7) });
    await cdc.update(db, 'payment_cancels', 2, { amount: 77, canceled_at: new Date(midnight + 3 * MINUTE) });
    // deletes: cancels, then payments without cancels
    for (let c = 3; c < cancelId; c += 9) await cdc.delete(db, 'payment_cancels', c);
    const { rows } = await db.query('SELECT payment_id FROM payments p WHERE NOT EXISTS (SELECT 1 FROM payment_cancels c WHERE c.payment_id = p.payment_id) ORDER BY 1 LIMIT 20');
    for (const r of rows.filter((_, i) => i % 2 === 0)) await cdc.delete(db, 'payments', r.payment_id);
    // fresh rows (within the all-merchants minute index) and heartbeats
    const recent = Math.floor(Date.now() / MINUTE) * MINUTE - 20 * MINUTE;
    for (let i = 0; i < 60; i++) await cdc.insertPayment(db, { id: 20_000 + i, merchant: 1 + (i % 9), amount: 5000 + i, at: new Date(recent + (i % 15) * MINUTE + 500) });
    cdc.heartbeats();
    // bad input goes to the dead-letter topic and the pipeline continues
    cdc.raw(0, '{"v":1,"lsn":"nope"}');
    cdc.change('public.payments', 'insert', { payment_id: '99999', merchant_id: '5', amount: null, approved_at: new Date().toISOString() }, null);
    await h.publish();

    h.startInProcess();
    await h.caughtUp();
    expect(await h.diff()).toEqual([]);

    // rules' read: all merchants over 60 minutes (from the all-merchants minute index) and totals()
    const truthMin = await sqlTruth(h.pgUrl, '1m', h.tz);
    const from = recent - 30 * MINUTE, to = recent + 30 * MINUTE;
    expect(diffTotals(truthTotals(truthMin, from, to), await h.reader.totalsByMerchant(from, to, '1m'))).toEqual([]);
    const d0 = dayStart(midnight - HOUR, h.tz);
    expect(diffTotals(truthTotals(truthMin, d0, d0 + 2 * DAY), await h.reader.totalsByMerchant(d0, d0 + 2 * DAY, '1d'))).toEqual([]);
    expect(diffTotals(truthTotals(truthMin, midnight - 2 * HOUR, midnight + 2 * HOUR), await h.reader.totalsByMerchant(midnight - 2 * HOUR, midnight + 2 * HOUR, '1h'))).toEqual([]);
    const ids = ['1', '2', '3', '7', '101'];
    const want = truthTotals(truthMin, midnight - 37 * MINUTE, midnight + 41 * MINUTE);
    const got = await h.reader.totals(ids, midnight - 37 * MINUTE, midnight + 41 * MINUTE);
    expect(diffTotals(new Map(ids.filter((m) => want.has(m)).map((m) => [m, want.get(m)!])), new Map([...got].filter(([, t]) => t.approvals || t.cancels)))).toEqual([]);
    expect(await h.reader.watermark()).toBeGreaterThan(Date.now() - 5 * 60_000);

    // both bad messages reached the dead-letter topic (at least once: a retried send may repeat one)
    const dead = await readTopic(`${h.topic}_dlq`);
    expect(new Set(dead.map((m) => m.value))).toEqual(new Set(['{"v":1,"lsn":"nope"}', expect.stringContaining('"payment_id":"99999"')]));

    // Duplicate delivery: the same events published again (new offsets) change nothing.
    const again = (await h.redis.keys(`${h.prefix}:*`)).length;
    cdc.queue.push(...(await readTopic(h.topic)));
    await h.publish();
    await h.caughtUp();
    expect(await h.diff()).toEqual([]);
    expect((await h.redis.keys(`${h.prefix}:*`)).length).toBe(again);
  });
});

/** Every message of a topic (the change topic re-read to publish it twice, like a cdc repeating a batch). */
async function readTopic(topic: string) {
  const { TopicReader } = await import('../lib/kafka/index.ts');
  const reader = await TopicReader.open(testKafka(services().KAFKA_BROKERS), topic);
  const out: { key: string; partition: number; value: string }[] = [];
  try {
    for (const [p, { low, high }] of await reader.watermarks()) {
      for (let o = low; o < high;) {
        const msgs = (await reader.fetch(p, o)).filter((m) => m.offset < high);
        for (const m of msgs) out.push({ key: m.key?.toString() ?? '', partition: p, value: m.value!.toString() });
        o = msgs[msgs.length - 1].offset + 1n;
      }
    }
  } finally {
    await reader.close();
  }
  return out;
}
