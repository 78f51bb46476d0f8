/* src/runtime/threads.c — who provides the threads: OpenMP trains clients in
 * parallel; when it uses more than one thread, OpenBLAS is set to one thread
 * so the two never oversubscribe the cores. */
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
  if (nt > 1) openblas_set_num_threads(1);
  return nt;
}

const char *fm_version(void) { return FEDMPI_VERSION; }
