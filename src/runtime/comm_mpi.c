/* src/runtime/comm_mpi.c — fm_comm over MPI: the only file that talks MPI.
 *
 * The caller's communicator is duplicated and set to MPI_ERRORS_RETURN, so
 * every failed call comes back as FM_ERR_MPI with MPI's own text instead of
 * aborting. Exact sums travel as pairs of uint64 with a user-defined,
 * commutative MPI_Op (128-bit add with carry). Counts above INT_MAX are sent
 * in chunks.
 *
 * Round deadline (fm_comm_mpi_set_timeout): while a deadline is armed, each
 * collective is the non-blocking twin of the blocking call (MPI_Ibcast,
 * MPI_Ireduce, ...) polled with MPI_Test against the deadline, all on the
 * calling (main) thread, so MPI_THREAD_FUNNELED is enough. Every rank tells
 * rank 0 which armed collective it has reached, with a small MPI_Isend
 * heartbeat on entry and every FM__HB_EVERY s while it waits; rank 0 keeps one
 * MPI_Irecv posted per rank. When rank 0's deadline passes, it listens for
 * FM__PROBE s more and then names the ranks that had not reached its
 * collective at the deadline, and those that reached it but fell silent (a
 * rank stopped inside the collective). A non-root rank gives rank 0
 * FM__GRACE s more to end the job before it reports that rank 0 itself is not
 * answering. Either way the caller's handler gets one message; the handler
 * ends the job (the library never aborts). Without an armed deadline the
 * blocking calls are used exactly as before. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

#define FM__HB_TAG 27183   /* heartbeats: point-to-point on the duplicate, apart from the collectives */
#define FM__HB_RING 8      /* a non-root rank's heartbeats in flight */
#define FM__HB_EVERY 0.25  /* s between the heartbeats of a waiting rank */
#define FM__PROBE 2.0      /* s rank 0 listens after its deadline before naming ranks */
#define FM__GRACE 10.0     /* s more a non-root rank leaves rank 0 to end the job */

typedef struct fm__watch {
  double seconds, deadline; /* deadline (MPI_Wtime): 0 when disarmed */
  fm_comm_timeout_fn fn;
  void *ctx;
  long long seq;            /* armed collectives this rank has entered */
  int fired;                /* the deadline passed: every later collective fails at once */
  char msg[1024];
  long long out[FM__HB_RING]; /* non-root: heartbeats in flight and their requests */
  MPI_Request out_req[FM__HB_RING];
  double sent_at;
  long long *in;            /* rank 0, per rank: the posted receive's buffer and request, */
  MPI_Request *in_req;
  long long *seen;          /* the highest collective it reported, */
  long long *snap;          /* that at the deadline, */
  double *heard;            /* and when rank 0 last heard from it */
} fm__watch;

typedef struct fm__mpi {
  MPI_Comm comm;
  MPI_Datatype exact_type;
  MPI_Op exact_op;
  fm__watch *watch; /* NULL unless fm_comm_mpi_set_timeout enabled it */
} fm__mpi;

/* ---- round deadline: heartbeats and the polled wait ------------------------------------ */

static int fm__armed(const fm_comm *c) {
  const fm__watch *w = ((const fm__mpi *)c->impl)->watch;
  return w && (w->deadline > 0 || w->fired);
}

/* Non-root: report the current collective to rank 0. With every slot still in
 * flight (rank 0 not listening) nothing is sent; the next heartbeat carries
 * the same count. */
static int fm__hb_send(fm_comm *c, fm__watch *w) {
  fm__mpi *m = c->impl;
  for (int i = 0; i < FM__HB_RING; i++) {
    int done = 1;
    if (w->out_req[i] != MPI_REQUEST_NULL) FM_MPI_CALL(MPI_Test(&w->out_req[i], &done, MPI_STATUS_IGNORE));
    if (!done) continue;
    w->out[i] = w->seq;
    FM_MPI_CALL(MPI_Isend(&w->out[i], 1, MPI_LONG_LONG, 0, FM__HB_TAG, m->comm, &w->out_req[i]));
    w->sent_at = MPI_Wtime();
    return FM_OK;
  }
  return FM_OK;
}

/* Rank 0: take every heartbeat that has arrived and post the next receive
 * (a negative count is a rank's last one, sent by destroy). */
static int fm__hb_drain(fm_comm *c, fm__watch *w) {
  fm__mpi *m = c->impl;
  for (;;) {
    int idx = MPI_UNDEFINED, flag = 0;
    FM_MPI_CALL(MPI_Testany(c->size, w->in_req, &idx, &flag, MPI_STATUS_IGNORE));
    if (!flag || idx == MPI_UNDEFINED) return FM_OK;
    if (w->in[idx] < 0) continue;
    if (w->in[idx] > w->seen[idx]) w->seen[idx] = w->in[idx];
    w->heard[idx] = MPI_Wtime();
    FM_MPI_CALL(MPI_Irecv(&w->in[idx], 1, MPI_LONG_LONG, idx, FM__HB_TAG, m->comm, &w->in_req[idx]));
  }
}

/* Entering an armed collective. */
static int fm__enter(fm_comm *c) {
  fm__watch *w = ((fm__mpi *)c->impl)->watch;
  if (w->fired) return FM_ERR(FM_ERR_MPI, "%s", w->msg);
  w->seq++;
  return c->rank == 0 ? fm__hb_drain(c, w) : fm__hb_send(c, w);
}

/* Append "rank 2" / "ranks 1, 2, 5" (at most 16 named) of the ranks flagged in
 * pick to buf, followed by what. Returns how many were flagged. */
static int fm__list_ranks(const fm_comm *c, const unsigned char *pick, const char *what, char *buf, size_t size) {
  int n = 0, named = 0;
  for (int r = 1; r < c->size; r++) n += pick[r];
  if (n == 0) return 0;
  size_t used = strlen(buf);
  used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s ", used ? "; " : "", n > 1 ? "ranks" : "rank");
  for (int r = 1; r < c->size && used < size; r++) {
    if (!pick[r]) continue;
    if (named == 16) {
      used += (size_t)snprintf(buf + used, size - used, " and %d more", n - named);
      break;
    }
    used += (size_t)snprintf(buf + used, size - used, "%s%d", named ? ", " : "", r);
    named++;
  }
  if (used < size) snprintf(buf + used, size - used, " %s", what);
  return n;
}

/* Rank 0 after its deadline: listen FM__PROBE s, then say who is missing. */
static int fm__name_missing(fm_comm *c, fm__watch *w, const char *call, double entered) {
  memcpy(w->snap, w->seen, (size_t)c->size * sizeof *w->snap);
  const double probe = MPI_Wtime();
  const struct timespec nap = {0, 10 * 1000000L};
  while (MPI_Wtime() < probe + FM__PROBE) {
    FM_CALL(fm__hb_drain(c, w));
    nanosleep(&nap, NULL);
  }
  unsigned char *late = fm__calloc((size_t)c->size, 2);
  if (!late) return FM_ERR_NOMEM;
  unsigned char *silent = late + c->size;
  for (int r = 1; r < c->size; r++) {
    late[r] = w->snap[r] < w->seq;
    silent[r] = !late[r] && w->heard[r] < probe;
  }
  char what[160];
  w->msg[0] = '\0';
  snprintf(what, sizeof what, "did not arrive within %g s (rank 0 waited in %s)", w->seconds, call);
  int n = fm__list_ranks(c, late, what, w->msg, sizeof w->msg);
  n += fm__list_ranks(c, silent, "arrived but stopped answering", w->msg, sizeof w->msg);
  fm__free(late);
  size_t used = strlen(w->msg);
  if (entered > w->deadline)
    snprintf(w->msg + used, sizeof w->msg - used, "%srank 0 itself reached %s only %.1f s after the deadline",
             used ? "; " : "", call, entered - w->deadline);
  else if (n == 0)
    snprintf(w->msg, sizeof w->msg, "every rank arrived and is answering, but %s did not complete within %g s", call,
             w->seconds);
  return FM_OK;
}

/* The deadline passed: the message, the handler, and the failure. */
static int fm__expire(fm_comm *c, const char *call, double entered) {
  fm__watch *w = ((fm__mpi *)c->impl)->watch;
  w->fired = 1;
  if (c->rank == 0) {
    FM_CALL(fm__name_missing(c, w, call, entered));
  } else {
    snprintf(w->msg, sizeof w->msg,
             "rank %d: the round did not complete within %g s and rank 0 did not end the job %g s later: rank 0 did "
             "not arrive or stopped answering (rank %d waited in %s)",
             c->rank, w->seconds, FM__PROBE + FM__GRACE, c->rank, call);
  }
  if (w->fn) w->fn(w->ctx, w->msg);
  return FM_ERR(FM_ERR_MPI, "%s", w->msg);
}

/* Complete an armed collective's request, heartbeating, until the deadline
 * (rank 0) or the deadline plus the grace (the others; rank 1 first, then the
 * rest 5 s later, so one of them reports if rank 0 is the one stuck). */
static int fm__wait(fm_comm *c, MPI_Request *req, const char *call) {
  fm__watch *w = ((fm__mpi *)c->impl)->watch;
  const double entered = MPI_Wtime();
  const double fire = c->rank == 0 ? w->deadline : w->deadline + FM__PROBE + FM__GRACE + (c->rank == 1 ? 0 : 5);
  const struct timespec nap = {0, 50 * 1000L};
  for (;;) {
    int done = 0;
    FM_MPI_CALL(MPI_Test(req, &done, MPI_STATUS_IGNORE));
    if (done) return FM_OK;
    double now = MPI_Wtime();
    if (c->rank == 0) FM_CALL(fm__hb_drain(c, w));
    else if (now - w->sent_at >= FM__HB_EVERY) FM_CALL(fm__hb_send(c, w));
    if (now >= fire) return fm__expire(c, call, entered);
    if (now - entered > 1e-3) nanosleep(&nap, NULL); /* a long wait: leave the core to others */
  }
}

/* One collective: the blocking call when no deadline is armed (exactly the
 * calls of before), else its non-blocking twin polled against the deadline. */
#define FM_MPI_COLL(c, blocking, req, nonblocking, name)                                                       \
  do {                                                                                                         \
    if (!fm__armed(c)) {                                                                                       \
      FM_MPI_CALL(blocking);                                                                                   \
    } else {                                                                                                   \
      MPI_Request req;                                                                                         \
      FM_CALL(fm__enter(c));                                                                                   \
      FM_MPI_CALL(nonblocking);                                                                                \
      FM_CALL(fm__wait((c), &req, (name)));                                                                    \
    }                                                                                                          \
  } while (0)

static void fm__exact_sum_op(void *in, void *inout, int *len, MPI_Datatype *dt) {
  (void)dt;
  fm_exact_accumulate((fm_exact *)inout, (const fm_exact *)in, (size_t)*len);
}

static int mpi_bcast(fm_comm *c, void *buf, size_t bytes) {
  fm__mpi *m = c->impl;
  char *p = buf;
  while (bytes > 0) {
    int chunk = bytes > (size_t)INT_MAX ? INT_MAX : (int)bytes;
    FM_MPI_COLL(c, MPI_Bcast(p, chunk, MPI_BYTE, 0, m->comm), req, MPI_Ibcast(p, chunk, MPI_BYTE, 0, m->comm, &req),
                "MPI_Ibcast");
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
    const void *send = c->rank == 0 ? MPI_IN_PLACE : buf;
    void *recv = c->rank == 0 ? buf : NULL;
    FM_MPI_COLL(c, MPI_Reduce(send, recv, chunk, m->exact_type, m->exact_op, 0, m->comm), req,
                MPI_Ireduce(send, recv, chunk, m->exact_type, m->exact_op, 0, m->comm, &req), "MPI_Ireduce");
    buf += chunk;
    n -= (size_t)chunk;
  }
  return FM_OK;
}

static int mpi_agree(fm_comm *c, int status) {
  fm__mpi *m = c->impl;
  int mine = status != FM_OK ? c->rank : c->size, first = c->size;
  FM_MPI_COLL(c, MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, m->comm), req,
              MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, m->comm, &req), "MPI_Iallreduce");
  if (first == c->size) return FM_OK;
  struct {
    int code;
    char msg[1024];
  } e = {status, ""};
  if (c->rank == first) snprintf(e.msg, sizeof e.msg, "%s", fm_last_error());
  FM_MPI_COLL(c, MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, m->comm), req,
              MPI_Ibcast(&e, (int)sizeof e, MPI_BYTE, first, m->comm, &req), "MPI_Ibcast");
  if (c->size > 1)
    return FM_ERR(e.code, "rank %d: %s", first, e.msg);
  return FM_ERR(e.code, "%s", e.msg);
}

static int mpi_allreduce_max(fm_comm *c, double *buf, size_t n) {
  fm__mpi *m = c->impl;
  FM_CHECK(n <= (size_t)INT_MAX, FM_ERR_INVALID_ARG, "allreduce of %zu values is too large", n);
  FM_MPI_COLL(c, MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_MAX, m->comm), req,
              MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_MAX, m->comm, &req), "MPI_Iallreduce");
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
  FM_MPI_COLL(c, MPI_Gather(&mine, 1, MPI_INT, counts ? counts : &mine, 1, MPI_INT, 0, m->comm), req,
              MPI_Igather(&mine, 1, MPI_INT, counts ? counts : &mine, 1, MPI_INT, 0, m->comm, &req), "MPI_Igather");
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
  void *rbuf = ok && c->rank == 0 ? *recv : NULL;
  int *rcounts = ok ? counts : NULL, *rdispls = ok ? displs : NULL, rc = MPI_SUCCESS, frc = FM_OK;
  if (!fm__armed(c)) {
    rc = MPI_Gatherv(send, mine, MPI_BYTE, rbuf, rcounts, rdispls, MPI_BYTE, 0, m->comm);
  } else if ((frc = fm__enter(c)) == FM_OK) {
    MPI_Request req;
    rc = MPI_Igatherv(send, mine, MPI_BYTE, rbuf, rcounts, rdispls, MPI_BYTE, 0, m->comm, &req);
    if (rc == MPI_SUCCESS) frc = fm__wait(c, &req, "MPI_Igatherv");
  }
  fm__free(counts);
  fm__free(displs);
  if (frc != FM_OK) {
    fm__free(*recv);
    *recv = NULL;
    return frc;
  }
  if (rc != MPI_SUCCESS || (c->rank == 0 && !ok)) {
    fm__free(*recv);
    *recv = NULL;
    return rc != MPI_SUCCESS ? fm__mpi_error(rc, "MPI_Gatherv")
                             : FM_ERR(FM_ERR_NOMEM, "rank 0 cannot hold %zu gathered bytes", total);
  }
  *recv_bytes = c->rank == 0 ? total : 0;
  return FM_OK;
}

static void fm__watch_free(fm__watch *w) {
  if (!w) return;
  fm__free(w->in);
  fm__free(w->in_req);
  fm__free(w->seen);
  fm__free(w->snap);
  fm__free(w->heard);
  fm__free(w);
}

/* Every rank: end the heartbeats so that no message is left unmatched. Each
 * non-root rank sends a last, negative one; rank 0 takes every rank's
 * heartbeats up to it. Messages from one rank arrive in order, so nothing
 * follows the last one. */
static void fm__watch_close(fm_comm *c, fm__watch *w) {
  fm__mpi *m = c->impl;
  int rc = MPI_SUCCESS;
  if (c->rank != 0) {
    long long last = -1;
    rc = MPI_Send(&last, 1, MPI_LONG_LONG, 0, FM__HB_TAG, m->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Waitall(FM__HB_RING, w->out_req, MPI_STATUSES_IGNORE);
  }
  for (int r = 1; c->rank == 0 && r < c->size && rc == MPI_SUCCESS; r++) {
    while (rc == MPI_SUCCESS && w->in_req[r] != MPI_REQUEST_NULL) {
      rc = MPI_Wait(&w->in_req[r], MPI_STATUS_IGNORE);
      if (rc == MPI_SUCCESS && w->in[r] >= 0)
        rc = MPI_Irecv(&w->in[r], 1, MPI_LONG_LONG, r, FM__HB_TAG, m->comm, &w->in_req[r]);
    }
  }
  if (rc != MPI_SUCCESS) fm__mpi_error(rc, "ending the round-deadline heartbeats");
}

/* Frees what fm_comm_create_mpi made. destroy cannot return a status, so a
 * failed call is left as the thread's last error (fm_last_error()). */
static void mpi_destroy(fm_comm *c) {
  fm__mpi *m = c->impl;
  int finalized = 0, rc = MPI_Finalized(&finalized);
  if (rc != MPI_SUCCESS) {
    fm__mpi_error(rc, "MPI_Finalized");
  } else if (!finalized) {
    if (m->watch && !m->watch->fired) fm__watch_close(c, m->watch);
    if ((rc = MPI_Op_free(&m->exact_op)) != MPI_SUCCESS) fm__mpi_error(rc, "MPI_Op_free");
    if ((rc = MPI_Type_free(&m->exact_type)) != MPI_SUCCESS) fm__mpi_error(rc, "MPI_Type_free");
    if ((rc = MPI_Comm_free(&m->comm)) != MPI_SUCCESS) fm__mpi_error(rc, "MPI_Comm_free");
  }
  fm__watch_free(m->watch);
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

/* ---- round deadline: the public switches ----------------------------------------------- */

static fm__watch *fm__watch_of(fm_comm *c) {
  return c && c->ops == &fm__mpi_ops ? ((fm__mpi *)c->impl)->watch : NULL;
}

int fm_comm_mpi_set_timeout(fm_comm *c, double seconds, fm_comm_timeout_fn on_timeout, void *ctx) {
  FM_CHECK(c && c->ops == &fm__mpi_ops, FM_ERR_INVALID_ARG, "not an MPI communicator (fm_comm_create_mpi)");
  FM_CHECK(isfinite(seconds) && seconds >= 0, FM_ERR_INVALID_ARG, "timeout must be >= 0 seconds, got %g", seconds);
  fm__mpi *m = c->impl;
  FM_CHECK(!m->watch || m->watch->deadline == 0, FM_ERR_INVALID_ARG, "a deadline is armed");
  if (seconds == 0 && !m->watch) return FM_OK;
  if (!m->watch) {
    fm__watch *w = fm__calloc(1, sizeof *w);
    if (!w) return FM_ERR_NOMEM;
    for (int i = 0; i < FM__HB_RING; i++) w->out_req[i] = MPI_REQUEST_NULL;
    if (c->rank == 0) {
      size_t n = (size_t)c->size;
      w->in = fm__calloc(n, sizeof *w->in);
      w->in_req = fm__calloc(n, sizeof *w->in_req);
      w->seen = fm__calloc(n, sizeof *w->seen);
      w->snap = fm__calloc(n, sizeof *w->snap);
      w->heard = fm__calloc(n, sizeof *w->heard);
      if (!w->in || !w->in_req || !w->seen || !w->snap || !w->heard) {
        fm__watch_free(w);
        return FM_ERR_NOMEM;
      }
      w->in_req[0] = MPI_REQUEST_NULL;
      for (int r = 1; r < c->size; r++) {
        int rc = MPI_Irecv(&w->in[r], 1, MPI_LONG_LONG, r, FM__HB_TAG, m->comm, &w->in_req[r]);
        if (rc != MPI_SUCCESS) {
          for (int q = 1; q < r; q++) MPI_Cancel(&w->in_req[q]), MPI_Request_free(&w->in_req[q]);
          fm__watch_free(w);
          return fm__mpi_error(rc, "MPI_Irecv");
        }
      }
    }
    m->watch = w;
  }
  m->watch->seconds = seconds;
  m->watch->fn = on_timeout;
  m->watch->ctx = ctx;
  return FM_OK;
}

int fm_comm_mpi_arm(fm_comm *c) {
  fm__watch *w = fm__watch_of(c);
  if (w && w->seconds > 0) w->deadline = MPI_Wtime() + w->seconds;
  return FM_OK;
}

int fm_comm_mpi_disarm(fm_comm *c) {
  fm__watch *w = fm__watch_of(c);
  if (w) w->deadline = 0;
  return FM_OK;
}
