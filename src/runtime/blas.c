/* src/runtime/blas.c — the CPU's vector ISA, OpenBLAS's kernel names ranked
 * by the ISA they need, and the decision whether to correct the kernel in
 * use (fedmpi/blas.h). The CLI carries the decision out (src/cli/blas_cli.c).
 *
 * Slowdowns are rough single-thread SGEMM 1024^3 ratios measured on this
 * project's machines (docs/performance.md): Prescott 14 GF/s, Haswell 47,
 * SkylakeX 87-137. */
#include <cblas.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "fedmpi/blas.h"
#include "fedmpi/model.h"
#include "internal.h"

/* ---- the CPU ---------------------------------------------------------------------- */

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long fm__xgetbv0(void) {
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}
#endif

void fm_cpu_features_detect(fm_cpu_features *f) {
  memset(f, 0, sizeof *f);
#if defined(__x86_64__) || defined(__i386__)
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  f->sse3 = (c >> 0) & 1;
  f->ssse3 = (c >> 9) & 1;
  f->sse4_2 = (c >> 20) & 1;
  int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  /* The OS must save the YMM (and for AVX-512 the opmask and ZMM) state. */
  unsigned long long xcr0 = osxsave ? fm__xgetbv0() : 0;
  int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
  f->avx = avx && os_avx;
  f->fma = fma && os_avx;
  if (__get_cpuid_max(0, NULL) < 7) return;
  __cpuid_count(7, 0, a, b, c, d);
  f->avx2 = ((b >> 5) & 1) && os_avx;
  if (os_avx512) {
    f->avx512f = (b >> 16) & 1;
    f->avx512dq = (b >> 17) & 1;
    f->avx512cd = (b >> 28) & 1;
    f->avx512bw = (b >> 30) & 1;
    f->avx512vl = (b >> 31) & 1;
    unsigned int a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f->avx512_bf16 = (a1 >> 5) & 1;
  }
#endif
}

static int fm__has_skylakex(const fm_cpu_features *f) {
  return f->avx512f && f->avx512cd && f->avx512bw && f->avx512dq && f->avx512vl;
}

const char *fm_cpu_isa_name(const fm_cpu_features *f) {
  if (fm__has_skylakex(f)) return f->avx512_bf16 ? "AVX-512 with BF16" : "AVX-512";
  if (f->avx2 && f->fma) return "AVX2+FMA";
  if (f->avx) return "AVX";
  if (f->sse4_2) return "SSE4.2";
  if (f->ssse3) return "SSSE3";
  return f->sse3 ? "SSE3" : "no SSE3";
}

/* ---- kernels ------------------------------------------------------------------------ */

typedef struct fm__kernel {
  const char *name;
  int level;
} fm__kernel;

/* OpenBLAS 0.3.21's x86-64 DYNAMIC_ARCH cores (openblas_get_corename spelling). */
static const fm__kernel fm__kernels[] = {
    {"Prescott", 1},   {"Atom", 1},       {"Core2", 2},      {"Penryn", 2},    {"Dunnington", 2}, {"Nehalem", 3},
    {"Opteron", 1},    {"Opteron_SSE3", 1}, {"Barcelona", 3}, {"Bobcat", 3},   {"Sandybridge", 4}, {"Bulldozer", 4},
    {"Piledriver", 4}, {"Steamroller", 5}, {"Excavator", 5}, {"Haswell", 5},   {"Zen", 5},        {"SkylakeX", 6},
    {"Cooperlake", 7}, {"SapphireRapids", 7},
};

static int fm__strcaseeq(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
  return *a == *b;
}

int fm_blas_kernel_level(const char *name) {
  for (size_t i = 0; name && i < sizeof fm__kernels / sizeof fm__kernels[0]; i++)
    if (fm__strcaseeq(fm__kernels[i].name, name)) return fm__kernels[i].level;
  return -1;
}

const char *fm_blas_best_kernel(const fm_cpu_features *f) {
  if (fm__has_skylakex(f)) return f->avx512_bf16 ? "Cooperlake" : "SkylakeX";
  if (f->avx2 && f->fma) return "Haswell";
  if (f->avx) return "Sandybridge";
  if (f->sse4_2) return "Nehalem";
  if (f->ssse3) return "Core2";
  return "Prescott";
}

/* Rough single-thread SGEMM throughput of a kernel level, relative to Prescott. */
static double fm__level_speed(int level) {
  static const double speed[] = {1.0, 1.0, 1.2, 1.3, 2.0, 3.4, 6.5, 6.5};
  if (level < 1) level = 1;
  if (level > 7) level = 7;
  return speed[level];
}

void fm_blas_decide(const fm_cpu_features *f, const char *kernel, const char *user_coretype, int correct,
                    fm_blas_decision *out) {
  const char *best = fm_blas_best_kernel(f);
  int have = fm_blas_kernel_level(kernel), want = fm_blas_kernel_level(best);
  memset(out, 0, sizeof *out);
  out->target = best;
  out->slowdown = 1.0;
  const char *isa = fm_cpu_isa_name(f);
  if (have < 0) { /* a kernel this table does not know: trust OpenBLAS */
    snprintf(out->reason, sizeof out->reason, "OpenBLAS chose %s for this %s CPU", kernel ? kernel : "?", isa);
    return;
  }
  if (have >= want) {
    snprintf(out->reason, sizeof out->reason, "%s %s for this %s CPU", user_coretype && *user_coretype ? "OPENBLAS_CORETYPE chose" : "OpenBLAS chose",
             kernel, isa);
    return;
  }
  out->slowdown = fm__level_speed(want) / fm__level_speed(have);
  if (user_coretype && *user_coretype) {
    out->action = FM_BLAS_WARN_USER;
    snprintf(out->reason, sizeof out->reason,
             "OPENBLAS_CORETYPE=%s runs the %s kernels on a CPU with %s: SGEMM about %.0fx slower than %s "
             "(unset OPENBLAS_CORETYPE or set it to %s)",
             user_coretype, kernel, isa, out->slowdown, best, best);
  } else if (correct) {
    out->action = FM_BLAS_CORRECT;
    snprintf(out->reason, sizeof out->reason,
             "corrected: OpenBLAS chose %s for this %s CPU, which runs SGEMM about %.0fx slower than %s", kernel, isa,
             out->slowdown, best);
  } else {
    out->action = FM_BLAS_WARN_FORCED;
    snprintf(out->reason, sizeof out->reason,
             "OpenBLAS chose %s for this %s CPU: SGEMM about %.0fx slower than %s (set OPENBLAS_CORETYPE=%s)", kernel,
             isa, out->slowdown, best, best);
  }
}

/* ---- the kernel in use --------------------------------------------------------------- */

int fm_blas_selfcheck(void) {
  enum { M = 37, N = 29, K = 53 };
  float a[K * M], b[K * N], c[M * N], c0[M * N];
  uint32_t s = 12345;
  for (int i = 0; i < K * M; i++) a[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
  for (int i = 0; i < K * N; i++) b[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
  for (int i = 0; i < M * N; i++) c0[i] = c[i] = (float)i / (M * N) - 0.5f;
  /* C = 0.75 A^T B + 0.5 C, A stored K x M (transposed), B K x N, row-major. */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 0.75f, a, M, b, N, 0.5f, c, N);
  double worst = 0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double ref = 0.5 * c0[i * N + j];
      for (int k = 0; k < K; k++) ref += 0.75 * (double)a[k * M + i] * (double)b[k * N + j];
      double err = fabs((double)c[i * N + j] - ref);
      if (isnan(err)) err = INFINITY;
      if (err > worst) worst = err;
    }
  FM_CHECK(worst < 1e-4, FM_ERR_NON_FINITE,
           "BLAS kernel %s fails its self-check: SGEMM differs from a plain loop by %g", fm_blas_corename(), worst);
  return FM_OK;
}
