/* tests/unit/test_secure.c — TFF secure-summation arithmetic (quantisation,
 * bitwidths, wrap-around, clipped counts) and SecAgg+ pairwise masking
 * (cancellation, uniformity of a masked vector, graph shape, determinism).
 *
 * The module is private and the library hides fm__ symbols, so the sources
 * are compiled into the test (as test_model_layers does), with the allocator
 * and the error table they call. */
#include <stdlib.h>
#include <string.h>

#include "fm_test.h"

#include "../../src/core/alloc.c"
#include "../../src/core/error.c"
#include "../../src/privacy/secure.c"

/* ---- bitwidths ------------------------------------------------------------- */

/* TFF: bitwidth = ceil(log2(upper - lower + 1)), lower = -upper when omitted.
 *   SecureSumFactory(2**20 - 1, 0)  (weight sum):  log2(2^20) = 20        -> 20
 *   SecureSumFactory(1, 0)          (count):       log2(2) = 1            -> 1
 *   SecureSumFactory(5)  = [-5, 5]:  log2(11) = 3.46                      -> 4
 *   SecureSumFactory(7, -8):         log2(16) = 4                         -> 4
 *   SecureSumFactory(8, -8):         log2(17) = 4.09                      -> 5
 *   SecureSumFactory(255, 0):        log2(256) = 8                        -> 8
 *   SecureSumFactory(256, 0):        log2(257) = 8.006                    -> 9
 *   [INT32_MIN, INT32_MAX]:          log2(2^32) = 32                      -> 32
 * Floats: secure_quantized_sum always uses bitwidth 32.
 * Exact sum of n such summands: b + ceil(log2 n): 32 bits, n = 1 -> 32,
 * 2 -> 33, 100 -> 39 (2^7 = 128), 1000 -> 42, 1024 -> 42, 1025 -> 43. */
static void test_secure_bitwidth(void **st) {
  (void)st;
  int b = -1;
  const struct {
    int64_t lo, hi;
    int b;
  } cases[] = {{0, (1 << 20) - 1, 20}, {0, 1, 1}, {-5, 5, 4}, {-8, 7, 4}, {-8, 8, 5},
               {0, 255, 8},          {0, 256, 9}, {INT32_MIN, INT32_MAX, 32}, {INT64_MIN, INT64_MAX, 64}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    FM_ASSERT_OK(fm__secure_bitwidth_int(cases[c].lo, cases[c].hi, &b));
    assert_int_equal(b, cases[c].b);
  }
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm__secure_bitwidth_int(3, 3, &b));
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm__secure_bitwidth_int(4, 3, &b));
  assert_int_equal(fm__secure_bitwidth_f32(), 32);
  const uint64_t n[] = {1, 2, 100, 1000, 1024, 1025};
  const int sb[] = {32, 33, 39, 42, 42, 43};
  for (size_t c = 0; c < 6; c++) {
    FM_ASSERT_OK(fm__secure_sum_bitwidth(32, n[c], &b));
    assert_int_equal(b, sb[c]);
  }
  FM_ASSERT_ERR(FM_ERR_OVERFLOW, fm__secure_sum_bitwidth(60, 100, &b));
}

/* ---- float quantisation ---------------------------------------------------- */

/* Hand-computed with TFF's steps for [lower, upper] = [-1, 1]:
 * scale = (2^32-1)/2 = 2147483647.5, shift = round(-2147483647.5) = -2^31
 * (half to even), so 0 -> 2^31; 1 -> round(2147483647.5) + 2^31 = 2^32,
 * clipped to 2^32-1; -1 -> 0; 0.5 -> round(1073741823.75) + 2^31. */
static void test_secure_quantize_exact_points(void **st) {
  (void)st;
  const float x[] = {0.0f, 1.0f, -1.0f, 0.5f, 3.0f, -7.0f, INFINITY};
  uint32_t q[7];
  uint64_t up = 99, down = 99;
  FM_ASSERT_OK(fm__secure_quantize_f32(x, 7, -1.0, 1.0, q, &up, &down));
  assert_int_equal(q[0], UINT32_C(2147483648));
  assert_int_equal(q[1], UINT32_C(4294967295));
  assert_int_equal(q[2], 0);
  assert_int_equal(q[3], UINT32_C(1073741824) + UINT32_C(2147483648));
  assert_int_equal(q[4], q[1]);
  assert_int_equal(q[5], q[2]);
  assert_int_equal(q[6], q[1]);
  assert_int_equal(up, 2); /* 3 and +inf; 1.0 equals the bound and is not counted (TFF: bound < value) */
  assert_int_equal(down, 1);
  /* the sum of n zeros dequantises to exactly 0 (the shift is re-added as an integer) */
  uint64_t s = 0;
  for (int i = 0; i < 5; i++) FM_ASSERT_OK(fm__secure_modsum_u32(&s, &q[0], 1, 35));
  double out = 1.0;
  FM_ASSERT_OK(fm__secure_dequantize_sum(&s, 1, 5, -1.0, 1.0, 35, &out));
  assert_true(out == 0.0);
  /* NaN is refused, lower > upper too; lower == upper quantises to 0 and maps back to n·lower */
  const float bad = NAN;
  FM_ASSERT_ERR(FM_ERR_NON_FINITE, fm__secure_quantize_f32(&bad, 1, -1.0, 1.0, q, NULL, NULL));
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm__secure_quantize_f32(x, 1, 1.0, -1.0, q, NULL, NULL));
  FM_ASSERT_OK(fm__secure_quantize_f32(x, 3, 2.0, 2.0, q, &up, &down));
  assert_int_equal(q[0] | q[1] | q[2], 0);
  s = 0;
  FM_ASSERT_OK(fm__secure_dequantize_sum(&s, 1, 3, 2.0, 2.0, 32, &out));
  assert_true(out == 6.0);
  /* a sum larger than (2^32-1)·n cannot come from n clients (TFF asserts) */
  s = FM__SECAGG_MAX_U64 + 1;
  FM_ASSERT_ERR(FM_ERR_OVERFLOW, fm__secure_dequantize_sum(&s, 1, 1, -1.0, 1.0, 33, &out));
}

/* n clients' values in [-1.5, 1.5] through [lower, upper] = [-1, 1]: the
 * dequantised modular sum equals the float sum of the clipped values within
 * n·step, step = (upper - lower)/(2^32 - 1) (each client's value is rounded
 * to the nearest multiple of step); clipped counts per side are exact. */
static void check_quantized_sum(double lower, double upper, uint64_t seed);

static void test_secure_quantized_sum_matches_float_sum(void **st) {
  (void)st;
  check_quantized_sum(-1.0, 1.0, 11);
  check_quantized_sum(-0.3, 1.7, 12); /* asymmetric, float32 span rounds down (see below) */
  check_quantized_sum(-0.3, 1.5, 14); /* asymmetric, not representable in float32 */
  check_quantized_sum(0.25, 0.75, 13);
}

static void check_quantized_sum(double lower, double upper, uint64_t seed) {
  enum { N = 10, LEN = 2000 };
  /* TFF's step uses the float32 bounds */
  const double step = (double)((float)upper - (float)lower) / FM__SECAGG_MAX;
  const float lo = (float)lower, hi = (float)upper, mid = 0.5f * (lo + hi), half = 0.75f * (hi - lo);
  int bw = 0;
  FM_ASSERT_OK(fm__secure_sum_bitwidth(fm__secure_bitwidth_f32(), N, &bw));
  float *x = malloc(LEN * sizeof *x);
  uint32_t *q = malloc(LEN * sizeof *q);
  uint64_t *s = calloc(LEN, sizeof *s);
  double *plain = calloc(LEN, sizeof *plain), *out = malloc(LEN * sizeof *out);
  assert_non_null(x && q && s && plain && out);
  uint64_t clients_up = 0, clients_down = 0;
  for (uint64_t c = 0; c < N; c++) {
    fm_rng r;
    fm_rng_init(&r, seed, 0, c, FM_RNG_USER);
    uint64_t want_up = 0, want_down = 0;
    for (size_t j = 0; j < LEN; j++) {
      x[j] = mid + half * (float)(2.0 * fm_rng_uniform(&r) - 1.0); /* 1.5× the range */
      want_up += x[j] > hi;
      want_down += x[j] < lo;
      plain[j] += x[j] > hi ? (double)hi : x[j] < lo ? (double)lo : (double)x[j];
    }
    uint64_t up, down;
    FM_ASSERT_OK(fm__secure_quantize_f32(x, LEN, lower, upper, q, &up, &down));
    assert_int_equal(up, want_up);
    assert_int_equal(down, want_down);
    assert_true(up > 0 && down > 0);
    clients_up += up > 0; /* TFF's secure_upper_clipped_count: clients with max > upper */
    clients_down += down > 0;
    FM_ASSERT_OK(fm__secure_modsum_u32(s, q, LEN, bw));
  }
  assert_int_equal(clients_up, N);
  assert_int_equal(clients_down, N);
  FM_ASSERT_OK(fm__secure_dequantize_sum(s, LEN, N, lower, upper, bw, out));
  double worst = 0.0;
  for (size_t j = 0; j < LEN; j++) worst = fmax(worst, fabs(out[j] - plain[j]));
  /* TFF subtracts the bounds in float32: when hi - lo rounds down
   * ([-0.3, 1.7]: 1.7f + 0.3f = 2.00000006 -> 2.0f), values near hi land up
   * to `excess` steps above 2^32 - 1 and are clipped there, as in TFF. */
  double excess = fmax(0.0, ((double)hi - (double)lo) * (FM__SECAGG_MAX / (double)(hi - lo)) - FM__SECAGG_MAX);
  print_message("[%g, %g]: worst |dequantised - float sum| = %.3g, n·step = %.3g, excess %.1f steps\n", lower, upper,
                worst, N * step, excess);
  assert_true(worst <= N * step * (1.0 + excess));
  assert_true(worst > 0.0); /* it is a quantisation, not the identity */
  free(x);
  free(q);
  free(s);
  free(plain);
  free(out);
}

/* Summed in only the summand width (32 bits), two clients at the upper bound
 * of [-1, 1] wrap: 2·(2^32-1) = 2^32 - 2 (mod 2^32), which maps back to
 * (2^32 - 2 - 2^32)·step = -2·step instead of 2. */
static void test_secure_float_wraps_in_32_bits(void **st) {
  (void)st;
  const double lower = -1.0, upper = 1.0, step = 2.0 / FM__SECAGG_MAX;
  const float ones[2] = {1.0f, 1.0f};
  uint32_t q[1];
  uint64_t s32 = 0, s33 = 0;
  double out[1];
  for (int c = 0; c < 2; c++) {
    FM_ASSERT_OK(fm__secure_quantize_f32(&ones[c], 1, lower, upper, q, NULL, NULL));
    FM_ASSERT_OK(fm__secure_modsum_u32(&s32, q, 1, 32));
    FM_ASSERT_OK(fm__secure_modsum_u32(&s33, q, 1, 33));
  }
  FM_ASSERT_OK(fm__secure_dequantize_sum(&s32, 1, 2, lower, upper, 32, out));
  assert_true(fabs(out[0] - (-2.0 * step)) <= 1e-15);
  FM_ASSERT_OK(fm__secure_dequantize_sum(&s33, 1, 2, lower, upper, 33, out));
  assert_true(fabs(out[0] - 2.0) <= 2.0 * step);
}

/* ---- integer path and wrap-around ------------------------------------------ */

static void test_secure_integer_wraps_like_tff(void **st) {
  (void)st;
  /* SecureSumFactory(5, -2): bitwidth ceil(log2 8) = 3; shifted values in [0, 7]. */
  const int64_t lower = -2, upper = 5;
  int b = 0;
  FM_ASSERT_OK(fm__secure_bitwidth_int(lower, upper, &b));
  assert_int_equal(b, 3);
  const int64_t x[3][2] = {{5, 100}, {5, -50}, {5, 0}};
  uint64_t q[2], s3[2] = {0, 0}, s5[2] = {0, 0}, up_total = 0, down_total = 0;
  int b5;
  FM_ASSERT_OK(fm__secure_sum_bitwidth(b, 3, &b5));
  assert_int_equal(b5, 5);
  for (int c = 0; c < 3; c++) {
    uint64_t up, down;
    FM_ASSERT_OK(fm__secure_shift_i64(x[c], 2, lower, upper, q, &up, &down));
    up_total += up;
    down_total += down;
    /* the modular-sum helper takes uint32 (quantised) or uint64 summands */
    FM_ASSERT_OK(fm__secure_modsum_u64(s3, q, 2, b));
    FM_ASSERT_OK(fm__secure_modsum_u64(s5, q, 2, b5));
  }
  assert_int_equal(up_total, 1);   /* 100 -> 5 */
  assert_int_equal(down_total, 1); /* -50 -> -2 */
  int64_t out[2];
  /* coordinate 0: shifted 7 + 7 + 7 = 21 = 5 (mod 8); server: 5 + 3·(-2) = -1 */
  FM_ASSERT_OK(fm__secure_unshift_sum(s3, 2, 3, lower, b, out));
  assert_int_equal(out[0], -1); /* true sum 15, wrapped by 16 = 2·2^3 */
  /* coordinate 1: clipped 5, -2, 0 -> shifted 7, 0, 2 = 9 = 1 (mod 8); 1 - 6 = -5 (true 3, wrapped by 8) */
  assert_int_equal(out[1], -5);
  /* with the exact sum bitwidth b + ceil(log2 3) = 5 nothing wraps */
  FM_ASSERT_OK(fm__secure_unshift_sum(s5, 2, 3, lower, b5, out));
  assert_int_equal(out[0], 15);
  assert_int_equal(out[1], 3);
  /* the weight sum: SecureSumFactory(2^20 - 1, 0), 20 bits, wraps at 2^20 */
  const int64_t w[2] = {(1 << 20) - 1, 1};
  uint64_t sw = 0, qw[2];
  FM_ASSERT_OK(fm__secure_bitwidth_int(0, (1 << 20) - 1, &b));
  FM_ASSERT_OK(fm__secure_shift_i64(w, 2, 0, (1 << 20) - 1, qw, NULL, NULL));
  FM_ASSERT_OK(fm__secure_modsum_u64(&sw, &qw[0], 1, b));
  FM_ASSERT_OK(fm__secure_modsum_u64(&sw, &qw[1], 1, b));
  FM_ASSERT_OK(fm__secure_unshift_sum(&sw, 1, 2, 0, b, out));
  assert_int_equal(out[0], 0);
}

/* ---- SecAgg+ masking ------------------------------------------------------- */

/* (a) masks cancel: Σ y_i = Σ q_i (mod 2^B) exactly. */
static void check_cancellation(size_t n, size_t len, int bw) {
  fm__secagg_graph *g = NULL;
  FM_ASSERT_OK(fm__secagg_graph_create(2024, 3, n, &g));
  uint64_t *v = malloc(len * sizeof *v), *plain = calloc(len, sizeof *plain), *masked = calloc(len, sizeof *masked);
  uint32_t *q = malloc(len * sizeof *q);
  assert_non_null(v && plain && masked && q);
  size_t changed = 0;
  for (size_t i = 0; i < n; i++) {
    fm_rng r;
    fm_rng_init(&r, 5, 3, i, FM_RNG_USER);
    for (size_t j = 0; j < len; j++) {
      q[j] = fm_rng_u32(&r);
      if (bw < 32) q[j] &= (UINT32_C(1) << bw) - 1;
      v[j] = q[j];
    }
    FM_ASSERT_OK(fm__secure_modsum_u32(plain, q, len, bw));
    FM_ASSERT_OK(fm__secagg_mask(g, i, v, len, bw));
    for (size_t j = 0; j < len; j++) changed += v[j] != q[j];
    FM_ASSERT_OK(fm__secure_modsum_u64(masked, v, len, bw));
  }
  assert_memory_equal(plain, masked, len * sizeof *plain);
  assert_true(changed > n * len / 2); /* masking is on */
  fm__secagg_graph_destroy(g);
  free(v);
  free(plain);
  free(masked);
  free(q);
}

static void test_secagg_masks_cancel(void **st) {
  (void)st;
  const size_t ns[] = {2, 3, 10, 100, 1000};
  for (size_t c = 0; c < 5; c++) {
    size_t len = ns[c] >= 1000 ? 8 : 64;
    int bw = 0;
    FM_ASSERT_OK(fm__secure_sum_bitwidth(32, ns[c], &bw));
    check_cancellation(ns[c], len, bw); /* 33..42-bit words: u64 PRG words */
    check_cancellation(ns[c], len, 8);  /* wraps at 2^8: u32 PRG words */
  }
  check_cancellation(7, 16, 64);
}

/* Pearson chi-square of a 2^b-bin histogram of v against uniform. */
static double chi_square_uniform(const uint64_t *v, size_t len, int b) {
  size_t bins = (size_t)1 << b;
  uint64_t *h = calloc(bins, sizeof *h);
  assert_non_null(h);
  for (size_t j = 0; j < len; j++) h[v[j]]++;
  double e = (double)len / (double)bins, chi = 0.0;
  for (size_t k = 0; k < bins; k++) chi += ((double)h[k] - e) * ((double)h[k] - e) / e;
  free(h);
  return chi;
}

/* (b) a masked all-zeros vector is uniform on [0, 2^8): 2^16 values in 256
 * bins, df = 255; the p = 0.001 critical value is 330.5 (Wilson-Hilferty:
 * 255·(1 - 2/(9·255) + 3.0902·sqrt(2/(9·255)))^3 = 330.5; the regularised
 * incomplete gamma gives P(chi2_255 > 330.5) = 0.00100). The unmasked
 * input (all zeros) gives chi-square 255·2^16, so the test fails if masking
 * is off. Client 0 of 100 (14 neighbours) and of 2 (a single neighbour). */
static void test_secagg_masked_vector_is_uniform(void **st) {
  (void)st;
  enum { LEN = 1 << 16, B = 8 };
  const double crit = 330.5;
  uint64_t *v = calloc(LEN, sizeof *v);
  assert_non_null(v);
  assert_true(chi_square_uniform(v, LEN, B) > crit);
  const size_t ns[] = {100, 2};
  for (size_t c = 0; c < 2; c++) {
    fm__secagg_graph *g = NULL;
    FM_ASSERT_OK(fm__secagg_graph_create(77, 1, ns[c], &g));
    memset(v, 0, LEN * sizeof *v);
    FM_ASSERT_OK(fm__secagg_mask(g, 0, v, LEN, B));
    double chi = chi_square_uniform(v, LEN, B);
    print_message("n = %zu client 0: chi-square %.1f (df 255, critical %.1f)\n", ns[c], chi, crit);
    assert_true(chi < crit);
    fm__secagg_graph_destroy(g);
  }
  free(v);
}

/* (c) the graph: symmetric, no self loops or repeats, degree
 * min(n-1, 2·ceil(log2 n)) for every client, connected. */
static void check_graph(size_t n) {
  fm__secagg_graph *g = NULL;
  FM_ASSERT_OK(fm__secagg_graph_create(9, 4, n, &g));
  size_t k = fm__secagg_degree(n);
  assert_int_equal(g->degree, k);
  uint8_t *seen = calloc(n, 1);
  uint32_t *stack = malloc(n * sizeof *stack);
  assert_non_null(seen && stack);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(g->offset[i + 1] - g->offset[i], k);
    assert_true(k >= 1);
    for (size_t e = g->offset[i]; e < g->offset[i + 1]; e++) {
      uint32_t j = g->adj[e];
      assert_true(j < n && j != i);
      if (e > g->offset[i]) assert_true(g->adj[e - 1] < j); /* ascending, distinct */
      int back = 0;
      for (size_t f = g->offset[j]; f < g->offset[j + 1]; f++) back |= g->adj[f] == i;
      assert_true(back);
    }
  }
  size_t top = 0, reached = 1;
  seen[0] = 1;
  stack[top++] = 0;
  while (top) {
    uint32_t i = stack[--top];
    for (size_t e = g->offset[i]; e < g->offset[i + 1]; e++)
      if (!seen[g->adj[e]]) {
        seen[g->adj[e]] = 1;
        reached++;
        stack[top++] = g->adj[e];
      }
  }
  assert_int_equal(reached, n);
  free(seen);
  free(stack);
  fm__secagg_graph_destroy(g);
}

static void test_secagg_graph_shape(void **st) {
  (void)st;
  const size_t ns[] = {2, 3, 4, 5, 10, 100, 1000, 10000};
  const size_t deg[] = {1, 2, 3, 4, 8, 14, 20, 28}; /* min(n-1, 2·ceil(log2 n)) */
  for (size_t c = 0; c < 8; c++) {
    assert_int_equal(fm__secagg_degree(ns[c]), deg[c]);
    check_graph(ns[c]);
  }
  assert_int_equal(fm__secagg_degree(1), 0);
  fm__secagg_graph *g = NULL;
  FM_ASSERT_ERR(FM_ERR_COHORT, fm__secagg_graph_create(1, 1, 0, &g));
  assert_null(g);
}

/* (d) determinism: same (seed, round) -> same graph and masks, whatever
 * order the clients are masked in; another round or seed -> other masks. */
static void mask_of(uint64_t seed, uint64_t round, size_t n, size_t i, uint64_t *v, size_t len) {
  fm__secagg_graph *g = NULL;
  FM_ASSERT_OK(fm__secagg_graph_create(seed, round, n, &g));
  memset(v, 0, len * sizeof *v);
  FM_ASSERT_OK(fm__secagg_mask(g, i, v, len, 32));
  fm__secagg_graph_destroy(g);
}

static void test_secagg_masks_deterministic(void **st) {
  (void)st;
  enum { LEN = 32 };
  uint64_t a[LEN], b[LEN], c[LEN], d[LEN];
  mask_of(123, 5, 50, 17, a, LEN);
  mask_of(123, 5, 50, 17, b, LEN);
  mask_of(123, 6, 50, 17, c, LEN);
  mask_of(124, 5, 50, 17, d, LEN);
  assert_memory_equal(a, b, sizeof a);
  assert_memory_not_equal(a, c, sizeof a);
  assert_memory_not_equal(a, d, sizeof a);
  fm__secagg_graph *g1 = NULL, *g2 = NULL;
  FM_ASSERT_OK(fm__secagg_graph_create(123, 5, 50, &g1));
  FM_ASSERT_OK(fm__secagg_graph_create(123, 5, 50, &g2));
  assert_memory_equal(g1->adj, g2->adj, 50 * g1->degree * sizeof *g1->adj);
  /* masking other clients first (another "rank" order) does not change client 17's mask */
  uint64_t junk[LEN];
  for (size_t i = 49; i > 17; i--) FM_ASSERT_OK(fm__secagg_mask(g2, i, memset(junk, 0, sizeof junk), LEN, 32));
  memset(b, 0, sizeof b);
  FM_ASSERT_OK(fm__secagg_mask(g2, 17, b, LEN, 32));
  assert_memory_equal(a, b, sizeof a);
  /* input out of range for the bitwidth is refused */
  b[0] = 256;
  FM_ASSERT_ERR(FM_ERR_OVERFLOW, fm__secagg_mask(g2, 17, b, LEN, 8));
  fm__secagg_graph_destroy(g1);
  fm__secagg_graph_destroy(g2);
}

/* Bits per client for the docs table: len·B + degree·1024 with B the exact
 * sum bitwidth of 32-bit summands (39 for 100 clients, 42 for 1000). */
static void test_secagg_bits_per_client(void **st) {
  (void)st;
  const size_t ns[] = {100, 1000};
  const size_t lens[] = {199210, 1663370};
  for (size_t c = 0; c < 2; c++) {
    fm__secagg_graph *g = NULL;
    FM_ASSERT_OK(fm__secagg_graph_create(1, 1, ns[c], &g));
    int bw = 0;
    FM_ASSERT_OK(fm__secure_sum_bitwidth(32, ns[c], &bw));
    for (size_t l = 0; l < 2; l++) {
      uint64_t bits = 0;
      FM_ASSERT_OK(fm__secagg_bits_per_client(g, 0, lens[l], bw, &bits));
      assert_int_equal(bits, (uint64_t)lens[l] * (uint64_t)bw + g->degree * 1024u);
      print_message("n=%zu len=%zu B=%d degree=%zu bits=%llu (vector %llu, overhead %llu) plain32=%llu\n", ns[c],
                    lens[l], bw, g->degree, (unsigned long long)bits, (unsigned long long)lens[l] * (uint64_t)bw,
                    (unsigned long long)(g->degree * 1024u), (unsigned long long)lens[l] * 32u);
    }
    fm__secagg_graph_destroy(g);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_secure_bitwidth),
      cmocka_unit_test(test_secure_quantize_exact_points),
      cmocka_unit_test(test_secure_quantized_sum_matches_float_sum),
      cmocka_unit_test(test_secure_float_wraps_in_32_bits),
      cmocka_unit_test(test_secure_integer_wraps_like_tff),
      cmocka_unit_test(test_secagg_masks_cancel),
      cmocka_unit_test(test_secagg_masked_vector_is_uniform),
      cmocka_unit_test(test_secagg_graph_shape),
      cmocka_unit_test(test_secagg_masks_deterministic),
      cmocka_unit_test(test_secagg_bits_per_client),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
