/* tests/unit/test_core.c — error table, counter-based RNG, exact sums,
 * hyperparameter dictionaries and metrics reports. */
#include <stdlib.h>
#include <string.h>

#include "fm_test.h"

static void test_error_names_and_messages(void **st) {
  (void)st;
  assert_string_equal(fm_err_name(FM_ERR_NOMEM), "FM_ERR_NOMEM");
  assert_string_equal(fm_strerror(FM_OK), "success");
  assert_string_equal(fm_strerror(12345), "unknown error");
  fm_set_error(FM_ERR_CONFIG, "bad %s %d", "thing", 7);
  assert_string_equal(fm_last_error(), "bad thing 7");
  fm_set_error(FM_ERR_CONFIG, "context: %s", fm_last_error()); /* wrapping the last message in place */
  assert_string_equal(fm_last_error(), "context: bad thing 7");
  fm_clear_error();
  assert_string_equal(fm_last_error(), "");
  /* every code has a distinct name */
  int codes[] = {
#define X(name, val, msg) val,
      FM_ERROR_MAP(X)
#undef X
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) assert_true(strcmp(fm_err_name(codes[i]), fm_err_name(codes[j])) != 0);
}

static void test_rng_streams(void **st) {
  (void)st;
  fm_rng a, b, c, d;
  fm_rng_init(&a, 42, 3, 7, FM_RNG_SHUFFLE);
  fm_rng_init(&b, 42, 3, 7, FM_RNG_SHUFFLE);
  fm_rng_init(&c, 42, 3, 8, FM_RNG_SHUFFLE);
  fm_rng_init(&d, 42, 3, 7, FM_RNG_INIT);
  int same_c = 1, same_d = 1;
  for (int i = 0; i < 100; i++) {
    uint32_t x = fm_rng_u32(&a);
    assert_int_equal(x, fm_rng_u32(&b));
    same_c &= x == fm_rng_u32(&c);
    same_d &= x == fm_rng_u32(&d);
  }
  assert_false(same_c);
  assert_false(same_d);
  /* uniform in [0,1), normal moments, below(n) range */
  fm_rng r;
  fm_rng_init(&r, 1, 0, 0, FM_RNG_USER);
  double s = 0, s2 = 0;
  for (int i = 0; i < 100000; i++) {
    double u = fm_rng_uniform(&r);
    assert_true(u >= 0.0 && u < 1.0);
    double z = fm_rng_normal(&r);
    s += z;
    s2 += z * z;
    assert_true(fm_rng_below(&r, 7) < 7);
  }
  assert_true(fabs(s / 100000) < 0.02);
  assert_true(fabs(s2 / 100000 - 1.0) < 0.03);
  uint32_t idx[50], seen[50] = {0};
  for (uint32_t i = 0; i < 50; i++) idx[i] = i;
  fm_rng_shuffle_u32(&r, idx, 50);
  for (int i = 0; i < 50; i++) seen[idx[i]]++;
  for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
}

static void test_exact_sum_is_order_independent(void **st) {
  (void)st;
  enum { N = 2000 };
  double *x = malloc(N * sizeof *x);
  fm_rng r;
  fm_rng_init(&r, 9, 0, 0, FM_RNG_USER);
  for (int i = 0; i < N; i++) x[i] = ldexp(fm_rng_normal(&r), (int)fm_rng_below(&r, 60) - 40);
  double lim = fm_exact_limit(N);
  fm_exact fwd, bwd, split[4], grouped;
  fm_exact_zero(&fwd, 1);
  fm_exact_zero(&bwd, 1);
  fm_exact_zero(split, 4);
  fm_exact_zero(&grouped, 1);
  for (int i = 0; i < N; i++) assert_int_equal(fm_exact_add(&fwd, x[i], lim), 0);
  for (int i = N - 1; i >= 0; i--) fm_exact_add(&bwd, x[i], lim);
  for (int i = 0; i < N; i++) fm_exact_add(&split[(i * 7) % 4], x[i], lim);
  for (int k = 3; k >= 0; k--) fm_exact_accumulate(&grouped, &split[k], 1);
  assert_memory_equal(&fwd, &bwd, sizeof fwd);
  assert_memory_equal(&fwd, &grouped, sizeof fwd);
  /* and it is (nearly) the true sum: compare with a long double sum */
  long double ref = 0;
  for (int i = 0; i < N; i++) ref += x[i];
  assert_true(fabsl((long double)fm_exact_to_double(&fwd) - ref) < 1e-12L * (fabsl(ref) + 1));
  free(x);
}

static void test_exact_values_and_limits(void **st) {
  (void)st;
  fm_exact a;
  fm_exact_zero(&a, 1);
  double lim = fm_exact_limit(10);
  for (int i = 0; i < 10; i++) fm_exact_add(&a, 0.1, lim);
  assert_true(fabs(fm_exact_to_double(&a) - 1.0) < 1e-15);
  fm_exact_zero(&a, 1);
  fm_exact_add(&a, -3.25, lim);
  fm_exact_add(&a, 1.0, lim);
  assert_true(fm_exact_to_double(&a) == -2.25);
  /* rejections leave the sum unchanged */
  fm_exact before = a;
  assert_int_equal(fm_exact_add(&a, NAN, lim), 1);
  assert_int_equal(fm_exact_add(&a, INFINITY, lim), 1);
  assert_int_equal(fm_exact_add(&a, lim * 2, lim), 1);
  assert_memory_equal(&a, &before, sizeof a);
  /* the limit guarantees no wrap for max_terms terms at the limit */
  fm_exact_zero(&a, 1);
  double big = nextafter(lim, 0);
  for (int i = 0; i < 10; i++) fm_exact_add(&a, -big, lim);
  assert_true(fabs(fm_exact_to_double(&a) + 10 * big) <= 1e-9 * 10 * big);
  /* scaled adds are exact products */
  float v[3] = {0.5f, -1.25f, 3.0f};
  fm_exact s[3];
  fm_exact_zero(s, 3);
  assert_int_equal(fm_exact_add_scaled(s, v, 3.0f, 3, lim), 0);
  assert_true(fm_exact_to_double(&s[0]) == 1.5 && fm_exact_to_double(&s[1]) == -3.75 &&
              fm_exact_to_double(&s[2]) == 9.0);
  assert_true(fm_exact_limit(10000) == ldexp(1.0, 41));
}

/* The vectorized aggregation loop (fm_exact_add_scaled, one variant per ISA)
 * gives the bits of the scalar fm_exact_add on every element, rejected ones
 * included, at lengths that exercise the vector tails. */
static void test_exact_add_scaled_matches_scalar(void **st) {
  (void)st;
  enum { N = 1037 };
  float *x = malloc(N * sizeof *x);
  fm_exact *vec = malloc(N * sizeof *vec), *ref = malloc(N * sizeof *ref);
  fm_rng r;
  fm_rng_init(&r, 11, 0, 0, FM_RNG_USER);
  const double lim = fm_exact_limit(1000);
  for (size_t n = 0; n <= N; n += (n < 40 ? 1 : 97)) {
    for (size_t i = 0; i < n; i++) {
      /* exponents up to 35: products of 2^43 and more, which the AVX2 loop hands to the scalar code */
      x[i] = (float)ldexp(fm_rng_normal(&r), (int)fm_rng_below(&r, 96) - 60);
      if (fm_rng_below(&r, 50) == 0) x[i] = (i % 3 == 0) ? NAN : (i % 3 == 1) ? -INFINITY : 3e38f;
    }
    const float w = (float)(1 + fm_rng_below(&r, 600));
    fm_exact_zero(vec, n);
    fm_exact_zero(ref, n);
    for (size_t i = 0; i < n; i++) { /* a non-zero start exercises the carries */
      fm_exact_add(&vec[i], -0.75 * (double)i, lim);
      fm_exact_add(&ref[i], -0.75 * (double)i, lim);
    }
    size_t bad_ref = 0;
    for (size_t i = 0; i < n; i++) bad_ref += (size_t)fm_exact_add(&ref[i], (double)w * (double)x[i], lim);
    assert_int_equal(fm_exact_add_scaled(vec, x, w, n, lim), bad_ref);
    if (n) assert_memory_equal(vec, ref, n * sizeof *vec);
  }
  free(x);
  free(vec);
  free(ref);
}

/* The vectorized merge (fm_exact_accumulate) and conversion
 * (fm_exact_to_double_n) give the bits of the one-element code on random
 * 128-bit values of every sign and size, carries included, at every tail. */
static void test_exact_bulk_matches_scalar(void **st) {
  (void)st;
  enum { N = 67 };
  fm_exact a[N], b[N], ref[N];
  double out[N];
  fm_rng r;
  fm_rng_init(&r, 12, 0, 0, FM_RNG_USER);
  for (size_t n = 0; n <= N; n++) {
    for (size_t i = 0; i < n; i++) {
      const int kind = (int)fm_rng_below(&r, 4); /* full-width, small positive, small negative, all-ones lo */
      a[i].lo = kind == 3 ? ~0ull : fm_rng_u64(&r);
      a[i].hi = kind == 0   ? fm_rng_u64(&r)
                : kind == 1 ? fm_rng_below(&r, 1000)
                            : 0 - fm_rng_below(&r, 1000);
      b[i].lo = fm_rng_u64(&r);
      b[i].hi = (uint64_t)(int64_t)(fm_rng_u64(&r) >> 2) - (1ull << 61);
    }
    fm_exact_to_double_n(out, a, n);
    for (size_t i = 0; i < n; i++) assert_memory_equal(&out[i], &(double){fm_exact_to_double(&a[i])}, sizeof(double));
    memcpy(ref, a, sizeof a);
    for (size_t i = 0; i < n; i++) { /* the reference 128-bit add */
      uint64_t s = ref[i].lo + b[i].lo;
      ref[i].hi += b[i].hi + (s < b[i].lo);
      ref[i].lo = s;
    }
    fm_exact_accumulate(a, b, n);
    if (n) assert_memory_equal(a, ref, n * sizeof *a);
  }
}

static void test_hparams(void **st) {
  (void)st;
  fm_hparams h = {0};
  FM_ASSERT_OK(fm_hparams_put(&h, "learning_rate", 0.1));
  FM_ASSERT_OK(fm_hparams_put(&h, "momentum", 0.9));
  FM_ASSERT_OK(fm_hparams_put(&h, "learning_rate", 0.2));
  assert_int_equal(h.n, 2);
  double v;
  FM_ASSERT_OK(fm_hparams_get(&h, "learning_rate", &v));
  assert_true(v == 0.2);
  FM_ASSERT_ERR(FM_ERR_HPARAM_UNKNOWN, fm_hparams_get(&h, "beta_1", &v));
  FM_ASSERT_MSG_HAS("beta_1");
  char longname[100];
  memset(longname, 'a', 99);
  longname[99] = 0;
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_hparams_put(&h, longname, 1));
}

static void test_metrics_report(void **st) {
  (void)st;
  fm_metrics m, n;
  fm_metrics_init(&m);
  fm_metrics_init(&n);
  FM_ASSERT_OK(fm_metrics_put(&m, "distributor", 0, FM_METRIC_GROUP));
  FM_ASSERT_OK(fm_metrics_put(&m, "client_work/train/loss", 0.5, FM_METRIC_FLOAT));
  FM_ASSERT_OK(fm_metrics_put(&m, "client_work/train/num_examples", 40, FM_METRIC_INT));
  FM_ASSERT_OK(fm_metrics_put(&n, "loss", 0.25, FM_METRIC_FLOAT));
  FM_ASSERT_OK(fm_metrics_merge(&m, "evaluation", &n));
  double v;
  FM_ASSERT_OK(fm_metrics_get(&m, "evaluation/loss", &v));
  assert_true(v == 0.25);
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_metrics_get(&m, "distributor", &v));
  char *json = fm_metrics_to_json(&m, 3);
  assert_non_null(json);
  assert_string_equal(json,
                      "{\"round\":3,\"distributor\":{},\"client_work\":{\"train\":{\"loss\":0.5,\"num_examples\":40}},"
                      "\"evaluation\":{\"loss\":0.25}}");
  free(json);
  fm_metrics_free(&m);
  fm_metrics_free(&n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_names_and_messages),
      cmocka_unit_test(test_rng_streams),
      cmocka_unit_test(test_exact_sum_is_order_independent),
      cmocka_unit_test(test_exact_values_and_limits),
      cmocka_unit_test(test_exact_add_scaled_matches_scalar),
      cmocka_unit_test(test_exact_bulk_matches_scalar),
      cmocka_unit_test(test_hparams),
      cmocka_unit_test(test_metrics_report),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
