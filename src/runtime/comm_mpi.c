/* src/runtime/comm_mpi.c — fm_comm over MPI: the only file that talks MPI.
 *
 * The caller's communicator is duplicated and set to MPI_ERRORS_RETURN, so
 * every failed call comes back as FM_ERR_MPI with MPI's own text instead of
 * aborting. Exact sums travel as pairs of uint64 with a user-defined,
 * commutative MPI_Op (128-bit add with carry). Counts above INT_MAX are sent
 * in chunks. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fedmpi/runtime.h"
#include "internal.h"

/* FM_ERR_MPI with MPI's own text for a failed call (rc != MPI_SUCCESS). */
static int fm__mpi_error(int rc, const char *call) {
  char s[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error code %d", rc);
  return FM_ERR(FM_ERR_MPI, "%s failed: %s", call, s);
}

#define FM_MPI_CALL(call)                                                                                      \
  do {                                                                                                         \
    int fm_mpi_rc_ = (call);                                                                                   \
    if (fm_mpi_rc_ != MPI_SUCCESS) return fm__mpi_error(fm_mpi_rc_, #call);                                    \
  } while (0)

typedef struct fm__mpi {
  MPI_Comm comm;
  MPI_Datatype exact_type;
  MPI_Op exact_op;
} fm__mpi;

static void fm__exact_sum_op(void *in, void *inout, int *len, MPI_Datatype *dt) {
  (void)dt;
  fm_exact_accumulate((fm_exact *)inout, (const fm_exact *)in, (size_t)*len);
}

static int mpi_bcast(fm_comm *c, void *buf, size_t bytes) {
  fm__mpi *m = c->impl;
  char *p = buf;
  while (bytes > 0) {
    int chunk = bytes > (size_t)INT_MAX ? INT_MAX : (int)bytes;
    FM_MPI_CALL(MPI_Bcast(p, chunk, MPI_BYTE, 0, m->comm));
    p += chunk;
    bytes -= (size_t)chunk;
  }
  return FM_OK;
}

static int mpi_reduce_exact(fm_comm *c, fm_exact *buf, size_t n) {
  fm__mpi *m = c->impl;
  const size_t max_chunk = (size_t)INT_MAX / 2;
  while (n > 0) {
    int chunk = n > max_chunk ? (int)max_chunk : (int)n;
    if (c->rank == 0)
      FM_MPI_CALL(MPI_Reduce(MPI_IN_PLACE, buf, chunk, m->exact_type, m->exact_op, 0, m->comm));
    else
      FM_MPI_CALL(MPI_Reduce(buf, NULL, chunk, m->exact_type, m->exact_op, 0, m->comm));
    buf += chunk;
    n -= (size_t)chunk;
  }
  return FM_OK;
}

static int mpi_agree(fm_comm *c, int status) {
  fm__mpi *m = c->impl;
  int mine = status != FM_OK ? c->rank : c->size, first = c->size;
  FM_MPI_CALL(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, m->comm));
  if (first == c->size) return FM_OK;
  struct {
    int code;
    char msg[1024];
  } e = {status, ""};
  if (c->rank == first) snprintf(e.msg, sizeof e.msg, "%s", fm_last_error());
  FM_MPI_CALL(MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, m->comm));
  if (c->size > 1)
    return FM_ERR(e.code, "rank %d: %s", first, e.msg);
  return FM_ERR(e.code, "%s", e.msg);
}

static int mpi_allreduce_max(fm_comm *c, double *buf, size_t n) {
  fm__mpi *m = c->impl;
  FM_CHECK(n <= (size_t)INT_MAX, FM_ERR_INVALID_ARG, "allreduce of %zu values is too large", n);
  FM_MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_MAX, m->comm));
  return FM_OK;
}

static int mpi_gather(fm_comm *c, const void *send, size_t bytes, void **recv, size_t *recv_bytes) {
  fm__mpi *m = c->impl;
  *recv = NULL;
  *recv_bytes = 0;
  FM_CHECK(bytes <= (size_t)INT_MAX, FM_ERR_OVERFLOW, "gather of %zu bytes from one rank is too large", bytes);
  int mine = (int)bytes;
  int *counts = NULL, *displs = NULL;
  if (c->rank == 0) {
    counts = fm__malloc((size_t)c->size * sizeof *counts);
    displs = fm__malloc((size_t)c->size * sizeof *displs);
    if (!counts || !displs) {
      fm__free(counts);
      fm__free(displs);
      counts = displs = NULL;
    }
  }
  /* Every rank takes part in the collectives even if rank 0 is out of memory. */
  int ok = c->rank != 0 || counts;
  FM_MPI_CALL(MPI_Gather(&mine, 1, MPI_INT, counts ? counts : &mine, 1, MPI_INT, 0, m->comm));
  size_t total = 0;
  if (c->rank == 0 && ok) {
    for (int r = 0; r < c->size; r++) {
      displs[r] = (int)total;
      total += (size_t)counts[r];
    }
    if (total > (size_t)INT_MAX) ok = 0;
    else *recv = fm__malloc(total ? total : 1);
    if (!*recv) ok = 0;
  }
  int rc = MPI_Gatherv(send, mine, MPI_BYTE, ok && c->rank == 0 ? *recv : NULL, ok ? counts : NULL,
                       ok ? displs : NULL, MPI_BYTE, 0, m->comm);
  fm__free(counts);
  fm__free(displs);
  if (rc != MPI_SUCCESS || (c->rank == 0 && !ok)) {
    fm__free(*recv);
    *recv = NULL;
    return rc != MPI_SUCCESS ? fm__mpi_error(rc, "MPI_Gatherv")
                             : FM_ERR(FM_ERR_NOMEM, "rank 0 cannot hold %zu gathered bytes", total);
  }
  *recv_bytes = c->rank == 0 ? total : 0;
  return FM_OK;
}

/* Frees what fm_comm_create_mpi made. destroy cannot return a status, so a
 * failed call is left as the thread's last error (fm_last_error()). */
static void mpi_destroy(fm_comm *c) {
  fm__mpi *m = c->impl;
  int finalized = 0, rc = MPI_Finalized(&finalized);
  if (rc != MPI_SUCCESS) {
    fm__mpi_error(rc, "MPI_Finalized");
  } else if (!finalized) {
    if ((rc = MPI_Op_free(&m->exact_op)) != MPI_SUCCESS) fm__mpi_error(rc, "MPI_Op_free");
    if ((rc = MPI_Type_free(&m->exact_type)) != MPI_SUCCESS) fm__mpi_error(rc, "MPI_Type_free");
    if ((rc = MPI_Comm_free(&m->comm)) != MPI_SUCCESS) fm__mpi_error(rc, "MPI_Comm_free");
  }
  fm__free(m);
  fm__free(c);
}

static const fm_comm_ops fm__mpi_ops = {.bcast = mpi_bcast,
                                        .reduce_exact = mpi_reduce_exact,
                                        .agree = mpi_agree,
                                        .allreduce_max = mpi_allreduce_max,
                                        .gather = mpi_gather,
                                        .destroy = mpi_destroy};

int fm_comm_create_mpi(MPI_Comm comm, fm_comm **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  fm_comm *c = fm__calloc(1, sizeof *c);
  fm__mpi *m = fm__calloc(1, sizeof *m);
  if (!c || !m) {
    fm__free(c);
    fm__free(m);
    return FM_ERR_NOMEM;
  }
  c->ops = &fm__mpi_ops;
  c->impl = m;
  int rc = MPI_Comm_dup(comm, &m->comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(m->comm, &c->rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(m->comm, &c->size);
  if (rc == MPI_SUCCESS) rc = MPI_Type_contiguous(2, MPI_UINT64_T, &m->exact_type);
  if (rc == MPI_SUCCESS) rc = MPI_Type_commit(&m->exact_type);
  if (rc == MPI_SUCCESS) rc = MPI_Op_create(fm__exact_sum_op, 1, &m->exact_op);
  if (rc != MPI_SUCCESS) {
    fm__free(c);
    fm__free(m);
    return fm__mpi_error(rc, "setting up the MPI communicator");
  }
  *out = c;
  return FM_OK;
}
