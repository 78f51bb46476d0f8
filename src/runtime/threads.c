/* src/runtime/threads.c — who provides the threads: OpenMP trains clients in
 * parallel and OpenBLAS always runs single-threaded. That keeps cores from
 * being oversubscribed, and it keeps every client's arithmetic identical
 * whatever the layout (a multi-threaded GEMM may split its work differently
 * with a different thread count), which the bitwise-reproducibility guarantee
 * relies on. */
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fedmpi/runtime.h"

int fm_runtime_setup_threads(int num_threads) {
  int nt = num_threads;
#ifdef _OPENMP
  if (nt <= 0) nt = omp_get_max_threads();
#else
  nt = 1;
#endif
  if (nt < 1) nt = 1;
  openblas_set_num_threads(1);
  return nt;
}

const char *fm_version(void) { return FEDMPI_VERSION; }
