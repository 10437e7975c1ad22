/**
 * Payouts in the bucket store. A merchant's payout rows are kept per partition in hashes keyed by the UTC-day block
 * of `paid_at` (layout.ts `keys.payouts`): field = the row as it stands (`<covers_to ms>:<paid_at ms>:<amount>:<id>`),
 * value = how many times it stands. An INSERT adds 1 to the new row's field, a DELETE subtracts 1 from the old
 * row's, an UPDATE does both — the same signed, commuting deltas as the buckets, applied by the same Lua script
 * atomically with the partition's offset and (lsn, seq) position, so a re-delivered change is never applied twice
 * and a merchant's rows may spread over several partitions (hot shards, an UPDATE moving a payout to another
 * merchant). Readers sum the counts over every partition and keep the rows with a positive count; a row that was
 * removed keeps a "0" field until its key expires (as a bucket zeroed by DELETEs does). Pure.
 */
import type { Payout } from '../../lib/mapping.ts';

export function encodePayoutField(p: Omit<Payout, 'merchantId'>): string {
  return `${p.coversToMs}:${p.paidAtMs}:${p.amount}:${p.id}`;
}

export function decodePayoutField(merchantId: string, f: string): Payout | null {
  const a = f.indexOf(':'), b = f.indexOf(':', a + 1), c = f.indexOf(':', b + 1);
  if (a < 0 || b < 0 || c < 0) return null;
  const coversToMs = Number(f.slice(0, a)), paidAtMs = Number(f.slice(a + 1, b));
  if (!Number.isFinite(coversToMs) || !Number.isFinite(paidAtMs)) return null;
  let amount: bigint;
  try { amount = BigInt(f.slice(b + 1, c)); } catch { return null; }
  return { id: f.slice(c + 1), merchantId, amount, coversToMs, paidAtMs };
}

/**
 * The payout rows standing, from the payout hashes of one merchant read in every partition that may hold them
 * (fields and counts, summed over partitions): rows with a positive total, each once per count, sorted by paid_at
 * then covers_to.
 */
export function standingPayouts(merchantId: string, counts: Map<string, number>): Payout[] {
  const out: Payout[] = [];
  for (const [f, n] of counts) {
    if (n <= 0) continue;
    const p = decodePayoutField(merchantId, f);
    if (!p) continue;
    for (let i = 0; i < n; i++) out.push(p);
  }
  return out.sort((x, y) => x.paidAtMs - y.paidAtMs || x.coversToMs - y.coversToMs || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}
