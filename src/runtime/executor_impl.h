/* src/runtime/executor_impl.h — the client map: run one function over the
 * clients a rank trains, on OpenMP threads, each thread with its own worker
 * (buffers made by the caller's worker kind, kept in an fm_executor) and its
 * own packed exact accumulator; the threads' accumulators are then summed.
 * Also the client assignment (fm_assign_clients). Private to the library. */
#ifndef FEDMPI_EXECUTOR_IMPL_H
#define FEDMPI_EXECUTOR_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/comm.h"
#include "fedmpi/exact.h"
#include "fedmpi/executor.h"
#include "fedmpi/process.h"

/* How to make one thread's worker. cfg (cfg_size bytes) is compared byte for
 * byte with the workers an executor already has: equal means reuse. */
typedef struct fm__worker_kind {
  int (*create)(const void *cfg, void **out);
  void (*destroy)(void *worker);
  const void *cfg;
  size_t cfg_size;
} fm__worker_kind;

/* Work for one client on one thread: results are added into acc. */
typedef int (*fm__client_fn)(void *ctx, uint64_t client, void *worker, fm_exact *acc);

typedef struct fm__client_map_args {
  const uint64_t *clients; /* every client of the map, identical on every rank */
  const uint64_t *work;    /* per client: examples x epochs (largest first; balanced assignment) */
  size_t num_clients;
  uint64_t population;     /* shard ownership */
  fm_assignment policy;
  fm_comm *comm;
  int num_threads;         /* 0: the OpenMP default */
  size_t num_slots;        /* exact slots per accumulator */
  fm__worker_kind kind;
  fm_executor *exec;       /* kept across calls, or NULL: made and freed here */
} fm__client_map_args;

/* Run fn over this rank's clients (by policy, largest work first, dynamic
 * schedule) and sum the threads' accumulators into total (num_slots).
 * busy gets the summed thread busy time, threads_used the threads run.
 * Not collective; a thread's error stops the others early and is returned. */
int fm__client_map(const fm__client_map_args *a, fm__client_fn fn, void *ctx, fm_exact *total, double *busy,
                   int *threads_used);

/* Monotonic seconds. */
double fm__now(void);

#endif
