/* src/privacy/secure.c — TFF secure-summation arithmetic and SecAgg+ masking.
 *
 * Semantic reference: tensorflow_federated/python/aggregators/secure.py
 * (SecureSumFactory: integer bitwidth, _client_shift, _server_shift, clipped
 * counts) and aggregators/primitives.py (secure_quantized_sum:
 * _client_tensor_shift_for_secure_sum / _server_tensor_shift_for_secure_sum,
 * _SECAGG_MAX = 2^32 - 1). Own C implementation.
 *
 * Wrap-around: in TFF's simulation federated_secure_sum_bitwidth returns the
 * exact sum (the float server shift asserts 0 <= s <= _SECAGG_MAX·n); a
 * deployed secure aggregation sums in Z_{2^B}. Here the sum is taken mod
 * 2^B with B chosen by the caller: fm__secure_sum_bitwidth(b, n) reproduces
 * the exact sum, a smaller B shows the wrap-around.
 *
 * Cost model of fm__secagg_bits_per_client (Bell et al. 2020, Sec. 3, as
 * for SecAgg of Bonawitz et al. 2017 restricted to a neighbourhood):
 *   - the masked vector: len·B bits;
 *   - advertising keys: 2 public keys (the key-agreement key c_pk for the
 *     pairwise channel and s_pk for the mask seed) of 256 bits (X25519),
 *     counted once per neighbour they are delivered to;
 *   - secret sharing: Shamir shares of 2 secrets (the mask-key secret s_sk and
 *     the self-mask seed b_i), 256 bits each, one share per neighbour.
 * So per neighbour 4·256 = 1024 bits; unmasking-round responses, signatures,
 * encryption overhead and the server's messages are not counted. The
 * simulation does not add the self mask PRG(b_i): the server subtracts it
 * again after reconstructing b_i from its shares, so with no dropouts it
 * changes neither the sum nor the distribution of y_i (already uniform). */
#include "secure.h"

#include <math.h>
#include <stdlib.h>

#include "fedmpi/rng.h"
#include "internal.h"

#define FM__SECAGG_KEY_BITS 256u
#define FM__SECAGG_BITS_PER_NEIGHBOUR (2u * FM__SECAGG_KEY_BITS + 2u * FM__SECAGG_KEY_BITS)
#define FM__SECAGG_MAX_CLIENTS ((size_t)1 << 24)

static uint64_t fm__mask_bits(int bitwidth) {
  return bitwidth >= 64 ? UINT64_MAX : ((UINT64_C(1) << bitwidth) - 1);
}

static int fm__check_bitwidth(int bitwidth, const char *fn) {
  FM_CHECK(bitwidth >= 1 && bitwidth <= 64, FM_ERR_INVALID_ARG, "%s: bitwidth %d is not in [1, 64]", fn, bitwidth);
  return FM_OK;
}

/* ceil(log2(x)) for x >= 1. */
static int fm__ceil_log2(uint64_t x) {
  int b = 0;
  while (b < 64 && (UINT64_C(1) << b) < x) b++;
  return b;
}

int fm__secure_bitwidth_f32(void) { return 32; }

int fm__secure_bitwidth_int(int64_t lower, int64_t upper, int *bitwidth) {
  FM_CHECK(bitwidth, FM_ERR_INVALID_ARG, "fm__secure_bitwidth_int: bitwidth is NULL");
  FM_CHECK(upper > lower, FM_ERR_INVALID_ARG,
           "fm__secure_bitwidth_int: upper %lld must be larger than lower %lld", (long long)upper, (long long)lower);
  uint64_t range = (uint64_t)upper - (uint64_t)lower; /* exact: upper > lower */
  /* ceil(log2(range + 1)) = bit length of range (range + 1 may be 2^64). */
  int b = 0;
  while (b < 64 && (range >> b) != 0) b++;
  *bitwidth = b;
  return FM_OK;
}

int fm__secure_sum_bitwidth(int bitwidth, uint64_t num_clients, int *sum_bitwidth) {
  FM_CALL(fm__check_bitwidth(bitwidth, "fm__secure_sum_bitwidth"));
  FM_CHECK(sum_bitwidth && num_clients >= 1, FM_ERR_INVALID_ARG,
           "fm__secure_sum_bitwidth: needs num_clients >= 1 and an output");
  int b = bitwidth + fm__ceil_log2(num_clients);
  FM_CHECK(b <= 64, FM_ERR_OVERFLOW, "fm__secure_sum_bitwidth: %d-bit summands of %llu clients need %d > 64 bits",
           bitwidth, (unsigned long long)num_clients, b);
  *sum_bitwidth = b;
  return FM_OK;
}

/* tf.saturate_cast(tf.round(v), tf.int64): round half to even, then clamp. */
static int64_t fm__rne_sat_i64(double v) {
  double r = nearbyint(v);
  if (r >= 9223372036854775807.0) return INT64_MAX;
  if (r <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)r;
}

/* Bounds as TFF sees them for float32 values: cast to float32, span
 * subtracted in float32, scale = divide_no_nan(2^32 - 1, span). */
typedef struct fm__qbounds {
  float lo, hi;
  double span, scale;
  int64_t shift; /* rne(lo·scale) */
} fm__qbounds;

static int fm__qbounds_make(double lower, double upper, const char *fn, fm__qbounds *b) {
  FM_CHECK(isfinite(lower) && isfinite(upper), FM_ERR_NON_FINITE, "%s: bounds must be finite", fn);
  b->lo = (float)lower;
  b->hi = (float)upper;
  FM_CHECK(isfinite(b->lo) && isfinite(b->hi), FM_ERR_OVERFLOW, "%s: bounds do not fit in float32", fn);
  FM_CHECK(b->lo <= b->hi, FM_ERR_INVALID_ARG, "%s: lower %g must not exceed upper %g", fn, lower, upper);
  float span = b->hi - b->lo;
  FM_CHECK(isfinite(span), FM_ERR_OVERFLOW, "%s: upper - lower overflows float32", fn);
  b->span = (double)span;
  b->scale = b->span == 0.0 ? 0.0 : FM__SECAGG_MAX / b->span;
  b->shift = fm__rne_sat_i64((double)b->lo * b->scale);
  return FM_OK;
}

int fm__secure_quantize_f32(const float *x, size_t n, double lower, double upper, uint32_t *q,
                            uint64_t *upper_clipped, uint64_t *lower_clipped) {
  FM_CHECK((x && q) || n == 0, FM_ERR_INVALID_ARG, "fm__secure_quantize_f32: NULL array");
  fm__qbounds b = {0};
  FM_CALL(fm__qbounds_make(lower, upper, "fm__secure_quantize_f32", &b));
  uint64_t up = 0, down = 0;
  for (size_t j = 0; j < n; j++) {
    float v = x[j];
    FM_CHECK(!isnan(v), FM_ERR_NON_FINITE, "fm__secure_quantize_f32: x[%zu] is NaN", j);
    if (v > b.hi) {
      v = b.hi;
      up++;
    } else if (v < b.lo) {
      v = b.lo;
      down++;
    }
    int64_t r = fm__rne_sat_i64((double)v * b.scale);
    /* int64 subtraction wraps in TF; do the same without C's signed overflow. */
    int64_t s = (int64_t)((uint64_t)r - (uint64_t)b.shift);
    if (s < 0) s = 0;
    if (s > (int64_t)FM__SECAGG_MAX_U64) s = (int64_t)FM__SECAGG_MAX_U64;
    q[j] = (uint32_t)s;
  }
  if (upper_clipped) *upper_clipped = up;
  if (lower_clipped) *lower_clipped = down;
  return FM_OK;
}

int fm__secure_shift_i64(const int64_t *x, size_t n, int64_t lower, int64_t upper, uint64_t *q,
                         uint64_t *upper_clipped, uint64_t *lower_clipped) {
  FM_CHECK((x && q) || n == 0, FM_ERR_INVALID_ARG, "fm__secure_shift_i64: NULL array");
  FM_CHECK(upper > lower, FM_ERR_INVALID_ARG, "fm__secure_shift_i64: upper %lld must be larger than lower %lld",
           (long long)upper, (long long)lower);
  uint64_t up = 0, down = 0;
  for (size_t j = 0; j < n; j++) {
    int64_t v = x[j];
    if (v > upper) {
      v = upper;
      up++;
    } else if (v < lower) {
      v = lower;
      down++;
    }
    q[j] = (uint64_t)v - (uint64_t)lower; /* in [0, upper - lower], exact */
  }
  if (upper_clipped) *upper_clipped = up;
  if (lower_clipped) *lower_clipped = down;
  return FM_OK;
}

int fm__secure_modsum_u32(uint64_t *acc, const uint32_t *x, size_t n, int bitwidth) {
  FM_CALL(fm__check_bitwidth(bitwidth, "fm__secure_modsum_u32"));
  FM_CHECK((acc && x) || n == 0, FM_ERR_INVALID_ARG, "fm__secure_modsum_u32: NULL array");
  uint64_t m = fm__mask_bits(bitwidth);
  for (size_t j = 0; j < n; j++) acc[j] = (acc[j] + x[j]) & m;
  return FM_OK;
}

int fm__secure_modsum_u64(uint64_t *acc, const uint64_t *x, size_t n, int bitwidth) {
  FM_CALL(fm__check_bitwidth(bitwidth, "fm__secure_modsum_u64"));
  FM_CHECK((acc && x) || n == 0, FM_ERR_INVALID_ARG, "fm__secure_modsum_u64: NULL array");
  uint64_t m = fm__mask_bits(bitwidth);
  for (size_t j = 0; j < n; j++) acc[j] = (acc[j] + x[j]) & m;
  return FM_OK;
}

int fm__secure_dequantize_sum(const uint64_t *sum_mod, size_t n, uint64_t num_clients, double lower, double upper,
                              int bitwidth, double *out) {
  FM_CALL(fm__check_bitwidth(bitwidth, "fm__secure_dequantize_sum"));
  FM_CHECK((sum_mod && out) || n == 0, FM_ERR_INVALID_ARG, "fm__secure_dequantize_sum: NULL array");
  FM_CHECK(num_clients <= (uint64_t)INT32_MAX, FM_ERR_INVALID_ARG, "fm__secure_dequantize_sum: %llu clients",
           (unsigned long long)num_clients);
  fm__qbounds b = {0};
  FM_CALL(fm__qbounds_make(lower, upper, "fm__secure_dequantize_sum", &b));
  uint64_t m = fm__mask_bits(bitwidth);
  uint64_t smax = FM__SECAGG_MAX_U64 * num_clients; /* < 2^63: num_clients < 2^31 */
  /* shift·num_clients in int64 with TF's wrapping multiplication. */
  int64_t total_shift = (int64_t)((uint64_t)b.shift * num_clients);
  double step = b.span / FM__SECAGG_MAX;
  for (size_t j = 0; j < n; j++) {
    uint64_t s = sum_mod[j] & m;
    FM_CHECK(s <= smax, FM_ERR_OVERFLOW,
             "fm__secure_dequantize_sum: sum[%zu] = %llu exceeds (2^32-1)·%llu: not a sum of %llu quantised values",
             j, (unsigned long long)s, (unsigned long long)num_clients, (unsigned long long)num_clients);
    if (b.span == 0.0) {
      out[j] = (double)s * step + (double)num_clients * (double)b.lo;
    } else {
      int64_t v = (int64_t)(s + (uint64_t)total_shift);
      out[j] = (double)v * step;
    }
  }
  return FM_OK;
}

int fm__secure_unshift_sum(const uint64_t *sum_mod, size_t n, uint64_t num_clients, int64_t lower, int bitwidth,
                           int64_t *out) {
  FM_CALL(fm__check_bitwidth(bitwidth, "fm__secure_unshift_sum"));
  FM_CHECK((sum_mod && out) || n == 0, FM_ERR_INVALID_ARG, "fm__secure_unshift_sum: NULL array");
  FM_CHECK(num_clients <= (uint64_t)INT64_MAX, FM_ERR_INVALID_ARG, "fm__secure_unshift_sum: %llu clients",
           (unsigned long long)num_clients);
  uint64_t m = fm__mask_bits(bitwidth);
  int64_t base;
  FM_CHECK(!__builtin_mul_overflow(lower, (int64_t)num_clients, &base), FM_ERR_OVERFLOW,
           "fm__secure_unshift_sum: lower·num_clients does not fit in int64");
  for (size_t j = 0; j < n; j++) {
    uint64_t s = sum_mod[j] & m;
    FM_CHECK(s <= (uint64_t)INT64_MAX && !__builtin_add_overflow((int64_t)s, base, &out[j]), FM_ERR_OVERFLOW,
             "fm__secure_unshift_sum: sum[%zu] + lower·num_clients does not fit in int64", j);
  }
  return FM_OK;
}

/* ---- SecAgg+ masking ------------------------------------------------------- */

size_t fm__secagg_degree(size_t n) {
  if (n <= 1) return 0;
  size_t k = 2 * (size_t)fm__ceil_log2((uint64_t)n);
  return k >= n - 1 ? n - 1 : k;
}

static int fm__cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

int fm__secagg_graph_create(uint64_t seed, uint64_t round, size_t n, fm__secagg_graph **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm__secagg_graph_create: out is NULL");
  *out = NULL;
  FM_CHECK(n >= 1 && n <= FM__SECAGG_MAX_CLIENTS, FM_ERR_COHORT,
           "fm__secagg_graph_create: cohort of %zu clients (needs 1 .. 2^24)", n);
  int rc = FM_OK;
  uint32_t *ring = NULL, *pos = NULL;
  fm__secagg_graph *g = fm__calloc(1, sizeof *g);
  FM_CHECK_GOTO(rc, g, fail, FM_ERR_NOMEM, "fm__secagg_graph_create: graph");
  g->seed = seed;
  g->round = round;
  g->n = n;
  g->degree = fm__secagg_degree(n);
  g->offset = fm__malloc((n + 1) * sizeof *g->offset);
  g->adj = fm__malloc((n * g->degree + 1) * sizeof *g->adj);
  ring = fm__malloc(n * sizeof *ring);
  pos = fm__malloc(n * sizeof *pos);
  FM_CHECK_GOTO(rc, g->offset && g->adj && ring && pos, fail, FM_ERR_NOMEM, "fm__secagg_graph_create: %zu clients",
                n);
  /* ring[p] = client at ring position p: a uniform permutation (Bell et al.). */
  for (size_t p = 0; p < n; p++) ring[p] = (uint32_t)p;
  fm_rng r;
  fm_rng_init(&r, seed, round, 0, FM_RNG_SECAGG_GRAPH);
  fm_rng_shuffle_u32(&r, ring, n);
  for (size_t p = 0; p < n; p++) pos[ring[p]] = (uint32_t)p;
  size_t k = g->degree;
  for (size_t i = 0; i < n; i++) {
    uint32_t *nb = g->adj + i * k;
    g->offset[i] = i * k;
    if (k == n - 1) { /* complete graph */
      size_t c = 0;
      for (size_t j = 0; j < n; j++)
        if (j != i) nb[c++] = (uint32_t)j;
      continue;
    }
    size_t p = pos[i], h = k / 2; /* Harary H(k, n), k even, k < n - 1: 2h distinct ring neighbours */
    for (size_t d = 1; d <= h; d++) {
      nb[2 * (d - 1)] = ring[(p + d) % n];
      nb[2 * (d - 1) + 1] = ring[(p + n - d) % n];
    }
    qsort(nb, k, sizeof *nb, fm__cmp_u32);
  }
  g->offset[n] = n * k;
  fm__free(ring);
  fm__free(pos);
  *out = g;
  return FM_OK;
fail:
  fm__free(ring);
  fm__free(pos);
  fm__secagg_graph_destroy(g);
  return rc;
}

void fm__secagg_graph_destroy(fm__secagg_graph *g) {
  if (!g) return;
  fm__free(g->offset);
  fm__free(g->adj);
  fm__free(g);
}

/* v += sign · PRG(a, b) mod 2^bitwidth; sign = +1 or -1. */
static void fm__secagg_add_prg(const fm__secagg_graph *g, uint32_t a, uint32_t b, int sign, uint64_t *v, size_t len,
                               int bitwidth) {
  uint64_t pair = (uint64_t)b * (b - 1) / 2 + a; /* a < b: unique, independent of n */
  fm_rng r;
  fm_rng_init(&r, g->seed, g->round, pair, FM_RNG_SECAGG_MASK);
  uint64_t m = fm__mask_bits(bitwidth);
  if (bitwidth <= 32) {
    for (size_t j = 0; j < len; j++) {
      uint64_t w = fm_rng_u32(&r) & m;
      v[j] = (sign > 0 ? v[j] + w : v[j] - w) & m;
    }
  } else {
    for (size_t j = 0; j < len; j++) {
      uint64_t w = fm_rng_u64(&r) & m;
      v[j] = (sign > 0 ? v[j] + w : v[j] - w) & m;
    }
  }
}

int fm__secagg_mask(const fm__secagg_graph *g, size_t i, uint64_t *v, size_t len, int bitwidth) {
  FM_CALL(fm__check_bitwidth(bitwidth, "fm__secagg_mask"));
  FM_CHECK(g && i < g->n, FM_ERR_INVALID_ARG, "fm__secagg_mask: client %zu not in the graph", i);
  FM_CHECK(v || len == 0, FM_ERR_INVALID_ARG, "fm__secagg_mask: v is NULL");
  uint64_t m = fm__mask_bits(bitwidth);
  for (size_t j = 0; j < len; j++)
    FM_CHECK(v[j] <= m, FM_ERR_OVERFLOW, "fm__secagg_mask: v[%zu] = %llu does not fit in %d bits", j,
             (unsigned long long)v[j], bitwidth);
  for (size_t e = g->offset[i]; e < g->offset[i + 1]; e++) {
    uint32_t j = g->adj[e];
    if (j > i)
      fm__secagg_add_prg(g, (uint32_t)i, j, +1, v, len, bitwidth);
    else
      fm__secagg_add_prg(g, j, (uint32_t)i, -1, v, len, bitwidth);
  }
  return FM_OK;
}

int fm__secagg_bits_per_client(const fm__secagg_graph *g, size_t i, size_t len, int bitwidth, uint64_t *bits) {
  FM_CALL(fm__check_bitwidth(bitwidth, "fm__secagg_bits_per_client"));
  FM_CHECK(g && i < g->n && bits, FM_ERR_INVALID_ARG, "fm__secagg_bits_per_client: client %zu not in the graph", i);
  uint64_t deg = (uint64_t)(g->offset[i + 1] - g->offset[i]);
  *bits = (uint64_t)len * (uint64_t)bitwidth + deg * FM__SECAGG_BITS_PER_NEIGHBOUR;
  return FM_OK;
}
