/* fedmpi/runtime.h — the MPI and threading runtime.
 *
 * The only public header that includes mpi.h. It turns an MPI communicator
 * into an fm_comm (a duplicate with MPI_ERRORS_RETURN, so every MPI failure
 * becomes FM_ERR_MPI with MPI's own text) and sets up BLAS threading. */
#ifndef FEDMPI_RUNTIME_H
#define FEDMPI_RUNTIME_H

#include <mpi.h>

#include "fedmpi/comm.h"
#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Wrap comm (duplicated; the caller's communicator is never used directly).
 * Collective on comm. FM_ERR_MPI, FM_ERR_NOMEM. */
FM_EXTERN int fm_comm_create_mpi(MPI_Comm comm, fm_comm **out);

/* Threads for the per-client map: num_threads if > 0, else OMP's default.
 * BLAS is made single-threaded: OpenMP alone provides the parallelism (no
 * oversubscription), and a client's arithmetic never depends on the layout.
 * Returns the number of threads that will be used. Not collective. */
FM_EXTERN int fm_runtime_setup_threads(int num_threads);

/* fedmpi's version string, e.g. "0.1.0". */
FM_EXTERN const char *fm_version(void);

#ifdef __cplusplus
}
#endif
#endif
