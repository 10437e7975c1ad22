/**
 * The test writer: buckets for tests and benchmarks written through the aggregator's real apply path — change
 * events (as the cdc publishes them) → buildPlan → the atomic Lua apply, per partition with its offsets. No Redis
 * layout of its own. `approval`/`cancel` queue inserts; `cdc` queues any change (updates, deletes, heartbeats).
 */
import { offsetOf, systemClock, type Clock } from '../../lib/clock.ts';
import { type RedisClient } from '../../lib/redis.ts';
import { referenceMapping } from '../../lib/mapping.ts';
import { FakeCdc } from '../testing.ts';
import { Applier } from './apply.ts';
import { DayClock, keys, retentionOf } from './layout.ts';
import { buildPlan, candidateCache, type Msg } from './plan.ts';

const RETENTION = retentionOf({ minuteTtlDays: 2, hourTtlDays: 36, dayTtlDays: 400 });
const WINDOW_MINUTES = 240;

export class BucketWriter {
  /** The stand-in cdc whose queued changes `flush` applies. */
  readonly cdc: FakeCdc;
  readonly #applier: Applier;
  readonly #next = new Map<number, bigint>();
  readonly #clock: DayClock;
  readonly #candidates: (m: string) => number[];
  #id = 0;
  /** "now" (lib/clock.ts): which buckets are still kept */
  readonly #now: Clock;

  constructor(private readonly redis: RedisClient, private readonly o: { prefix: string; partitions: number; hotShards: number; tz: string; hot?: Set<string>; now?: Clock }) {
    this.cdc = new FakeCdc(o.partitions, o.hotShards, o.hot);
    this.#applier = new Applier(redis, o.prefix);
    this.#clock = new DayClock(o.tz);
    this.#now = o.now ?? systemClock;
    this.#candidates = candidateCache(o.partitions, o.hotShards);
  }

  approval(merchantId: string, amount: number | bigint | string, at: number | string, commitTs?: string): void {
    const id = String(++this.#id);
    this.cdc.change('public.payments', 'insert',
      { payment_id: id, merchant_id: merchantId, amount: String(amount), approved_at: new Date(at).toISOString() }, null, commitTs ?? new Date(at).toISOString());
  }

  cancel(merchantId: string, amount: number | bigint | string, at: number | string, commitTs?: string): void {
    const id = String(++this.#id);
    this.cdc.change('public.payment_cancels', 'insert',
      { cancel_id: id, payment_id: id, merchant_id: merchantId, amount: String(amount), canceled_at: new Date(at).toISOString() }, null, commitTs ?? new Date(at).toISOString());
  }

  /** A payout row (public.payouts): settles `merchantId` through `coversTo`, counted from `paidAt`. */
  payout(merchantId: string, amount: number | bigint | string, coversTo: number, paidAt: number, commitTs?: string): void {
    const id = String(++this.#id);
    this.cdc.change('public.payouts', 'insert',
      { payout_id: id, merchant_id: merchantId, amount: String(amount), covers_to: new Date(coversTo).toISOString(), paid_at: new Date(paidAt).toISOString() }, null, commitTs ?? new Date(this.#now()).toISOString());
  }

  /** Applies everything queued, partition by partition, as the aggregator would. */
  async flush(): Promise<number> {
    const queued = this.cdc.queue.splice(0);
    const byPartition = new Map<number, string[]>();
    for (const k of queued) {
      let l = byPartition.get(k.partition);
      if (!l) byPartition.set(k.partition, (l = []));
      l.push(k.value);
    }
    for (const [p, values] of byPartition) {
      for (let i = 0; i < values.length; i += 2000) {
        const chunk = values.slice(i, i + 2000);
        const first = this.#next.get(p) ?? 0n;
        const msgs: Msg[] = chunk.map((v, j) => ({ offset: String(first + BigInt(j)), value: Buffer.from(v) }));
        const wm = await this.redis.get(keys.watermark(this.o.prefix, p)).catch(() => null);
        const plan = buildPlan(msgs, {
          prefix: this.o.prefix, partition: p, partitions: this.o.partitions, hotShards: this.o.hotShards, mapping: referenceMapping,
          clock: this.#clock, retention: RETENTION, windowKeepMinutes: WINDOW_MINUTES, allowedLatenessMs: 5000, now: this.#now(), clockOffsetMs: offsetOf(this.#now),
          watermark: wm ? Number(wm) : null, candidates: this.#candidates,
        });
        const res = await this.#applier.apply(p, plan, {
          mode: first === 0n ? 'init' : 'live', first: String(first), next: String(first + BigInt(chunk.length)), windowKeepMinutes: WINDOW_MINUTES,
        });
        if (res.status !== 'ok') throw new Error(`aggregator apply refused partition ${p}: ${JSON.stringify(res)}`);
        this.#next.set(p, first + BigInt(chunk.length));
      }
    }
    return queued.length;
  }
}

/**
 * A merchant with a believable history for the dashboard test and screenshot: 7 days of traffic with a daily
 * curve and a ~2% cancel rate, today's minutes so far, and a cancel surge in the last 40 minutes.
 */
export function seedTrendingMerchant(w: BucketWriter, merchantId: string, now: number, todayStart: number): void {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const curve = (t: number) => { const h = ((t - todayStart) / 3_600_000) % 24; return 0.25 + 0.75 * Math.max(0, Math.sin(((h - 6) / 24) * 2 * Math.PI)) ** 1.2 + 0.1; };
  // Earlier days: one event per 5 minutes standing for that slice (hour and day tiers).
  for (let t = todayStart - 7 * 86_400_000; t < todayStart; t += 5 * 60_000) {
    const n = Math.round(curve(t) * 20 * (0.8 + rnd() * 0.4));
    for (let i = 0; i < n; i++) w.approval(merchantId, 10_000 + Math.round(rnd() * 90_000), t + i * 1000);
    if (rnd() < n * 0.02) w.cancel(merchantId, 20_000 + Math.round(rnd() * 30_000), t + 2000);
  }
  // Today, minute by minute; volume a little under the usual, cancels surge in the last 40 minutes. The surge keeps
  // at least 10 approvals a minute, so it is as strong at the evening trough as at noon (tests run at any hour).
  for (let t = todayStart; t < now; t += 60_000) {
    const surge = now - t < 40 * 60_000;
    const usual = Math.round(curve(t) * 4 * (0.7 + rnd() * 0.4));
    const n = surge ? Math.max(10, usual) : usual;
    for (let i = 0; i < n; i++) w.approval(merchantId, 10_000 + Math.round(rnd() * 90_000), t + i * 500);
    const c = surge ? Math.round(n * (0.15 + rnd() * 0.15)) : rnd() < n * 0.02 ? 1 : 0;
    for (let i = 0; i < c; i++) w.cancel(merchantId, 20_000 + Math.round(rnd() * 60_000), t + 30_000 + i);
  }
}
