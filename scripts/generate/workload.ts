/**
 * The merchants of one workload (ids 1..n) in flat arrays for the hot loops, the alias table that picks a merchant
 * per transaction, and `pickMerchants`, which names merchants for scenarios deterministically.
 */
import { AliasTable, hash32, Rng } from './random.ts';
import { CATEGORIES, hotCount, meanAmount, merchantProfile, merchantWeights, type MerchantProfile } from './distribution.ts';

/** volume_drop watches merchants whose average daily approved amount is at least this (KRW). */
export const BIG_VOLUME_KRW = 1_000_000_000;

export class Workload {
  readonly n: number;
  readonly weights: Float64Array;
  readonly mu: Float64Array;
  readonly sigma: Float64Array;
  readonly cancelRate: Float64Array;
  /** Index into CATEGORIES. */
  readonly category: Uint8Array;
  readonly alias: AliasTable;

  constructor(n: number) {
    this.n = n;
    this.weights = merchantWeights(n);
    this.mu = new Float64Array(n);
    this.sigma = new Float64Array(n);
    this.cancelRate = new Float64Array(n);
    this.category = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const p = merchantProfile(i + 1);
      this.mu[i] = p.mu;
      this.sigma[i] = p.sigma;
      this.cancelRate[i] = p.cancelRate;
      this.category[i] = CATEGORIES.indexOf(p.category);
    }
    this.alias = new AliasTable(this.weights);
  }

  profile(id: number): MerchantProfile { return merchantProfile(id); }

  /** A merchant id (1..n) drawn by transaction share. */
  sampleMerchant(rng: Rng): number { return this.alias.sample(rng) + 1; }

  /** As sampleMerchant, with the week's shapes: `accept` from distribution.ts weekAcceptance (null: flat weeks). */
  sampleMerchantIn(rng: Rng, accept: Float64Array | null): number {
    let m = this.alias.sample(rng) + 1;
    if (accept) for (let tries = 0; tries < 100 && rng.next() >= accept[this.category[m - 1]]; tries++) m = this.alias.sample(rng) + 1;
    return m;
  }

  /** Expected approved amount a day of merchant `id` at `txPerDay` transactions a day (before cancels). */
  expectedDailyVolume(id: number, txPerDay: number): number {
    return txPerDay * this.weights[id - 1] * Math.exp(this.mu[id - 1] + this.sigma[id - 1] ** 2 / 2);
  }
}

export interface ScenarioMerchants {
  /** Just below the top 1% (not sharded as hot) but busy enough for the cancel-rate rule's guards. */
  normal: number;
  /** One of the biggest merchants (top 1%, sharded), not one of the two below. */
  hot: number;
  /** Two merchants with an expected daily volume ≥ 1B KRW (or the two largest when none reaches it). */
  bigVolume: number;
  bigVolumeStop: number;
  /** Every merchant expected at ≥ 1B KRW a day, largest first. */
  eligibleBigVolume: number[];
}

/**
 * Names the merchants the scenarios use, deterministic in (seed, merchants, txPerDay), so tests and the demo can
 * say which merchant must alert.
 */
export function pickMerchants(seed: number, merchants: number, txPerDay = 3_000_000): ScenarioMerchants {
  const w = new Workload(merchants);
  const rng = new Rng(hash32(seed, 0x5ce7));
  const byVolume = Array.from({ length: merchants }, (_, i) => i + 1)
    .map((id) => ({ id, v: w.expectedDailyVolume(id, txPerDay) }))
    .sort((a, b) => b.v - a.v);
  const eligible = byVolume.filter((x) => x.v >= BIG_VOLUME_KRW).map((x) => x.id);
  const pool = (eligible.length >= 2 ? eligible : byVolume.map((x) => x.id)).slice(0, 10);
  const bigVolume = pool.splice(rng.int(Math.min(pool.length, 5)), 1)[0];
  const bigVolumeStop = pool.length ? pool.splice(rng.int(Math.min(pool.length, 5)), 1)[0] : bigVolume;
  const head = hotCount(merchants);
  const hotCandidates = Array.from({ length: Math.min(head, 10) }, (_, i) => i + 1)
    .filter((id) => id !== bigVolume && id !== bigVolumeStop);
  const hot = hotCandidates.length ? hotCandidates[rng.int(hotCandidates.length)] : 1;
  const normal = Math.min(merchants, head + 1 + rng.int(10));
  return { normal, hot, bigVolume, bigVolumeStop, eligibleBigVolume: eligible };
}

export { meanAmount };
