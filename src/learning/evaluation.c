/* src/learning/evaluation.c — evaluation: forward passes only over clients
 * (fm_evaluate) and build_fed_eval's process with its total_rounds sums.
 * The same client map and exact sums as a training round, so the metrics do
 * not depend on the layout either. */
#include <stdio.h>
#include <string.h>

#include "executor_impl.h"
#include "internal.h"
#include "learning_impl.h"

/* Forward-only evaluation of one client: metric sums into acc[0..M). */
static int fm__eval_client(const fm_model *model, const float *w, const fm_client_data *data, uint64_t c,
                           size_t batch, fm__worker *k, fm_exact *acc, double limit) {
  fm_examples ex = {0};
  FM_CALL(fm__load_client(model, data, c, &ex));
  int rc = fm__worker_order(k, ex.n);
  if (rc != FM_OK) goto done;
  size_t mvals = fm_model_num_metric_values(model);
  memset(k->msum, 0, mvals * sizeof(double));
  fm_batching b = {.epochs = 1, .batch_size = batch, .shuffle = 0};
  fm_batch_iter it;
  fm_batch_iter_init(&it, &b, ex.n, k->order, 0, 0, c);
  size_t nb;
  while ((nb = fm_batch_iter_next(&it, &ex, k->xb, k->yb)) > 0) {
    float loss = 0.0f;
    FM_CALL_GOTO(rc, fm_model_forward(model, k->ws, w, k->xb, k->yb, nb, 0, &loss, k->probs), done);
    fm__metrics_update(model, k, nb, loss);
  }
  for (size_t j = 0; j < mvals; j++) fm_exact_add(&acc[j], k->msum[j], limit);
done:
  fm_examples_free(&ex);
  return rc;
}

typedef struct fm__eval_ctx {
  const fm_model *model;
  const float *w;
  const fm_client_data *data;
  size_t batch;
  double limit;
} fm__eval_ctx;

static int fm__eval_fn(void *vctx, uint64_t c, void *worker, fm_exact *acc) {
  fm__eval_ctx *x = vctx;
  return fm__eval_client(x->model, x->w, x->data, c, x->batch, worker, acc, x->limit);
}

/* Collective: exact unfinalized metric sums of w over clients, on rank 0 in total (M). */
static int fm__evaluate_sums(const fm_model *model, const float *w, const fm_client_data *data, const uint64_t *clients,
                             size_t num_clients, size_t batch_size, int num_threads, fm_comm *comm, fm_exact *total) {
  FM_CHECK(model && w && data && comm, FM_ERR_INVALID_ARG, "NULL argument");
  FM_CHECK(batch_size >= 1, FM_ERR_INVALID_ARG, "evaluation batch size must be >= 1");
  uint64_t pop = fm_client_data_num_clients(data);
  uint64_t *all = NULL;
  if (!clients) {
    num_clients = (size_t)pop;
    all = fm__malloc((num_clients ? num_clients : 1) * sizeof *all);
    if (!all) return FM_ERR_NOMEM;
    for (size_t i = 0; i < num_clients; i++) all[i] = i;
    clients = all;
  }
  size_t mvals = fm_model_num_metric_values(model);
  size_t numel = fm_layout_numel(fm_model_layout(model));
  float *wb = fm__malloc(numel * sizeof *wb);
  int rc = wb ? FM_OK : FM_ERR_NOMEM;
  /* Rank 0's weights are the ones evaluated: other ranks' copies may be a
   * round behind (the server update happens on rank 0 only). */
  if (rc == FM_OK) memcpy(wb, w, numel * sizeof *wb);
  int ndim;
  size_t shape[FM_MAX_DIMS], d = 1;
  fm_client_data_feature_shape(data, &ndim, shape);
  for (int i = 0; i < ndim; i++) d *= shape[i];
  if (rc == FM_OK && d != fm_model_input_spec(model)->num_features)
    rc = FM_ERR(FM_ERR_SPEC_MISMATCH, "%s: examples have %zu features, model '%s' expects %zu",
                fm_client_data_path(data), d, fm_model_type(model), fm_model_input_spec(model)->num_features);
  for (size_t i = 0; rc == FM_OK && i < num_clients; i++)
    if (clients[i] >= pop)
      rc = FM_ERR(FM_ERR_COHORT, "evaluation client index %llu is outside the population of %llu",
                  (unsigned long long)clients[i], (unsigned long long)pop);
  rc = fm_comm_agree(comm, rc);
  if (rc == FM_OK) rc = fm_comm_bcast(comm, wb, numel * sizeof *wb);
  uint64_t *work = rc == FM_OK ? fm__malloc((num_clients ? num_clients : 1) * sizeof *work) : NULL;
  if (rc == FM_OK && !work) rc = FM_ERR_NOMEM;
  for (size_t i = 0; rc == FM_OK && i < num_clients; i++)
    work[i] = (uint64_t)fm_client_data_num_examples(data, (size_t)clients[i]);
  if (rc == FM_OK) {
    fm__eval_ctx ctx = {model, wb, data, batch_size, fm_exact_limit(num_clients + 1)};
    fm__worker_cfg cfg = {.model = model, .client_opt = NULL, .batch = batch_size};
    fm__client_map_args ma = {.clients = clients, .work = work, .num_clients = num_clients, .population = pop,
                              .policy = FM_ASSIGN_SHARD, .comm = comm, .num_threads = num_threads,
                              .num_slots = mvals,
                              .kind = {fm__worker_create, fm__worker_destroy, &cfg, sizeof cfg}};
    double busy;
    int used;
    rc = fm__client_map(&ma, fm__eval_fn, &ctx, total, &busy, &used);
  }
  fm__free(work);
  rc = fm_comm_agree(comm, rc);
  if (rc == FM_OK) rc = fm_comm_reduce_exact(comm, total, mvals);
  fm__free(wb);
  fm__free(all);
  return rc;
}

int fm_evaluate(const fm_model *model, const float *w, const fm_client_data *data, const uint64_t *clients,
                size_t num_clients, size_t batch_size, int num_threads, fm_comm *comm, fm_metrics *out) {
  FM_CHECK(model, FM_ERR_INVALID_ARG, "NULL model");
  size_t mvals = fm_model_num_metric_values(model);
  fm_exact *total = fm__malloc((mvals ? mvals : 1) * sizeof *total);
  int rc = total ? FM_OK : FM_ERR_NOMEM;
  rc = comm ? fm_comm_agree(comm, rc) : rc;
  if (rc == FM_OK) rc = fm__evaluate_sums(model, w, data, clients, num_clients, batch_size, num_threads, comm, total);
  if (rc == FM_OK && comm->rank == 0 && out) rc = fm__metrics_finalize(model, total, "", out);
  fm__free(total);
  return rc;
}

/* ---- build_fed_eval ----------------------------------------------------------- */

struct fm_eval_process {
  const fm_model *model;
  size_t n;          /* unfinalized metric values */
  fm_exact *totals;  /* (n) total_rounds accumulators (rank 0) */
  fm_exact *current; /* (n) scratch */
};

int fm_eval_process_create(const fm_model *model, fm_eval_process **out) {
  FM_CHECK(model && out, FM_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  fm_eval_process *e = fm__calloc(1, sizeof *e);
  if (!e) return FM_ERR_NOMEM;
  e->model = model;
  e->n = fm_model_num_metric_values(model);
  e->totals = fm__calloc(e->n + 1, sizeof *e->totals);
  e->current = fm__calloc(e->n + 1, sizeof *e->current);
  if (!e->totals || !e->current) {
    fm_eval_process_destroy(&e);
    return FM_ERR_NOMEM;
  }
  *out = e;
  return FM_OK;
}

void fm_eval_process_destroy(fm_eval_process **e) {
  if (!e || !*e) return;
  fm__free((*e)->totals);
  fm__free((*e)->current);
  fm__free(*e);
  *e = NULL;
}

int fm_eval_process_next(fm_eval_process *e, const float *w, const fm_client_data *data, const uint64_t *clients,
                         size_t num_clients, size_t batch_size, int num_threads, fm_comm *comm, fm_metrics *out) {
  FM_CHECK(e && comm, FM_ERR_INVALID_ARG, "NULL argument");
  FM_CALL(fm__evaluate_sums(e->model, w, data, clients, num_clients, batch_size, num_threads, comm, e->current));
  if (comm->rank != 0) return FM_OK;
  fm_exact_accumulate(e->totals, e->current, e->n);
  if (!out) return FM_OK;
  FM_CALL(fm_metrics_put(out, "distributor", 0, FM_METRIC_GROUP));
  FM_CALL(fm__metrics_finalize(e->model, e->current, "client_work/eval/current_round_metrics", out));
  FM_CALL(fm__metrics_finalize(e->model, e->totals, "client_work/eval/total_rounds_metrics", out));
  FM_CALL(fm_metrics_put(out, "aggregator", 0, FM_METRIC_GROUP));
  FM_CALL(fm_metrics_put(out, "finalizer", 0, FM_METRIC_GROUP));
  return FM_OK;
}

const fm_exact *fm_eval_process_sums(const fm_eval_process *e, size_t *n) {
  *n = e->n;
  return e->totals;
}

int fm_eval_process_set_sums(fm_eval_process *e, const fm_exact *sums, size_t n) {
  FM_CHECK(e && (sums || n == 0), FM_ERR_INVALID_ARG, "NULL argument");
  FM_CHECK(n == e->n, FM_ERR_STATE_MISMATCH, "saved evaluation state has %zu values, the model's metrics need %zu", n,
           e->n);
  if (n) memcpy(e->totals, sums, n * sizeof *sums);
  return FM_OK;
}
