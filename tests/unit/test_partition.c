/* tests/unit/test_partition.c — gamma and Dirichlet sampling (moments, tiny
 * shapes) and the partitioners: every example assigned to exactly one valid
 * client, determinism per seed, client sizes, label skew growing as alpha
 * shrinks, shards holding at most k labels, hetero-dir's bounded resampling
 * on PFLlib #130's pathological setting, and the parameter errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"
#include "fm_test.h"

/* ---- gamma / Dirichlet ------------------------------------------------------------- */

static void test_gamma_moments(void **state) {
  (void)state;
  const double shapes[] = {0.05, 0.3, 1.0, 2.5, 20.0};
  const size_t N = 200000;
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    const double a = shapes[s];
    fm_rng r;
    fm_rng_init(&r, 11, s, 0, FM_RNG_USER);
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < N; i++) {
      double g = fm_sample_gamma(&r, a);
      assert_true(g >= 0.0 && isfinite(g));
      sum += g;
      sum2 += g * g;
    }
    double mean = sum / (double)N, var = sum2 / (double)N - mean * mean;
    double se_mean = sqrt(a / (double)N), se_var = sqrt((2 * a * a + 6 * a) / (double)N);
    if (fabs(mean - a) > 5 * se_mean) fail_msg("Gamma(%g): mean %g, expected %g +- %g", a, mean, a, 5 * se_mean);
    if (fabs(var - a) > 6 * se_var) fail_msg("Gamma(%g): variance %g, expected %g +- %g", a, var, a, 6 * se_var);
  }
  /* The log form stays finite where the draw itself underflows. */
  fm_rng r;
  fm_rng_init(&r, 1, 0, 0, FM_RNG_USER);
  int zeros = 0;
  for (int i = 0; i < 1000; i++) {
    double l = fm_sample_log_gamma(&r, 1e-4);
    assert_true(isfinite(l));
    zeros += exp(l) == 0.0;
  }
  assert_true(zeros > 0); /* such draws do underflow as plain numbers */
  assert_true(fm_sample_gamma(&r, 0.0) == 0.0);
}

static void test_dirichlet(void **state) {
  (void)state;
  const double alpha[] = {0.5, 1.0, 2.5, 0.0};
  double out[5], mean[4] = {0};
  const size_t N = 100000;
  fm_rng r;
  fm_rng_init(&r, 3, 0, 0, FM_RNG_USER);
  for (size_t i = 0; i < N; i++) {
    fm_sample_dirichlet(&r, alpha, 4, out);
    double s = 0;
    for (int j = 0; j < 4; j++) {
      assert_true(out[j] >= 0.0);
      s += out[j];
      mean[j] += out[j] / (double)N;
    }
    assert_true(fabs(s - 1.0) < 1e-12);
    assert_true(out[3] == 0.0);
  }
  for (int j = 0; j < 3; j++) assert_true(fabs(mean[j] - alpha[j] / 4.0) < 0.005);
  /* tiny concentrations: still a distribution, mass on one component */
  double tiny[5] = {1e-5, 1e-5, 1e-5, 1e-5, 1e-5};
  fm_sample_dirichlet(&r, tiny, 5, out);
  double s = 0, mx = 0;
  for (int j = 0; j < 5; j++) {
    assert_false(isnan(out[j]));
    s += out[j];
    mx = fmax(mx, out[j]);
  }
  assert_true(fabs(s - 1.0) < 1e-12);
  assert_true(mx > 0.99);
}

/* ---- partition helpers ----------------------------------------------------------------- */

/* n labels over C classes; skewed: class c has weight (c + 1). */
static int32_t *make_labels(size_t n, size_t C, int skewed, uint64_t seed) {
  int32_t *y = malloc(n * sizeof *y);
  fm_rng r;
  fm_rng_init(&r, seed, 0, 0, FM_RNG_USER + 1);
  for (size_t i = 0; i < n; i++) {
    if (!skewed) {
      y[i] = (int32_t)(i % C);
    } else {
      double u = fm_rng_uniform(&r) * (double)(C * (C + 1) / 2), acc = 0;
      size_t c = 0;
      for (; c + 1 < C; c++) {
        acc += (double)(c + 1);
        if (u < acc) break;
      }
      y[i] = (int32_t)c;
    }
  }
  return y;
}

typedef struct {
  size_t min, max;
  double mean_distinct;  /* labels per client */
  double mean_majority;  /* fraction of a client's examples in its top class */
  size_t max_distinct;
} stats;

/* Checks every assignment is a valid client and computes sizes and skew. */
static stats check_partition(const uint32_t *client_of, const int32_t *y, size_t n, size_t K, size_t C,
                             size_t *sizes_out) {
  size_t *sizes = calloc(K, sizeof *sizes), *cnt = calloc(K * C, sizeof *cnt);
  for (size_t i = 0; i < n; i++) {
    if (client_of[i] >= K) fail_msg("example %zu assigned to client %u of %zu", i, client_of[i], K);
    sizes[client_of[i]]++;
    cnt[client_of[i] * C + (size_t)y[i]]++;
  }
  stats s = {(size_t)-1, 0, 0, 0, 0};
  size_t total = 0;
  for (size_t k = 0; k < K; k++) {
    total += sizes[k];
    s.min = sizes[k] < s.min ? sizes[k] : s.min;
    s.max = sizes[k] > s.max ? sizes[k] : s.max;
    size_t d = 0, top = 0;
    for (size_t c = 0; c < C; c++) {
      d += cnt[k * C + c] > 0;
      top = cnt[k * C + c] > top ? cnt[k * C + c] : top;
    }
    s.mean_distinct += (double)d / (double)K;
    s.max_distinct = d > s.max_distinct ? d : s.max_distinct;
    if (sizes[k]) s.mean_majority += (double)top / (double)sizes[k] / (double)K;
  }
  assert_int_equal(total, n); /* each example exactly once */
  if (sizes_out) memcpy(sizes_out, sizes, K * sizeof *sizes);
  free(sizes);
  free(cnt);
  return s;
}

static stats run(const fm_partition_options *o, const int32_t *y, size_t n, size_t C, fm_partition_result *res) {
  uint32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
  FM_ASSERT_OK(fm_partition_labels(o, y, n, C, a, res));
  FM_ASSERT_OK(fm_partition_labels(o, y, n, C, b, NULL));
  assert_memory_equal(a, b, n * sizeof *a); /* deterministic */
  fm_partition_options o2 = *o;
  o2.seed = o->seed + 1;
  FM_ASSERT_OK(fm_partition_labels(&o2, y, n, C, b, NULL));
  if (o->num_clients > 1 && !memcmp(a, b, n * sizeof *a)) fail_msg("%s: seed does not matter", fm_partition_method_name(o->method));
  stats s = check_partition(a, y, n, o->num_clients, C, NULL);
  free(a);
  free(b);
  return s;
}

static fm_partition_options opts(fm_partition_method m, size_t K, double alpha) {
  fm_partition_options o;
  fm_partition_defaults(&o);
  o.method = m;
  o.num_clients = K;
  o.alpha = alpha;
  o.seed = 42;
  return o;
}

/* ---- methods -------------------------------------------------------------------------- */

static void test_iid(void **state) {
  (void)state;
  const size_t n = 10007, C = 10, K = 100;
  int32_t *y = make_labels(n, C, 1, 1);
  fm_partition_options o = opts(FM_PARTITION_IID, K, 0);
  stats s = run(&o, y, n, C, NULL);
  assert_true(s.max - s.min <= 1);
  assert_true(s.mean_distinct > 9.0); /* ~100 examples of 10 classes each */
  o.num_clients = 1;
  s = run(&o, y, n, C, NULL);
  assert_int_equal(s.min, n);
  free(y);
}

static void test_dirichlet_partition(void **state) {
  (void)state;
  const size_t n = 20000, C = 10, K = 100;
  for (int skewed = 0; skewed < 2; skewed++) {
    int32_t *y = make_labels(n, C, skewed, 2);
    const double alphas[] = {0.05, 0.5, 5.0, 1000.0};
    double prev_d = 0, prev_m = 2;
    for (size_t a = 0; a < 4; a++) {
      fm_partition_options o = opts(FM_PARTITION_DIRICHLET, K, alphas[a]);
      fm_partition_result res;
      stats s = run(&o, y, n, C, &res);
      assert_int_equal(s.min, n / K); /* equal quotas, whatever the skew */
      assert_int_equal(s.max, n / K);
      assert_int_equal(res.attempts, 1);
      if (!(s.mean_distinct > prev_d && s.mean_majority < prev_m))
        fail_msg("alpha %g: distinct %g (prev %g), majority %g (prev %g): skew must shrink as alpha grows", alphas[a],
                 s.mean_distinct, prev_d, s.mean_majority, prev_m);
      prev_d = s.mean_distinct;
      prev_m = s.mean_majority;
    }
    assert_true(prev_d > 9.5); /* alpha 1000: close to iid */
    free(y);
  }
  /* uneven quotas and a class with no examples */
  const size_t n2 = 1001;
  int32_t *y2 = make_labels(n2, 5, 1, 3);
  for (size_t i = 0; i < n2; i++)
    if (y2[i] == 2) y2[i] = 4;
  fm_partition_options o = opts(FM_PARTITION_DIRICHLET, 7, 0.1);
  size_t sizes[7];
  uint32_t *a = malloc(n2 * sizeof *a);
  FM_ASSERT_OK(fm_partition_labels(&o, y2, n2, 5, a, NULL));
  check_partition(a, y2, n2, 7, 5, sizes);
  for (size_t k = 0; k < 7; k++) assert_int_equal(sizes[k], (k + 1) * n2 / 7 - k * n2 / 7);
  free(a);
  free(y2);
}

static void test_hetero_dir(void **state) {
  (void)state;
  const size_t n = 20000, C = 10, K = 50;
  int32_t *y = make_labels(n, C, 0, 4);
  const double alphas[] = {0.1, 1.0, 100.0};
  double prev_d = 0;
  for (size_t a = 0; a < 3; a++) {
    fm_partition_options o = opts(FM_PARTITION_HETERO_DIR, K, alphas[a]);
    o.min_size = 20;
    fm_partition_result res;
    stats s = run(&o, y, n, C, &res);
    assert_true(s.min >= 20);
    assert_true(res.attempts >= 1 && res.attempts <= o.max_attempts);
    assert_true(s.mean_distinct > prev_d);
    prev_d = s.mean_distinct;
  }
  free(y);
}

/* PFLlib issue #130: CIFAR-100 (train + test, 60,000 examples, 100 classes),
 * 500 clients, alpha 0.3, min_size = num_classes = 100: with the balance cap
 * at N/K = 120, resample-until-min-size spins forever there. */
static void test_hetero_dir_pathological(void **state) {
  (void)state;
  const size_t n = 60000, C = 100, K = 500;
  int32_t *y = make_labels(n, C, 0, 5);
  uint32_t *a = malloc(n * sizeof *a);
  fm_partition_options o = opts(FM_PARTITION_HETERO_DIR, K, 0.3);
  o.min_size = 100;
  fm_partition_result res;
  clock_t t0 = clock();
  FM_ASSERT_OK(fm_partition_labels(&o, y, n, C, a, &res));
  double sec = (double)(clock() - t0) / CLOCKS_PER_SEC;
  stats s = check_partition(a, y, n, K, C, NULL);
  printf("hetero-dir 500 clients, alpha 0.3, 100 classes, min 100: %.2f s, %u attempts, %llu moved, sizes %zu..%zu, "
         "%.1f labels per client\n",
         sec, res.attempts, (unsigned long long)res.moved, s.min, s.max, s.mean_distinct);
  assert_true(s.min >= 100);
  assert_true(sec < 20.0);
  assert_true(res.attempts <= 100);
  /* alpha 0.01 with min_size 80 and few attempts: the repair again. */
  o.alpha = 0.01;
  o.min_size = 80;
  o.max_attempts = 5;
  FM_ASSERT_OK(fm_partition_labels(&o, y, n, C, a, &res));
  s = check_partition(a, y, n, K, C, NULL);
  assert_int_equal(res.attempts, 5);
  assert_true(res.moved > 0);
  assert_true(s.min >= 80);
  uint32_t *b = malloc(n * sizeof *b);
  FM_ASSERT_OK(fm_partition_labels(&o, y, n, C, b, NULL));
  assert_memory_equal(a, b, n * sizeof *a); /* the repair is deterministic too */
  /* Exactly K * min_size examples: every client ends with min_size. */
  o.min_size = n / K;
  FM_ASSERT_OK(fm_partition_labels(&o, y, n, C, a, &res));
  s = check_partition(a, y, n, K, C, NULL);
  assert_int_equal(s.min, n / K);
  assert_int_equal(s.max, n / K);
  free(a);
  free(b);
  free(y);
}

static void test_shards(void **state) {
  (void)state;
  for (int skewed = 0; skewed < 2; skewed++) {
    const size_t n = 6000, C = 10, K = 100;
    int32_t *y = make_labels(n, C, skewed, 6);
    for (size_t k = 1; k <= 3; k++) {
      fm_partition_options o = opts(FM_PARTITION_SHARDS, K, 0);
      o.classes_per_client = k;
      stats s = run(&o, y, n, C, NULL);
      if (s.max_distinct > k) fail_msg("shards k=%zu (skewed %d): a client has %zu labels", k, skewed, s.max_distinct);
      if (!skewed) {
        assert_int_equal(s.min, n / K); /* McMahan: equal shards, k per client */
        assert_int_equal(s.max, n / K);
      }
      assert_true(s.min >= 1);
    }
    free(y);
  }
  /* Fewer shards than classes: McMahan's runs of the sorted order. */
  const size_t n = 1000, C = 10;
  int32_t *y = make_labels(n, C, 0, 7);
  fm_partition_options o = opts(FM_PARTITION_SHARDS, 3, 0);
  o.classes_per_client = 2;
  stats s = run(&o, y, n, C, NULL);
  assert_true(s.min >= 333 && s.max <= 334);
  free(y);
}

static void test_quantity(void **state) {
  (void)state;
  const size_t n = 30000, C = 10, K = 100;
  int32_t *y = make_labels(n, C, 0, 8);
  double prev_spread = -1;
  const double sigmas[] = {0.0, 0.5, 2.0};
  for (size_t j = 0; j < 3; j++) {
    fm_partition_options o = opts(FM_PARTITION_QUANTITY, K, 0);
    o.sigma = sigmas[j];
    o.min_size = 5;
    stats s = run(&o, y, n, C, NULL);
    assert_true(s.min >= 5);
    double spread = (double)(s.max - s.min);
    if (j == 0) assert_true(s.max - s.min <= 1);
    assert_true(spread > prev_spread);
    prev_spread = spread;
  }
  free(y);
}

static void test_errors(void **state) {
  (void)state;
  int32_t y[10] = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0};
  uint32_t a[10];
  fm_partition_options o = opts(FM_PARTITION_IID, 11, 0);
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_partition_labels(&o, y, 10, 3, a, NULL));
  FM_ASSERT_MSG_HAS("11 clients but only 10 examples");
  o = opts(FM_PARTITION_DIRICHLET, 2, 0.0);
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_partition_labels(&o, y, 10, 3, a, NULL));
  FM_ASSERT_MSG_HAS("alpha must be > 0");
  o = opts(FM_PARTITION_IID, 2, 0);
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_partition_labels(&o, y, 10, 2, a, NULL));
  FM_ASSERT_MSG_HAS("label 2 of example 2 is outside [0, 2)");
  o = opts(FM_PARTITION_HETERO_DIR, 2, 0.5);
  o.min_size = 6;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_partition_labels(&o, y, 10, 3, a, NULL));
  FM_ASSERT_MSG_HAS("min_size 6 needs 12 examples");
  o = opts(FM_PARTITION_SHARDS, 4, 0);
  o.classes_per_client = 3;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_partition_labels(&o, y, 10, 3, a, NULL));
  o = opts(FM_PARTITION_QUANTITY, 2, 0);
  o.sigma = -1;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_partition_labels(&o, y, 10, 3, a, NULL));
  fm_partition_method m;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_partition_method_parse("lda", &m));
  FM_ASSERT_MSG_HAS("iid, dirichlet, hetero-dir, shards or quantity");
  for (int k = 0; k <= FM_PARTITION_QUANTITY; k++) {
    FM_ASSERT_OK(fm_partition_method_parse(fm_partition_method_name((fm_partition_method)k), &m));
    assert_int_equal(m, k);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gamma_moments),
      cmocka_unit_test(test_dirichlet),
      cmocka_unit_test(test_iid),
      cmocka_unit_test(test_dirichlet_partition),
      cmocka_unit_test(test_hetero_dir),
      cmocka_unit_test(test_hetero_dir_pathological),
      cmocka_unit_test(test_shards),
      cmocka_unit_test(test_quantity),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
