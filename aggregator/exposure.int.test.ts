/**
 * Exposure (lib/exposure.ts) read from the store equals its SQL definition over payments, payment_cancels and
 * payouts, through the real pipeline (source → `riskmon cdc` → Kafka → `riskmon aggregate` → Redis): merchants
 * with several payouts (one scheduled after now), cancels of payments settled long ago, late rows, UPDATEs and
 * DELETEs of payments, cancels and payouts, a hot merchant spread over shards, at several instants.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { projectedReceivable } from '../lib/exposure.ts';
import { DAY, HOUR, MINUTE, dayStart, minuteStart } from '../lib/time.ts';
import { backfill, parseScenario } from '../scripts/generate/index.ts';
import { waitFor } from '../test/harness/index.ts';
import { readBackfill, readExposures, type Exposure } from './store/index.ts';
import { harness, type Harness } from './harness.int.ts';

let h: Harness | null = null;
afterEach(async () => { await h?.close(); h = null; });

const MERCHANTS = [1, 2, 3, 4, 5, 6];

/** The SQL definition (docs/contracts.md "Exposure") at instant `now`. */
async function sqlExposure(h: Harness, now: number, merchants: number[] = MERCHANTS): Promise<Map<string, Exposure>> {
  const end = new Date(minuteStart(now) + MINUTE).toISOString(), at = new Date(now).toISOString();
  const { rows } = await h.db.query(`
    WITH s AS (
      SELECT m AS merchant_id,
             (SELECT max(covers_to) FROM payouts p WHERE p.merchant_id = m AND p.paid_at <= $2) AS st,
             (SELECT min(paid_at) FROM payouts p WHERE p.merchant_id = m AND p.paid_at > $2) AS nx
        FROM unnest($1::bigint[]) m)
    SELECT merchant_id::text AS m, st, nx,
           (SELECT coalesce(sum(amount), 0) FROM payments x WHERE x.merchant_id = s.merchant_id AND (st IS NULL OR approved_at >= st) AND approved_at < $3)::text AS a,
           (SELECT coalesce(sum(amount), 0) FROM payment_cancels x WHERE x.merchant_id = s.merchant_id AND (st IS NULL OR canceled_at >= st) AND canceled_at < $3)::text AS c,
           (SELECT coalesce(sum(amount), 0) FROM payments x WHERE x.merchant_id = s.merchant_id AND approved_at >= $3::timestamptz - interval '1 hour' AND approved_at < $3)::text AS ah,
           (SELECT coalesce(sum(amount), 0) FROM payment_cancels x WHERE x.merchant_id = s.merchant_id AND canceled_at >= $3::timestamptz - interval '1 hour' AND canceled_at < $3)::text AS ch
      FROM s`, [merchants, at, end]);
  const out = new Map<string, Exposure>();
  for (const r of rows) {
    const net = BigInt(r.a) - BigInt(r.c);
    const nx = r.nx ? (r.nx as Date).getTime() : null;
    out.set(r.m, {
      merchantId: r.m, settledThrough: r.st ? (r.st as Date).toISOString() : null, approvedSinceSettled: r.a, canceledSinceSettled: r.c,
      netSinceSettled: net.toString(), receivable: (net < 0n ? -net : 0n).toString(),
      projectedReceivable: projectedReceivable(net, BigInt(r.ah), BigInt(r.ch), now, nx).toString(),
      nextPayoutAt: nx === null ? null : new Date(nx).toISOString(), holds: [],
    });
  }
  return out;
}

describe('exposure through the pipeline', () => {
  it('equals the SQL definition with several payouts, a future one, old payments canceled, late rows, updates and deletes', async () => {
    h = await harness({ partitions: 4, hotShards: 4, hot: [], createTopic: false });
    const { logs } = await h.startPipeline();
    const { db } = h;
    const now = Date.now();
    const d0 = dayStart(now, h.tz); // today's local midnight
    // payments over the last 5 days (late rows: every one committed now), cancels of some of them 1–4 days later,
    // so cancels of payments settled long ago land after the merchants' settled-through times
    await db.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at)
      SELECT g, 1 + g % 6, 10000 + (g * 7919) % 90000, to_timestamp($1::double precision / 1000) - (g % 7000) * interval '1 minute'
        FROM generate_series(1, 4000) g`, [now]);
    await db.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at)
      SELECT payment_id, payment_id, merchant_id, amount - payment_id % 3, least(approved_at + (1 + payment_id % 4) * interval '1 day', $1::timestamptz - interval '1 minute')
        FROM payments WHERE payment_id % 5 = 0 OR merchant_id = 3`, [new Date(now).toISOString()]);
    // merchant 3 owes at any hour of the day: a 10M payment of 4 days ago (settled long since) canceled a minute ago
    await db.query(`INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES (900001, 3, 10000000, $1)`, [new Date(now - 4 * DAY).toISOString()]);
    await db.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at) VALUES (900001, 900001, 3, 10000000, $1)`, [new Date(now - MINUTE).toISOString()]);
    // payouts (D+1-like, covers_to at local midnights): merchant 6 has none
    const ins = (id: number, m: number, covers: number, paid: number, amount = 1000) => db.query(
      'INSERT INTO payouts (payout_id, merchant_id, amount, covers_to, paid_at) VALUES ($1, $2, $3, $4, $5)', [id, m, amount, new Date(covers).toISOString(), new Date(paid).toISOString()]);
    let id = 0;
    for (const m of [1, 2, 3, 4, 5]) {
      for (let k = 3; k >= 1; k--) await ins(++id, m, d0 - k * DAY, d0 - (k - 1) * DAY + HOUR);
      await ins(++id, m, d0, now + 3 * HOUR); // scheduled: not counted yet
    }
    // merchant 5: its latest paid payout is not on a midnight (a whole hour), merchant 4: paid in the past minutes
    await ins(++id, 5, d0 - 2 * DAY + 5 * HOUR, d0 - DAY);
    await ins(++id, 4, minuteStart(now) - 2 * HOUR, now - 5 * MINUTE);
    // corrections
    await db.query(`UPDATE payments SET amount = amount + 7 WHERE payment_id % 13 = 0`);
    await db.query(`UPDATE payments SET approved_at = approved_at - interval '1 day' WHERE payment_id % 17 = 0`);
    await db.query(`UPDATE payment_cancels SET amount = 1 WHERE cancel_id % 3 = 0 AND merchant_id <> 3`);
    await db.query(`DELETE FROM payment_cancels WHERE cancel_id % 4 = 0 AND merchant_id <> 3`);
    await db.query(`UPDATE payment_cancels SET canceled_at = canceled_at - interval '2 days' WHERE cancel_id % 7 = 0`);
    await db.query(`UPDATE payouts SET paid_at = $1 WHERE merchant_id = 2 AND covers_to = $2`, [new Date(now + HOUR).toISOString(), new Date(d0 - DAY).toISOString()]);
    await db.query(`DELETE FROM payouts WHERE merchant_id = 3 AND covers_to = $1`, [new Date(d0 - DAY).toISOString()]);
    await db.query(`UPDATE payouts SET merchant_id = 6 WHERE merchant_id = 1 AND covers_to = $1`, [new Date(d0 - 3 * DAY).toISOString()]);

    const at = [now, now + 2 * HOUR, now + 4 * HOUR];
    let last = '';
    await waitFor(async () => {
      for (const t of at) {
        const want = await sqlExposure(h!, t);
        const got = await readExposures(h!.reader, MERCHANTS.map(String), t, { kind: 'payouts' });
        for (const m of MERCHANTS.map(String)) {
          if (JSON.stringify(got.get(m)) !== JSON.stringify(want.get(m))) { last = `at ${new Date(t).toISOString()} ${m}: got ${JSON.stringify(got.get(m))} want ${JSON.stringify(want.get(m))}`; return false; }
        }
      }
      return true;
    }, { timeoutMs: 90_000, intervalMs: 1000, message: 'exposure equal to SQL' }).catch((err) => { throw new Error(`${err.message}: ${last}\n${logs.slice(-10).join('')}`); });
    const e = await readExposures(h.reader, MERCHANTS.map(String), now, { kind: 'payouts' });
    // the scenario means something: merchant 3 (all its payments canceled) owes money; merchant 6 only the payout an UPDATE moved to it
    expect(BigInt(e.get('3')!.receivable), JSON.stringify(e.get('3'))).toBeGreaterThan(0n);
    expect(e.get('6')!.settledThrough).toBe(new Date(d0 - 3 * DAY).toISOString()); // merchant 1's oldest payout, moved to it
    // its payout covering yesterday is paid at 01:00 today: before then, the one covering the day before is the latest
    expect(e.get('1')!.settledThrough).toBe(new Date(now >= d0 + HOUR ? d0 - DAY : d0 - 2 * DAY).toISOString());
    expect(e.get('2')!.nextPayoutAt).toBe(new Date(now + HOUR).toISOString());
  }, 180_000);
});

describe('exposure after a first start on a database with history', () => {
  it('takes in the generator\'s payouts (D+2, one scheduled) under the slot\'s snapshot and equals the SQL definition, then follows payout changes', async () => {
    h = await harness({ partitions: 4, hotShards: 4, hot: [], createTopic: false });
    const { db } = h;
    const now = Date.now();
    const ids = Array.from({ length: 200 }, (_, i) => i + 1);
    // 4 days of history with payouts D+2, merchant 5 busting out (no sales, 30 cancels of earlier payments per
    // transaction) for 8 hours: it owes at any hour of the Seoul day, the night's few transactions included
    const ctx = { now, merchants: 200, resolveAlias: () => 1 };
    const st = await backfill(h.pgUrl, { days: 4, end: now, seed: 5, merchants: 200, txPerDay: 20_000, tz: h.tz, scenarios: [parseScenario('bust_out:5:-8h:30', ctx)] });
    expect(st.payouts).toBeGreaterThan(200);
    const sched = await db.query('SELECT count(*)::int AS n FROM payouts WHERE paid_at > $1', [new Date(now).toISOString()]);
    expect(sched.rows[0].n).toBeGreaterThan(0); // yesterday's payouts are paid tomorrow
    const { logs } = await h.startPipeline({ RISKMON_BACKFILL_DAYS: '6' }, (cdcLogs) => waitFor(async () => (await readBackfill(h!.redis, h!.prefix))?.state === 'done' || null,
      { timeoutMs: 120_000, message: `the first start's backfill\n${cdcLogs.join('')}` }));
    const compare = async (at: number[]) => {
      let last = '';
      await waitFor(async () => {
        for (const t of at) {
          const want = await sqlExposure(h!, t, ids);
          const got = await readExposures(h!.reader, ids.map(String), t, { kind: 'payouts' });
          for (const m of ids.map(String)) {
            if (JSON.stringify(got.get(m)) !== JSON.stringify(want.get(m))) { last = `at ${new Date(t).toISOString()} ${m}: got ${JSON.stringify(got.get(m))} want ${JSON.stringify(want.get(m))}`; return false; }
          }
        }
        return true;
      }, { timeoutMs: 90_000, intervalMs: 1000, message: 'exposure equal to SQL' }).catch((err) => { throw new Error(`${err.message}: ${last}\n${logs.slice(-10).join('')}`); });
    };
    const d0 = dayStart(now, h.tz);
    await compare([now, d0 + DAY + MINUTE, d0 + 2 * DAY + MINUTE]);
    const e = (await readExposures(h.reader, ['5', '7'], now, { kind: 'payouts' }));
    expect(BigInt(e.get('5')!.receivable), JSON.stringify(e.get('5'))).toBeGreaterThan(0n);
    expect(e.get('7')!.settledThrough).toBe(new Date(d0 - DAY).toISOString()); // D+2: day d0-2 paid at d0
    expect(e.get('7')!.nextPayoutAt).toBe(new Date(d0 + DAY).toISOString());
    // payout changes after the first start arrive through the stream
    await db.query(`UPDATE payouts SET paid_at = $1 WHERE merchant_id = 7 AND covers_to = $2`, [new Date(d0 + DAY).toISOString(), new Date(d0 - DAY).toISOString()]);
    await db.query(`DELETE FROM payouts WHERE merchant_id = 8 AND covers_to = $1`, [new Date(d0 - DAY).toISOString()]);
    await db.query(`INSERT INTO payouts VALUES (1, 9, 1, $1, $2)`, [new Date(d0 - HOUR).toISOString(), new Date(now - MINUTE).toISOString()]);
    await compare([now]);
    const after = await readExposures(h.reader, ['7', '9'], now, { kind: 'payouts' });
    expect(after.get('7')!.settledThrough).toBe(new Date(d0 - 2 * DAY).toISOString());
    expect(after.get('9')!.settledThrough).toBe(new Date(d0 - HOUR).toISOString());
  }, 300_000);
});
