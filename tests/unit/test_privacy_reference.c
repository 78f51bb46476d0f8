/* tests/unit/test_privacy_reference.c — the RDP accountant (fedmpi/privacy.h) against
 * values computed independently of its log-space series: a published anchor
 * (TF Privacy's MNIST DP-SGD tutorial), a direct long-double binomial sum for
 * integer orders, and a 40-digit numerical integration of the defining
 * integral for fractional orders. */
#include <math.h>
#include <string.h>

#include "fm_test.h"

static void test_default_orders(void **st) {
  (void)st;
  const double *o;
  size_t n;
  fm_rdp_default_orders(&o, &n);
  assert_int_equal(n, 99 + 53 + 4);
  assert_true(fabs(o[0] - 1.1) < 1e-12);
  assert_true(fabs(o[98] - 10.9) < 1e-12);
  assert_true(o[99] == 11.0 && o[151] == 63.0);
  assert_true(o[152] == 128.0 && o[155] == 1024.0);
  for (size_t i = 1; i < n; i++) assert_true(o[i] > o[i - 1]);
}

/* TF Privacy tutorial: z = 1.1, q = 256/60000, 60 epochs = 14062 steps,
 * delta = 1e-5: epsilon 3.01 with the classic conversion. */
static void test_anchor_tutorial(void **st) {
  (void)st;
  const double *o;
  size_t n;
  fm_rdp_default_orders(&o, &n);
  double rdp[160], eps, order, eps2, order2;
  FM_ASSERT_OK(fm_rdp_subsampled_gaussian(256.0 / 60000.0, 1.1, o, n, rdp));
  for (size_t i = 0; i < n; i++) rdp[i] *= 14062;
  FM_ASSERT_OK(fm_rdp_to_epsilon_classic(o, rdp, n, 1e-5, &eps, &order));
  assert_true(eps > 2.95 && eps < 3.05);
  FM_ASSERT_OK(fm_rdp_to_epsilon(o, rdp, n, 1e-5, &eps2, &order2));
  assert_true(eps2 > 0 && eps2 < eps);
  double eps3, order3;
  FM_ASSERT_OK(fm_privacy_epsilon(256.0 / 60000.0, 1.1, 14062, 1e-5, &eps3, &order3));
  assert_true(eps3 == eps2 && order3 == order2);
}

/* Test-side closed form in long double: A = sum_k C(a,k) (1-q)^(a-k) q^k exp((k^2-k)/(2 s^2)). */
static double direct_rdp_int(double q, double s, int a) {
  long double sum = 0, coef = 1; /* C(a, k) */
  for (int k = 0; k <= a; k++) {
    if (k > 0) coef = coef * (a - k + 1) / k;
    sum += coef * powl(1.0L - q, a - k) * powl(q, k) * expl((long double)(k * k - k) / (2.0L * s * s));
  }
  return (double)(logl(sum) / (a - 1));
}

static void test_integer_orders(void **st) {
  (void)st;
  const double qs[] = {0.01, 0.05, 0.2, 0.6}, zs[] = {0.9, 1.1, 2.0, 4.0};
  double orders[19], rdp[19];
  for (int a = 2; a <= 20; a++) orders[a - 2] = a;
  for (int c = 0; c < 4; c++) {
    FM_ASSERT_OK(fm_rdp_subsampled_gaussian(qs[c], zs[c], orders, 19, rdp));
    for (int a = 2; a <= 20; a++) {
      double want = direct_rdp_int(qs[c], zs[c], a), got = rdp[a - 2];
      if (!(fabs(got - want) <= 1e-9 * fabs(want)))
        fail_msg("q=%g z=%g alpha=%d: %.17g, direct sum %.17g", qs[c], zs[c], a, got, want);
    }
  }
}

/* Reference RDP at fractional (and some integer) orders: A_alpha =
 * int N(x; 0, z^2) (1 - q + q exp((2x - 1) / (2 z^2)))^alpha dx by the
 * trapezoid rule on [-40z, alpha + 40z], step min(z, z^2)/24, in Python's
 * decimal with 40 digits (the integrand is analytic in a strip of half-width
 * pi z^2, so the rule converges geometrically), then ln(A) / (alpha - 1),
 * printed to 16 digits. Agreement with the library is ~1e-10 relative. */
static const struct {
  double q, z, alpha, rdp;
} frac_ref[] = {
    {0.01, 0.8, 2.5, 4.894537156697903e-04},  {0.01, 0.8, 3, 6.133681964598186e-04},
    {0.01, 0.8, 3.5, 7.534485019607496e-04},  {0.01, 0.8, 5.5, 2.262577633591982e-03},
    {0.01, 0.8, 10.5, 3.113239214690605e+00}, {0.1, 1.1, 2.5, 1.714340882217385e-02},
    {0.1, 1.1, 3, 2.231137657106933e-02},     {0.1, 1.1, 3.5, 2.860165770092361e-02},
    {0.1, 1.1, 5.5, 8.699614349541747e-02},   {0.1, 1.1, 10.5, 1.797833143566519e+00},
    {0.5, 2.0, 2.5, 8.862984552424610e-02},   {0.5, 2.0, 3, 1.100231933576233e-01},
    {0.5, 2.0, 3.5, 1.328955404063609e-01},   {0.5, 2.0, 5.5, 2.416050341237729e-01},
    {0.5, 2.0, 10.5, 6.585099503800528e-01},
};

static void test_fractional_orders(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof frac_ref / sizeof frac_ref[0]; i++) {
    double got;
    FM_ASSERT_OK(fm_rdp_subsampled_gaussian(frac_ref[i].q, frac_ref[i].z, &frac_ref[i].alpha, 1, &got));
    if (!(fabs(got - frac_ref[i].rdp) <= 1e-8 * frac_ref[i].rdp))
      fail_msg("q=%g z=%g alpha=%g: %.17g, integral %.17g", frac_ref[i].q, frac_ref[i].z, frac_ref[i].alpha, got,
               frac_ref[i].rdp);
  }
  /* RDP is nondecreasing in alpha: k + 0.5 lies between k and k + 1. */
  const double qs[] = {1e-3, 0.01, 0.3}, zs[] = {0.7, 1.1, 3.0};
  for (int c = 0; c < 3; c++)
    for (int k = 2; k < 40; k++) {
      double o[3] = {k, k + 0.5, k + 1}, r[3];
      FM_ASSERT_OK(fm_rdp_subsampled_gaussian(qs[c], zs[c], o, 3, r));
      if (!(r[0] <= r[1] * (1 + 1e-12) && r[1] <= r[2] * (1 + 1e-12)))
        fail_msg("q=%g z=%g: rdp(%d)=%g rdp(%g)=%g rdp(%d)=%g", qs[c], zs[c], k, r[0], k + 0.5, r[1], k + 1, r[2]);
    }
}

static void test_limits(void **st) {
  (void)st;
  const double *o;
  size_t n;
  fm_rdp_default_orders(&o, &n);
  double rdp[160];
  FM_ASSERT_OK(fm_rdp_subsampled_gaussian(1.0, 1.3, o, n, rdp));
  for (size_t i = 0; i < n; i++) assert_true(fabs(rdp[i] - o[i] / (2 * 1.3 * 1.3)) <= 1e-12 * rdp[i]);
  FM_ASSERT_OK(fm_rdp_subsampled_gaussian(0.0, 1.3, o, n, rdp));
  for (size_t i = 0; i < n; i++) assert_true(rdp[i] == 0.0);
  FM_ASSERT_OK(fm_rdp_subsampled_gaussian(0.01, 0.0, o, n, rdp));
  for (size_t i = 0; i < n; i++) assert_true(isinf(rdp[i]) && rdp[i] > 0);
  /* large orders and small noise stay finite and ordered */
  FM_ASSERT_OK(fm_rdp_subsampled_gaussian(1e-4, 0.5, o, n, rdp));
  for (size_t i = 0; i < n; i++) {
    assert_true(isfinite(rdp[i]) && rdp[i] >= 0);
    if (i > 0) assert_true(rdp[i] >= rdp[i - 1] * (1 - 1e-12));
  }
  /* fractional orders up to 1024: finite, ordered, below the unsampled alpha / (2 z^2) */
  const double big[] = {63.5, 200.5, 500.5, 1023, 1023.5, 1024}, bq[] = {1e-6, 0.01, 0.99}, bz[] = {0.3, 1.0, 5.0};
  for (int c = 0; c < 3; c++) {
    double r[6];
    FM_ASSERT_OK(fm_rdp_subsampled_gaussian(bq[c], bz[c], big, 6, r));
    for (int i = 0; i < 6; i++) {
      if (!(isfinite(r[i]) && r[i] >= 0 && r[i] <= big[i] / (2 * bz[c] * bz[c]) * (1 + 1e-12)))
        fail_msg("q=%g z=%g alpha=%g: rdp %g", bq[c], bz[c], big[i], r[i]);
      if (i > 0 && !(r[i] >= r[i - 1] * (1 - 1e-12)))
        fail_msg("q=%g z=%g: rdp(%g)=%g < rdp(%g)=%g", bq[c], bz[c], big[i], r[i], big[i - 1], r[i - 1]);
    }
  }
  double eps;
  FM_ASSERT_OK(fm_privacy_epsilon(0.0, 1.0, 1000, 1e-5, &eps, NULL));
  assert_true(eps == 0.0);
  FM_ASSERT_OK(fm_privacy_epsilon(0.01, 0.0, 1000, 1e-5, &eps, NULL));
  assert_true(isinf(eps));
}

static void test_noise_for_epsilon(void **st) {
  (void)st;
  const struct {
    double q;
    uint64_t steps;
    double delta, target;
  } cases[] = {{256.0 / 60000.0, 14062, 1e-5, 3.0}, {0.01, 1000, 1e-6, 1.0}, {0.1, 100, 1e-5, 8.0}, {1.0, 10, 1e-5, 2.0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double z, eps_at, eps_below;
    FM_ASSERT_OK(fm_privacy_noise_for_epsilon(cases[i].q, cases[i].steps, cases[i].delta, cases[i].target, &z));
    FM_ASSERT_OK(fm_privacy_epsilon(cases[i].q, z, cases[i].steps, cases[i].delta, &eps_at, NULL));
    FM_ASSERT_OK(fm_privacy_epsilon(cases[i].q, 0.999 * z, cases[i].steps, cases[i].delta, &eps_below, NULL));
    if (!(eps_at <= cases[i].target && eps_below > cases[i].target))
      fail_msg("case %zu: z=%.8g eps(z)=%.8g eps(0.999z)=%.8g target %g", i, z, eps_at, eps_below, cases[i].target);
  }
  double z = -1;
  FM_ASSERT_OK(fm_privacy_noise_for_epsilon(0.0, 100, 1e-5, 1.0, &z));
  assert_true(z == 0.0);
}

static void expect_message(int code, int rc, const char *needle) {
  if (rc != code) fail_msg("%s, expected %s", fm_err_name(rc), fm_err_name(code));
  if (!strstr(fm_last_error(), needle)) fail_msg("message '%s' lacks '%s'", fm_last_error(), needle);
}

static void test_bad_arguments(void **st) {
  (void)st;
  double o[2] = {2.0, 3.5}, r[2] = {0.1, 0.2}, eps, z;
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_subsampled_gaussian(-0.1, 1.0, o, 2, r), "q");
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_subsampled_gaussian(1.5, 1.0, o, 2, r), "q");
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_subsampled_gaussian(NAN, 1.0, o, 2, r), "q");
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_subsampled_gaussian(0.1, -1.0, o, 2, r), "noise multiplier");
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_subsampled_gaussian(0.1, INFINITY, o, 2, r), "noise multiplier");
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_subsampled_gaussian(0.1, NAN, o, 2, r), "noise multiplier");
  double bad_o[1] = {1.0};
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_subsampled_gaussian(0.1, 1.0, bad_o, 1, r), "order");
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_to_epsilon(o, r, 2, 0.0, &eps, NULL), "delta");
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_to_epsilon(o, r, 2, 1.0, &eps, NULL), "delta");
  expect_message(FM_ERR_HPARAM_VALUE, fm_rdp_to_epsilon_classic(o, r, 2, -1e-5, &eps, NULL), "delta");
  expect_message(FM_ERR_HPARAM_VALUE, fm_privacy_epsilon(0.1, 1.0, 10, NAN, &eps, NULL), "delta");
  expect_message(FM_ERR_HPARAM_VALUE, fm_privacy_epsilon(2.0, 1.0, 10, 1e-5, &eps, NULL), "q");
  expect_message(FM_ERR_HPARAM_VALUE, fm_privacy_noise_for_epsilon(0.1, 10, 1e-5, 0.0, &z), "target epsilon");
  expect_message(FM_ERR_HPARAM_VALUE, fm_privacy_noise_for_epsilon(0.1, 10, 1e-5, -1.0, &z), "target epsilon");
  expect_message(FM_ERR_HPARAM_VALUE, fm_privacy_noise_for_epsilon(0.1, 10, 1e-5, INFINITY, &z), "target epsilon");
  expect_message(FM_ERR_HPARAM_VALUE, fm_privacy_noise_for_epsilon(0.1, 10, 2.0, 1.0, &z), "delta");
  expect_message(FM_ERR_HPARAM_VALUE, fm_privacy_noise_for_epsilon(-0.1, 10, 1e-5, 1.0, &z), "q");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_orders),   cmocka_unit_test(test_anchor_tutorial),
      cmocka_unit_test(test_integer_orders),   cmocka_unit_test(test_fractional_orders),
      cmocka_unit_test(test_limits),           cmocka_unit_test(test_noise_for_epsilon),
      cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
