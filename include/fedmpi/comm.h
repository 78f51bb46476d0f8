/* fedmpi/comm.h — the five collective operations fedmpi needs.
 *
 * The learning process never calls MPI itself: it broadcasts the server's
 * payload, reduces one packed exact-sum buffer, agrees on errors, takes maxima
 * of timings and gathers per-client state, through this small vtable.
 * fm_comm_serial() is the single-process implementation; fedmpi/runtime.h
 * provides the MPI one. Callers use the checked fm_comm_* functions below,
 * never the ops table directly; the table is public so that another transport
 * can implement it. */
#ifndef FEDMPI_COMM_H
#define FEDMPI_COMM_H

#include <stddef.h>

#include "fedmpi/exact.h"
#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_comm fm_comm;

typedef struct fm_comm_ops {
  /* buf (bytes) on rank 0 -> every rank. Collective. */
  int (*bcast)(fm_comm *c, void *buf, size_t bytes);
  /* Element-wise exact sum of buf (n) over ranks; the result lands in buf on
   * rank 0 (other ranks' buf is unspecified afterwards). Collective. */
  int (*reduce_exact)(fm_comm *c, fm_exact *buf, size_t n);
  /* Collective error agreement: every rank passes its own status; every rank
   * gets FM_OK if all succeeded, else the code of the lowest failing rank,
   * whose message becomes the last error on every rank, prefixed with
   * "rank R: " when size > 1. */
  int (*agree)(fm_comm *c, int status);
  /* Element-wise max of doubles over ranks, result on every rank. Collective. */
  int (*allreduce_max)(fm_comm *c, double *buf, size_t n);
  /* Concatenate every rank's bytes on rank 0, in rank order: *recv is
   * fm-allocated (free with fm_free) and *recv_bytes its size on rank 0; other
   * ranks get NULL and 0. Collective. */
  int (*gather)(fm_comm *c, const void *send, size_t bytes, void **recv, size_t *recv_bytes);
  void (*destroy)(fm_comm *c);
} fm_comm_ops;

struct fm_comm {
  const fm_comm_ops *ops;
  int rank;
  int size;
  void *impl;
};

/* Checked dispatch: each validates its arguments (NULL communicator, missing
 * operation, NULL buffer with a non-zero size) with FM_ERR_INVALID_ARG and
 * then calls the operation. The semantics are those of fm_comm_ops. */
FM_EXTERN int fm_comm_bcast(fm_comm *c, void *buf, size_t bytes);
FM_EXTERN int fm_comm_reduce_exact(fm_comm *c, fm_exact *buf, size_t n);
FM_EXTERN int fm_comm_agree(fm_comm *c, int status);
FM_EXTERN int fm_comm_allreduce_max(fm_comm *c, double *buf, size_t n);
FM_EXTERN int fm_comm_gather(fm_comm *c, const void *send, size_t bytes, void **recv, size_t *recv_bytes);
FM_EXTERN int fm_comm_rank(const fm_comm *c);
FM_EXTERN int fm_comm_size(const fm_comm *c);

/* The single-process communicator (rank 0 of 1). Static; never destroyed. */
FM_EXTERN fm_comm *fm_comm_serial(void);
/* Destroy a communicator made by a create function (NULL accepted). */
FM_EXTERN void fm_comm_destroy(fm_comm **c);

#ifdef __cplusplus
}
#endif
#endif
