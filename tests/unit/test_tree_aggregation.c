/* tests/unit/test_tree_aggregation.c — DP-FTRL's tree aggregation
 * (DifferentiallyPrivateFactory.tree_aggregation / tree_adaptive) through the
 * public C API (fm_aggregation_process):
 *   - the defining property: added over rounds 0..T-1, the residual noise
 *     telescopes to the tree's cumulative noise after T leaves, whose variance
 *     follows from the algorithm and not from the code: popcount(T) * s^2 for
 *     the plain tree (one node per set bit of T), and
 *     s^2 * sum over set bits l of T of 1 / (2 - 2^-l) for Honaker's
 *     efficient tree (a level-l value has variance (2 - 2^-l) s^2 and weight
 *     1 / (2 - 2^-l)); with s = clip * z / clients_per_round;
 *   - without noise the result is the clipped sum over clients_per_round;
 *   - tree_adaptive's estimate converges to the target quantile of a known
 *     norm distribution, and the clip the values use changes only at the
 *     restarts (after restart_warmup rounds, then every restart_frequency);
 *   - the same seed gives the same bits, the spec text builds them, and bad
 *     parameters are refused with the parameter's name. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fm_test.h"

static void run_round(fm_aggregation_process *ap, const float *vals, size_t n, size_t k, double *out,
                      fm_metrics *m) {
  const float *ptrs[256];
  assert_true(k <= 256);
  for (size_t i = 0; i < k; i++) ptrs[i] = vals + i * n;
  FM_ASSERT_OK(fm_aggregation_process_next(ap, ptrs, NULL, k, out, m));
}

static double metric(fm_metrics *m, const char *path) {
  double v = NAN;
  FM_ASSERT_OK(fm_metrics_get(m, path, &v));
  return v;
}

static unsigned popcount(unsigned x) {
  unsigned c = 0;
  for (; x; x >>= 1) c += x & 1u;
  return c;
}

/* Variance of the cumulative noise after T leaves, in units of s^2. */
static double tree_variance(unsigned T, int efficient) {
  if (!efficient) return popcount(T);
  double v = 0;
  for (unsigned l = 0; T >> l; l++)
    if ((T >> l) & 1u) v += 1.0 / (2.0 - ldexp(1.0, -(int)l));
  return v;
}

/* Zero values: the running sum of the results over rounds is the tree's
 * cumulative noise; its variance over 40,000 coordinates is within 4 % of
 * the formula (the sample variance's own relative error is sqrt(2 / n) = 0.7 %). */
static void check_tree_variance(int efficient) {
  const size_t n = 40000, k = 4;
  const double clip = 0.5, z = 2.0, s = clip * z / (double)k;
  fm_aggregator *agg;
  FM_ASSERT_OK(fm_aggregator_create_dp_tree_aggregation(z, k, clip, efficient, &agg));
  assert_false(fm_aggregator_is_weighted(agg));
  uint64_t warm = 9, freq = 9;
  assert_true(fm_aggregator_dp_tree(agg, &warm, &freq));
  assert_true(warm == 0 && freq == 0);
  fm_aggregation_process *ap;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, n, 7, &ap));
  float *v = calloc(n * k, sizeof *v);
  double *out = malloc(n * sizeof *out), *cum = calloc(n, sizeof *cum);
  for (unsigned T = 1; T <= 16; T++) {
    run_round(ap, v, n, k, out, NULL);
    double ss = 0, mean = 0;
    for (size_t i = 0; i < n; i++) {
      cum[i] += out[i];
      mean += cum[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) ss += (cum[i] - mean) * (cum[i] - mean);
    double var = ss / (double)(n - 1) / (s * s), want = tree_variance(T, efficient);
    if (fabs(var / want - 1) > 0.04) fail_msg("efficient=%d T=%u: variance %g s^2, want %g s^2", efficient, T, var, want);
  }
  free(v);
  free(out);
  free(cum);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

static void test_plain_tree_variance(void **st) {
  (void)st;
  check_tree_variance(0);
}

static void test_efficient_tree_variance(void **st) {
  (void)st;
  check_tree_variance(1);
}

/* z = 0: the clipped sum over clients_per_round, exactly; the clip measured. */
static void test_no_noise_is_clipped_mean(void **st) {
  (void)st;
  const size_t n = 3, k = 2;
  float v[6] = {3, 4, 0, /* norm 5: scaled to 1 */ 0.3f, 0.4f, 0 /* norm 0.5: kept */};
  fm_aggregator *agg;
  FM_ASSERT_OK(fm_aggregator_create_dp_tree_aggregation(0.0, k, 1.0, 1, &agg));
  fm_aggregation_process *ap;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, n, 1, &ap));
  double out[3];
  fm_metrics m;
  fm_metrics_init(&m);
  for (int r = 0; r < 5; r++) {
    fm_metrics_clear(&m);
    run_round(ap, v, n, k, out, &m);
    assert_true(fabs(out[0] - (0.6 + 0.3) / 2) < 1e-6 && fabs(out[1] - (0.8 + 0.4) / 2) < 1e-6 && out[2] == 0);
    assert_true(metric(&m, "aggregator/dp_query_metrics/tree_agg_dpftrl_clip") == 1.0);
  }
  fm_metrics_free(&m);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

/* The same seed, the same bits; another seed, other bits. */
static void test_deterministic(void **st) {
  (void)st;
  const size_t n = 1000, k = 3;
  fm_aggregator *agg;
  FM_ASSERT_OK(fm_aggregator_create_from_spec("tree_aggregation(noise_multiplier=1, clients_per_round=3, l2_norm_clip=1)", &agg));
  fm_aggregation_process *a1, *a2, *a3;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, n, 5, &a1));
  FM_ASSERT_OK(fm_aggregation_process_create(agg, n, 5, &a2));
  FM_ASSERT_OK(fm_aggregation_process_create(agg, n, 6, &a3));
  float *v = calloc(n * k, sizeof *v);
  for (size_t i = 0; i < n * k; i++) v[i] = (float)((i % 7) * 0.001);
  double *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2), *o3 = malloc(n * sizeof *o3);
  for (int r = 0; r < 6; r++) {
    run_round(a1, v, n, k, o1, NULL);
    run_round(a2, v, n, k, o2, NULL);
    run_round(a3, v, n, k, o3, NULL);
    assert_memory_equal(o1, o2, n * sizeof *o1);
    assert_true(memcmp(o1, o3, n * sizeof *o1) != 0);
  }
  free(v), free(o1), free(o2), free(o3);
  fm_aggregation_process_destroy(&a1);
  fm_aggregation_process_destroy(&a2);
  fm_aggregation_process_destroy(&a3);
  fm_aggregator_destroy(&agg);
}

/* tree_adaptive without noise (z = 0, clipped_count_stddev = 0): client i's
 * value has norm i + 1 (i < 10), so a clip at the median lies in [5, 6]; the
 * values' clip stays 0.1 until the warmup's restart (round 3), then takes the
 * estimate at each restart (every 5 rounds) and only then. */
static void test_adaptive_restarts_and_converges(void **st) {
  (void)st;
  const size_t n = 1, k = 10;
  float v[10];
  for (size_t i = 0; i < k; i++) v[i] = (float)(i + 1);
  fm_dp_tree_adaptive d = fm_dp_tree_adaptive_defaults(k);
  assert_true(d.initial_l2_norm_clip == 0.1 && d.restart_warmup == 128 && d.restart_frequency == 1024 &&
              d.target_unclipped_quantile == 0.5 && d.clip_learning_rate == 0.2 && d.clipped_count_stddev == 0.5);
  d.restart_warmup = 3;
  d.restart_frequency = 5;
  d.clipped_count_stddev = 0;
  fm_aggregator *agg;
  FM_ASSERT_OK(fm_aggregator_create_dp_tree_adaptive(0.0, k, &d, &agg));
  uint64_t warm, freq;
  assert_true(fm_aggregator_dp_tree(agg, &warm, &freq) && warm == 3 && freq == 5);
  fm_aggregation_process *ap;
  FM_ASSERT_OK(fm_aggregation_process_create(agg, n, 3, &ap));
  fm_metrics m;
  fm_metrics_init(&m);
  double out, clip_in_use = 0.1, last_estimate = 0.1;
  for (unsigned r = 0; r < 200; r++) {
    fm_metrics_clear(&m);
    run_round(ap, v, n, k, &out, &m);
    double cur = metric(&m, "aggregator/dp_query_metrics/current_clip");
    double est = metric(&m, "aggregator/dp_query_metrics/estimate_clip");
    if (cur != clip_in_use) fail_msg("round %u: current_clip %g, want %g", r, cur, clip_in_use);
    /* every client is clipped to the clip in use: the mean of min(norm, clip) */
    double want = 0;
    for (size_t i = 0; i < k; i++) want += fmin((double)v[i], cur);
    if (fabs(out - want / (double)k) > 1e-5 * fmax(1.0, want)) fail_msg("round %u: %g, want %g", r, out, want / k);
    last_estimate = est;
    /* after call c = r + 1 with c mod 5 == 3 the clip becomes the updated estimate */
    unsigned c = r + 1;
    if (c % 5 == 3) {
      const double *state;
      size_t ns = fm_aggregation_process_state(ap, &state);
      assert_true(ns > 4);
      clip_in_use = state[3]; /* the state's clip (checked against the next round's measurement) */
    }
  }
  assert_true(last_estimate >= 5.0 && last_estimate <= 6.0);
  assert_true(clip_in_use >= 5.0 && clip_in_use <= 6.0);
  fm_metrics_free(&m);
  fm_aggregation_process_destroy(&ap);
  fm_aggregator_destroy(&agg);
}

/* Noise on: the value noise multiplier is split as for gaussian_adaptive. */
static void test_adaptive_split(void **st) {
  (void)st;
  fm_aggregator *agg;
  FM_ASSERT_OK(fm_aggregator_create_from_spec("tree_adaptive(noise_multiplier=1, clients_per_round=100)", &agg));
  assert_true(fabs(fm_aggregator_value_noise_multiplier(agg) - 1.0 / sqrt(1.0 - 1.0 / 100.0)) < 1e-12);
  double z;
  uint64_t k;
  assert_true(fm_aggregator_dp_params(agg, &z, &k) && z == 1.0 && k == 100);
  fm_aggregator_destroy(&agg);
}

static void spec_bad(const char *spec, int code, const char *needle) {
  fm_aggregator *agg = NULL;
  int rc = fm_aggregator_create_from_spec(spec, &agg);
  if (rc != code) fail_msg("'%s': rc %d, want %d (%s)", spec, rc, code, fm_last_error());
  if (!strstr(fm_last_error(), needle)) fail_msg("'%s': message '%s' lacks '%s'", spec, fm_last_error(), needle);
  assert_null(agg);
}

static void test_bad_parameters(void **st) {
  (void)st;
  spec_bad("tree_aggregation(noise_multiplier=-1, clients_per_round=3, l2_norm_clip=1)", FM_ERR_HPARAM_VALUE,
           "noise_multiplier");
  spec_bad("tree_aggregation(noise_multiplier=1, clients_per_round=3, l2_norm_clip=0)", FM_ERR_HPARAM_VALUE,
           "l2_norm_clip");
  spec_bad("tree_aggregation(noise_multiplier=1, clients_per_round=3)", FM_ERR_CONFIG, "l2_norm_clip");
  spec_bad("tree_aggregation(noise_multiplier=1, clients_per_round=0, l2_norm_clip=1)", FM_ERR_HPARAM_VALUE,
           "clients_per_round");
  spec_bad("tree_adaptive(noise_multiplier=1, clients_per_round=10, restart_warmup=8, restart_frequency=8)",
           FM_ERR_HPARAM_VALUE, "restart_warmup");
  spec_bad("tree_adaptive(noise_multiplier=1, clients_per_round=10, restart_frequency=0)", FM_ERR_HPARAM_VALUE,
           "restart_frequency");
  /* sigma_b = 10 / 20 = 0.5: z = 1 is not < 2 sigma_b */
  spec_bad("tree_adaptive(noise_multiplier=1, clients_per_round=10)", FM_ERR_HPARAM_VALUE, "clipped_count_stddev");
  spec_bad("tree_adaptive(noise_multiplier=0.5, clients_per_round=40, initial_l2_norm_clip=-2)", FM_ERR_HPARAM_VALUE,
           "initial_l2_norm_clip");
  spec_bad("tree_adaptive(noise_multiplier=0.5, clients_per_round=40, target_unclipped_quantile=1.5)",
           FM_ERR_HPARAM_VALUE, "target_quantile");
  spec_bad("tree_adaptive(noise_multiplier=0.5, clients_per_round=40, restart_frequency=4194304)", FM_ERR_HPARAM_VALUE,
           "restart_frequency");
  spec_bad("tree_adaptive(noise_multiplier=0.5, clients_per_round=40, bogus=1)", FM_ERR_CONFIG, "bogus");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_tree_variance),
      cmocka_unit_test(test_efficient_tree_variance),
      cmocka_unit_test(test_no_noise_is_clipped_mean),
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_adaptive_restarts_and_converges),
      cmocka_unit_test(test_adaptive_split),
      cmocka_unit_test(test_bad_parameters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
