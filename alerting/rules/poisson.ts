/**
 * Upper tail of the Poisson distribution, P(X ≥ k) for X ~ Poisson(λ): the chance that a merchant whose cancels
 * follow its baseline rate shows at least k cancels in the window by luck alone. Summed in log space from k
 * upward (terms fall off geometrically past the mode), so it stays accurate for hot merchants with thousands of
 * cancels. https://en.wikipedia.org/wiki/Poisson_distribution
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

export function poissonTail(k: number, lambda: number): number {
  if (k <= 0) return 1;
  if (lambda <= 0) return 0;
  // Below the mean the tail is large; compute it as 1 − P(X < k) there.
  if (k <= lambda) {
    let below = 0;
    for (let i = 0; i < k; i++) below += Math.exp(-lambda + i * Math.log(lambda) - lnGamma(i + 1));
    return Math.max(0, Math.min(1, 1 - below));
  }
  let sum = 0;
  for (let i = k; ; i++) {
    const term = Math.exp(-lambda + i * Math.log(lambda) - lnGamma(i + 1));
    sum += term;
    if (term < sum * 1e-15 || i > k + 10_000) break;
  }
  return Math.min(1, sum);
}
