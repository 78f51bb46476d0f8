/* src/core/exact.c — exact 128-bit fixed-point accumulation (see
 * fedmpi/exact.h for the range and precision argument).
 *
 * A double x with |x| < 2^55 maps to floor(x * 2^72) split as
 *   t  = x * 2^8            (exact: a power-of-two scaling)
 *   hi = floor(t)           (exact, |hi| < 2^63; truncation corrected below
 * zero) lo = floor((t - hi) * 2^64)   (t - hi in [0, 1) is exact; the product
 * is exact; the conversion truncates bits below 2^-72, the only rounding,
 * deterministic) and is added with carry as a two's-complement 128-bit integer.
 */
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
  int64_t hi = (int64_t)t;                                /* toward zero ... */
  hi -= (int64_t)((double)hi > t);                        /* ... then floor */
  double r = (t - (double)hi) * 0x1p32;                   /* fraction in [0, 1), exact, times 2^32 */
  int64_t top = (int64_t)r;                               /* bits 2^-9 .. 2^-40 */
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

/* One element of fm_exact_add_scaled: the limit test on the bits (both
 * non-negative doubles order as integers; NaN's bits are above every limit:
 * a floating-point compare would keep the loop from vectorizing). A rejected
 * value becomes +0, adding nothing. Returns 1 when rejected. */
FM__INLINE size_t fm__exact_add_scaled1(fm_exact *a, double v, uint64_t lb) {
  uint64_t vb;
  memcpy(&vb, &v, sizeof vb);
  const uint64_t ok = (uint64_t)((vb & 0x7fffffffffffffffull) < lb);
  vb &= (uint64_t)0 - ok;
  memcpy(&v, &vb, sizeof v);
  fm__exact_add_unchecked(a, v);
  return (size_t)(1 - ok);
}

FM__CLONES
static size_t fm__exact_add_scaled_generic(fm_exact *a, const float *x, float w, size_t n, uint64_t lb) {
  size_t bad = 0;
  const double dw = (double)w;
  for (size_t i = 0; i < n; i++) bad += fm__exact_add_scaled1(&a[i], dw * (double)x[i], lb);
  return bad;
}

#if defined(__x86_64__) && defined(__GNUC__) && defined(__ELF__)
#include <immintrin.h>
#define FM__HAVE_AVX2_PATH 1

/* AVX2, four elements at a time, the same bits as fm__exact_add_unchecked:
 * floor is vroundpd towards minus infinity; the conversions to integers,
 * which AVX2 lacks for 64 bits, add 2^52 + 2^51 and take the bit pattern,
 * exact for integers of magnitude below 2^51. A group with a (valid) value
 * of magnitude 2^43 or more (x * 2^8 at or above 2^51, rare: the limit is
 * 2^55 over the number of terms) goes through the scalar code instead. The
 * 128-bit sums are made in the interleaved {lo, hi} layout: one 64-bit add
 * of all lanes, then the carry out of each lo lane (an unsigned compare, as
 * a signed one of sign-flipped values) moved into its hi lane. */
__attribute__((target("avx2"))) static size_t fm__exact_add_scaled_avx2(fm_exact *a, const float *x, float w, size_t n,
                                                                        uint64_t lb) {
  const __m256d dw = _mm256_set1_pd((double)w), two8 = _mm256_set1_pd(0x1p8), two32 = _mm256_set1_pd(0x1p32);
  const __m256d magic = _mm256_set1_pd(0x1.8p52), fast = _mm256_set1_pd(0x1p51);
  const __m256i magic_i = _mm256_castpd_si256(magic), absmask = _mm256_set1_epi64x(0x7fffffffffffffffll);
  const __m256i lim = _mm256_set1_epi64x((long long)lb), sign = _mm256_set1_epi64x((long long)0x8000000000000000ull);
  const __m256i lo_lanes = _mm256_set_epi64x(0, -1, 0, -1);
  size_t bad = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256d v = _mm256_mul_pd(dw, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    const __m256i ok = _mm256_cmpgt_epi64(lim, _mm256_and_si256(_mm256_castpd_si256(v), absmask));
    bad += (size_t)__builtin_popcount(~(unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(ok)) & 0xfu);
    v = _mm256_and_pd(v, _mm256_castsi256_pd(ok));
    const __m256d t = _mm256_mul_pd(v, two8);
    if (_mm256_movemask_pd(_mm256_cmp_pd(_mm256_andnot_pd(_mm256_set1_pd(-0.0), t), fast, _CMP_GE_OQ))) {
      for (size_t j = 0; j < 4; j++) (void)fm__exact_add_scaled1(&a[i + j], (double)w * (double)x[i + j], lb);
      continue;
    }
    const __m256d f = _mm256_round_pd(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256i hi = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(f, magic)), magic_i);
    const __m256d r = _mm256_mul_pd(_mm256_sub_pd(t, f), two32);
    const __m256d top = _mm256_round_pd(r, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256d rb = _mm256_mul_pd(_mm256_sub_pd(r, top), two32);
    const __m256d bottom = _mm256_round_pd(rb, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256i top_i = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(top, magic)), magic_i);
    const __m256i bottom_i = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(bottom, magic)), magic_i);
    const __m256i lo = _mm256_or_si256(_mm256_slli_epi64(top_i, 32), bottom_i);
    /* {lo0, lo1, lo2, lo3}, {hi0, ...} -> {lo0, hi0, lo1, hi1}, {lo2, hi2, lo3,
     * hi3} */
    const __m256i lp = _mm256_permute4x64_epi64(lo, 0xd8), hp = _mm256_permute4x64_epi64(hi, 0xd8);
    const __m256i b0 = _mm256_unpacklo_epi64(lp, hp), b1 = _mm256_unpackhi_epi64(lp, hp);
    __m256i *pa = (__m256i *)(void *)&a[i];
    __m256i s0 = _mm256_add_epi64(_mm256_loadu_si256(pa), b0), s1 = _mm256_add_epi64(_mm256_loadu_si256(pa + 1), b1);
    /* carry = (sum.lo <u added.lo): -1 in the lo lanes, moved up into the hi
     * lanes */
    const __m256i c0 = _mm256_cmpgt_epi64(_mm256_xor_si256(b0, sign), _mm256_xor_si256(s0, sign));
    const __m256i c1 = _mm256_cmpgt_epi64(_mm256_xor_si256(b1, sign), _mm256_xor_si256(s1, sign));
    s0 = _mm256_sub_epi64(s0, _mm256_slli_si256(_mm256_and_si256(c0, lo_lanes), 8));
    s1 = _mm256_sub_epi64(s1, _mm256_slli_si256(_mm256_and_si256(c1, lo_lanes), 8));
    _mm256_storeu_si256(pa, s0);
    _mm256_storeu_si256(pa + 1, s1);
  }
  return bad + fm__exact_add_scaled_generic(a + i, x + i, w, n - i, lb);
}
#endif

size_t fm_exact_add_scaled(fm_exact *a, const float *x, float w, size_t n, double limit) {
  uint64_t lb;
  memcpy(&lb, &limit, sizeof lb);
#ifdef FM__HAVE_AVX2_PATH
  if (__builtin_cpu_supports("avx2")) return fm__exact_add_scaled_avx2(a, x, w, n, lb);
#endif
  return fm__exact_add_scaled_generic(a, x, w, n, lb);
}

static void fm__exact_accumulate_generic(fm_exact *dst, const fm_exact *src, size_t n) {
  for (size_t i = 0; i < n; i++) fm__exact_add_parts(&dst[i], src[i].lo, src[i].hi);
}

/* hi carries weight 2^-8, lo weight 2^-72. lo is split so that both parts
 * convert exactly, and the two small terms are added before the large one. */
FM__INLINE double fm__exact_to_double1(const fm_exact *a) {
  int64_t hi = (int64_t)a->hi;
  double lo_hi = (double)(a->lo >> 32);         /* exact: < 2^32 */
  double lo_lo = (double)(a->lo & 0xffffffffu); /* exact */
  return (double)hi * 0x1p-8 + (lo_hi * 0x1p-40 + lo_lo * 0x1p-72);
}

#ifdef FM__HAVE_AVX2_PATH
/* Two elements per 256-bit vector, the 128-bit adds as in
 * fm__exact_add_scaled_avx2. */
__attribute__((target("avx2"))) static void fm__exact_accumulate_avx2(fm_exact *dst, const fm_exact *src, size_t n) {
  const __m256i sign = _mm256_set1_epi64x((long long)0x8000000000000000ull), lo_lanes = _mm256_set_epi64x(0, -1, 0, -1);
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    __m256i *pd = (__m256i *)(void *)&dst[i];
    const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)&src[i]);
    __m256i s = _mm256_add_epi64(_mm256_loadu_si256(pd), b);
    const __m256i c = _mm256_cmpgt_epi64(_mm256_xor_si256(b, sign), _mm256_xor_si256(s, sign));
    s = _mm256_sub_epi64(s, _mm256_slli_si256(_mm256_and_si256(c, lo_lanes), 8));
    _mm256_storeu_si256(pd, s);
  }
  fm__exact_accumulate_generic(dst + i, src + i, n - i);
}

/* Four elements at a time, the bits of fm__exact_to_double1: every 32-bit
 * half converts exactly (its bits under the exponent of 2^52, minus 2^52);
 * (double)hi is the one rounding of the exact hi_high * 2^32 + hi_low. */
__attribute__((target("avx2"))) static void fm__exact_to_double_avx2(double *out, const fm_exact *a, size_t n) {
  const __m256i exp52 = _mm256_set1_epi64x(0x4330000000000000ll), low32 = _mm256_set1_epi64x(0xffffffffll);
  const __m256d two52 = _mm256_set1_pd(0x1p52), two32 = _mm256_set1_pd(0x1p32);
  const __m256d s8 = _mm256_set1_pd(0x1p-8), s40 = _mm256_set1_pd(0x1p-40), s72 = _mm256_set1_pd(0x1p-72);
  const __m256i bias = _mm256_set1_epi64x(0x80000000ll);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)&a[i]);
    const __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)&a[i + 2]);
    /* {lo0, hi0, lo1, hi1}, {lo2, hi2, lo3, hi3} -> {lo0, lo1, lo2, lo3}, {hi0,
     * ...} */
    const __m256i lo = _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(a0, a1), 0xd8);
    const __m256i hi = _mm256_permute4x64_epi64(_mm256_unpackhi_epi64(a0, a1), 0xd8);
#define FM__U32_TO_PD(u) _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256((u), exp52)), two52)
    const __m256d lo_hi = FM__U32_TO_PD(_mm256_srli_epi64(lo, 32));
    const __m256d lo_lo = FM__U32_TO_PD(_mm256_and_si256(lo, low32));
    /* hi's top half is signed: biased by 2^31 into [0, 2^32), converted,
     * unbiased (all exact) */
    const __m256d hi_hi =
        _mm256_sub_pd(FM__U32_TO_PD(_mm256_and_si256(_mm256_add_epi64(_mm256_srli_epi64(hi, 32), bias), low32)),
                      _mm256_set1_pd(0x1p31));
    const __m256d hi_lo = FM__U32_TO_PD(_mm256_and_si256(hi, low32));
#undef FM__U32_TO_PD
    const __m256d hd = _mm256_add_pd(_mm256_mul_pd(hi_hi, two32), hi_lo);
    const __m256d small = _mm256_add_pd(_mm256_mul_pd(lo_hi, s40), _mm256_mul_pd(lo_lo, s72));
    _mm256_storeu_pd(out + i, _mm256_add_pd(_mm256_mul_pd(hd, s8), small));
  }
  for (; i < n; i++) out[i] = fm__exact_to_double1(&a[i]);
}
#endif

void fm_exact_accumulate(fm_exact *dst, const fm_exact *src, size_t n) {
#ifdef FM__HAVE_AVX2_PATH
  if (__builtin_cpu_supports("avx2")) {
    fm__exact_accumulate_avx2(dst, src, n);
    return;
  }
#endif
  fm__exact_accumulate_generic(dst, src, n);
}

double fm_exact_to_double(const fm_exact *a) { return fm__exact_to_double1(a); }

void fm_exact_to_double_n(double *out, const fm_exact *a, size_t n) {
#ifdef FM__HAVE_AVX2_PATH
  if (__builtin_cpu_supports("avx2")) {
    fm__exact_to_double_avx2(out, a, n);
    return;
  }
#endif
  for (size_t i = 0; i < n; i++) out[i] = fm__exact_to_double1(&a[i]);
}
