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

/* ---- round deadline ----------------------------------------------------------
 *
 * A rank that stops answering (SIGSTOP, a stuck file system) would otherwise
 * hold every other rank in a collective until the batch system kills the job.
 * With a timeout set and a deadline armed, the collectives of c are polled
 * non-blocking calls; when one has not completed by the deadline, rank 0
 * names the ranks that had not reached it (or reached it and then fell
 * silent) and calls on_timeout with that message. If rank 0 itself does not
 * answer, rank 1 (then the others) calls on_timeout about 12 s later instead,
 * naming rank 0. on_timeout runs on the calling thread, inside the
 * collective; it is expected to end the job (MPI_Abort): if it returns, the
 * collective and every later one on c return FM_ERR_MPI with the message.
 * Without an armed deadline the blocking calls are used, as without a
 * timeout. */
typedef void (*fm_comm_timeout_fn)(void *ctx, const char *message);

/* Enable round deadlines of seconds (> 0; 0 keeps them off) on an MPI
 * communicator. Call on every rank with the same seconds, outside an armed
 * deadline; calling again changes seconds and the handler. Not collective.
 * FM_ERR_INVALID_ARG (not an MPI communicator, bad seconds, a deadline
 * armed), FM_ERR_NOMEM, FM_ERR_MPI. */
FM_EXTERN int fm_comm_mpi_set_timeout(fm_comm *c, double seconds, fm_comm_timeout_fn on_timeout, void *ctx);
/* Arm the deadline, now + seconds; a no-op without a timeout. Every rank must
 * arm and disarm at the same points of its sequence of collectives (the
 * non-blocking calls only match each other). Not collective. FM_OK. */
FM_EXTERN int fm_comm_mpi_arm(fm_comm *c);
/* Disarm the deadline. Not collective. FM_OK. */
FM_EXTERN int fm_comm_mpi_disarm(fm_comm *c);

/* Threads for the per-client map: num_threads if > 0, else OMP's default.
 * BLAS is made single-threaded: OpenMP alone provides the parallelism (no
 * oversubscription), and a client's arithmetic never depends on the layout.
 * Returns the number of threads that will be used. Not collective. */
FM_EXTERN int fm_runtime_setup_threads(int num_threads);

/* How many threads each rank runs, and whether the node is oversubscribed. */
typedef struct fm_thread_plan {
  int threads;          /* this rank's threads for the client map */
  int source;           /* 0 requested (--threads), 1 OMP_NUM_THREADS, 2 the rank's share of its CPUs */
  int cpus;             /* CPUs in this rank's affinity mask */
  int sharing;          /* ranks of this node whose masks overlap this rank's (itself included) */
  int node_cpus;        /* CPUs in the union of this node's masks */
  int node_threads;     /* threads of every rank on this node */
  int oversubscribed;   /* 1 on every rank if some node runs more threads than it has CPUs */
  int worst_node_threads, worst_node_cpus; /* that node's counts (the most oversubscribed) */
} fm_thread_plan;

/* Collective on comm. requested > 0 is used as is. Otherwise
 * OMP_NUM_THREADS when the user set it, else the rank's share of the CPUs
 * it may run on: the CPUs of its affinity mask divided by the ranks of its
 * node (MPI_Comm_split_type SHARED) whose masks overlap it, never fewer
 * than 1. So `mpirun --bind-to none -n 2` on 2 cores gives 1 thread per
 * rank, `-n 1` gives 2, and ranks bound to one core each get 1. Also sets
 * BLAS single-threaded (fm_runtime_setup_threads). FM_ERR_MPI. */
FM_EXTERN int fm_runtime_plan_threads(MPI_Comm comm, int requested, fm_thread_plan *out);

/* fedmpi's version string, e.g. "0.1.0". */
FM_EXTERN const char *fm_version(void);

#ifdef __cplusplus
}
#endif
#endif
