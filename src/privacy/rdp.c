/* src/privacy/rdp.c — the RDP accountant of fedmpi/privacy.h. Everything in
 * log space: A_α reaches exp(hundreds) at the large orders. */
#include <math.h>
#include <stdlib.h>

#include "fedmpi/privacy.h"
#include "internal.h"

/* dp_accounting's default orders: 1.1 ... 10.9 by 0.1, 11 ... 63, 128 ... 1024. */
static const double default_orders[] = {
    1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0, 3.1, 3.2, 3.3,
    3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0, 5.1, 5.2, 5.3, 5.4, 5.5, 5.6,
    5.7, 5.8, 5.9, 6.0, 6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 7.0, 7.1, 7.2, 7.3, 7.4, 7.5, 7.6, 7.7, 7.8, 7.9,
    8.0, 8.1, 8.2, 8.3, 8.4, 8.5, 8.6, 8.7, 8.8, 8.9, 9.0, 9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9, 10.0, 10.1,
    10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54,
    55, 56, 57, 58, 59, 60, 61, 62, 63, 128, 256, 512, 1024,
};
#define NUM_ORDERS (sizeof default_orders / sizeof default_orders[0])

void fm_rdp_default_orders(const double **orders, size_t *n) {
  if (orders) *orders = default_orders;
  if (n) *n = NUM_ORDERS;
}

/* log(exp(a) + exp(b)) and log(exp(a) - exp(b)) (a >= b) */
static double log_add(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  double hi = fmax(a, b), lo = fmin(a, b);
  return hi + log1p(exp(lo - hi));
}
static double log_sub(double a, double b) {
  if (b == -INFINITY) return a;
  if (a <= b) return -INFINITY; /* rounding: the series' partial sums stay >= 0 */
  return a + log1p(-exp(b - a));
}

/* log(erfc(x)), also where erfc underflows (the asymptotic series). */
static double log_erfc(double x) {
  if (x < 25) return log(erfc(x));
  double r = 1.0 / (x * x);
  return -x * x - log(x) - 0.5723649429247001 /* log(pi) / 2 */ + log1p(-0.5 * r + 0.75 * r * r - 1.875 * r * r * r);
}

/* log A_α for integer α: Σ_k C(α,k) (1−q)^(α−k) q^k exp((k² − k) / (2σ²)). */
static double log_a_int(double q, double sigma, long alpha) {
  double acc = -INFINITY, log_binom = 0;
  for (long k = 0; k <= alpha; k++) {
    if (k > 0) log_binom += log((double)(alpha - k + 1)) - log((double)k);
    double t = log_binom + (double)k * log(q) + (double)(alpha - k) * log1p(-q) +
               ((double)k * (double)k - (double)k) / (2 * sigma * sigma);
    acc = log_add(acc, t);
  }
  return acc;
}

/* log A_α for fractional α: the two-sided series of Mironov et al. Sec. 3.3,
 * summed until both terms fall below exp(-30). */
static double log_a_frac(double q, double sigma, double alpha) {
  double a0 = -INFINITY, a1 = -INFINITY, coef = 1.0;
  const double z0 = sigma * sigma * log(1 / q - 1) + 0.5;
  for (long i = 0; i < 100000; i++) {
    if (i > 0) coef *= (alpha - (double)(i - 1)) / (double)i; /* C(α, i), sign included */
    double j = alpha - (double)i, lc = log(fabs(coef));
    double t0 = lc + (double)i * log(q) + j * log1p(-q);
    double t1 = lc + j * log(q) + (double)i * log1p(-q);
    double e0 = log(0.5) + log_erfc(((double)i - z0) / (1.4142135623730951 * sigma));
    double e1 = log(0.5) + log_erfc((z0 - j) / (1.4142135623730951 * sigma));
    double s0 = t0 + ((double)i * (double)i - (double)i) / (2 * sigma * sigma) + e0;
    double s1 = t1 + (j * j - j) / (2 * sigma * sigma) + e1;
    if (coef > 0) {
      a0 = log_add(a0, s0);
      a1 = log_add(a1, s1);
    } else {
      a0 = log_sub(a0, s0);
      a1 = log_sub(a1, s1);
    }
    if (fmax(s0, s1) < -30) break;
  }
  return log_add(a0, a1);
}

static double rdp_one(double q, double sigma, double alpha) {
  if (q == 0) return 0;
  if (sigma == 0) return INFINITY;
  if (q == 1) return alpha / (2 * sigma * sigma);
  if (isinf(alpha)) return INFINITY;
  double la = alpha == floor(alpha) && alpha < 1e6 ? log_a_int(q, sigma, (long)alpha) : log_a_frac(q, sigma, alpha);
  return la / (alpha - 1);
}

int fm_rdp_subsampled_gaussian(double q, double noise_multiplier, const double *orders, size_t n, double *rdp) {
  FM_CHECK(orders && rdp, FM_ERR_INVALID_ARG, "NULL argument");
  FM_CHECK(q >= 0 && q <= 1, FM_ERR_HPARAM_VALUE, "sampling probability q must be in [0, 1], got %g", q);
  FM_CHECK(isfinite(noise_multiplier) && noise_multiplier >= 0, FM_ERR_HPARAM_VALUE,
           "noise multiplier must be a finite number >= 0, got %g", noise_multiplier);
  for (size_t i = 0; i < n; i++) {
    FM_CHECK(orders[i] > 1, FM_ERR_HPARAM_VALUE, "RDP orders must be > 1, got %g", orders[i]);
    rdp[i] = rdp_one(q, noise_multiplier, orders[i]);
  }
  return FM_OK;
}

static int check_conversion(const double *orders, const double *rdp, size_t n, double delta, double *eps) {
  FM_CHECK(orders && rdp && eps && n > 0, FM_ERR_INVALID_ARG, "NULL argument or no orders");
  FM_CHECK(delta > 0 && delta < 1, FM_ERR_HPARAM_VALUE, "delta must be in (0, 1), got %g", delta);
  return FM_OK;
}

int fm_rdp_to_epsilon(const double *orders, const double *rdp, size_t n, double delta, double *eps, double *order) {
  FM_CALL(check_conversion(orders, rdp, n, delta, eps));
  double best = INFINITY, best_order = orders[0];
  for (size_t i = 0; i < n; i++) {
    double a = orders[i], r = rdp[i], e;
    FM_CHECK(a >= 1 && r >= 0, FM_ERR_HPARAM_VALUE, "order %g has RDP %g", a, r);
    if (delta * delta + expm1(-r) > 0) e = 0; /* Canonne et al.: delta^2 > 1 - exp(-r) */
    else if (a > 1.01) e = r + log1p(-1 / a) - log(delta * a) / (a - 1);
    else e = INFINITY;
    if (e < best) best = e, best_order = a;
  }
  *eps = fmax(0, best);
  if (order) *order = best_order;
  return FM_OK;
}

int fm_rdp_to_epsilon_classic(const double *orders, const double *rdp, size_t n, double delta, double *eps,
                              double *order) {
  FM_CALL(check_conversion(orders, rdp, n, delta, eps));
  double best = INFINITY, best_order = orders[0];
  for (size_t i = 0; i < n; i++) {
    double e = rdp[i] - log(delta) / (orders[i] - 1);
    if (e < best) best = e, best_order = orders[i];
  }
  *eps = best;
  if (order) *order = best_order;
  return FM_OK;
}

int fm_privacy_epsilon(double q, double noise_multiplier, uint64_t rounds, double delta, double *eps, double *order) {
  FM_CHECK(eps, FM_ERR_INVALID_ARG, "eps is NULL");
  FM_CHECK(delta > 0 && delta < 1, FM_ERR_HPARAM_VALUE, "delta must be in (0, 1), got %g", delta);
  const double *orders;
  size_t n;
  fm_rdp_default_orders(&orders, &n);
  double rdp[NUM_ORDERS];
  FM_CALL(fm_rdp_subsampled_gaussian(q, noise_multiplier, orders, n, rdp));
  for (size_t i = 0; i < n; i++) rdp[i] *= (double)rounds;
  return fm_rdp_to_epsilon(orders, rdp, n, delta, eps, order);
}

int fm_privacy_noise_for_epsilon(double q, uint64_t rounds, double delta, double target_epsilon,
                                 double *noise_multiplier) {
  FM_CHECK(noise_multiplier, FM_ERR_INVALID_ARG, "noise_multiplier is NULL");
  FM_CHECK(isfinite(target_epsilon) && target_epsilon > 0, FM_ERR_HPARAM_VALUE,
           "target epsilon must be a finite number > 0, got %g", target_epsilon);
  FM_CHECK(q >= 0 && q <= 1, FM_ERR_HPARAM_VALUE, "sampling probability q must be in [0, 1], got %g", q);
  FM_CHECK(rounds >= 1, FM_ERR_HPARAM_VALUE, "rounds must be >= 1");
  if (q == 0) { /* nobody is ever sampled: no noise is needed */
    *noise_multiplier = 0;
    return FM_OK;
  }
  double lo = 0, hi = 1, eps;
  for (;;) { /* ε falls as z grows: find a z that reaches the target */
    FM_CALL(fm_privacy_epsilon(q, hi, rounds, delta, &eps, NULL));
    if (eps <= target_epsilon) break;
    lo = hi;
    hi *= 2;
    FM_CHECK(hi < 1e7, FM_ERR_HPARAM_VALUE, "no noise multiplier below 1e7 reaches epsilon %g", target_epsilon);
  }
  while (hi - lo > 1e-7 * hi) {
    double mid = 0.5 * (lo + hi);
    FM_CALL(fm_privacy_epsilon(q, mid, rounds, delta, &eps, NULL));
    if (eps <= target_epsilon) hi = mid;
    else lo = mid;
  }
  *noise_multiplier = hi;
  return FM_OK;
}

/* ---- DP-FTRL: tree aggregation (TF Privacy's tree_aggregation_accountant) ---------- */

/* The squared sensitivity a client adds to a tree of m leaves: with one
 * contribution per tree (the DP-FTRL paper's once-per-epoch assumption) the
 * depth floor(log2 m) + 1 (compute_rdp_tree_restart); with a contribution to
 * every leaf (the worst case of any sampler) every completed node at level l
 * sums 2^l of them: sum over l of floor(m / 2^l) * 4^l
 * (_tree_sensitivity_square_sum with max_participation = m, min_separation 0). */
static double fm__tree_sensitivity2(uint64_t m, fm_tree_participation part) {
  if (m == 0) return 0;
  double s = 0;
  for (int l = 0; l < 64 && (m >> l); l++) s += part == FM_TREE_ONCE_PER_TREE ? 1.0 : ldexp((double)(m >> l), 2 * l);
  return s;
}

int fm_rdp_tree(double noise_multiplier, uint64_t rounds, uint64_t restart_warmup, uint64_t restart_frequency,
                fm_tree_participation participation, const double *orders, size_t n, double *rdp) {
  FM_CHECK(orders && rdp, FM_ERR_INVALID_ARG, "NULL argument");
  FM_CHECK(isfinite(noise_multiplier) && noise_multiplier >= 0, FM_ERR_HPARAM_VALUE,
           "noise multiplier must be a finite number >= 0, got %g", noise_multiplier);
  FM_CHECK(participation == FM_TREE_EVERY_ROUND || participation == FM_TREE_ONCE_PER_TREE, FM_ERR_INVALID_ARG,
           "unknown tree participation %d", (int)participation);
  FM_CHECK(restart_frequency == 0 || (restart_warmup >= 1 && restart_warmup < restart_frequency), FM_ERR_HPARAM_VALUE,
           "restart_warmup must be between 1 and restart_frequency - 1, got %llu and %llu",
           (unsigned long long)restart_warmup, (unsigned long long)restart_frequency);
  /* the trees' sizes: PeriodicRoundRestartIndicator restarts after call c
   * with c mod frequency == warmup, so warmup leaves, then frequency each */
  double s = 0;
  if (restart_frequency == 0 || rounds <= restart_warmup) {
    s = fm__tree_sensitivity2(rounds, participation);
  } else {
    uint64_t rest = rounds - restart_warmup, full = rest / restart_frequency;
    s = fm__tree_sensitivity2(restart_warmup, participation) +
        (double)full * fm__tree_sensitivity2(restart_frequency, participation) +
        fm__tree_sensitivity2(rest % restart_frequency, participation);
  }
  for (size_t i = 0; i < n; i++) {
    FM_CHECK(orders[i] > 1, FM_ERR_HPARAM_VALUE, "RDP orders must be > 1, got %g", orders[i]);
    /* the Gaussian mechanism's RDP, alpha * S / (2 z^2) */
    rdp[i] = s == 0 ? 0.0 : noise_multiplier == 0 ? INFINITY : orders[i] * s / (2 * noise_multiplier * noise_multiplier);
  }
  return FM_OK;
}

int fm_privacy_epsilon_tree(double noise_multiplier, uint64_t rounds, uint64_t restart_warmup,
                            uint64_t restart_frequency, fm_tree_participation participation, double delta,
                            double *eps, double *order) {
  FM_CHECK(eps, FM_ERR_INVALID_ARG, "eps is NULL");
  FM_CHECK(delta > 0 && delta < 1, FM_ERR_HPARAM_VALUE, "delta must be in (0, 1), got %g", delta);
  const double *orders;
  size_t n;
  fm_rdp_default_orders(&orders, &n);
  double rdp[NUM_ORDERS];
  FM_CALL(fm_rdp_tree(noise_multiplier, rounds, restart_warmup, restart_frequency, participation, orders, n, rdp));
  return fm_rdp_to_epsilon(orders, rdp, n, delta, eps, order);
}
