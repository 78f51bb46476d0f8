/* tests/unit/test_privacy.c — the RDP accountant against values computed
 * independently of its code:
 *   - TF Privacy's MNIST DP-SGD tutorial: z = 1.1, q = 256/60000, 60 epochs
 *     (T = 14,062 steps), delta = 1e-5 gives epsilon 3.01 with the classic
 *     conversion;
 *   - integer orders: the closed binomial sum, evaluated here term by term in
 *     long double (not the library's log-space code);
 *   - fractional orders: A_alpha = E_{x ~ N(0, s^2)}[((1-q) + q exp((2x-1)/(2 s^2)))^alpha],
 *     the definition, integrated numerically (trapezoid, 4,000,001 points
 *     over [-40s - 10, 40s + alpha + 10], numpy float64: tests/data/rdp_reference.py);
 *     the same quadrature reproduces the
 *     closed form at integer orders to 5e-8 relative.
 * And the conversion's corners, the search for z, and bad arguments. */
#include <math.h>
#include <stdlib.h>

#include "fedmpi/privacy.h"
#include "fm_test.h"

static double rdp1(double q, double z, double alpha) {
  double r;
  FM_ASSERT_OK(fm_rdp_subsampled_gaussian(q, z, &alpha, 1, &r));
  return r;
}

static void close_rel(double got, double want, double rel) {
  if (!(fabs(got - want) <= rel * fabs(want))) fail_msg("got %.12g, want %.12g (rel %g)", got, want, rel);
}

static void test_anchor_tf_privacy_tutorial(void **st) {
  (void)st;
  const double *o;
  size_t n;
  fm_rdp_default_orders(&o, &n);
  assert_int_equal(n, 99 + 53 + 4);
  assert_true(o[0] == 1.1 && o[98] == 10.9 && o[99] == 11 && o[151] == 63 && o[155] == 1024);
  double *r = malloc(n * sizeof *r), classic, improved, oc, oi;
  FM_ASSERT_OK(fm_rdp_subsampled_gaussian(256.0 / 60000, 1.1, o, n, r));
  for (size_t i = 0; i < n; i++) r[i] *= 14062;
  FM_ASSERT_OK(fm_rdp_to_epsilon_classic(o, r, n, 1e-5, &classic, &oc));
  FM_ASSERT_OK(fm_rdp_to_epsilon(o, r, n, 1e-5, &improved, &oi));
  assert_true(classic > 2.95 && classic < 3.05);
  assert_true(improved < classic && improved > 2.0);
  double e, ord;
  FM_ASSERT_OK(fm_privacy_epsilon(256.0 / 60000, 1.1, 14062, 1e-5, &e, &ord));
  assert_true(e == improved && ord == oi);
  free(r);
}

/* Closed form, term by term in long double.  Since the binomial weights sum to
 * one, A - 1 = sum_k C(a,k) (1-q)^(a-k) q^k expm1((k^2 - k) / (2 s^2)): every
 * term is non-negative, so there is no cancellation even where long double is
 * only double (valgrind emulates x87 at 64 bits), and log1p keeps the small
 * RDP values of q = 0.001 exact to 1e-9. */
static double closed_form(double q, double s, int a) {
  long double sum = 0, binom = 1;
  for (int k = 0; k <= a; k++) {
    if (k > 0) binom = binom * (a - k + 1) / k;
    sum += binom * powl(1 - q, a - k) * powl(q, k) * expm1l((long double)(k * k - k) / (2.0L * s * s));
  }
  return (double)(log1pl(sum) / (a - 1));
}

static void test_integer_orders(void **st) {
  (void)st;
  const double qs[] = {0.001, 0.01, 0.1, 0.5}, zs[] = {0.7, 1.0, 2.0, 5.0};
  for (int a = 2; a <= 20; a++)
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) close_rel(rdp1(qs[i], zs[j], a), closed_form(qs[i], zs[j], a), 1e-9);
  /* python's exact-integer binomials (math.comb), same anchors as the quadrature */
  close_rel(rdp1(0.01, 1.0, 5), 0.0004686672421691136, 1e-9);
  close_rel(rdp1(0.2, 1.5, 12), 0.9469270885579891, 1e-9);
  close_rel(rdp1(0.05, 2.0, 3), 0.001080484759279382, 1e-9);
}

static void test_fractional_orders(void **st) {
  (void)st;
  struct {
    double q, z, a, want;
  } ref[] = {{0.01, 1.0, 2.5, 0.00021757531282011003},   {0.01, 1.0, 7.8, 0.0008475661317352459},
             {0.05, 2.0, 3.3, 0.0011938776796667314},    {0.1, 0.8, 1.5, 0.023305046519025874},
             {256.0 / 60000, 1.1, 8.8, 0.00010896430152139957}, {0.3, 3.0, 20.5, 0.21396002937773018}};
  for (size_t i = 0; i < sizeof ref / sizeof *ref; i++) close_rel(rdp1(ref[i].q, ref[i].z, ref[i].a), ref[i].want, 1e-6);
  /* RDP does not decrease with the order: k + 0.5 lies between k and k + 1 */
  for (int k = 2; k < 40; k++) {
    double lo = rdp1(0.02, 1.2, k), mid = rdp1(0.02, 1.2, k + 0.5), hi = rdp1(0.02, 1.2, k + 1);
    assert_true(lo <= mid * (1 + 1e-9) && mid <= hi * (1 + 1e-9));
  }
}

static void test_corners(void **st) {
  (void)st;
  for (double a = 1.5; a < 100; a *= 1.7) {
    close_rel(rdp1(1.0, 2.0, a), a / (2 * 4.0), 1e-12); /* no subsampling: alpha / (2 z^2) */
    assert_true(rdp1(0.0, 2.0, a) == 0);
    assert_true(isinf(rdp1(0.5, 0.0, a)));
  }
  double e, o;
  FM_ASSERT_OK(fm_privacy_epsilon(0.0, 1.0, 100, 1e-5, &e, &o));
  assert_true(e == 0);
  FM_ASSERT_OK(fm_privacy_epsilon(0.01, 0.0, 100, 1e-5, &e, &o));
  assert_true(isinf(e));
  /* more rounds, more epsilon; more noise, less */
  double e1, e2, e3;
  FM_ASSERT_OK(fm_privacy_epsilon(0.01, 1.0, 100, 1e-5, &e1, NULL));
  FM_ASSERT_OK(fm_privacy_epsilon(0.01, 1.0, 1000, 1e-5, &e2, NULL));
  FM_ASSERT_OK(fm_privacy_epsilon(0.01, 2.0, 1000, 1e-5, &e3, NULL));
  assert_true(e1 < e2 && e3 < e2);
}

static void test_noise_for_epsilon(void **st) {
  (void)st;
  const double targets[] = {0.5, 2.0, 8.0};
  for (int i = 0; i < 3; i++) {
    double z, e;
    FM_ASSERT_OK(fm_privacy_noise_for_epsilon(0.01, 1000, 1e-5, targets[i], &z));
    FM_ASSERT_OK(fm_privacy_epsilon(0.01, z, 1000, 1e-5, &e, NULL));
    assert_true(e <= targets[i]);
    FM_ASSERT_OK(fm_privacy_epsilon(0.01, 0.999 * z, 1000, 1e-5, &e, NULL));
    assert_true(e > targets[i]);
  }
}

static void test_bad_arguments(void **st) {
  (void)st;
  double e, z, a = 2.0, r;
  assert_int_equal(fm_privacy_epsilon(1.5, 1.0, 10, 1e-5, &e, NULL), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_privacy_epsilon(-0.1, 1.0, 10, 1e-5, &e, NULL), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_privacy_epsilon(0.1, -1.0, 10, 1e-5, &e, NULL), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_privacy_epsilon(0.1, NAN, 10, 1e-5, &e, NULL), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_privacy_epsilon(0.1, 1.0, 10, 0, &e, NULL), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_privacy_epsilon(0.1, 1.0, 10, 1, &e, NULL), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_privacy_noise_for_epsilon(0.1, 10, 1e-5, 0, &z), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_privacy_noise_for_epsilon(0.1, 10, 1e-5, INFINITY, &z), FM_ERR_HPARAM_VALUE);
  a = 1.0;
  assert_int_equal(fm_rdp_subsampled_gaussian(0.1, 1.0, &a, 1, &r), FM_ERR_HPARAM_VALUE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_anchor_tf_privacy_tutorial), cmocka_unit_test(test_integer_orders),
      cmocka_unit_test(test_fractional_orders),          cmocka_unit_test(test_corners),
      cmocka_unit_test(test_noise_for_epsilon),          cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
