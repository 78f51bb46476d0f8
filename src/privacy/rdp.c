/* src/privacy/rdp.c — Rényi-DP accountant for the Poisson-subsampled Gaussian
 * mechanism (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the
 * Sampled Gaussian Mechanism"), following the semantics of dp_accounting's
 * RdpAccountant. Everything is computed in log space so that orders up to
 * 1024 and tiny sampling rates neither overflow nor lose the small terms.
 *
 * A_alpha = E_{x~N(0,s^2)} [(1 - q + q exp((2x - 1) / (2 s^2)))^alpha] and
 * RDP(alpha) = log(A_alpha) / (alpha - 1). Integer orders: binomial expansion
 * (a finite sum). Fractional orders: the integral is split at z0 where
 * q mu1 = (1 - q) mu0 and each half is expanded in its smaller ratio (a
 * generalized binomial series with erfc weights, MTZ Sec. 3.3); the terms
 * keep the signs of the generalized binomial coefficients, so the series
 * converges to the integral itself. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fedmpi/privacy.h"
#include "../core/internal.h"

#define FM__PI 3.14159265358979323846
#define FM__SQRT2 1.41421356237309504880

/* A signed number kept as sign * exp(mag); sign 0 is zero. */
typedef struct fm__slog {
  int sign;
  double mag;
} fm__slog;

/* log(exp(a) + exp(b)), exact when one of them is -inf. */
static double fm__log_add(double a, double b) {
  double lo = a < b ? a : b, hi = a < b ? b : a;
  if (lo == -INFINITY) return hi;
  return hi + log1p(exp(lo - hi));
}

/* x += sign * exp(mag) */
static void fm__slog_add(fm__slog *x, int sign, double mag) {
  if (sign == 0 || mag == -INFINITY) return;
  if (x->sign == 0) {
    x->sign = sign;
    x->mag = mag;
  } else if (x->sign == sign) {
    x->mag = fm__log_add(x->mag, mag);
  } else if (x->mag > mag) {
    x->mag += log1p(-exp(mag - x->mag));
  } else if (x->mag < mag) {
    x->mag = mag + log1p(-exp(x->mag - mag));
    x->sign = sign;
  } else {
    x->sign = 0;
    x->mag = -INFINITY;
  }
}

/* log(erfc(x)), accurate where erfc underflows: the asymptotic series
 * erfc(x) ~ exp(-x^2) / (x sqrt(pi)) * sum_n (-1)^n (2n-1)!! / (2x^2)^n,
 * whose eighth term is below 1e-18 relative for x >= 25. */
static double fm__log_erfc(double x) {
  if (x < 25.0) return log(erfc(x));
  double r = 1.0 / (2.0 * x * x), term = 1.0, sum = 1.0;
  for (int n = 1; n <= 10; n++) {
    term *= -(2.0 * n - 1.0) * r;
    sum += term;
  }
  return -x * x - log(x) - 0.5 * log(FM__PI) + log(sum);
}

/* log A_alpha for integer alpha >= 2, 0 < q < 1. */
static double fm__log_a_int(double q, double sigma, int alpha) {
  double log_q = log(q), log_1mq = log1p(-q), inv2s2 = 1.0 / (2.0 * sigma * sigma);
  double log_a = -INFINITY, log_coef = 0.0; /* log C(alpha, i), built up term by term */
  for (int i = 0; i <= alpha; i++) {
    if (i > 0) log_coef += log((double)(alpha - i + 1)) - log((double)i);
    double di = (double)i;
    double s = log_coef + di * log_q + (alpha - di) * log_1mq + (di * di - di) * inv2s2;
    log_a = fm__log_add(log_a, s);
  }
  return log_a;
}

/* log A_alpha for fractional alpha > 1, 0 < q < 1; +inf if the series has
 * not converged within its step budget. */
static double fm__log_a_frac(double q, double sigma, double alpha) {
  double log_q = log(q), log_1mq = log1p(-q), inv2s2 = 1.0 / (2.0 * sigma * sigma);
  double z0 = sigma * sigma * log(1.0 / q - 1.0) + 0.5, scale = 1.0 / (FM__SQRT2 * sigma);
  fm__slog a0 = {0, -INFINITY}, a1 = {0, -INFINITY};
  double log_coef = 0.0, last_s0 = -INFINITY, last_s1 = -INFINITY;
  int sign = 1; /* sign of the generalized binomial coefficient C(alpha, i) */
  size_t max_steps = 1000 + (size_t)(2.0 * alpha);
  for (size_t step = 0; step < max_steps; step++) {
    double i = (double)step, j = alpha - i;
    if (step > 0) {
      double f = alpha - i + 1.0; /* C(alpha, i) = C(alpha, i - 1) (alpha - i + 1) / i */
      if (f < 0) sign = -sign;
      log_coef += log(fabs(f)) - log(i);
    }
    double log_e0 = log(0.5) + fm__log_erfc((i - z0) * scale);
    double log_e1 = log(0.5) + fm__log_erfc((z0 - j) * scale);
    double s0 = log_coef + i * log_q + j * log_1mq + (i * i - i) * inv2s2 + log_e0;
    double s1 = log_coef + j * log_q + i * log_1mq + (j * j - j) * inv2s2 + log_e1;
    fm__slog_add(&a0, sign, s0);
    fm__slog_add(&a1, sign, s1);
    fm__slog total = a0;
    fm__slog_add(&total, a1.sign, a1.mag);
    if (total.sign <= 0) return INFINITY; /* rounding beyond repair: exclude the order */
    if (s0 < last_s0 && s1 < last_s1 && fmax(s0, s1) < total.mag - 30.0) return total.mag;
    last_s0 = s0;
    last_s1 = s1;
  }
  return INFINITY;
}

static double fm__rdp_one(double q, double z, double alpha) {
  if (q == 0.0) return 0.0;
  if (z == 0.0 || isinf(alpha)) return INFINITY;
  if (q == 1.0) return alpha / (2.0 * z * z);
  double log_a = (alpha == floor(alpha) && alpha <= (double)INT32_MAX) ? fm__log_a_int(q, z, (int)alpha)
                                                                        : fm__log_a_frac(q, z, alpha);
  return log_a / (alpha - 1.0);
}

/* dp_accounting's default orders: 1.1 ... 10.9 by 0.1, 11 ... 63, 128 ... 1024. */
static const double fm__orders[] = {
    1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0, 3.1, 3.2, 3.3,
    3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0, 5.1, 5.2, 5.3, 5.4, 5.5, 5.6,
    5.7, 5.8, 5.9, 6.0, 6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 7.0, 7.1, 7.2, 7.3, 7.4, 7.5, 7.6, 7.7, 7.8, 7.9,
    8.0, 8.1, 8.2, 8.3, 8.4, 8.5, 8.6, 8.7, 8.8, 8.9, 9.0, 9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9, 10.0, 10.1,
    10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54,
    55, 56, 57, 58, 59, 60, 61, 62, 63, 128, 256, 512, 1024,
};
#define FM__NUM_ORDERS (sizeof fm__orders / sizeof fm__orders[0])

static const double *fm__default_orders(size_t *n) {
  *n = FM__NUM_ORDERS;
  return fm__orders;
}

void fm_rdp_default_orders(const double **orders, size_t *n) {
  size_t k;
  const double *o = fm__default_orders(&k);
  if (orders) *orders = o;
  if (n) *n = k;
}

int fm_rdp_subsampled_gaussian(double q, double noise_multiplier, const double *orders, size_t n, double *rdp) {
  FM_CHECK(q >= 0.0 && q <= 1.0, FM_ERR_INVALID_ARG, "sampling rate q must be in [0, 1] (got %g)", q);
  FM_CHECK(isfinite(noise_multiplier) && noise_multiplier >= 0.0, FM_ERR_INVALID_ARG,
           "noise multiplier must be finite and >= 0 (got %g)", noise_multiplier);
  FM_CHECK(n == 0 || (orders && rdp), FM_ERR_INVALID_ARG, "orders and rdp must not be NULL");
  for (size_t i = 0; i < n; i++)
    FM_CHECK(orders[i] > 1.0 && !isnan(orders[i]), FM_ERR_INVALID_ARG, "RDP order %zu must be > 1 (got %g)", i,
             orders[i]);
  for (size_t i = 0; i < n; i++) rdp[i] = fm__rdp_one(q, noise_multiplier, orders[i]);
  return FM_OK;
}

static int fm__check_conversion(const double *orders, const double *rdp, size_t n, double delta, double *eps) {
  FM_CHECK(delta > 0.0 && delta < 1.0, FM_ERR_INVALID_ARG, "delta must be in (0, 1) (got %g)", delta);
  FM_CHECK(n > 0 && orders && rdp && eps, FM_ERR_INVALID_ARG, "orders, rdp and eps must not be NULL or empty");
  for (size_t i = 0; i < n; i++) {
    FM_CHECK(orders[i] >= 1.0, FM_ERR_INVALID_ARG, "RDP order %zu must be >= 1 (got %g)", i, orders[i]);
    FM_CHECK(!isnan(rdp[i]), FM_ERR_INVALID_ARG, "RDP value %zu is NaN", i);
  }
  return FM_OK;
}

int fm_rdp_to_epsilon(const double *orders, const double *rdp, size_t n, double delta, double *eps,
                      double *best_order) {
  FM_CALL(fm__check_conversion(orders, rdp, n, delta, eps));
  double best = INFINITY, best_a = orders[0];
  for (size_t i = 0; i < n; i++) {
    double a = orders[i], r = rdp[i], e;
    if (r < 0.0)
      e = 0.0; /* only numerical noise makes a divergence negative */
    else if (delta * delta + expm1(-r) > 0.0)
      e = 0.0; /* delta <= sqrt(1 - exp(-KL)) already holds */
    else if (a > 1.01)
      e = r + log1p(-1.0 / a) - log(delta * a) / (a - 1.0); /* Canonne-Kamath-Steinke Prop. 12 */
    else
      e = INFINITY; /* the bound is unstable as a -> 1 */
    if (e < best) {
      best = e;
      best_a = a;
    }
  }
  *eps = best > 0.0 ? best : 0.0;
  if (best_order) *best_order = best_a;
  return FM_OK;
}

int fm_rdp_to_epsilon_classic(const double *orders, const double *rdp, size_t n, double delta, double *eps,
                              double *best_order) {
  FM_CALL(fm__check_conversion(orders, rdp, n, delta, eps));
  double best = INFINITY, best_a = orders[0];
  for (size_t i = 0; i < n; i++) {
    double e = orders[i] > 1.0 ? rdp[i] - log(delta) / (orders[i] - 1.0) : INFINITY;
    if (e < best) {
      best = e;
      best_a = orders[i];
    }
  }
  *eps = best > 0.0 ? best : 0.0;
  if (best_order) *best_order = best_a;
  return FM_OK;
}

int fm_privacy_epsilon(double q, double z, uint64_t steps, double delta, double *eps, double *order) {
  FM_CHECK(eps, FM_ERR_INVALID_ARG, "eps must not be NULL");
  FM_CHECK(delta > 0.0 && delta < 1.0, FM_ERR_INVALID_ARG, "delta must be in (0, 1) (got %g)", delta);
  size_t n;
  const double *orders = fm__default_orders(&n);
  double rdp[FM__NUM_ORDERS];
  FM_CALL(fm_rdp_subsampled_gaussian(q, z, orders, n, rdp));
  for (size_t i = 0; i < n; i++) rdp[i] *= (double)steps; /* composition over rounds adds RDP */
  return fm_rdp_to_epsilon(orders, rdp, n, delta, eps, order);
}

int fm_privacy_noise_for_epsilon(double q, uint64_t steps, double delta, double target_eps, double *z) {
  FM_CHECK(z, FM_ERR_INVALID_ARG, "z must not be NULL");
  FM_CHECK(isfinite(target_eps) && target_eps > 0.0, FM_ERR_INVALID_ARG,
           "target epsilon must be finite and > 0 (got %g)", target_eps);
  double eps;
  FM_CALL(fm_privacy_epsilon(q, 1.0, steps, delta, &eps, NULL)); /* checks q and delta */
  if (q == 0.0 || steps == 0) {
    *z = 0.0; /* nothing is released about anyone: any noise reaches the target */
    return FM_OK;
  }
  /* eps(z) is nonincreasing in z: keep lo failing (eps(0) = inf) and hi passing. */
  double lo = 0.0, hi = 1.0;
  while (eps > target_eps) {
    FM_CHECK(hi < 1e6, FM_ERR_UNSUPPORTED, "no noise multiplier up to 1e6 reaches epsilon %g", target_eps);
    lo = hi;
    hi *= 2.0;
    FM_CALL(fm_privacy_epsilon(q, hi, steps, delta, &eps, NULL));
  }
  for (int it = 0; it < 200 && hi - lo > 1e-7 * hi; it++) {
    double mid = 0.5 * (lo + hi);
    FM_CALL(fm_privacy_epsilon(q, mid, steps, delta, &eps, NULL));
    if (eps <= target_eps)
      hi = mid;
    else
      lo = mid;
  }
  *z = hi;
  return FM_OK;
}
