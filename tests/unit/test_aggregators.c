/* tests/unit/test_aggregators.c — each aggregator's defining property through
 * the public C API (fm_aggregation_process, TFF's AggregationProcess):
 * clipping bounds every client's norm, zeroing replaces exactly the clients
 * above its threshold (norm orders 1, 2, inf), the adaptive estimate
 * converges to its target quantile, DP noise has the stated standard
 * deviation and depends only on (seed, round), and the chain text builds what
 * TFF's builders build, or says what is wrong. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fm_test.h"

/* One round over k clients' values of n floats. */
static void run_round(fm_aggregation_process *ap, float *vals, size_t n, size_t k, const float *w, double *out,
                      fm_metrics *m) {
  const float *ptrs[1024];
  assert_true(k <= 1024);
  for (size_t i = 0; i < k; i++) ptrs[i] = vals + i * n;
  FM_ASSERT_OK(fm_aggregation_process_next(ap, ptrs, w, k, out, m));
}

static double metric(fm_metrics *m, const char *path) {
  double v = NAN;
  FM_ASSERT_OK(fm_metrics_get(m, path, &v));
  return v;
}

static void test_clipping_fixed_bounds_every_client(void **st) {
  (void)st;
  fm_aggregator *mean, *agg;
  FM_ASSERT_OK(fm_aggregator_create_mean(&mean));
  FM_ASSERT_OK(fm_aggregator_create_clipping(1.0, mean, &agg));
  fm_aggregation_process *ap;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, 2, 1, &ap));
  /* norms 5, 0.5, 1: only the first is scaled, to norm 1 (not above is kept) */
  float v[] = {3, 4, 0.3f, 0.4f, 0, 1}, w[] = {1, 2, 1};
  double out[2];
  fm_metrics m;
  fm_metrics_init(&m);
  run_round(ap, v, 2, 3, w, out, &m);
  double ex0 = (0.6f + 2 * 0.3f + 0) / 4.0, ex1 = (0.8f + 2 * 0.4f + 1) / 4.0;
  assert_true(fabs(out[0] - ex0) < 1e-6 && fabs(out[1] - ex1) < 1e-6);
  assert_true(metric(&m, "aggregator/clipped_count") == 1);
  assert_true(metric(&m, "aggregator/clipping_norm") == 1.0);
  assert_true(fm_aggregation_process_state(ap, NULL) == 0); /* a fixed norm keeps no state */
  fm_metrics_free(&m);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

/* zeroing_factory: exactly the clients whose norm of the given order exceeds
 * the threshold contribute zeros, and still count in the denominator. */
static void check_zeroing(double order, double threshold, const int *expect_zeroed) {
  fm_aggregator *mean, *agg;
  FM_ASSERT_OK(fm_aggregator_create_unweighted_mean(&mean));
  FM_ASSERT_OK(fm_aggregator_create_zeroing(threshold, order, mean, &agg));
  fm_aggregation_process *ap;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, 3, 1, &ap));
  /* L1, L2, Linf norms: (6, 3.74, 3), (3, 3, 3), (4.5, 2.6, 1.5) */
  float v[] = {1, 2, 3, 0, 3, 0, 1.5f, 1.5f, 1.5f};
  double out[3], ex[3] = {0, 0, 0};
  int zeroed = 0;
  for (int i = 0; i < 3; i++) {
    zeroed += expect_zeroed[i];
    for (int j = 0; j < 3; j++) ex[j] += expect_zeroed[i] ? 0 : v[i * 3 + j] / 3.0;
  }
  fm_metrics m;
  fm_metrics_init(&m);
  run_round(ap, v, 3, 3, NULL, out, &m);
  for (int j = 0; j < 3; j++) assert_true(fabs(out[j] - ex[j]) < 1e-6);
  assert_true(metric(&m, "aggregator/zeroed_count") == zeroed);
  assert_true(metric(&m, "aggregator/zeroing_norm") == threshold);
  fm_metrics_free(&m);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

static void test_zeroing_orders(void **st) {
  (void)st;
  int l1[] = {1, 0, 1}, l2[] = {1, 0, 0}, linf[] = {0, 0, 0}, linf2[] = {1, 1, 0};
  check_zeroing(1, 4.0, l1);
  check_zeroing(2, 3.5, l2);
  check_zeroing(INFINITY, 3.0, linf); /* not above: kept */
  check_zeroing(INFINITY, 2.9, linf2);
  fm_aggregator *mean, *agg;
  FM_ASSERT_OK(fm_aggregator_create_mean(&mean));
  assert_int_equal(fm_aggregator_create_zeroing(1.0, 3, mean, &agg), FM_ERR_HPARAM_VALUE);
}

/* The quantile estimate converges to the target quantile of a known norm
 * distribution: client i of 100 has norm (i + 1) / 10, so the q-quantile is
 * about 10 q. */
static void check_adaptive_quantile(double q, double lr) {
  fm_aggregator *mean, *agg;
  FM_ASSERT_OK(fm_aggregator_create_mean(&mean));
  fm_quantile_estimate est = fm_quantile_estimate_no_noise(1.0, q, lr);
  FM_ASSERT_OK(fm_aggregator_create_clipping_adaptive(&est, mean, &agg));
  fm_aggregation_process *ap;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, 1, 1, &ap));
  float v[100];
  for (int i = 0; i < 100; i++) v[i] = (float)(i + 1) / 10.0f;
  double out[1];
  for (int r = 0; r < 400; r++) run_round(ap, v, 1, 100, NULL, out, NULL);
  const double *s;
  assert_true(fm_aggregation_process_state(ap, &s) == 1);
  /* the estimate settles where the fraction below crosses q: within two
   * clients' norms of the true quantile */
  assert_true(fabs(s[0] - 10 * q) <= 0.25);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

static void test_adaptive_clipping_converges(void **st) {
  (void)st;
  check_adaptive_quantile(0.8, 0.2);
  check_adaptive_quantile(0.5, 0.2);
  check_adaptive_quantile(0.2, 0.1);
}

/* robust_aggregator's defaults: zeroing at 2 * 10 + 1, clipping at 1, and
 * one geometric step after the first round. */
static void test_robust_defaults(void **st) {
  (void)st;
  fm_aggregator *agg;
  FM_ASSERT_OK(fm_aggregator_create_robust(1, 1, 1, &agg));
  assert_string_equal(fm_aggregator_name(agg), "zeroing(clipping(mean))");
  fm_aggregation_process *ap;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, 1, 1, &ap));
  float v[] = {0.5f, 2.0f, 30.0f, 0.1f};
  double out[1];
  fm_metrics m;
  fm_metrics_init(&m);
  run_round(ap, v, 1, 4, NULL, out, &m);
  assert_true(metric(&m, "aggregator/zeroing_norm") == 21.0);
  assert_true(metric(&m, "aggregator/zeroed_count") == 1);
  assert_true(metric(&m, "aggregator/zeroing/clipping_norm") == 1.0);
  assert_true(metric(&m, "aggregator/zeroing/clipped_count") == 1); /* 2.0; 30 was zeroed before clipping */
  assert_true(fabs(out[0] - (0.5 + 1.0 + 0.0 + 0.1) / 4.0) < 1e-6);
  const double *s;
  assert_true(fm_aggregation_process_state(ap, &s) == 2);
  /* zeroing's estimate: 3 of 4 norms <= 10: 10 exp(-ln10 (0.75 - 0.98));
   * clipping's: 2 of 4 (30 is zeroed to norm 0, 0.1 and 0.5 below): all
   * norms the clipping sees are 0.5, 2, 0, 0.1, so 3 of 4 <= 1 */
  assert_true(fabs(s[0] - 10 * exp(-log(10.0) * (0.75 - 0.98))) < 1e-9);
  assert_true(fabs(s[1] - exp(-0.2 * (0.75 - 0.8))) < 1e-9);
  fm_metrics_free(&m);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

/* Sample standard deviation of out[0..n). */
static double stddev(const double *x, size_t n, double *mean) {
  double s = 0, ss = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  *mean = s / (double)n;
  for (size_t i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
  return sqrt(ss / (double)(n - 1));
}

/* gaussian_fixed: zero values, so the output is pure noise / K with stddev
 * clip * z / K; with 40,000 coordinates the sample stddev is within 2 %
 * (its own relative error is 1 / sqrt(2n) = 0.35 %). */
static void test_dp_fixed_noise_stddev(void **st) {
  (void)st;
  const size_t n = 40000, k = 10;
  fm_aggregator *agg;
  FM_ASSERT_OK(fm_aggregator_create_dp_gaussian_fixed(2.0, k, 0.5, &agg));
  assert_false(fm_aggregator_is_weighted(agg));
  fm_aggregation_process *ap, *ap2;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, n, 42, &ap));
  FM_ASSERT_OK(fm_aggregation_process_create(agg, n, 42, &ap2));
  float *v = calloc(n * k, sizeof *v);
  double *out = malloc(n * sizeof *out), *out2 = malloc(n * sizeof *out2), mean;
  run_round(ap, v, n, k, NULL, out, NULL);
  double sd = stddev(out, n, &mean);
  assert_true(fabs(sd - 0.5 * 2.0 / 10.0) < 0.02 * 0.1);
  assert_true(fabs(mean) < 4 * 0.1 / sqrt((double)n));
  /* the same (seed, round) gives the same bits; the next round other ones */
  run_round(ap2, v, n, k, NULL, out2, NULL);
  assert_memory_equal(out, out2, n * sizeof *out);
  run_round(ap2, v, n, k, NULL, out2, NULL);
  assert_true(memcmp(out, out2, n * sizeof *out) != 0);
  /* a cohort of another size is refused */
  const float *ptrs[3] = {v, v, v};
  assert_int_equal(fm_aggregation_process_next(ap, ptrs, NULL, 3, out, NULL), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_aggregator_check_cohort_size(agg, 9), FM_ERR_HPARAM_VALUE);
  free(v);
  free(out);
  free(out2);
  fm_aggregation_process_destroy(&ap);
  fm_aggregation_process_destroy(&ap2);
  fm_aggregator_destroy(&agg);
}

/* gaussian_adaptive splits z: z_v = (z^-2 - (2 sigma_b)^-2)^(-1/2); with
 * z = 1, K = 100, sigma_b = 5: z_v = 1 / sqrt(0.99). */
static void test_dp_adaptive_split(void **st) {
  (void)st;
  fm_aggregator *agg;
  FM_ASSERT_OK(fm_aggregator_create_dp_gaussian_adaptive(1.0, 100, NULL, &agg));
  assert_true(fabs(fm_aggregator_value_noise_multiplier(agg) - 1.0 / sqrt(0.99)) < 1e-12);
  double z;
  uint64_t k;
  assert_int_equal(fm_aggregator_dp_params(agg, &z, &k), 1);
  assert_true(z == 1.0 && k == 100);
  const size_t n = 20000;
  fm_aggregation_process *ap;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, n, 7, &ap));
  float *v = calloc(n * 100, sizeof *v);
  double *out = malloc(n * sizeof *out), mean;
  fm_metrics m;
  fm_metrics_init(&m);
  run_round(ap, v, n, 100, NULL, out, &m);
  assert_true(metric(&m, "aggregator/dp_query_metrics/clip") == 0.1);
  double sd = stddev(out, n, &mean), want = 0.1 / sqrt(0.99) / 100.0;
  assert_true(fabs(sd - want) < 0.03 * want);
  const double *s;
  assert_true(fm_aggregation_process_state(ap, &s) == 1);
  /* every norm (0) was below the clip: b is about 1 (plus count noise of
   * stddev 5 / 100), so the clip shrinks by about exp(-0.2 * 0.5) */
  assert_true(s[0] < 0.1 && s[0] > 0.1 * exp(-0.2 * 0.5 - 0.2 * 0.25));
  fm_metrics_free(&m);
  free(v);
  free(out);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
  /* z >= 2 sigma_b is impossible to split */
  assert_int_equal(fm_aggregator_create_dp_gaussian_adaptive(1.0, 10, NULL, &agg), FM_ERR_HPARAM_VALUE);
  fm_dp_adaptive d = fm_dp_adaptive_defaults(10);
  assert_true(d.clipped_count_stddev == 0.5 && d.initial_l2_norm_clip == 0.1);
  d.clipped_count_stddev = 1.0;
  FM_ASSERT_OK(fm_aggregator_create_dp_gaussian_adaptive(1.0, 10, &d, &agg));
  fm_aggregator_destroy(&agg);
  assert_int_equal(fm_aggregator_create_dp_gaussian_fixed(-1, 10, 1, &agg), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_aggregator_create_dp_gaussian_fixed(NAN, 10, 1, &agg), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_aggregator_create_dp_gaussian_fixed(1, 10, 0, &agg), FM_ERR_HPARAM_VALUE);
  assert_int_equal(fm_aggregator_create_dp_gaussian_fixed(1, 0, 1, &agg), FM_ERR_HPARAM_VALUE);
}

static void spec_ok(const char *spec, const char *name) {
  fm_aggregator *agg = NULL;
  FM_ASSERT_OK(fm_aggregator_create_from_spec(spec, &agg));
  assert_string_equal(fm_aggregator_name(agg), name);
  fm_aggregator_destroy(&agg);
}

static void spec_bad(const char *spec, int code, const char *needle) {
  fm_aggregator *agg = NULL;
  assert_int_equal(fm_aggregator_create_from_spec(spec, &agg), code);
  assert_null(agg);
  if (!strstr(fm_last_error(), needle)) fail_msg("'%s': message '%s' lacks '%s'", spec, fm_last_error(), needle);
}

static void test_spec(void **st) {
  (void)st;
  spec_ok("mean", "mean");
  spec_ok(" unweighted_mean ( ) ", "unweighted_mean");
  spec_ok("clipping(clipping_norm=0.5)", "clipping(mean)");
  spec_ok("zeroing(clipping(unweighted_mean, clipping_norm=no_noise(initial_estimate=1, target_quantile=0.8, "
          "learning_rate=0.2)), zeroing_norm=no_noise(initial_estimate=10, target_quantile=0.98, learning_rate=2.3, "
          "multiplier=2, increment=1), norm_order=inf)",
          "zeroing(clipping(unweighted_mean))");
  spec_ok("robust_aggregator()", "zeroing(clipping(mean))");
  spec_ok("robust_aggregator(zeroing=false, weighted=false)", "clipping(unweighted_mean)");
  spec_ok("dp_aggregator(noise_multiplier=1, clients_per_round=100)",
          "zeroing(gaussian_adaptive(noise_multiplier=1,clients_per_round=100))");
  spec_ok("gaussian_fixed(noise_multiplier=1.5, clients_per_round=10, clip=0.1)",
          "gaussian_fixed(noise_multiplier=1.5,clients_per_round=10,clip=0.1)");
  spec_bad("medain", FM_ERR_CONFIG, "unknown aggregator 'medain'");
  spec_bad("clipping(mean", FM_ERR_CONFIG, "expected ',' or ')'");
  spec_bad("clipping(mean)", FM_ERR_CONFIG, "needs clipping_norm=");
  spec_bad("clipping(mean, clipping_norm=-0.5)", FM_ERR_HPARAM_VALUE, "clipping_norm must be a finite number > 0");
  spec_bad("clipping(mean, clipping_norm=0.5, norm=1)", FM_ERR_CONFIG, "has no argument 'norm'");
  spec_bad("mean mean", FM_ERR_CONFIG, "unexpected 'mean'");
  spec_bad("dp_aggregator(noise_multiplier=1)", FM_ERR_CONFIG, "needs clients_per_round=");
  spec_bad("dp_aggregator(noise_multiplier=1, clients_per_round=2.5)", FM_ERR_HPARAM_VALUE, "whole number");
  spec_bad("gaussian_fixed(noise_multiplier=1, clients_per_round=10, clip=1, mean)", FM_ERR_CONFIG,
           "takes no inner aggregator");
  spec_bad("zeroing(mean, zeroing_norm=no_noise(initial_estimate=1, target_quantile=2, learning_rate=1))",
           FM_ERR_HPARAM_VALUE, "target_quantile must be in [0, 1]");
  spec_bad("zeroing(mean, zeroing_norm=1, norm_order=3)", FM_ERR_HPARAM_VALUE, "norm_order must be 1, 2 or inf");
}

/* ---- secure_mean / secure_aggregator (SecureSumFactory inside MeanFactory) ---- */

/* Four clients of three values, weights 1..4 (the last one above 2^20 - 1
 * when big_weight); client 2 has a value above the upper bound (2), client 3
 * one below the lower bound (-2), after weighting. */
static void secure_inputs(float *vals, float *w, int big_weight) {
  const float v[12] = {0.5f, -0.25f, 0.125f, 0.3f, 0.2f, -0.1f, 0.4f, 5.0f, 0.0f, -0.4f, 0.1f, -3.0f};
  memcpy(vals, v, sizeof v);
  for (int i = 0; i < 4; i++) w[i] = (float)(i + 1);
  if (big_weight) w[3] = 2e6f;
}

static void secure_round(int masks, int big_weight, double *out, fm_metrics *m) {
  float vals[12], w[4];
  secure_inputs(vals, w, big_weight);
  fm_aggregator *agg = NULL;
  FM_ASSERT_OK(fm_aggregator_create_secure_mean(2.0, -2.0, NULL, 1, masks, &agg));
  fm_aggregation_process *ap = NULL;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, 3, 7, &ap));
  fm_metrics_init(m);
  run_round(ap, vals, 3, 4, w, out, m);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

static void test_secure_mean_inside_bounds(void **st) {
  (void)st;
  /* All w·v inside [-2, 2]: the plain weighted mean to the quantisation step. */
  const float vals[6] = {0.5f, -0.25f, 0.125f, 0.3f, 0.2f, -0.1f}, w[2] = {1, 3};
  fm_aggregator *agg = NULL;
  FM_ASSERT_OK(fm_aggregator_create_secure_mean(2.0, -2.0, NULL, 1, 0, &agg));
  fm_aggregation_process *ap = NULL;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, 3, 1, &ap));
  double out[3];
  run_round(ap, (float *)vals, 3, 2, w, out, NULL);
  const double step = 4.0 / 4294967295.0;
  for (int j = 0; j < 3; j++) assert_true(fabs(out[j] - (vals[j] * 1 + vals[3 + j] * 3) / 4.0) <= 2 * step);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

static void test_secure_mean_clipped_counts(void **st) {
  (void)st;
  double out[3];
  fm_metrics mm, *m = &mm;
  secure_round(0, 1, out, m);
  assert_true(metric(m, "aggregator/mean_value/secure_upper_threshold") == 2.0);
  assert_true(metric(m, "aggregator/mean_value/secure_lower_threshold") == -2.0);
  /* above: client 2 (5·3 = 15 > 2) and client 3 (0.1·2e6); below: client 3
   * only (-0.4·2e6, -3·2e6); a client counts once per side */
  assert_true(metric(m, "aggregator/mean_value/secure_upper_clipped_count") == 2.0);
  assert_true(metric(m, "aggregator/mean_value/secure_lower_clipped_count") == 1.0);
  assert_true(metric(m, "aggregator/mean_weight/secure_upper_threshold") == 1048575.0);
  assert_true(metric(m, "aggregator/mean_weight/secure_upper_clipped_count") == 1.0);
  assert_true(metric(m, "aggregator/mean_weight/secure_lower_clipped_count") == 0.0);
  /* value sums of the clipped w·v over the clipped weight sum 1 + 2 + 3 + (2^20 - 1) */
  const double denom = 6.0 + 1048575.0;
  const double expect1 = (-0.25 + 0.2 * 2 + 2.0 + 2.0) / denom; /* 5·3 and 0.1·2e6 clipped to 2 */
  assert_true(fabs(out[1] - expect1) < 1e-8);
  fm_metrics_free(m);
}

static void test_secure_mean_masks_bit_identical(void **st) {
  (void)st;
  double a[3], b[3];
  fm_metrics sa, sb, *ma = &sa, *mb = &sb;
  secure_round(0, 0, a, ma);
  secure_round(1, 0, b, mb);
  assert_memory_equal(a, b, sizeof a);
  assert_true(metric(mb, "aggregator/mean_value/secagg_bits_per_client") > 3 * 32);
  assert_true(metric(mb, "aggregator/mean_value/secure_upper_clipped_count") ==
              metric(ma, "aggregator/mean_value/secure_upper_clipped_count"));
  fm_metrics_free(ma);
  fm_metrics_free(mb);
}

static void test_secure_mean_adaptive_bound(void **st) {
  (void)st;
  fm_quantile_estimate q = {50.0, 0.95, 1.0, 2.0, 0.0};
  fm_aggregator *agg = NULL;
  FM_ASSERT_OK(fm_aggregator_create_secure_mean(0, 0, &q, 0, 0, &agg));
  fm_aggregation_process *ap = NULL;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, 2, 1, &ap));
  /* max |v|: 1, 60, 70, 2 -> half the clients at or below C = 50 */
  float vals[8] = {1, -0.5f, 60, 0, 0, -70, 2, 1};
  double out[2];
  fm_metrics mm, *m = &mm;
  fm_metrics_init(m);
  run_round(ap, vals, 2, 4, NULL, out, m);
  assert_true(metric(m, "aggregator/mean_value/secure_upper_threshold") == 100.0);
  assert_true(metric(m, "aggregator/mean_value/secure_lower_threshold") == -100.0);
  assert_true(metric(m, "aggregator/mean_count/secure_upper_threshold") == 1.0);
  const double *s = NULL;
  assert_int_equal(fm_aggregation_process_state(ap, &s), 1);
  assert_true(fabs(s[0] - 50.0 * exp(-1.0 * (0.5 - 0.95))) < 1e-12);
  fm_metrics_free(m);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

static void test_secure_spec(void **st) {
  (void)st;
  spec_ok("secure_mean(upper_bound_threshold=1)", "secure_mean(upper_bound_threshold=1,lower_bound_threshold=-1,weighted=1)");
  spec_ok("secure_mean(upper_bound_threshold=3, lower_bound_threshold=-1, weighted=false, masks=true)",
          "secure_mean(upper_bound_threshold=3,lower_bound_threshold=-1,weighted=0,masks=true)");
  spec_ok("secure_mean(upper_bound_threshold=no_noise(initial_estimate=50, target_quantile=0.95, learning_rate=1, "
          "multiplier=2))",
          "secure_mean(upper_bound_threshold=no_noise(...),weighted=1)");
  spec_ok("secure_aggregator()", "zeroing(clipping(secure_mean(upper_bound_threshold=no_noise(...),weighted=1)))");
  spec_ok("secure_aggregator(zeroing=false, clipping=false, weighted=false)",
          "secure_mean(upper_bound_threshold=no_noise(...),weighted=0)");
  spec_bad("secure_mean(upper_bound_threshold=1, lower_bound_threshold=1)", FM_ERR_HPARAM_VALUE,
           "upper_bound_threshold");
  spec_bad("secure_mean(upper_bound_threshold=inf)", FM_ERR_HPARAM_VALUE, "upper_bound_threshold");
  spec_bad("secure_mean(upper_bound_threshold=1, lower_bound_threshold=-inf)", FM_ERR_HPARAM_VALUE,
           "lower_bound_threshold");
  spec_bad("secure_mean(upper_bound_threshold=no_noise(initial_estimate=-1, target_quantile=0.5, learning_rate=1))",
           FM_ERR_HPARAM_VALUE, "upper_bound_threshold");
  spec_bad("secure_mean", FM_ERR_CONFIG, "upper_bound_threshold");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clipping_fixed_bounds_every_client),
      cmocka_unit_test(test_zeroing_orders),
      cmocka_unit_test(test_adaptive_clipping_converges),
      cmocka_unit_test(test_robust_defaults),
      cmocka_unit_test(test_dp_fixed_noise_stddev),
      cmocka_unit_test(test_dp_adaptive_split),
      cmocka_unit_test(test_spec),
      cmocka_unit_test(test_secure_mean_inside_bounds),
      cmocka_unit_test(test_secure_mean_clipped_counts),
      cmocka_unit_test(test_secure_mean_masks_bit_identical),
      cmocka_unit_test(test_secure_mean_adaptive_bound),
      cmocka_unit_test(test_secure_spec),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
