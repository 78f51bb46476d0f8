/* fedmpi/blas.h — which BLAS kernel runs, and whether it is the right one.
 *
 * OpenBLAS picks its kernels for the CPU when it loads. OpenBLAS 0.3.21 does
 * not know CPUs newer than itself and then falls back to its Prescott (SSE3)
 * kernels: SGEMM runs ~6x slower, silently. This module tells the CPU's
 * vector ISA (cpuid), ranks OpenBLAS's kernel names by the ISA they need,
 * and decides — a pure function, unit-tested — whether the kernel in use
 * should be corrected. The CLI acts on the decision: it restarts itself with
 * OPENBLAS_CORETYPE set before MPI and OpenBLAS do anything (a user's own
 * OPENBLAS_CORETYPE is always respected), checks the new kernel with a small
 * SGEMM against a plain loop, and names the kernel and why in its headers,
 * config.ini and checkpoints. Not collective. */
#ifndef FEDMPI_BLAS_H
#define FEDMPI_BLAS_H

#include <stddef.h>

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The vector ISA the CPU and the OS support (cpuid and xgetbv). */
typedef struct fm_cpu_features {
  int sse3, ssse3, sse4_2, avx, avx2, fma, avx512f, avx512cd, avx512bw, avx512dq, avx512vl, avx512_bf16;
} fm_cpu_features;
FM_EXTERN void fm_cpu_features_detect(fm_cpu_features *out);
/* "AVX-512 (BF16)", "AVX2+FMA", ... for messages. */
FM_EXTERN const char *fm_cpu_isa_name(const fm_cpu_features *f);

/* Rank of an OpenBLAS kernel (core) name by the ISA it uses: 1 Prescott
 * (SSE3) ... 4 Sandybridge (AVX), 5 Haswell/Zen (AVX2), 6 SkylakeX
 * (AVX-512), 7 Cooperlake (AVX-512 BF16); -1 for a name it does not know.
 * Case-insensitive. */
FM_EXTERN int fm_blas_kernel_level(const char *name);
/* The best OpenBLAS 0.3.21 kernel the CPU supports ("Cooperlake", "SkylakeX",
 * "Haswell", "Sandybridge", "Nehalem", "Core2", "Prescott"). */
FM_EXTERN const char *fm_blas_best_kernel(const fm_cpu_features *f);

typedef enum fm_blas_action {
  FM_BLAS_KEEP = 0,       /* the kernel in use is the best the CPU supports (or better) */
  FM_BLAS_CORRECT = 1,    /* restart with OPENBLAS_CORETYPE=target */
  FM_BLAS_WARN_USER = 2,  /* the user's OPENBLAS_CORETYPE picks a weaker kernel: respected, with a warning */
  FM_BLAS_WARN_FORCED = 3 /* correction disabled or failed: the weaker kernel stays, with a warning */
} fm_blas_action;

typedef struct fm_blas_decision {
  fm_blas_action action;
  const char *target; /* FM_BLAS_CORRECT: the kernel to run; else the best one the CPU supports */
  double slowdown;    /* rough SGEMM slowdown of the kernel in use against the best (1 if none) */
  char reason[256];   /* one sentence for the run header */
} fm_blas_decision;

/* kernel: the name OpenBLAS reports (openblas_get_corename()); user_coretype:
 * the user's OPENBLAS_CORETYPE, or NULL/"" when unset; correct: 0 when the
 * correction is disabled. Pure. */
FM_EXTERN void fm_blas_decide(const fm_cpu_features *f, const char *kernel, const char *user_coretype, int correct,
                              fm_blas_decision *out);

/* What runs conv2d layers in this process, for run headers: "oneDNN 2.6.3,
 * AVX-512 BF16 JIT kernels (...)" (its JIT convolutions pick their ISA from
 * cpuid, whatever the BLAS kernel), or "im2col + sgemm (why)" when fedmpi was
 * built without oneDNN or FEDMPI_CONV=im2col is set. Thread-safe. */
FM_EXTERN const char *fm_conv_backend(void);

/* The kernel OpenBLAS is running is fm_blas_corename() (fedmpi/model.h). */
/* A small SGEMM (transposed and not, alpha and beta) against a plain loop in
 * double: FM_OK, or FM_ERR_NON_FINITE naming the worst error. */
FM_EXTERN int fm_blas_selfcheck(void);

#ifdef __cplusplus
}
#endif
#endif
