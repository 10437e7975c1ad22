/**
 * Payouts of the generated workload (the reference `payouts` table, docs/contracts.md): local day D is paid at the
 * start of local day D+N (`--settlement-days`, default 2). When day D ends, each merchant whose net since its last
 * payout (approved − canceled, the carry) is positive gets one payout: `covers_to` = the end of D (a local midnight,
 * so a minute boundary), `paid_at` = the start of D+N, `amount` = that net. A merchant whose net is not positive gets
 * none: its cancels are netted from its later sales, and until then they are money at risk — so a cancel surge on
 * payments already paid out shows as a receivable, as it would at a real acquirer.
 *
 * Ids are derived, not allocated: `YYYYMMDD` of D × 10^8 + merchant, so a backfill and a live run (or a rerun) that
 * both write day D's payouts write the same rows, and `ON CONFLICT DO NOTHING` keeps one.
 */
import type pg from 'pg';
import { DAY, dayKey, dayStart, iso } from '../../lib/time.ts';

export const DEFAULT_SETTLEMENT_DAYS = 2;
const ID_DAY = 100_000_000;

export interface PayoutRow { id: number; merchant: number; amount: number; coversTo: number; paidAt: number }

/** The local midnight `k` days after the one starting the day of `ms` (DST-safe). */
export function localMidnight(ms: number, k: number, tz: string): number {
  return dayStart(dayStart(ms, tz) + k * DAY + DAY / 2, tz);
}

/** Payout id of merchant `m` for local day `d` (its start). */
export function payoutId(d: number, m: number, tz: string): number {
  return Number(dayKey(d, tz).replaceAll('-', '')) * ID_DAY + m;
}

/** When day `d` (its start) ends and is paid. */
export function settlementOf(d: number, days: number, tz: string): { coversTo: number; paidAt: number } {
  return { coversTo: localMidnight(d, 1, tz), paidAt: localMidnight(d, days, tz) };
}

/**
 * Per-merchant carry while a backfill generates rows in time order: `approve`/`cancel` as rows are written,
 * `endDay` at each local midnight crossed (returns that day's payouts).
 */
export class PayoutLedger {
  readonly #carry: Float64Array;
  readonly #touched = new Set<number>();
  constructor(merchants: number, private readonly days: number, private readonly tz: string) {
    this.#carry = new Float64Array(merchants + 1);
  }

  approve(m: number, amount: number): void { this.#carry[m] += amount; this.#touched.add(m); }
  cancel(m: number, amount: number): void { this.#carry[m] -= amount; this.#touched.add(m); }

  /** The payouts of the local day starting at `d`, which has just ended. */
  endDay(d: number): PayoutRow[] {
    const { coversTo, paidAt } = settlementOf(d, this.days, this.tz);
    const out: PayoutRow[] = [];
    for (const m of this.#touched) {
      const c = this.#carry[m];
      if (c > 0) {
        out.push({ id: payoutId(d, m, this.tz), merchant: m, amount: c, coversTo, paidAt });
        this.#carry[m] = 0;
        this.#touched.delete(m);
      }
    }
    return out;
  }
}

/** Inserts payout rows (a row already there, same id, is kept). */
export async function insertPayouts(db: Pick<pg.Client, 'query'>, rows: PayoutRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 10_000) {
    const part = rows.slice(i, i + 10_000);
    await db.query(`INSERT INTO payouts (payout_id, merchant_id, amount, covers_to, paid_at)
      SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[])
      ON CONFLICT (payout_id) DO NOTHING`,
    [part.map((r) => r.id), part.map((r) => r.merchant), part.map((r) => Math.round(r.amount)), part.map((r) => iso(r.coversTo)), part.map((r) => iso(r.paidAt))]);
  }
}

/**
 * The live run's payouts of the ended local day starting at `d`, computed from the tables themselves (rows of
 * other writers and late rows included): per merchant, the net since its last payout's covers_to (at most 7 days
 * back; from the start of d for a merchant never paid) up to the end of d, when positive. Returns the rows written.
 */
export async function writeDayPayouts(db: Pick<pg.Client, 'query'>, d: number, days: number, tz: string): Promise<number> {
  const { coversTo, paidAt } = settlementOf(d, days, tz);
  const base = Number(dayKey(d, tz).replaceAll('-', '')) * ID_DAY;
  const r = await db.query(`
    WITH last AS (SELECT merchant_id, max(covers_to) AS s FROM payouts WHERE covers_to < $2 GROUP BY merchant_id),
    net AS (
      SELECT merchant_id, sum(x) AS n FROM (
        SELECT p.merchant_id, p.amount AS x FROM payments p LEFT JOIN last l USING (merchant_id)
         WHERE p.approved_at >= $1::timestamptz - interval '7 days' AND p.approved_at >= coalesce(l.s, $1) AND p.approved_at < $2
        UNION ALL
        SELECT c.merchant_id, -c.amount FROM payment_cancels c LEFT JOIN last l USING (merchant_id)
         WHERE c.canceled_at >= $1::timestamptz - interval '7 days' AND c.canceled_at >= coalesce(l.s, $1) AND c.canceled_at < $2) t
      GROUP BY merchant_id)
    INSERT INTO payouts (payout_id, merchant_id, amount, covers_to, paid_at)
    SELECT $4::bigint + merchant_id, merchant_id, n, $2, $3 FROM net WHERE n > 0
    ON CONFLICT (payout_id) DO NOTHING`, [iso(d), iso(coversTo), iso(paidAt), base]);
  return r.rowCount ?? 0;
}
