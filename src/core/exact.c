/* src/core/exact.c — exact 128-bit fixed-point accumulation (see
 * fedmpi/exact.h for the range and precision argument).
 *
 * A double x with |x| < 2^55 maps to floor(x * 2^72) split as
 *   t  = x * 2^8            (exact: a power-of-two scaling)
 *   hi = floor(t)           (exact, |hi| < 2^63)
 *   lo = floor((t - hi) * 2^64)   (t - hi in [0, 1) is exact; the product is
 *                                  exact; the conversion truncates bits below
 *                                  2^-72, the only rounding, deterministic)
 * and is added with carry as a two's-complement 128-bit integer. */
#include <math.h>

#include "fedmpi/exact.h"

double fm_exact_limit(uint64_t max_terms) {
  int bits = 0;
  while (bits < 62 && ((uint64_t)1 << bits) < max_terms + 1) bits++;
  return ldexp(1.0, 55 - bits);
}

void fm_exact_zero(fm_exact *a, size_t n) {
  for (size_t i = 0; i < n; i++) a[i].lo = a[i].hi = 0;
}

static inline void fm__exact_add_parts(fm_exact *a, uint64_t lo, uint64_t hi) {
  uint64_t s = a->lo + lo;
  a->hi += hi + (s < lo);
  a->lo = s;
}

int fm_exact_add(fm_exact *a, double x, double limit) {
  if (!(fabs(x) < limit)) return 1; /* also catches NaN */
  if (x == 0.0) return 0;
  double t = ldexp(x, 8);
  double h = floor(t);
  double r = t - h;
  uint64_t lo = (uint64_t)ldexp(r, 64);
  uint64_t hi = (uint64_t)(int64_t)h;
  fm__exact_add_parts(a, lo, hi);
  return 0;
}

size_t fm_exact_add_scaled(fm_exact *a, const float *x, float w, size_t n, double limit) {
  size_t bad = 0;
  const double dw = (double)w;
  for (size_t i = 0; i < n; i++) bad += (size_t)fm_exact_add(&a[i], dw * (double)x[i], limit);
  return bad;
}

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
  return ldexp((double)hi, -8) + (ldexp(lo_hi, -40) + ldexp(lo_lo, -72));
}
