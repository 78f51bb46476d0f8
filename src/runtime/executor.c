/* src/runtime/executor.c — the client map over OpenMP threads, the worker
 * buffers an fm_executor keeps across rounds, and the client assignment.
 *
 * Nothing here knows what a client's work is: the learning process passes a
 * worker kind (how to make one thread's buffers) and a function per client.
 * The threads' packed accumulators are summed exactly, so the result does not
 * depend on the schedule, the number of threads or the assignment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "executor_impl.h"
#include "internal.h"

double fm__now(void) {
#ifdef _OPENMP
  return omp_get_wtime();
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

/* ---- the executor: per-thread workers and accumulators ---------------------- */

struct fm_executor {
  void **workers;     /* (n) made by kind.create */
  fm_exact **acc;     /* (n) num_slots each */
  int n;
  fm__worker_kind kind;
  void *cfg;          /* copy of kind.cfg (cfg_size bytes) */
  size_t num_slots;
};

int fm_executor_create(fm_executor **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  *out = fm__calloc(1, sizeof **out);
  return *out ? FM_OK : FM_ERR_NOMEM;
}

static void fm__executor_clear(fm_executor *e) {
  for (int i = 0; i < e->n; i++) {
    if (e->kind.destroy) e->kind.destroy(e->workers[i]);
    fm__free(e->acc[i]);
  }
  fm__free(e->workers);
  fm__free(e->acc);
  fm__free(e->cfg);
  memset(e, 0, sizeof *e);
}

void fm_executor_destroy(fm_executor **e) {
  if (!e || !*e) return;
  fm__executor_clear(*e);
  fm__free(*e);
  *e = NULL;
}

static int fm__executor_same(const fm_executor *e, const fm__worker_kind *k, size_t num_slots) {
  return e->cfg && e->kind.create == k->create && e->kind.destroy == k->destroy && e->kind.cfg_size == k->cfg_size &&
         e->num_slots == num_slots && memcmp(e->cfg, k->cfg, k->cfg_size) == 0;
}

/* At least nt workers of kind k with num_slots accumulators; workers of
 * another kind or shape are dropped first. */
static int fm__executor_prepare(fm_executor *e, int nt, const fm__worker_kind *k, size_t num_slots) {
  if (!fm__executor_same(e, k, num_slots)) {
    fm__executor_clear(e);
    e->cfg = fm__malloc(k->cfg_size ? k->cfg_size : 1);
    if (!e->cfg) return FM_ERR_NOMEM;
    memcpy(e->cfg, k->cfg, k->cfg_size);
    e->kind = *k;
    e->kind.cfg = e->cfg;
    e->num_slots = num_slots;
  }
  if (e->n >= nt) return FM_OK;
  void **w = fm__realloc(e->workers, (size_t)nt * sizeof *w);
  if (!w) return FM_ERR_NOMEM;
  e->workers = w;
  fm_exact **acc = fm__realloc(e->acc, (size_t)nt * sizeof *acc);
  if (!acc) return FM_ERR_NOMEM;
  e->acc = acc;
  while (e->n < nt) {
    e->acc[e->n] = fm__calloc(num_slots ? num_slots : 1, sizeof(fm_exact));
    if (!e->acc[e->n]) return FM_ERR_NOMEM;
    int rc = k->create(e->cfg, &e->workers[e->n]);
    if (rc != FM_OK) {
      fm__free(e->acc[e->n]);
      return rc;
    }
    e->n++;
  }
  return FM_OK;
}

/* ---- assignment -------------------------------------------------------------- */

typedef struct fm__order_item {
  uint64_t work, client;
  size_t index;
} fm__order_item;

/* Largest work first, then by client index: a total, layout-free order. */
static int fm__cmp_work_desc(const void *a, const void *b) {
  const fm__order_item *x = a, *y = b;
  if (x->work != y->work) return x->work < y->work ? 1 : -1;
  return (x->client > y->client) - (x->client < y->client);
}

int fm_assign_clients(fm_assignment policy, const uint64_t *cohort, const uint64_t *work, size_t k,
                      uint64_t population, int size, int *ranks) {
  FM_CHECK(cohort || k == 0, FM_ERR_INVALID_ARG, "cohort is NULL");
  FM_CHECK(size >= 1, FM_ERR_INVALID_ARG, "communicator size must be >= 1");
  if (policy == FM_ASSIGN_SHARD) {
    for (size_t i = 0; i < k; i++) ranks[i] = fm_client_owner(cohort[i], population, size);
    return FM_OK;
  }
  FM_CHECK(policy == FM_ASSIGN_BALANCED, FM_ERR_INVALID_ARG, "unknown client assignment policy %d", (int)policy);
  FM_CHECK(work, FM_ERR_INVALID_ARG, "balanced assignment needs the clients' work");
  fm__order_item *items = fm__malloc((k ? k : 1) * sizeof *items);
  uint64_t *load = fm__calloc((size_t)size, sizeof *load);
  if (!items || !load) {
    fm__free(items);
    fm__free(load);
    return FM_ERR_NOMEM;
  }
  for (size_t i = 0; i < k; i++) items[i] = (fm__order_item){work[i], cohort[i], i};
  qsort(items, k, sizeof *items, fm__cmp_work_desc);
  for (size_t j = 0; j < k; j++) {
    int best = 0;
    for (int r = 1; r < size; r++)
      if (load[r] < load[best]) best = r;
    /* a client with no work still costs a little (loading it) */
    load[best] += items[j].work + 1;
    ranks[items[j].index] = best;
  }
  fm__free(items);
  fm__free(load);
  return FM_OK;
}

/* The clients this rank trains, largest work first (*mine allocated). */
static int fm__my_clients(const fm__client_map_args *a, fm__order_item **mine, size_t *n) {
  const size_t k = a->num_clients;
  int *ranks = fm__malloc((k ? k : 1) * sizeof *ranks);
  *mine = fm__malloc((k ? k : 1) * sizeof **mine);
  int rc = ranks && *mine ? FM_OK : FM_ERR_NOMEM;
  if (rc == FM_OK)
    rc = fm_assign_clients(a->policy, a->clients, a->work, k, a->population, fm_comm_size(a->comm), ranks);
  *n = 0;
  for (size_t i = 0; rc == FM_OK && i < k; i++)
    if (ranks[i] == fm_comm_rank(a->comm)) (*mine)[(*n)++] = (fm__order_item){a->work[i], a->clients[i], i};
  fm__free(ranks);
  if (rc != FM_OK) {
    fm__free(*mine);
    *mine = NULL;
    return rc;
  }
  /* Largest first: the dynamic schedule then approximates LPT across threads. */
  qsort(*mine, *n, sizeof **mine, fm__cmp_work_desc);
  return FM_OK;
}

/* ---- the client map ------------------------------------------------------------ */

int fm__client_map(const fm__client_map_args *a, fm__client_fn fn, void *ctx, fm_exact *total, double *busy,
                   int *threads_used) {
  fm__order_item *mine = NULL;
  size_t n = 0;
  FM_CALL(fm__my_clients(a, &mine, &n));
  int nt = a->num_threads > 0 ? a->num_threads : 1;
#ifdef _OPENMP
  if (a->num_threads <= 0) nt = omp_get_max_threads();
#endif
  if ((size_t)nt > n) nt = n ? (int)n : 1;
  *threads_used = nt;

  fm_executor local = {0}, *e = a->exec ? a->exec : &local;
  int status = fm__executor_prepare(e, nt, &a->kind, a->num_slots);
  if (status != FM_OK) {
    if (!a->exec) fm__executor_clear(&local);
    fm__free(mine);
    return status;
  }
  char msg[1024] = "";
  double busy_sum = 0;
  fm_exact_zero(total, a->num_slots);
#pragma omp parallel num_threads(nt) reduction(+ : busy_sum)
  {
#ifdef _OPENMP
    const int me = omp_get_thread_num();
#else
    const int me = 0;
#endif
    void *w = e->workers[me];
    fm_exact *acc = e->acc[me];
    int trc = FM_OK;
    fm_exact_zero(acc, a->num_slots);
#pragma omp for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i++) {
      if (trc != FM_OK) continue;
      int crc;
#pragma omp atomic read
      crc = status;
      if (crc != FM_OK) continue; /* another thread failed: stop early */
      double t0 = fm__now();
      trc = fn(ctx, mine[i].client, w, acc);
      busy_sum += fm__now() - t0;
    }
#pragma omp critical(fm_client_map)
    {
      if (trc != FM_OK && status == FM_OK) {
#pragma omp atomic write
        status = trc;
        snprintf(msg, sizeof msg, "%s", fm_last_error());
      }
      /* Exact sums: the order threads arrive in does not matter. */
      fm_exact_accumulate(total, acc, a->num_slots);
    }
  }
  if (!a->exec) fm__executor_clear(&local);
  fm__free(mine);
  *busy = busy_sum;
  if (status != FM_OK) return FM_ERR(status, "%s", msg);
  return FM_OK;
}
