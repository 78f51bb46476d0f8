/* tests/unit/test_secure_metrics.c — secure_sum_then_finalize for the
 * round's metrics (fm_process_set_metrics_aggregator): equal to the plain
 * sum to the quantisation step, clipping to a metric's range as TFF's
 * SecureSumFactory (values clipped per client, clipped clients counted per
 * group of values sharing a range and dtype), integer metrics exact, the
 * training itself unchanged, and bad specs refused with the process intact. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_test.h"

enum { D = 5, C = 3, K = 6 };
static const size_t counts[K] = {12, 31, 7, 25, 18, 40};

static fm_client_data *make_data(void) {
  size_t total = 0;
  for (size_t i = 0; i < K; i++) total += counts[i];
  float *x = malloc(total * D * sizeof *x);
  int32_t *y = malloc(total * sizeof *y);
  fm_rng r;
  fm_rng_init(&r, 9, 0, 0, FM_RNG_USER);
  size_t row = 0;
  for (size_t c = 0; c < K; c++)
    for (size_t i = 0; i < counts[c]; i++, row++) {
      for (int j = 0; j < D; j++) x[row * D + j] = (float)fm_rng_normal(&r) * (1.0f + (float)c);
      y[row] = (int32_t)((row * 7 + c) % C);
    }
  size_t shape[1] = {D};
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_from_memory(K, NULL, counts, x, y, 1, shape, &cd));
  free(x);
  free(y);
  return cd;
}

static fm_model *make_model(void) {
  fm_input_spec spec;
  size_t shape[1] = {D};
  FM_ASSERT_OK(fm_input_spec_set(&spec, 1, shape, C));
  fm_model *m = NULL;
  FM_ASSERT_OK(fm_model_create_softmax(&spec, &m));
  return m;
}

static fm_process *make_fedavg(const fm_model *m) {
  fm_optimizer *c = NULL, *s = NULL;
  FM_ASSERT_OK(fm_optimizer_create_sgdm(0.5, 0.0, &c));
  FM_ASSERT_OK(fm_optimizer_create_sgdm(1.0, 0.0, &s));
  fm_process *p = NULL;
  FM_ASSERT_OK(fm_process_create_weighted_fed_avg(m, c, s, FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  return p;
}

/* One round of p from a fresh state (seed 3) over cohort; weights into w (may be NULL). */
static void one_round(const fm_process *p, const fm_client_data *cd, const uint64_t *cohort, size_t n, fm_metrics *m,
                      float *w) {
  fm_state *s = NULL;
  FM_ASSERT_OK(fm_process_initialize(p, 3, &s));
  fm_round_input in = {.data = cd,
                       .batching = {.epochs = 2, .batch_size = 8, .shuffle = 1},
                       .cohort = cohort,
                       .cohort_size = n,
                       .num_threads = 1};
  fm_metrics_clear(m);
  FM_ASSERT_OK(fm_process_next(p, s, &in, fm_comm_serial(), m));
  if (w) FM_ASSERT_OK(fm_process_get_model_weights(p, s, w));
  fm_state_destroy(&s);
}

static double get(const fm_metrics *m, const char *path) {
  double v = NAN;
  if (fm_metrics_get(m, path, &v) != FM_OK) fail_msg("no metric %s", path);
  return v;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static const uint64_t cohort[K] = {0, 1, 2, 3, 4, 5};
#define STEP (1048575.0 / 4294967295.0) /* the quantisation step of [0, 2^20 - 1] */
#define SM "client_work/train/secure_sum_measurements/"

/* The default range: the metrics equal the plain ones to K quantisation
 * steps (plus float32 rounding of each client's value), the counts exactly,
 * the weights bit for bit; TFF's measurement names and thresholds. */
static void test_secure_metrics_match_plain_sum(void **st) {
  (void)st;
  fm_client_data *cd = make_data();
  fm_model *model = make_model();
  fm_process *plain = make_fedavg(model), *sec = make_fedavg(model);
  assert_string_equal(fm_process_metrics_aggregator(sec), "sum_then_finalize");
  FM_ASSERT_OK(fm_process_set_metrics_aggregator(sec, "secure_sum_then_finalize"));
  assert_string_equal(fm_process_metrics_aggregator(sec), "secure_sum_then_finalize");
  size_t P = fm_layout_numel(fm_model_layout(model));
  float *w1 = malloc(P * sizeof *w1), *w2 = malloc(P * sizeof *w2);
  fm_metrics a, b;
  fm_metrics_init(&a);
  fm_metrics_init(&b);
  one_round(plain, cd, cohort, K, &a, w1);
  one_round(sec, cd, cohort, K, &b, w2);
  assert_memory_equal(w1, w2, P * sizeof *w1);
  double n = get(&a, "client_work/train/num_examples");
  assert_true(n == 2.0 * (12 + 31 + 7 + 25 + 18 + 40));
  assert_true(get(&b, "client_work/train/num_examples") == n);
  assert_true(get(&b, "client_work/train/num_batches") == get(&a, "client_work/train/num_batches"));
  double lp = get(&a, "client_work/train/loss"), ls = get(&b, "client_work/train/loss");
  double ap = get(&a, "client_work/train/accuracy"), as = get(&b, "client_work/train/accuracy");
  double tol_l = (K * STEP + K * lp * n * 6e-8) / n, tol_a = K * STEP / n;
  if (!(fabs(lp - ls) <= tol_l) || !(fabs(ap - as) <= tol_a))
    fail_msg("secure loss %.9g vs %.9g (tol %.3g), accuracy %.9g vs %.9g (tol %.3g)", ls, lp, tol_l, as, ap, tol_a);
  assert_true(get(&b, SM "0.0/1048575.0/float32/secure_upper_threshold") == 1048575.0);
  assert_true(get(&b, SM "0.0/1048575.0/float32/secure_lower_threshold") == 0.0);
  assert_true(get(&b, SM "0.0/1048575.0/float32/secure_upper_clipped_count") == 0);
  assert_true(get(&b, SM "0.0/1048575.0/float32/secure_lower_clipped_count") == 0);
  assert_true(get(&b, SM "0/1048575/int64/secure_upper_clipped_count") == 0);
  assert_true(get(&b, SM "0/1048575/int64/secure_lower_threshold") == 0);
  double v;
  assert_int_equal(fm_metrics_get(&a, SM "0.0/1048575.0/float32/secure_upper_threshold", &v), FM_ERR_INVALID_ARG);
  /* a lower bound below zero: the server re-adds lower x clients before scaling */
  FM_ASSERT_OK(fm_process_set_metrics_aggregator(sec, "secure_sum_then_finalize(lower=-3.5, upper=5000)"));
  one_round(sec, cd, cohort, K, &b, NULL);
  double step2 = 5003.5 / 4294967295.0;
  ls = get(&b, "client_work/train/loss");
  if (!(fabs(lp - ls) <= (K * step2 + K * lp * n * 6e-8) / n)) fail_msg("loss %.9g vs %.9g with lower=-3.5", ls, lp);
  assert_true(get(&b, "client_work/train/num_examples") == n);
  assert_true(get(&b, SM "-3.5/5000.0/float32/secure_lower_threshold") == -3.5);
  assert_true(get(&b, SM "-3/5000/int64/secure_lower_threshold") == -3); /* ceil(-3.5) */
  /* and back to the plain sum: bit for bit the first run's metrics */
  FM_ASSERT_OK(fm_process_set_metrics_aggregator(sec, "sum_then_finalize"));
  one_round(sec, cd, cohort, K, &b, w2);
  assert_true(get(&b, "client_work/train/loss") == lp);
  assert_true(get(&b, "client_work/train/accuracy") == ap);
  assert_memory_equal(w1, w2, P * sizeof *w1);
  fm_metrics_free(&a);
  fm_metrics_free(&b);
  free(w1);
  free(w2);
  fm_process_destroy(&plain);
  fm_process_destroy(&sec);
  fm_model_destroy(&model);
  fm_client_data_close(&cd);
}

/* A metric's own range clips each client's values into it; the group's
 * upper clipped count is the number of clients with a value above it.
 * Expected values come from single-client rounds of the plain sum. */
static void test_secure_metrics_clip_to_range(void **st) {
  (void)st;
  fm_client_data *cd = make_data();
  fm_model *model = make_model();
  fm_process *plain = make_fedavg(model), *sec = make_fedavg(model);
  fm_metrics a;
  fm_metrics_init(&a);
  double total[K], cnt[K];
  for (size_t i = 0; i < K; i++) { /* each client's [loss total, count] */
    one_round(plain, cd, &cohort[i], 1, &a, NULL);
    cnt[i] = get(&a, "client_work/train/num_examples");
    total[i] = get(&a, "client_work/train/loss") * cnt[i];
  }
  /* loss's range [0, T]: T between the clients' totals, and below some counts */
  double sorted[K];
  memcpy(sorted, total, sizeof sorted);
  qsort(sorted, K, sizeof *sorted, cmp_double);
  double T = floor((sorted[2] + sorted[3]) / 2);
  double et = 0, ec = 0, clipped = 0;
  for (size_t i = 0; i < K; i++) {
    et += fmin(total[i], T);
    ec += fmin(cnt[i], T);
    clipped += total[i] > T || cnt[i] > T;
  }
  assert_true(clipped >= 3 && clipped < K);
  char spec[256], key[160];
  snprintf(spec, sizeof spec, "secure_sum_then_finalize(loss=range(lower=0, upper=%.17g), "
                              "num_examples=range(lower=0, upper=30))", T);
  FM_ASSERT_OK(fm_process_set_metrics_aggregator(sec, spec));
  one_round(sec, cd, cohort, K, &a, NULL);
  double ls = get(&a, "client_work/train/loss"), step = T / 4294967295.0;
  double want = (double)(float)et / (double)(float)ec;
  if (!(fabs(ls - want) <= 4 * K * step / ec + 1e-6 * want)) fail_msg("clipped loss %.9g, expected %.9g", ls, want);
  /* num_examples: integers clipped to [0, 30], exactly */
  double en = 0, nclip = 0;
  for (size_t i = 0; i < K; i++) {
    en += fmin(cnt[i], 30);
    nclip += cnt[i] > 30;
  }
  assert_true(nclip > 0);
  assert_true(get(&a, "client_work/train/num_examples") == en);
  snprintf(key, sizeof key, SM "0.0/%.0f.0/float32/secure_upper_clipped_count", T);
  assert_true(get(&a, key) == clipped);
  snprintf(key, sizeof key, SM "0.0/%.0f.0/float32/secure_upper_threshold", T);
  assert_true(get(&a, key) == T);
  assert_true(get(&a, SM "0/30/int64/secure_upper_clipped_count") == nclip);
  /* accuracy and num_batches keep the defaults: their own groups */
  assert_true(get(&a, SM "0.0/1048575.0/float32/secure_upper_clipped_count") == 0);
  assert_true(get(&a, SM "0/1048575/int64/secure_upper_clipped_count") == 0);
  fm_metrics_free(&a);
  fm_process_destroy(&plain);
  fm_process_destroy(&sec);
  fm_model_destroy(&model);
  fm_client_data_close(&cd);
}

/* Bad specs and ranges: refused with the named problem, the process left as it was. */
static void test_secure_metrics_bad_input(void **st) {
  (void)st;
  fm_client_data *cd = make_data();
  fm_model *model = make_model();
  fm_process *p = make_fedavg(model);
  struct {
    const char *spec;
    int rc;
    const char *needle;
  } bad[] = {
      {"secure_sum_then_finalize(lower=1, upper=1)", FM_ERR_HPARAM_VALUE, "lower < upper"},
      {"secure_sum_then_finalize(upper=inf)", FM_ERR_HPARAM_VALUE, "finite"},
      {"secure_sum_then_finalize(num_examples=range(lower=0.2, upper=0.8))", FM_ERR_HPARAM_VALUE,
       "not wide enough"},
      {"secure_sum_then_finalize(bogus=range(lower=0, upper=1))", FM_ERR_HPARAM_UNKNOWN, "no metric 'bogus'"},
      {"secure_sum_then_finalize(loss=5)", FM_ERR_CONFIG, "range(lower=L, upper=U)"},
      {"secure_sum_then_finalize(loss=range(lower=0))", FM_ERR_CONFIG, "upper="},
      {"secure_sum_then_finalize(loss=range(lower=0, upper=1, step=2))", FM_ERR_CONFIG, "'step'"},
      {"secure_sum_then_finalize(mean)", FM_ERR_CONFIG, "positional"},
      {"secure_sum", FM_ERR_CONFIG, "unknown 'secure_sum'"},
      {"sum_then_finalize(lower=0)", FM_ERR_CONFIG, "takes no arguments"},
      {"secure_sum_then_finalize(lower=0", FM_ERR_CONFIG, "expected ','"},
      {"secure_sum_then_finalize() x", FM_ERR_CONFIG, "unexpected"},
  };
  FM_ASSERT_OK(fm_process_set_metrics_aggregator(p, "secure_sum_then_finalize(upper=1000)"));
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = fm_process_set_metrics_aggregator(p, bad[i].spec);
    if (rc != bad[i].rc || !strstr(fm_last_error(), bad[i].needle))
      fail_msg("'%s': rc %d (want %d), message '%s' (want '%s')", bad[i].spec, rc, bad[i].rc, fm_last_error(),
               bad[i].needle);
    assert_string_equal(fm_process_metrics_aggregator(p), "secure_sum_then_finalize");
  }
  fm_metrics m;
  fm_metrics_init(&m);
  one_round(p, cd, cohort, K, &m, NULL); /* still the upper=1000 aggregator, and it runs */
  assert_true(get(&m, SM "0.0/1000.0/float32/secure_upper_threshold") == 1000.0);
  fm_metric_value_range r = {"loss", NAN, 1};
  assert_int_equal(fm_process_set_secure_metrics(p, &r, 1), FM_ERR_HPARAM_VALUE);
  assert_non_null(strstr(fm_last_error(), "metric 'loss'"));
  fm_metrics_free(&m);
  fm_process_destroy(&p);
  fm_model_destroy(&model);
  fm_client_data_close(&cd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_secure_metrics_match_plain_sum),
      cmocka_unit_test(test_secure_metrics_clip_to_range),
      cmocka_unit_test(test_secure_metrics_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
