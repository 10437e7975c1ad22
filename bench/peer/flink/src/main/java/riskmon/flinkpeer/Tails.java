package riskmon.flinkpeer;

/**
 * The significance guard of riskmon's cancel_rate_spike (alerting/rules/significance.ts), written again in Java so the peer
 * judges a window exactly as riskmon does: P(X >= k) for X ~ Binomial(n, p), summed in log space.
 */
final class Tails {
  private Tails() {}

  private static final double[] C = {0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7};

  static double lnGamma(double x) {
    if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
    x -= 1;
    double a = C[0];
    double t = x + 7.5;
    for (int i = 1; i < 9; i++) a += C[i] / (x + i);
    return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
  }

  static double binomialTail(long k, long n, double p) {
    if (k <= 0) return 1;
    if (k > n || p <= 0) return 0;
    if (p >= 1) return 1;
    double lnC = lnGamma(n + 1);
    double lp = Math.log(p);
    double lq = Math.log1p(-p);
    if (k <= n * p) {
      double below = 0;
      for (long i = k - 1; i >= 0; i--) {
        double t = Math.exp(lnC - lnGamma(i + 1) - lnGamma(n - i + 1) + i * lp + (n - i) * lq);
        below += t;
        if (t < below * 1e-17) break;
      }
      return Math.max(0, Math.min(1, 1 - below));
    }
    double sum = 0;
    for (long i = k; i <= n; i++) {
      double t = Math.exp(lnC - lnGamma(i + 1) - lnGamma(n - i + 1) + i * lp + (n - i) * lq);
      sum += t;
      if (t < sum * 1e-17) break;
    }
    return Math.min(1, sum);
  }
}
