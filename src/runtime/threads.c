/* src/runtime/threads.c — who provides the threads: OpenMP trains clients in
 * parallel and OpenBLAS always runs single-threaded. That keeps cores from
 * being oversubscribed, and it keeps every client's arithmetic identical
 * whatever the layout (a multi-threaded GEMM may split its work differently
 * with a different thread count), which the bitwise-reproducibility guarantee
 * relies on. Also how many threads a rank runs by default: its share of
 * the CPUs it may run on (fm_runtime_plan_threads). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <cblas.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fedmpi/runtime.h"
#include "internal.h"

int fm_runtime_setup_threads(int num_threads) {
  int nt = num_threads;
#ifdef _OPENMP
  if (nt <= 0) nt = omp_get_max_threads();
#else
  nt = 1;
#endif
  if (nt < 1) nt = 1;
  openblas_set_num_threads(1);
  return nt;
}

const char *fm_version(void) { return FEDMPI_VERSION; }

/* ---- threads per rank ------------------------------------------------------------ */


#define FM__MPI_OK(call)                                                                  \
  do {                                                                                    \
    if ((call) != MPI_SUCCESS) return FM_ERR(FM_ERR_MPI, "%s failed", #call);              \
  } while (0)

static int fm__omp_env_threads(void) {
  const char *v = getenv("OMP_NUM_THREADS");
  if (!v || !*v) return 0;
  int n = atoi(v); /* "4" or "4,2": the first level */
  return n > 0 ? n : 0;
}

/* This node's masks: how many overlap mine, and how many CPUs they cover. */
static int fm__node_share(MPI_Comm node, const cpu_set_t *mine, int *sharing, int *node_cpus, int *local) {
  int n;
  FM__MPI_OK(MPI_Comm_size(node, &n));
  cpu_set_t *all = fm__malloc((size_t)n * sizeof *all);
  if (!all) return FM_ERR_NOMEM;
  int rc = MPI_Allgather(mine, (int)sizeof *mine, MPI_BYTE, all, (int)sizeof *mine, MPI_BYTE, node);
  if (rc != MPI_SUCCESS) {
    fm__free(all);
    return FM_ERR(FM_ERR_MPI, "MPI_Allgather of the CPU masks failed");
  }
  cpu_set_t uni, both;
  CPU_ZERO(&uni);
  *sharing = 0;
  for (int r = 0; r < n; r++) {
    CPU_OR(&uni, &uni, &all[r]);
    CPU_AND(&both, &all[r], mine);
    if (CPU_COUNT(&both) > 0) (*sharing)++;
  }
  *node_cpus = CPU_COUNT(&uni);
  *local = n;
  fm__free(all);
  return FM_OK;
}

int fm_runtime_plan_threads(MPI_Comm comm, int requested, fm_thread_plan *out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  memset(out, 0, sizeof *out);
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof mine, &mine) != 0 || CPU_COUNT(&mine) == 0) {
    CPU_ZERO(&mine);
    CPU_SET(0, &mine);
  }
  out->cpus = CPU_COUNT(&mine);
  MPI_Comm node;
  FM__MPI_OK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int local = 1, rc = fm__node_share(node, &mine, &out->sharing, &out->node_cpus, &local);
  if (rc == FM_OK) {
    int env = fm__omp_env_threads();
    out->source = requested > 0 ? 0 : env > 0 ? 1 : 2;
    out->threads = requested > 0 ? requested : env > 0 ? env : out->cpus / (out->sharing ? out->sharing : 1);
    if (out->threads < 1) out->threads = 1;
    if (MPI_Allreduce(&out->threads, &out->node_threads, 1, MPI_INT, MPI_SUM, node) != MPI_SUCCESS)
      rc = FM_ERR(FM_ERR_MPI, "MPI_Allreduce of the node's threads failed");
  }
  if (MPI_Comm_free(&node) != MPI_SUCCESS && rc == FM_OK) rc = FM_ERR(FM_ERR_MPI, "MPI_Comm_free failed");
  if (rc != FM_OK) return rc;
  /* the most oversubscribed node, on every rank: (excess, threads, cpus) */
  int mine3[3] = {out->node_threads - out->node_cpus, out->node_threads, out->node_cpus}, worst[3];
  struct { int v, r; } in = {mine3[0], 0}, best;
  FM__MPI_OK(MPI_Comm_rank(comm, &in.r));
  FM__MPI_OK(MPI_Allreduce(&in, &best, 1, MPI_2INT, MPI_MAXLOC, comm));
  memcpy(worst, mine3, sizeof worst);
  FM__MPI_OK(MPI_Bcast(worst, 3, MPI_INT, best.r, comm));
  out->oversubscribed = worst[0] > 0;
  out->worst_node_threads = worst[1];
  out->worst_node_cpus = worst[2];
  fm_runtime_setup_threads(out->threads);
  return FM_OK;
}
