/* tests/fm_mpi_check.h — for the test programs that run under mpiexec
 * without a test framework (tests/mpi, tests/scale): a fedmpi call that
 * fails prints the rank, the call and fedmpi's message, and aborts the job
 * (so no other rank waits forever in a collective). */
#ifndef FM_MPI_CHECK_H
#define FM_MPI_CHECK_H

#include <mpi.h>
#include <stdio.h>

#include "fedmpi/fedmpi.h"

#define CHECK(expr)                                                                  \
  do {                                                                               \
    int rc_ = (expr);                                                                \
    if (rc_ != FM_OK) {                                                              \
      int rank_ = -1;                                                                \
      MPI_Comm_rank(MPI_COMM_WORLD, &rank_);                                         \
      fprintf(stderr, "rank %d: %s failed: %s\n", rank_, #expr, fm_last_error());    \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                  \
    }                                                                                \
  } while (0)

#endif
