/* src/learning/comm.c — checked dispatch of the fm_comm collectives. Every
 * caller goes through these; a communicator whose table lacks an operation
 * fails with a message instead of jumping through a NULL pointer. */
#include "fedmpi/comm.h"
#include "internal.h"

#define FM__COMM_OP(c, op)                                                                                    \
  FM_CHECK((c) && (c)->ops, FM_ERR_INVALID_ARG, "NULL communicator");                                        \
  FM_CHECK((c)->ops->op, FM_ERR_INVALID_ARG, "the communicator does not implement " #op)

int fm_comm_bcast(fm_comm *c, void *buf, size_t bytes) {
  FM__COMM_OP(c, bcast);
  FM_CHECK(buf || bytes == 0, FM_ERR_INVALID_ARG, "bcast of %zu bytes from a NULL buffer", bytes);
  return c->ops->bcast(c, buf, bytes);
}

int fm_comm_reduce_exact(fm_comm *c, fm_exact *buf, size_t n) {
  FM__COMM_OP(c, reduce_exact);
  FM_CHECK(buf || n == 0, FM_ERR_INVALID_ARG, "reduce of %zu sums from a NULL buffer", n);
  return c->ops->reduce_exact(c, buf, n);
}

int fm_comm_agree(fm_comm *c, int status) {
  FM__COMM_OP(c, agree);
  return c->ops->agree(c, status);
}

int fm_comm_allreduce_max(fm_comm *c, double *buf, size_t n) {
  FM__COMM_OP(c, allreduce_max);
  FM_CHECK(buf || n == 0, FM_ERR_INVALID_ARG, "allreduce of %zu values from a NULL buffer", n);
  return c->ops->allreduce_max(c, buf, n);
}

int fm_comm_gather(fm_comm *c, const void *send, size_t bytes, void **recv, size_t *recv_bytes) {
  FM__COMM_OP(c, gather);
  FM_CHECK(recv && recv_bytes, FM_ERR_INVALID_ARG, "gather needs recv and recv_bytes");
  FM_CHECK(send || bytes == 0, FM_ERR_INVALID_ARG, "gather of %zu bytes from a NULL buffer", bytes);
  return c->ops->gather(c, send, bytes, recv, recv_bytes);
}

int fm_comm_rank(const fm_comm *c) { return c ? c->rank : 0; }
int fm_comm_size(const fm_comm *c) { return c ? c->size : 1; }

void fm_comm_destroy(fm_comm **c) {
  if (!c || !*c) return;
  if (*c != fm_comm_serial() && (*c)->ops && (*c)->ops->destroy) (*c)->ops->destroy(*c);
  *c = NULL;
}
