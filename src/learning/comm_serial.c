/* src/learning/comm_serial.c — the single-process fm_comm: every collective
 * is the identity, so the same round code runs on a laptop without mpirun. */
#include <string.h>

#include "fedmpi/comm.h"
#include "internal.h"

static int serial_bcast(fm_comm *c, void *buf, size_t bytes) {
  (void)c, (void)buf, (void)bytes;
  return FM_OK;
}
static int serial_reduce(fm_comm *c, fm_exact *buf, size_t n) {
  (void)c, (void)buf, (void)n;
  return FM_OK;
}
static int serial_agree(fm_comm *c, int status) {
  (void)c;
  return status; /* the message is already this thread's last error */
}
static int serial_max(fm_comm *c, double *buf, size_t n) {
  (void)c, (void)buf, (void)n;
  return FM_OK;
}

static int serial_gather(fm_comm *c, const void *send, size_t bytes, void **recv, size_t *recv_bytes) {
  (void)c;
  *recv = fm__malloc(bytes ? bytes : 1);
  if (!*recv) return FM_ERR_NOMEM;
  if (bytes) memcpy(*recv, send, bytes);
  *recv_bytes = bytes;
  return FM_OK;
}

static const fm_comm_ops fm__serial_ops = {.bcast = serial_bcast,
                                           .reduce_exact = serial_reduce,
                                           .agree = serial_agree,
                                           .allreduce_max = serial_max,
                                           .gather = serial_gather,
                                           .destroy = NULL};
static fm_comm fm__serial = {.ops = &fm__serial_ops, .rank = 0, .size = 1, .impl = NULL};

fm_comm *fm_comm_serial(void) { return &fm__serial; }
