/* src/learning/round.c — next(): one round of the learning process, as TFF
 * composes it:
 *
 *   distribute   rank 0's weights, client hparams and the algorithm's payload
 *   client map   every client's work (client_work.c) on the executor's threads,
 *                into exact packed sums
 *   exact sum    one reduction over ranks
 *   finalize     on rank 0: the aggregator's mean, the algorithm's server step,
 *                the finalizer, the metrics
 *
 * What each step does is in its stage (client_work.c, aggregators.c,
 * stages.c, algorithms/); how the map runs is the executor's
 * (src/runtime/executor.c). Because the sums are exact (fedmpi/exact.h), the
 * result does not depend on how clients were spread over ranks and threads. */
#include <math.h>
#include <string.h>

#include "executor_impl.h"
#include "internal.h"
#include "learning_impl.h"

/* Header broadcast with the weights: what clients need besides them. */
typedef struct fm__bcast_header {
  uint64_t round;
  uint64_t seed;
  fm_hparams client_hp;
} fm__bcast_header;

static int fm__check_round_input(const fm_process *p, const fm_round_input *in) {
  FM_CHECK(in && in->data, FM_ERR_INVALID_ARG, "round input needs client data");
  FM_CHECK(in->cohort || in->cohort_size == 0, FM_ERR_INVALID_ARG, "cohort is NULL");
  FM_CHECK(in->batching.epochs >= 1, FM_ERR_INVALID_ARG, "epochs must be >= 1, got %d", in->batching.epochs);
  FM_CHECK(in->batching.batch_size >= 1, FM_ERR_INVALID_ARG, "batch size must be >= 1");
  uint64_t pop = fm_client_data_num_clients(in->data);
  for (size_t i = 0; i < in->cohort_size; i++)
    FM_CHECK(in->cohort[i] < pop, FM_ERR_COHORT, "cohort client index %llu is outside the population of %llu",
             (unsigned long long)in->cohort[i], (unsigned long long)pop);
  int ndim;
  size_t shape[FM_MAX_DIMS];
  fm_client_data_feature_shape(in->data, &ndim, shape);
  size_t d = 1;
  for (int i = 0; i < ndim; i++) d *= shape[i];
  const fm_input_spec *spec = fm_model_input_spec(p->model);
  FM_CHECK(d == spec->num_features, FM_ERR_SPEC_MISMATCH,
           "%s: examples have %zu features, model '%s' expects %zu", fm_client_data_path(in->data), d,
           fm_model_type(p->model), spec->num_features);
  FM_CALL(fm__aggregator_check_round(p->agg, in->cohort_size));
  FM_CHECK(in->assignment != FM_ASSIGN_BALANCED || !(p->algo->flags & FM__ALGO_SHARD_ONLY), FM_ERR_INVALID_ARG,
           "%s keeps per-client state on the client's owning rank: it needs the shard assignment, not balanced",
           p->algo->name);
  return FM_OK;
}

/* 1. distributor: weights, client hparams and the algorithm's payload from rank 0. */
static int fm__distribute(const fm_process *p, fm_state *s, fm_comm *comm) {
  fm__bcast_header h = {.round = s->round, .seed = s->seed};
  if (s->client_opt) fm_optimizer_get_hparams(s->client_opt, &h.client_hp);
  FM_CALL(fm_comm_bcast(comm, &h, sizeof h));
  FM_CALL(fm_comm_bcast(comm, s->weights, p->numel * sizeof(float)));
  if (p->agg_state_n) FM_CALL(fm_comm_bcast(comm, s->agg_state, p->agg_state_n * sizeof(double)));
  if (p->algo->broadcast) FM_CALL(p->algo->broadcast(p, s, comm));
  if (fm_comm_rank(comm) != 0) {
    s->round = h.round;
    s->seed = h.seed;
    if (s->client_opt) FM_CALL(fm_optimizer_set_hparams(s->client_opt, &h.client_hp));
  }
  return FM_OK;
}

/* 2. the client map: every client's work into exact sums (total). */
typedef struct fm__train_ctx {
  const fm_process *p;
  fm_state *s;
  const fm__round_shared *sh;
  const fm_round_input *in;
} fm__train_ctx;

static int fm__train_fn(void *vctx, uint64_t c, void *worker, fm_exact *acc) {
  fm__train_ctx *x = vctx;
  return fm__client_work_run(x->p, x->s, x->sh, x->in, c, worker, acc);
}

static int fm__map_clients(const fm_process *p, fm_state *s, const fm_round_input *in, fm_comm *comm,
                           fm_exact *total, double *busy, int *threads_used) {
  const size_t k = in->cohort_size;
  uint64_t *work = fm__malloc((k ? k : 1) * sizeof *work);
  if (!work) return FM_ERR_NOMEM;
  for (size_t i = 0; i < k; i++)
    work[i] = (uint64_t)fm_client_data_num_examples(in->data, (size_t)in->cohort[i]) * (uint64_t)in->batching.epochs;
  fm__round_shared sh = {.w0 = s->weights, .limit = fm_exact_limit(in->cohort_size + 1)};
  fm__train_ctx ctx = {p, s, &sh, in};
  fm__worker_cfg cfg = {.model = p->model, .client_opt = s->client_opt, .batch = in->batching.batch_size};
  fm__client_map_args ma = {.clients = in->cohort, .work = work, .num_clients = k,
                            .population = fm_client_data_num_clients(in->data), .policy = in->assignment,
                            .comm = comm, .num_threads = in->num_threads, .num_slots = p->num_slots,
                            .kind = {fm__worker_create, fm__worker_destroy, &cfg, sizeof cfg},
                            .exec = in->executor};
  int rc = fm__client_map(&ma, fm__train_fn, &ctx, total, busy, threads_used);
  fm__free(work);
  return rc;
}

/* 3. on rank 0: aggregator finalize, the algorithm's server step, the finalizer, metrics. */
static int fm__server_update(const fm_process *p, fm_state *s, const fm_exact *total, const fm_round_input *in,
                             fm_metrics *metrics) {
  const uint64_t population = fm_client_data_num_clients(in->data);
  const fm__agg_round ar = {
      .seed = s->seed, .round = s->round, .cohort_size = in->cohort_size, .server = s->agg_server};
  const size_t t = p->trainable;
  double *agg = fm__malloc((t ? t : 1) * sizeof *agg), *extras[FM__MAX_EXTRAS] = {NULL};
  float *mean = fm__malloc((t ? t : 1) * sizeof *mean);
  int rc = agg && mean ? FM_OK : FM_ERR_NOMEM;
  for (size_t j = 0; rc == FM_OK && j < p->algo->num_extras; j++) {
    extras[j] = fm__malloc(p->extra_size[j] * sizeof(double));
    if (!extras[j]) rc = FM_ERR_NOMEM;
  }
  if (rc != FM_OK) goto done; /* the FM_CALL_GOTOs below would overwrite rc */
  if (metrics) FM_CALL_GOTO(rc, fm_metrics_put(metrics, "distributor", 0, FM_METRIC_GROUP), done);
  FM_CALL_GOTO(rc, fm__aggregator_finalize(p->agg, s->agg_state, total, t, &ar, agg), done);
  for (size_t i = 0; i < t; i++) mean[i] = (float)agg[i];
  for (size_t j = 0; j < p->algo->num_extras; j++)
    FM_CALL_GOTO(rc, fm__aggregator_finalize(p->extra_agg[j], NULL, &total[p->slot_extra[j]], p->extra_size[j], &ar, extras[j]),
                 done);
  int non_finite = fm_exact_to_double(&total[p->slot_rejected]) > 0.0;
  for (size_t i = 0; i < t && !non_finite; i++)
    if (!isfinite(mean[i])) non_finite = 1;
  if (p->algo->server_step)
    FM_CALL_GOTO(rc, p->algo->server_step(p, s, extras, population, mean, &non_finite), done);
  FM_CALL_GOTO(rc, fm__finalizer_apply(p->fin, s, mean, t, &non_finite), done);
  if (metrics) {
    FM_CALL_GOTO(rc,
                 p->secure_metrics ? fm__secure_metrics_report(p->secure_metrics, p->model, &total[p->slot_metrics],
                                                               "client_work/train", metrics)
                                   : fm__metrics_finalize(p->model, &total[p->slot_metrics], "client_work/train", metrics),
                 done);
    FM_CALL_GOTO(rc, fm__aggregator_measurements(p->agg, s->agg_state, total, t, "aggregator", metrics), done);
    FM_CALL_GOTO(rc, fm_metrics_put(metrics, "finalizer/update_non_finite", non_finite, FM_METRIC_INT), done);
  }
  /* the aggregators' state for the next round (adaptive norms), after the
   * measurements of the one this round used */
  FM_CALL_GOTO(rc, fm__aggregator_next_state(p->agg, s->agg_state, total, t, &ar), done);
done:
  for (size_t j = 0; j < FM__MAX_EXTRAS; j++) fm__free(extras[j]);
  fm__free(agg);
  fm__free(mean);
  return rc;
}

/* Collective: timing of a round, on rank 0. Maxima over ranks by an
 * allreduce, the busy-time sum by an exact reduce. */
static int fm__round_stats(fm_comm *comm, fm_round_stats *st, const double tm[5], double busy, int threads) {
  const double t0 = tm[0], t_dist = tm[1], t_map = tm[2], t_reduce = tm[3], t_server = tm[4];
  double mx[4] = {t_map - t_dist, busy, -busy, (double)threads};
  FM_CALL(fm_comm_allreduce_max(comm, mx, 4));
  fm_exact sum;
  fm_exact_zero(&sum, 1);
  fm_exact_add(&sum, busy, 1e15);
  FM_CALL(fm_comm_reduce_exact(comm, &sum, 1));
  memset(st, 0, sizeof *st);
  st->wall = t_server - t0;
  st->distribute = t_dist - t0;
  st->map_wall = mx[0];
  st->busy_max = mx[1];
  st->busy_min = -mx[2];
  st->busy_sum = fm_exact_to_double(&sum);
  st->reduce = t_reduce - t_map;
  st->server = t_server - t_reduce;
  st->ranks = fm_comm_size(comm);
  st->threads = (int)mx[3];
  double cap = (double)st->ranks * st->threads * st->map_wall;
  st->idle_fraction = cap > 0 ? 1.0 - st->busy_sum / cap : 0.0;
  return FM_OK;
}

int fm_process_next(const fm_process *p, fm_state *s, const fm_round_input *in, fm_comm *comm,
                    fm_metrics *metrics) {
  FM_CHECK(p && s && comm, FM_ERR_INVALID_ARG, "NULL process, state or communicator");
  FM_CHECK(s->owner == p, FM_ERR_STATE_MISMATCH, "the state was initialized by a different process");
  FM_CALL(fm_comm_agree(comm, fm__check_round_input(p, in)));
  double tm[5] = {fm__now(), 0, 0, 0, 0}, busy = 0;
  int threads_used = 1;

  FM_CALL(fm__distribute(p, s, comm));
  tm[1] = fm__now();
  int rc = p->algo->round_begin ? p->algo->round_begin(p, s, in, comm) : FM_OK;
  fm_exact *total = fm__malloc(p->num_slots * sizeof *total);
  if (rc == FM_OK && !total) rc = FM_ERR_NOMEM;
  if (rc == FM_OK) rc = fm__map_clients(p, s, in, comm, total, &busy, &threads_used);
  tm[2] = fm__now();
  FM_CALL_GOTO(rc, fm_comm_agree(comm, rc), done);
  FM_CALL_GOTO(rc, fm_comm_reduce_exact(comm, total, p->num_slots), done);
  tm[3] = fm__now();
  if (fm_comm_rank(comm) == 0)
    FM_CALL_GOTO(rc, fm__server_update(p, s, total, in, metrics), done);
  s->round++;
  tm[4] = fm__now();
  if (in->stats) FM_CALL_GOTO(rc, fm__round_stats(comm, in->stats, tm, busy, threads_used), done);
done:
  fm__free(total);
  return rc;
}
