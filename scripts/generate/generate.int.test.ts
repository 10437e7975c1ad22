/**
 * The reference workload, checked from the database: skew, cancel rates, partial cancels, the night trough,
 * scenarios, determinism (backfill), and OLTP-style commits with late rows (live).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../lib/migrate.ts';
import { freshDatabase } from '../../test/harness/services.ts';
import { merchantProfile } from './distribution.ts';
import { backfill, live, pickMerchants, type BackfillStats } from './index.ts';

const MERCHANTS = 10_000;
const TX_PER_DAY = 300_000;
const SEED = 7;
const END = Date.parse('2026-11-20T15:00:00Z'); // local midnight in Seoul: the window is the local day 2026-11-20
const SURGE_FROM = END - 6 * 3_600_000;

async function q<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { return (await c.query<T>(sql, params)).rows; } finally { await c.end(); }
}

describe('backfill of one day (10,000 merchants, 300,000 payments)', () => {
  let url: string;
  let stats: BackfillStats;
  const picked = pickMerchants(SEED, MERCHANTS, TX_PER_DAY);

  beforeAll(async () => {
    url = await freshDatabase('gen');
    await migrate(url, 'source');
    stats = await backfill(url, {
      days: 1, end: END, seed: SEED, merchants: MERCHANTS, txPerDay: TX_PER_DAY, tz: 'Asia/Seoul',
      scenarios: [
        { name: 'cancel_surge', merchant: picked.hot, startMs: SURGE_FROM, factor: 6 },
        { name: 'volume_drop', merchant: picked.bigVolume, startMs: SURGE_FROM, factor: 0.3 },
        { name: 'full_stop', merchant: picked.bigVolumeStop, startMs: SURGE_FROM, factor: 0 },
      ],
    });
  });

  it('writes what it reports, inside the window', async () => {
    const [r] = await q<{ p: string; c: string; minp: Date; maxp: Date; minc: Date; maxc: Date; m: string }>(url, `SELECT
      (SELECT count(*) FROM payments) p, (SELECT count(*) FROM payment_cancels) c,
      (SELECT min(approved_at) FROM payments) minp, (SELECT max(approved_at) FROM payments) maxp,
      (SELECT min(canceled_at) FROM payment_cancels) minc, (SELECT max(canceled_at) FROM payment_cancels) maxc,
      (SELECT count(*) FROM merchants) m`);
    expect(Number(r.p)).toBe(stats.payments);
    expect(Number(r.c)).toBe(stats.cancels);
    expect(Number(r.m)).toBe(MERCHANTS);
    expect(Math.abs(stats.payments - TX_PER_DAY) / TX_PER_DAY).toBeLessThan(0.02);
    for (const t of [r.minp, r.maxp, r.minc, r.maxc]) {
      expect(t.getTime()).toBeGreaterThanOrEqual(END - 86_400_000);
      expect(t.getTime()).toBeLessThan(END);
    }
  });

  it('the top 1% of merchants carry at least half of the transactions', async () => {
    const [r] = await q<{ share: number }>(url, `SELECT sum(n) FILTER (WHERE rk <= $1)::float8 / sum(n) AS share FROM (
      SELECT count(*) n, row_number() OVER (ORDER BY count(*) DESC) rk FROM payments GROUP BY merchant_id) x`, [MERCHANTS / 100]);
    expect(r.share).toBeGreaterThanOrEqual(0.5);
  });

  it('each busy merchant cancels at its own rate in 1–5%', async () => {
    const rows = await q<{ m: string; a: string; c: string }>(url, `SELECT p.merchant_id m, p.a, coalesce(c.c, 0) c
      FROM (SELECT merchant_id, count(*) a FROM payments GROUP BY 1 HAVING count(*) >= 1000) p
      LEFT JOIN (SELECT merchant_id, count(*) c FROM payment_cancels GROUP BY 1) c USING (merchant_id)`);
    const checked = rows.filter((r) => Number(r.m) !== picked.hot);
    expect(checked.length).toBeGreaterThanOrEqual(30);
    for (const r of checked) {
      const a = Number(r.a), c = Number(r.c);
      const p = merchantProfile(Number(r.m)).cancelRate;
      // Poisson noise (4 sigma) plus a few cancels owed at the window's start, when books are still empty.
      expect(Math.abs(c - p * a), `merchant ${r.m}: ${c} cancels of ${a}, rate ${p}`).toBeLessThanOrEqual(4 * Math.sqrt(p * a) + 5);
      expect(c / a).toBeGreaterThan(0.005);
      expect(c / a).toBeLessThan(0.06);
    }
  });

  it('cancels refer to an earlier payment of the same merchant; some are partial, none exceeds the payment', async () => {
    const [r] = await q<{ n: string; bad_merchant: string; bad_time: string; too_big: string; partial: string; dup: string; min_delay_s: number; max_delay_s: number }>(url, `SELECT
      count(*) n,
      count(*) FILTER (WHERE c.merchant_id <> p.merchant_id) bad_merchant,
      count(*) FILTER (WHERE c.canceled_at <= p.approved_at) bad_time,
      count(*) FILTER (WHERE c.amount > p.amount) too_big,
      count(*) FILTER (WHERE c.amount < p.amount) partial,
      count(*) - count(DISTINCT c.payment_id) dup,
      extract(epoch FROM min(c.canceled_at - p.approved_at))::float8 min_delay_s,
      extract(epoch FROM max(c.canceled_at - p.approved_at))::float8 max_delay_s
      FROM payment_cancels c JOIN payments p USING (payment_id)`);
    expect(Number(r.n)).toBe(stats.cancels);
    expect(Number(r.bad_merchant)).toBe(0);
    expect(Number(r.bad_time)).toBe(0);
    expect(Number(r.too_big)).toBe(0);
    expect(Number(r.dup)).toBe(0);
    expect(Number(r.partial) / Number(r.n)).toBeGreaterThan(0.2);
    expect(r.max_delay_s).toBeGreaterThan(3600); // minutes to hours (a day at most in a one-day window)
    const [a] = await q<{ bad: string }>(url, 'SELECT count(*) bad FROM payments WHERE amount <= 0 OR amount % 10 <> 0');
    expect(Number(a.bad)).toBe(0);
  });

  it('has a night trough in Asia/Seoul', async () => {
    const rows = await q<{ h: number; n: string }>(url, `SELECT extract(hour FROM approved_at AT TIME ZONE 'Asia/Seoul')::int h, count(*) n
      FROM payments GROUP BY 1`);
    const by = new Map(rows.map((r) => [r.h, Number(r.n)]));
    const night = (by.get(3) ?? 0) + (by.get(4) ?? 0);
    const evening = (by.get(20) ?? 0) + (by.get(21) ?? 0);
    expect(night).toBeLessThan(0.25 * evening);
  });

  it('applies the scenarios from their start only', async () => {
    const rate = async (m: number, after: boolean) => {
      const [r] = await q<{ a: string; c: string }>(url, `SELECT
        (SELECT count(*) FROM payments WHERE merchant_id = $1 AND (approved_at >= $2) = $3) a,
        (SELECT count(*) FROM payment_cancels WHERE merchant_id = $1 AND (canceled_at >= $2) = $3) c`, [m, new Date(SURGE_FROM), after]);
      return { a: Number(r.a), c: Number(r.c) };
    };
    const before = await rate(picked.hot, false);
    const after = await rate(picked.hot, true);
    expect(after.c / after.a).toBeGreaterThan(3 * (before.c / before.a));

    // Share of all payments before and after the start: volume_drop keeps ~30%, full_stop nothing.
    const share = async (m: number) => {
      const [r] = await q<{ b: number; a: number }>(url, `SELECT
        (count(*) FILTER (WHERE merchant_id = $1 AND approved_at < $2))::float8 / count(*) FILTER (WHERE approved_at < $2) b,
        (count(*) FILTER (WHERE merchant_id = $1 AND approved_at >= $2))::float8 / count(*) FILTER (WHERE approved_at >= $2) a
        FROM payments`, [m, new Date(SURGE_FROM)]);
      return r;
    };
    const drop = await share(picked.bigVolume);
    expect(drop.a / drop.b).toBeGreaterThan(0.2);
    expect(drop.a / drop.b).toBeLessThan(0.4);
    const stop = await share(picked.bigVolumeStop);
    expect(stop.b).toBeGreaterThan(0);
    expect(stop.a).toBe(0);
  });

  it('is deterministic in its seed', async () => {
    const rowsOf = async () => {
      const u = await freshDatabase('gen_det');
      await migrate(u, 'source');
      await backfill(u, { days: 0.05, end: END, seed: 99, merchants: 2000, txPerDay: 200_000, tz: 'Asia/Seoul' });
      return q<{ m: string; amount: string; at: Date }>(u, `SELECT merchant_id m, amount, approved_at at FROM payments ORDER BY payment_id`);
    };
    const [a, b] = [await rowsOf(), await rowsOf()];
    expect(a.length).toBeGreaterThan(5000);
    expect(b).toEqual(a);
  });
});

describe('live', () => {
  let url: string;
  beforeAll(async () => {
    url = await freshDatabase('gen_live');
    await migrate(url, 'source');
  });
  afterAll(() => {});

  it('commits one row per transaction, with late rows and scenarios', async () => {
    const run = await live(url, {
      tps: 400, durationS: 6, connections: 8, merchants: 1000, seed: 3, lateShare: 0.1,
      scenarios: [{ name: 'full_stop', merchant: 1, startMs: 0, factor: 0 }],
    });
    const st = await run.done;
    const [r] = await q<{ p: string; c: string; xacts: string }>(url, `SELECT (SELECT count(*) FROM payments) p, (SELECT count(*) FROM payment_cancels) c,
      (SELECT count(DISTINCT xmin::text) FROM (SELECT xmin FROM payments UNION ALL SELECT xmin FROM payment_cancels) x) xacts`);
    expect(Number(r.p)).toBe(st.payments);
    expect(Number(r.c)).toBe(st.cancels);
    // One row per transaction: as many distinct inserting transactions as rows.
    expect(Number(r.xacts)).toBe(st.payments + st.cancels);
    expect(st.errors).toBe(0);

    // Late rows, observed from the database: ids are taken in the order rows are issued, and an on-time row's
    // transaction time is the moment it is issued; so a row is late when its time is more than 1 s before the
    // latest time of any row issued before it. (Commit times are not recorded: track_commit_timestamp is off.)
    const [l] = await q<{ n: string; late: string; max_late_s: number }>(url, `SELECT count(*) n, count(*) FILTER (WHERE lateness > interval '1 second') late,
      extract(epoch FROM max(lateness))::float8 max_late_s FROM (
        SELECT max(t) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - t AS lateness FROM (
          SELECT payment_id id, approved_at t FROM payments UNION ALL SELECT cancel_id, canceled_at FROM payment_cancels) x) y`);
    const share = Number(l.late) / Number(l.n);
    expect(share).toBeGreaterThan(0.06);
    expect(share).toBeLessThan(0.14);
    expect(l.max_late_s).toBeLessThanOrEqual(121);
    expect(Math.abs(Number(l.late) - st.late)).toBeLessThanOrEqual(0.02 * Number(l.n));

    const [s] = await q<{ stopped: string; busy: string; bad: string }>(url, `SELECT
      (SELECT count(*) FROM payments WHERE merchant_id = 1) stopped,
      (SELECT count(*) FROM payments WHERE merchant_id = 2) busy,
      (SELECT count(*) FROM payment_cancels c JOIN payments p USING (payment_id) WHERE c.merchant_id <> p.merchant_id OR c.canceled_at <= p.approved_at) bad`);
    expect(Number(s.stopped)).toBe(0);
    expect(Number(s.busy)).toBeGreaterThan(0);
    expect(Number(s.bad)).toBe(0);
  });
});
