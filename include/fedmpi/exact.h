/* fedmpi/exact.h — exact, order-independent summation in 128-bit fixed point.
 *
 * Each contribution x (a double) is rounded once, towards minus infinity, onto
 * the fixed grid 2^-FM_EXACT_FRAC_BITS and added as a two's-complement 128-bit
 * integer. Integer addition is associative and commutative, so a sum over
 * clients, threads and ranks is bit-for-bit the same in any order and any
 * grouping. The rounding of one contribution depends only on that
 * contribution, never on the order.
 *
 * Range and precision: the grid is 2^-72 (about 2.1e-22) and the integer
 * range is +/-2^55 (about 3.6e16). fm_exact_add() rejects a contribution whose
 * magnitude is at or above the caller's per-contribution limit, so that a sum
 * of at most M contributions can never wrap: callers use
 * fm_exact_limit(M) = 2^55 / 2^ceil(log2(M+1)). With a cohort of 10,000 clients
 * the limit is 2^41 (2.2e12) per weighted client value. */
#ifndef FEDMPI_EXACT_H
#define FEDMPI_EXACT_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FM_EXACT_FRAC_BITS 72

/* value = (hi * 2^64 + lo) * 2^-72, two's complement over 128 bits. */
typedef struct fm_exact {
  uint64_t lo;
  uint64_t hi;
} fm_exact;

/* Largest magnitude a single contribution may have so that the sum of at
 * most max_terms contributions cannot overflow. */
FM_EXTERN double fm_exact_limit(uint64_t max_terms);
/* a[0..n) = 0 */
FM_EXTERN void fm_exact_zero(fm_exact *a, size_t n);
/* *a += x. Returns 0, or 1 (and leaves *a unchanged) when x is not finite or
 * |x| >= limit. */
FM_EXTERN int fm_exact_add(fm_exact *a, double x, double limit);
/* a[i] += (double)w * (double)x[i] for i < n (the product is exact in double).
 * Returns the number of rejected elements (non-finite or over the limit). */
FM_EXTERN size_t fm_exact_add_scaled(fm_exact *a, const float *x, float w, size_t n, double limit);
/* dst[i] += src[i], exact (wrap-around arithmetic, which cannot wrap within limits). */
FM_EXTERN void fm_exact_accumulate(fm_exact *dst, const fm_exact *src, size_t n);
/* Nearest double to *a (deterministic). */
FM_EXTERN double fm_exact_to_double(const fm_exact *a);
/* out[i] = fm_exact_to_double(&a[i]) for i < n, the same bits, vectorized where the CPU allows. */
FM_EXTERN void fm_exact_to_double_n(double *out, const fm_exact *a, size_t n);

#ifdef __cplusplus
}
#endif
#endif
