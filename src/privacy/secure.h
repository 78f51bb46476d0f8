/* src/privacy/secure.h — the arithmetic of TFF's secure summation
 * (tff.aggregators.SecureSumFactory) and a simulation of SecAgg+ pairwise
 * masking (Bonawitz et al. 2017; Bell et al. 2020). Private: plain arrays in,
 * arrays out, no MPI, no state beyond the masking graph. See
 * docs/secure-aggregation.md.
 *
 * Pipeline, one round, per tensor:
 *   client:  q_i = fm__secure_quantize_f32(x_i)         (or fm__secure_shift_i64)
 *            y_i = fm__secagg_mask(g, i, q_i, B)         (optional: cancels in the sum)
 *   server:  s   = Σ_i y_i mod 2^B                       (fm__secure_modsum_*)
 *            out = fm__secure_dequantize_sum(s, n, ...)  (or fm__secure_unshift_sum)
 * with B = fm__secure_sum_bitwidth(b, n) for an exact sum, b the summand
 * bitwidth from fm__secure_bitwidth_{f32,int}. A smaller B wraps around. */
#ifndef FEDMPI_PRIVACY_SECURE_H
#define FEDMPI_PRIVACY_SECURE_H

#include <stddef.h>
#include <stdint.h>

/* TFF's _SECAGG_MAX: floats are quantised onto the integers [0, 2^32 - 1]. */
#define FM__SECAGG_MAX 4294967295.0
#define FM__SECAGG_MAX_U64 UINT64_C(4294967295)

/* ---- bitwidths ------------------------------------------------------------ */

/* Summand bitwidth of SecureSumFactory for float values: always 32
 * (secure_quantized_sum sums with bitwidth 32 whatever the bounds). */
int fm__secure_bitwidth_f32(void);
/* Summand bitwidth of SecureSumFactory(upper, lower) for integer values:
 * ceil(log2(upper - lower + 1)), i.e. the bit length of upper - lower, computed
 * exactly in integers. Needs upper > lower (TFF raises ValueError otherwise). */
int fm__secure_bitwidth_int(int64_t lower, int64_t upper, int *bitwidth);
/* Bits a modular sum of num_clients summands, each in [0, 2^bitwidth - 1],
 * needs to be exact: bitwidth + ceil(log2(num_clients)) (num_clients >= 1).
 * FM_ERR_OVERFLOW if that exceeds 64. */
int fm__secure_sum_bitwidth(int bitwidth, uint64_t num_clients, int *sum_bitwidth);

/* ---- client side ---------------------------------------------------------- */

/* TFF's float client shift, with float32 bounds (TFF casts the bounds to the
 * value dtype): c = clip(x, lo, hi) in float32; scale = (2^32-1)/(double)(hi-lo)
 * (0 when hi == lo); q = clip(rne(c·scale) - rne(lo·scale), 0, 2^32-1), rne =
 * round half to even (tf.round), each rounded term saturated to int64.
 * upper_clipped / lower_clipped (either may be NULL) receive the number of
 * coordinates with x > hi / x < lo. TFF's measurements secure_upper_clipped_count
 * and secure_lower_clipped_count count *clients* (max(x) > hi, min(x) < lo), i.e.
 * the number of clients for which these counts are non-zero.
 * Needs lower <= upper, finite bounds; NaN input is FM_ERR_NON_FINITE. */
int fm__secure_quantize_f32(const float *x, size_t n, double lower, double upper, uint32_t *q,
                            uint64_t *upper_clipped, uint64_t *lower_clipped);

/* TFF's integer client shift (SecureSumFactory, integer config):
 * q = clip(x, lower, upper) - lower, in [0, upper - lower]. Counts as above.
 * Needs lower < upper. */
int fm__secure_shift_i64(const int64_t *x, size_t n, int64_t lower, int64_t upper, uint64_t *q,
                         uint64_t *upper_clipped, uint64_t *lower_clipped);

/* ---- modular summation ---------------------------------------------------- */

/* acc[j] = (acc[j] + x[j]) mod 2^bitwidth, 1 <= bitwidth <= 64. */
int fm__secure_modsum_u32(uint64_t *acc, const uint32_t *x, size_t n, int bitwidth);
int fm__secure_modsum_u64(uint64_t *acc, const uint64_t *x, size_t n, int bitwidth);

/* ---- server side ---------------------------------------------------------- */

/* TFF's float server shift: with lo, hi, scale as on the client and
 * shift = rne(lo·scale) (int64), out = (double)(s + shift·num_clients) ·
 * ((double)(hi - lo) / (2^32 - 1)); when hi == lo, out = s·0 + num_clients·lo.
 * The lower bound times the number of clients is re-added in the integer
 * domain, before scaling. s = sum_mod[j] read as the integer in
 * [0, 2^bitwidth); TFF asserts 0 <= s <= (2^32-1)·num_clients, here a larger s
 * is FM_ERR_OVERFLOW. TFF finally casts to the value dtype: (float)out[j]. */
int fm__secure_dequantize_sum(const uint64_t *sum_mod, size_t n, uint64_t num_clients, double lower, double upper,
                              int bitwidth, double *out);

/* TFF's integer server shift: out = s + lower·num_clients with
 * s = sum_mod[j] mod 2^bitwidth. If the true sum of the shifted values does not
 * fit in bitwidth bits it has wrapped: out is the true sum minus a multiple of
 * 2^bitwidth. FM_ERR_OVERFLOW if out does not fit in int64. */
int fm__secure_unshift_sum(const uint64_t *sum_mod, size_t n, uint64_t num_clients, int64_t lower, int bitwidth,
                           int64_t *out);

/* ---- SecAgg+ masking graph ------------------------------------------------ */

/* Harary graph H(k, n) on a random ring: the ring order is a permutation of the
 * cohort indices 0..n-1 drawn from fm_rng(seed, round, 0, FM_RNG_SECAGG_GRAPH),
 * and each client is joined to the h = k/2 clients on either side of it.
 * k = 2·ceil(log2 n); when k >= n - 1 the graph is complete (degree n - 1). */
typedef struct fm__secagg_graph {
  uint64_t seed, round;
  size_t n;        /* clients */
  size_t degree;   /* every client's number of neighbours */
  size_t *offset;  /* n + 1 entries: neighbours of i are adj[offset[i] .. offset[i+1]) */
  uint32_t *adj;   /* ascending within each client */
} fm__secagg_graph;

/* Build the graph for a cohort of n clients (1 <= n <= 2^24). */
int fm__secagg_graph_create(uint64_t seed, uint64_t round, size_t n, fm__secagg_graph **out);
void fm__secagg_graph_destroy(fm__secagg_graph *g);
/* The degree the graph of n clients gets (0 for n = 1). */
size_t fm__secagg_degree(size_t n);

/* Mask client i's vector in place, mod 2^bitwidth (1 <= bitwidth <= 64):
 * v += Σ_{j ∈ N(i), j > i} PRG(i, j) − Σ_{j ∈ N(i), j < i} PRG(j, i), where
 * PRG(a, b), a < b, is fm_rng(seed, round, b(b-1)/2 + a, FM_RNG_SECAGG_MASK)
 * read as len words mod 2^bitwidth (u32 words for bitwidth <= 32, u64 above).
 * Input values must already lie in [0, 2^bitwidth). */
int fm__secagg_mask(const fm__secagg_graph *g, size_t i, uint64_t *v, size_t len, int bitwidth);

/* Bits client i sends in one SecAgg+ round (cost model, see secure.c):
 * len·bitwidth + degree(i)·(2·256 + 2·256). */
int fm__secagg_bits_per_client(const fm__secagg_graph *g, size_t i, size_t len, int bitwidth, uint64_t *bits);

#endif
