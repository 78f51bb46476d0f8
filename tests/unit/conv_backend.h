/* tests/unit/conv_backend.h — for the unit tests that compile src/model/conv.c
 * into themselves: when the library is built with oneDNN (FM_HAVE_DNNL, set
 * on those test targets by tests/CMakeLists.txt), compile its oneDNN
 * convolutions in too, and let a test switch between the two paths, so the
 * same checks run against oneDNN's kernels and against im2col + sgemm.
 * Include after conv.c. */
#ifndef FEDMPI_TEST_CONV_BACKEND_H
#define FEDMPI_TEST_CONV_BACKEND_H

#ifdef FM_HAVE_DNNL
#include "../../src/model/conv_dnnl.c"

/* on: oneDNN where it has a JIT kernel (the library's default); off: im2col. */
static void use_dnnl(int on) {
  if (!on)
    fm__dnnl_state = -1;
  else
    fm__dnnl_state = fm__dnnl_engine ? 1 : 0;
}

static int dnnl_calls(void) { return __atomic_load_n(&fm__conv_dnnl_calls, __ATOMIC_RELAXED); }

/* 1 when oneDNN must have run a conv of the usual shapes: it has JIT
 * convolutions (forward, both backward passes) for AVX2 and AVX-512, which
 * every machine this project runs on has. */
static int dnnl_expected(void) { return dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx2; }
#define FM_TEST_BACKENDS 2
#else
static void use_dnnl(int on) { (void)on; }
static int dnnl_calls(void) { return 0; }
static int dnnl_expected(void) { return 0; }
#define FM_TEST_BACKENDS 1
#endif

#endif
