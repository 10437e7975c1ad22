/**
 * The significance guard of cancel_rate_spike: could the window's cancels come from a merchant still cancelling
 * at its baseline rate? Both counts are Poisson with a rate per approval; under "same rate", the window's share of
 * all cancels (window + baseline) is Binomial(n, π) with π = the window's share of all approvals — the exact
 * conditional test for two Poisson rates (Przyborowski & Wilenski, 1940). Unlike a Poisson tail around the
 * baseline rate it also counts the baseline's own uncertainty: when history is thin next to the window (a new
 * busy merchant, or a compressed test workload), a baseline that came out low by chance does not read as a spike.
 * When the baseline has ~168 hours to the window's one, the two tests agree.
 * https://en.wikipedia.org/wiki/Binomial_distribution
 */

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits). */
export function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/**
 * P(X ≥ k) for X ~ Binomial(n, p). Summed in log space away from the mode (terms fall off geometrically there),
 * so it stays accurate far in the tail and for hot merchants with thousands of cancels.
 */
export function binomialTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n || p <= 0) return 0;
  if (p >= 1) return 1;
  const lnC = lnGamma(n + 1);
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  const term = (i: number) => Math.exp(lnC - lnGamma(i + 1) - lnGamma(n - i + 1) + i * lp + (n - i) * lq);
  return upperTail(term, k, k <= n * p, n);
}

/**
 * P(X ≥ k) from the probability mass `term(i)`: at or below the mean the tail is large, so 1 − P(X < k) summed
 * downward from k − 1; above it, the tail itself summed upward from k to `last`. Either sum stops once a term no
 * longer moves it (the terms fall off geometrically away from the mode).
 */
function upperTail(term: (i: number) => number, k: number, atOrBelowMean: boolean, last: number): number {
  if (atOrBelowMean) {
    let below = 0;
    for (let i = k - 1; i >= 0; i--) {
      const t = term(i);
      below += t;
      if (t < below * 1e-17) break;
    }
    return Math.max(0, Math.min(1, 1 - below));
  }
  let sum = 0;
  for (let i = k; i <= last; i++) {
    const t = term(i);
    sum += t;
    if (t < sum * 1e-17) break;
  }
  return Math.min(1, sum);
}

/**
 * P(X ≥ k) for X ~ Poisson(lambda): the guard when the baseline is a cohort's median rate (a rate taken as known,
 * with no history of the merchant's own to share the cancels with).
 */
export function poissonTail(k: number, lambda: number): number {
  if (k <= 0) return 1;
  if (lambda <= 0) return 0;
  const term = (i: number) => Math.exp(i * Math.log(lambda) - lambda - lnGamma(i + 1));
  return upperTail(term, k, k <= lambda, k + 100_001); // at most 100,001 terms past k
}
