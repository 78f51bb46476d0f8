/* src/core/exact.c — exact 128-bit fixed-point accumulation (see
 * fedmpi/exact.h for the range and precision argument).
 *
 * A double x with |x| < 2^55 maps to floor(x * 2^72) split as
 *   t  = x * 2^8            (exact: a power-of-two scaling)
 *   hi = floor(t)           (exact, |hi| < 2^63; truncation corrected below zero)
 *   lo = floor((t - hi) * 2^64)   (t - hi in [0, 1) is exact; the product is
 *                                  exact; the conversion truncates bits below
 *                                  2^-72, the only rounding, deterministic)
 * and is added with carry as a two's-complement 128-bit integer. */
#include <math.h>
#include <string.h>

#include "fedmpi/exact.h"

/* Forced inline so that the target_clones variants below get their own copy. */
#if defined(__GNUC__)
#define FM__INLINE static inline __attribute__((always_inline))
#else
#define FM__INLINE static inline
#endif

double fm_exact_limit(uint64_t max_terms) {
  int bits = 0;
  while (bits < 62 && ((uint64_t)1 << bits) < max_terms + 1) bits++;
  return ldexp(1.0, 55 - bits);
}

void fm_exact_zero(fm_exact *a, size_t n) {
  for (size_t i = 0; i < n; i++) a[i].lo = a[i].hi = 0;
}

FM__INLINE void fm__exact_add_parts(fm_exact *a, uint64_t lo, uint64_t hi) {
  uint64_t s = a->lo + lo;
  a->hi += hi + (s < lo);
  a->lo = s;
}

/* The hot path, branch-free (random signs and magnitudes would defeat the
 * branch predictor): multiplications by powers of two are exact (as ldexp,
 * without the library call); floor is a truncating conversion minus one for
 * negative non-integers; the 64 fraction bits are taken as two 32-bit
 * halves so that every conversion is a signed one (an unsigned 64-bit
 * conversion branches on x86-64 without AVX-512). Caller guarantees
 * |x| < 2^55. */
FM__INLINE void fm__exact_add_unchecked(fm_exact *a, double x) {
  double t = x * 0x1p8;
  int64_t hi = (int64_t)t;               /* toward zero ... */
  hi -= (int64_t)((double)hi > t);       /* ... then floor */
  double r = (t - (double)hi) * 0x1p32;  /* fraction in [0, 1), exact, times 2^32 */
  int64_t top = (int64_t)r;              /* bits 2^-9 .. 2^-40 */
  int64_t bottom = (int64_t)((r - (double)top) * 0x1p32); /* bits 2^-41 .. 2^-72, truncated: the floor */
  fm__exact_add_parts(a, ((uint64_t)top << 32) | (uint64_t)bottom, (uint64_t)hi);
}

int fm_exact_add(fm_exact *a, double x, double limit) {
  if (!(fabs(x) < limit)) return 1; /* also catches NaN */
  fm__exact_add_unchecked(a, x);
  return 0;
}

/* The aggregation hot loop (every weight of every client) has variants for
 * AVX-512 and AVX2 picked at load time: the integer and power-of-two steps
 * are exact, so every variant gives the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__)
#define FM__CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FM__CLONES
#endif

FM__CLONES
size_t fm_exact_add_scaled(fm_exact *a, const float *x, float w, size_t n, double limit) {
  size_t bad = 0;
  const double dw = (double)w;
  uint64_t lb;
  memcpy(&lb, &limit, sizeof lb);
  for (size_t i = 0; i < n; i++) {
    double v = dw * (double)x[i];
    /* |v| < limit on the bits (both non-negative doubles order as integers;
     * NaN's bits are above every limit): a floating-point compare would keep
     * the loop from vectorizing. A rejected value becomes +0, adding nothing. */
    uint64_t vb;
    memcpy(&vb, &v, sizeof vb);
    const uint64_t ok = (uint64_t)((vb & 0x7fffffffffffffffull) < lb);
    bad += (size_t)(1 - ok);
    vb &= (uint64_t)0 - ok;
    memcpy(&v, &vb, sizeof v);
    fm__exact_add_unchecked(&a[i], v);
  }
  return bad;
}

FM__CLONES
void fm_exact_accumulate(fm_exact *dst, const fm_exact *src, size_t n) {
  for (size_t i = 0; i < n; i++) fm__exact_add_parts(&dst[i], src[i].lo, src[i].hi);
}

double fm_exact_to_double(const fm_exact *a) {
  /* hi carries weight 2^-8, lo weight 2^-72. Split lo so that both parts
   * convert exactly, then one final rounding in the sum of three terms is
   * avoided by adding small to large. */
  int64_t hi = (int64_t)a->hi;
  double lo_hi = (double)(a->lo >> 32);         /* exact: < 2^32 */
  double lo_lo = (double)(a->lo & 0xffffffffu); /* exact */
  return (double)hi * 0x1p-8 + (lo_hi * 0x1p-40 + lo_lo * 0x1p-72);
}
