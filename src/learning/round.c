/* src/learning/round.c — next() and evaluation: the per-client map over
 * OpenMP threads into exact packed sums, the collective reduction through
 * fm_comm, and the server-side finalize on rank 0.
 *
 * Memory per rank: threads x (model weights + gradient + client optimizer
 * state + one batch and its activations + the packed sums) plus the examples
 * of the clients being trained at that moment. Nothing grows with the
 * population or the number of rounds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"
#include "learning_impl.h"

static double fm__now(void) {
#ifdef _OPENMP
  return omp_get_wtime();
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

/* One thread's buffers. */
typedef struct fm__worker {
  void *ws;              /* model workspace */
  float *w;              /* (P) local model weights */
  float *grad;           /* (T) gradient, then the client's delta */
  float *gacc;           /* (T) FedSGD gradient sum / Mime Lite full gradient / SCAFFOLD delta c */
  float *xb;             /* (B, D) batch features */
  int32_t *yb;           /* (B) batch labels */
  float *probs;          /* (B, C) predictions */
  uint32_t *order;       /* (n) shuffle scratch, grown as needed */
  size_t order_cap;
  double *msum;          /* (M) this client's unfinalized metrics */
  double *mbatch;        /* (max metric values) one batch's contributions */
  fm_exact *acc;         /* packed partial sums */
  fm_optim_state opt;    /* client optimizer state */
  int has_opt;
} fm__worker;

static void fm__worker_free(fm__worker *k) {
  fm__free(k->ws);
  fm__free(k->w);
  fm__free(k->grad);
  fm__free(k->gacc);
  fm__free(k->xb);
  fm__free(k->yb);
  fm__free(k->probs);
  fm__free(k->order);
  fm__free(k->msum);
  fm__free(k->mbatch);
  fm__free(k->acc);
  if (k->has_opt) fm_optim_state_free(&k->opt);
  memset(k, 0, sizeof *k);
}

static int fm__worker_init(fm__worker *k, const fm_model *model, size_t batch, size_t num_slots,
                           const fm_optimizer *client_opt) {
  memset(k, 0, sizeof *k);
  const fm_input_spec *spec = fm_model_input_spec(model);
  const fm_layout *l = fm_model_layout(model);
  size_t p = fm_layout_numel(l), t = fm_layout_trainable_numel(l);
  size_t mv = 0;
  for (size_t i = 0; i < fm_model_num_metrics(model); i++) {
    size_t nv = fm_model_metric(model, i)->num_values;
    if (nv > mv) mv = nv;
  }
  k->ws = fm__malloc(fm_model_workspace_size(model, batch));
  k->w = fm__malloc(p * sizeof(float));
  k->grad = fm__malloc((t ? t : 1) * sizeof(float));
  k->gacc = fm__malloc((t ? t : 1) * sizeof(float));
  k->xb = fm__malloc(batch * spec->num_features * sizeof(float));
  k->yb = fm__malloc(batch * sizeof(int32_t));
  k->probs = fm__malloc(batch * spec->num_classes * sizeof(float));
  k->msum = fm__calloc(fm_model_num_metric_values(model) + 1, sizeof(double));
  k->mbatch = fm__calloc(mv + 1, sizeof(double));
  k->acc = fm__calloc(num_slots, sizeof(fm_exact));
  if (!k->ws || !k->w || !k->grad || !k->gacc || !k->xb || !k->yb || !k->probs || !k->msum || !k->mbatch || !k->acc) {
    fm__worker_free(k);
    return FM_ERR_NOMEM;
  }
  if (client_opt) {
    int rc = fm_optim_state_init(client_opt, t, &k->opt);
    if (rc != FM_OK) {
      fm__worker_free(k);
      return rc;
    }
    k->has_opt = 1;
  }
  return FM_OK;
}

/* The workers of one rank's threads, kept by fm_state across rounds: every
 * round allocating them again paid a page fault per 4 KiB of the exact
 * accumulators (16 bytes per weight), and in a process with several threads
 * each of those faults (copy-on-write of the shared zero page) also sent a
 * TLB-shootdown interrupt to the other cores, which cost 1 rank x 2 threads
 * a quarter of its 2NN round. */
typedef struct fm__worker_pool {
  fm__worker *w;
  int n;
  const fm_model *model;
  const fm_optimizer *client_opt;
  size_t batch, num_slots;
} fm__worker_pool;

void fm__worker_pool_free(fm__worker_pool *pool) {
  if (!pool) return;
  for (int i = 0; i < pool->n; i++) fm__worker_free(&pool->w[i]);
  fm__free(pool->w);
  fm__free(pool);
}

/* At least nt workers made for (model, batch, num_slots, client_opt); other
 * workers are dropped first. */
static int fm__worker_pool_prepare(fm__worker_pool **pp, int nt, const fm_model *model, size_t batch,
                                   size_t num_slots, const fm_optimizer *client_opt) {
  fm__worker_pool *pool = *pp;
  if (pool && (pool->model != model || pool->batch != batch || pool->num_slots != num_slots ||
               pool->client_opt != client_opt)) {
    fm__worker_pool_free(pool);
    pool = *pp = NULL;
  }
  if (!pool) {
    pool = *pp = fm__calloc(1, sizeof *pool);
    if (!pool) return FM_ERR_NOMEM;
    *pool = (fm__worker_pool){.model = model, .client_opt = client_opt, .batch = batch, .num_slots = num_slots};
  }
  if (pool->n >= nt) return FM_OK;
  fm__worker *w = fm__realloc(pool->w, (size_t)nt * sizeof *w);
  if (!w) return FM_ERR_NOMEM;
  pool->w = w;
  while (pool->n < nt) {
    FM_CALL(fm__worker_init(&pool->w[pool->n], model, batch, num_slots, client_opt));
    pool->n++;
  }
  return FM_OK;
}

static int fm__worker_order(fm__worker *k, size_t n) {
  if (n <= k->order_cap) return FM_OK;
  uint32_t *o = fm__realloc(k->order, n * sizeof *o);
  if (!o) return FM_ERR_NOMEM;
  k->order = o;
  k->order_cap = n;
  return FM_OK;
}

/* Load client c and check it fits the model. */
static int fm__load_client(const fm_model *model, const fm_client_data *data, uint64_t c, fm_examples *ex) {
  FM_CALL(fm_client_data_load_shared(data, (size_t)c, ex));
  const fm_input_spec *spec = fm_model_input_spec(model);
  const char *id = fm_client_data_client_id(data, (size_t)c);
  if (ex->n && ex->num_features != spec->num_features) {
    int rc = FM_ERR(FM_ERR_SPEC_MISMATCH, "%s: client '%s' has %zu features per example, model '%s' expects %zu",
                    fm_client_data_path(data), id, ex->num_features, fm_model_type(model), spec->num_features);
    fm_examples_free(ex);
    return rc;
  }
  for (size_t i = 0; i < ex->n; i++) {
    if (ex->y[i] < 0 || (size_t)ex->y[i] >= spec->num_classes) {
      int rc = FM_ERR(FM_ERR_SPEC_MISMATCH, "%s: client '%s' example %zu has label %d, outside [0, %zu) of model '%s'",
                      fm_client_data_path(data), id, i, (int)ex->y[i], spec->num_classes, fm_model_type(model));
      fm_examples_free(ex);
      return rc;
    }
  }
  return FM_OK;
}

/* Add one batch's metric contributions into msum. */
static void fm__metrics_update(const fm_model *model, fm__worker *k, size_t nb, float loss) {
  const fm_input_spec *spec = fm_model_input_spec(model);
  size_t off = 0;
  for (size_t i = 0; i < fm_model_num_metrics(model); i++) {
    const fm_metric *m = fm_model_metric(model, i);
    memset(k->mbatch, 0, m->num_values * sizeof(double));
    m->update(m, k->probs, k->yb, nb, spec->num_classes, (double)loss, k->mbatch);
    for (size_t j = 0; j < m->num_values; j++) k->msum[off + j] += k->mbatch[j];
    off += m->num_values;
  }
}

/* What the round broadcast besides the weights, as the clients see it. */
typedef struct fm__round_shared {
  const float *w0;          /* (P) global weights */
  const fm_optim_state *base; /* Mime Lite: the server's base optimizer state (frozen) */
  const float *control;     /* SCAFFOLD: server control variate c (T) */
  double limit;             /* exact-sum limit per contribution */
} fm__round_shared;

/* Mime Lite: the example-weighted mean gradient of one pass over the client's
 * examples at w0, into k->gacc. */
static int fm__full_gradient(const fm_process *p, const float *w0, const fm_examples *ex, size_t batch, uint64_t c,
                             fm__worker *k) {
  const size_t t = p->trainable;
  memset(k->gacc, 0, t * sizeof(float));
  fm_batching one = {.epochs = 1, .batch_size = batch, .shuffle = 0};
  fm_batch_iter it;
  fm_batch_iter_init(&it, &one, ex->n, k->order, 0, 0, c);
  size_t nb;
  float loss;
  while ((nb = fm_batch_iter_next(&it, ex, k->xb, k->yb)) > 0) {
    FM_CALL(fm_model_forward(p->model, k->ws, w0, k->xb, k->yb, nb, 1, &loss, NULL));
    memset(k->grad, 0, t * sizeof(float));
    FM_CALL(fm_model_backward(p->model, k->ws, w0, k->xb, k->yb, nb, k->grad));
    for (size_t i = 0; i < t; i++) k->gacc[i] += (float)nb * k->grad[i];
  }
  if (ex->n)
    for (size_t i = 0; i < t; i++) k->gacc[i] /= (float)ex->n;
  return FM_OK;
}

/* FedNova's a_i: local steps, or with momentum rho the sum of the momentum
 * coefficients, (tau - rho (1 - rho^tau) / (1 - rho)) / (1 - rho). */
static double fm__nova_norm(const fm_optimizer *opt, uint64_t steps) {
  double rho = fm_optimizer_hparam(opt, "momentum"); /* NaN when built without momentum */
  if (!(rho > 0)) return (double)steps;
  double tau = (double)steps;
  return (tau - rho * (1.0 - pow(rho, tau)) / (1.0 - rho)) / (1.0 - rho);
}

/* Client work for one client: local training from the broadcast weights,
 * then the aggregator's prepare step (and the algorithm's extras) into k->acc. */
static int fm__train_client(const fm_process *p, fm_state *s, const fm__round_shared *sh, const fm_round_input *in,
                            uint64_t c, fm__worker *k) {
  const fm_model *model = p->model;
  const size_t t = p->trainable, mvals = p->num_metric_values;
  const float *w0 = sh->w0;
  const fm__algo algo = p->algo;
  fm_examples ex = {0};
  FM_CALL(fm__load_client(model, in->data, c, &ex));
  int rc = fm__worker_order(k, fm_batch_iter_scratch(&in->batching, ex.n));
  float *ci = algo == FM__ALGO_SCAFFOLD ? fm__client_store_find(&s->clients, c) : NULL;
  if (rc != FM_OK) goto done;
  FM_CHECK_GOTO(rc, algo != FM__ALGO_SCAFFOLD || ci, done, FM_ERR_INVALID_ARG,
                "internal: no control variate for client %llu", (unsigned long long)c);
  memcpy(k->w, w0, p->numel * sizeof(float));
  if (s->client_opt) FM_CALL_GOTO(rc, fm_optim_state_reset(s->client_opt, &k->opt), done);
  memset(k->msum, 0, mvals * sizeof(double));
  if (algo == FM__ALGO_FEDSGD) memset(k->gacc, 0, t * sizeof(float));
  if (algo == FM__ALGO_MIME) FM_CALL_GOTO(rc, fm__full_gradient(p, w0, &ex, in->batching.batch_size, c, k), done);

  fm_batch_iter it;
  fm_batch_iter_init(&it, &in->batching, ex.n, k->order, s->seed, s->round, c);
  size_t nb;
  uint64_t examples = 0, steps = 0;
  const float mu = (float)p->cw->mu;
  while ((nb = fm_batch_iter_next(&it, &ex, k->xb, k->yb)) > 0) {
    float loss = 0.0f;
    FM_CALL_GOTO(rc, fm_model_forward(model, k->ws, k->w, k->xb, k->yb, nb, 1, &loss, k->probs), done);
    /* Metrics see the predictions made before this batch's step (as TFF). */
    fm__metrics_update(model, k, nb, loss);
    memset(k->grad, 0, t * sizeof(float));
    FM_CALL_GOTO(rc, fm_model_backward(model, k->ws, k->w, k->xb, k->yb, nb, k->grad), done);
    examples += nb;
    switch (algo) {
      case FM__ALGO_FEDSGD: /* no step: accumulate n_b * g_b at w0 */
        for (size_t i = 0; i < t; i++) k->gacc[i] += (float)nb * k->grad[i];
        continue;
      case FM__ALGO_FEDPROX: /* d/dw (mu/2)||w - w0||^2 */
        for (size_t i = 0; i < t; i++) k->grad[i] += mu * (k->w[i] - w0[i]);
        break;
      case FM__ALGO_SCAFFOLD:
        for (size_t i = 0; i < t; i++) k->grad[i] += sh->control[i] - ci[i];
        break;
      case FM__ALGO_MIME: /* apply the server's state; the client never keeps the new one */
        if (k->opt.num_slots) memcpy(k->opt.slots, sh->base->slots, k->opt.num_slots * t * sizeof(float));
        k->opt.step = sh->base->step;
        break;
      default:
        break;
    }
    FM_CALL_GOTO(rc, fm_optimizer_step(s->client_opt, &k->opt, k->w, k->grad, t), done);
    steps++;
  }

  /* The update: initial - trained (the pseudo-gradient), or FedSGD's mean gradient. */
  int finite = 1;
  if (algo == FM__ALGO_FEDSGD) {
    for (size_t i = 0; i < t; i++) k->grad[i] = examples ? k->gacc[i] / (float)examples : 0.0f;
  } else {
    for (size_t i = 0; i < t; i++) k->grad[i] = w0[i] - k->w[i];
  }
  double a = 1.0;
  if (algo == FM__ALGO_FEDNOVA && steps > 0) {
    a = fm__nova_norm(s->client_opt, steps);
    for (size_t i = 0; i < t; i++) k->grad[i] = (float)(k->grad[i] / a);
  }
  for (size_t i = 0; i < t; i++)
    if (!isfinite(k->grad[i])) finite = 0;
  if (algo == FM__ALGO_MIME)
    for (size_t i = 0; i < t && finite; i++) finite = isfinite(k->gacc[i]);
  if (algo == FM__ALGO_SCAFFOLD && finite) {
    /* c_i+ = c_i - c + (w0 - w) / (K lr); send delta c = c_i+ - c_i */
    double klr = (double)steps * fm_optimizer_hparam(s->client_opt, "learning_rate");
    for (size_t i = 0; i < t; i++) {
      float next = klr > 0 ? (float)((double)ci[i] - sh->control[i] + k->grad[i] / klr) : ci[i];
      k->gacc[i] = next - ci[i];
      if (!isfinite(next)) finite = 0;
    }
    if (finite)
      for (size_t i = 0; i < t; i++) ci[i] += k->gacc[i];
  }
  float weight;
  if (finite) {
    weight = p->cw->weighting == FM_WEIGHTING_NUM_EXAMPLES ? (float)examples : 1.0f;
  } else {
    memset(k->grad, 0, t * sizeof(float));
    memset(k->gacc, 0, t * sizeof(float));
    memset(k->msum, 0, mvals * sizeof(double));
    weight = 0.0f;
  }
  const double limit = sh->limit;
  size_t rejected = fm__aggregator_prepare(p->agg, k->grad, weight, t, k->acc, limit);
  for (size_t j = 0; j < mvals; j++) rejected += (size_t)fm_exact_add(&k->acc[FM__SLOT_METRICS(t) + j], k->msum[j], limit);
  fm_exact *extra = &k->acc[FM__SLOT_EXTRA(t, mvals)];
  float agg_w = fm_aggregator_is_weighted(p->agg) ? weight : (finite ? 1.0f : 0.0f);
  switch (algo) {
    case FM__ALGO_MIME: /* full gradients, averaged like the updates */
      rejected += fm_exact_add_scaled(extra, k->gacc, agg_w, t, limit);
      break;
    case FM__ALGO_SCAFFOLD: /* sum of delta c over the cohort (unweighted) */
      rejected += fm_exact_add_scaled(extra, k->gacc, 1.0f, t, limit);
      break;
    case FM__ALGO_FEDNOVA: /* sum w * a_i, for tau_eff */
      rejected += (size_t)fm_exact_add(extra, (double)agg_w * a, limit);
      break;
    default:
      break;
  }
  if (rejected) fm_exact_add(&k->acc[FM__SLOT_REJECTED(t)], 1.0, limit);
done:
  fm_examples_free(&ex);
  return rc;
}

/* Forward-only evaluation of one client: metric sums into k->acc[0..M). */
static int fm__eval_client(const fm_model *model, const float *w, const fm_client_data *data, uint64_t c,
                           size_t batch, fm__worker *k, double limit) {
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
  for (size_t j = 0; j < mvals; j++) fm_exact_add(&k->acc[j], k->msum[j], limit);
done:
  fm_examples_free(&ex);
  return rc;
}

int fm__metrics_finalize(const fm_model *m, const fm_exact *sums, const char *prefix, fm_metrics *out) {
  double vals[FM_METRIC_MAX_VALUES];
  char path[FM_METRIC_PATH_MAX];
  size_t off = 0;
  for (size_t i = 0; i < fm_model_num_metrics(m); i++) {
    const fm_metric *mt = fm_model_metric(m, i);
    for (size_t j = 0; j < mt->num_values; j++) vals[j] = fm_exact_to_double(&sums[off + j]);
    off += mt->num_values;
    snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "/" : "", mt->name);
    FM_CALL(fm_metrics_put(out, path, mt->finalize(mt, vals), mt->is_integer ? FM_METRIC_INT : FM_METRIC_FLOAT));
  }
  return FM_OK;
}

/* The shared client map: run fn over the clients this rank owns with nt
 * threads, then sum the threads' packed buffers into total (num_slots). */
typedef int (*fm__client_fn)(void *ctx, uint64_t c, fm__worker *k);

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

/* The shared client map: run fn over the clients this rank trains (by
 * policy, largest work first) with nt threads, then sum the threads' packed
 * buffers into total (num_slots). busy gets the summed thread busy time. */
typedef int (*fm__client_fn)(void *ctx, uint64_t c, fm__worker *k);

typedef struct fm__map_args {
  const fm_model *model;
  size_t batch;
  const fm_optimizer *client_opt;
  const uint64_t *clients;
  size_t num_clients;
  const fm_client_data *data; /* for the clients' sizes */
  int epochs;
  fm_assignment policy;
  const fm_comm *comm;
  int num_threads;
  size_t num_slots;
  fm__worker_pool **pool; /* kept across calls (fm_state's), or NULL: made and freed here */
} fm__map_args;

static int fm__client_map(const fm__map_args *a, fm__client_fn fn, void *ctx, fm_exact *total, double *busy,
                          int *threads_used) {
  const size_t k = a->num_clients;
  const uint64_t population = fm_client_data_num_clients(a->data);
  int *ranks = fm__malloc((k ? k : 1) * sizeof *ranks);
  uint64_t *work = fm__malloc((k ? k : 1) * sizeof *work);
  fm__order_item *mine = fm__malloc((k ? k : 1) * sizeof *mine);
  int rc = ranks && work && mine ? FM_OK : FM_ERR_NOMEM;
  for (size_t i = 0; rc == FM_OK && i < k; i++)
    work[i] = (uint64_t)fm_client_data_num_examples(a->data, (size_t)a->clients[i]) * (uint64_t)a->epochs;
  if (rc == FM_OK) rc = fm_assign_clients(a->policy, a->clients, work, k, population, a->comm->size, ranks);
  size_t n = 0;
  for (size_t i = 0; rc == FM_OK && i < k; i++)
    if (ranks[i] == a->comm->rank) mine[n++] = (fm__order_item){work[i], a->clients[i], i};
  fm__free(ranks);
  fm__free(work);
  if (rc != FM_OK) {
    fm__free(mine);
    return rc;
  }
  /* Largest first: the dynamic schedule then approximates LPT across threads. */
  qsort(mine, n, sizeof *mine, fm__cmp_work_desc);

  int nt = a->num_threads > 0 ? a->num_threads : 1;
#ifdef _OPENMP
  if (a->num_threads <= 0) nt = omp_get_max_threads();
#endif
  if ((size_t)nt > n) nt = n ? (int)n : 1;
  *threads_used = nt;

  fm__worker_pool *local = NULL, **pp = a->pool ? a->pool : &local;
  int status = fm__worker_pool_prepare(pp, nt, a->model, a->batch, a->num_slots, a->client_opt);
  if (status != FM_OK) {
    if (!a->pool) fm__worker_pool_free(local);
    fm__free(mine);
    return status;
  }
  fm__worker *workers = (*pp)->w;
  char msg[1024] = "";
  double busy_sum = 0;
  fm_exact_zero(total, a->num_slots);
#pragma omp parallel num_threads(nt) reduction(+ : busy_sum)
  {
#ifdef _OPENMP
    fm__worker *w = &workers[omp_get_thread_num()];
#else
    fm__worker *w = &workers[0];
#endif
    int trc = FM_OK;
    fm_exact_zero(w->acc, a->num_slots);
#pragma omp for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i++) {
      if (trc != FM_OK) continue;
      int crc;
#pragma omp atomic read
      crc = status;
      if (crc != FM_OK) continue; /* another thread failed: stop early */
      double t0 = fm__now();
      trc = fn(ctx, mine[i].client, w);
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
      fm_exact_accumulate(total, w->acc, a->num_slots);
    }
  }
  if (!a->pool) fm__worker_pool_free(local);
  fm__free(mine);
  *busy = busy_sum;
  if (status != FM_OK) return FM_ERR(status, "%s", msg);
  return FM_OK;
}

/* ---- next ------------------------------------------------------------------ */

typedef struct fm__train_ctx {
  const fm_process *p;
  fm_state *s;
  const fm__round_shared *sh;
  const fm_round_input *in;
} fm__train_ctx;

static int fm__train_fn(void *vctx, uint64_t c, fm__worker *k) {
  fm__train_ctx *x = vctx;
  return fm__train_client(x->p, x->s, x->sh, x->in, c, k);
}

/* Header broadcast with the weights: what clients need besides them. */
typedef struct fm__bcast_header {
  uint64_t round;
  uint64_t seed;
  int64_t base_step; /* Mime Lite: the base optimizer's step counter */
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
  return FM_OK;
}

/* Collective: timing of a round, on rank 0. Maxima over ranks by an
 * allreduce, the busy-time sum by an exact reduce. */
static int fm__round_stats(fm_comm *comm, fm_round_stats *st, double t0, double t_dist, double t_map, double t_reduce,
                           double t_server, double busy, int threads) {
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
  st->ranks = comm->size;
  st->threads = (int)mx[3];
  double cap = (double)st->ranks * st->threads * st->map_wall;
  st->idle_fraction = cap > 0 ? 1.0 - st->busy_sum / cap : 0.0;
  return FM_OK;
}

/* Server side of the algorithms' extras, on rank 0, after the mean update. */
static int fm__server_extras(const fm_process *p, fm_state *s, const fm_exact *total, uint64_t population, float *mean,
                             int *non_finite) {
  const size_t t = p->trainable;
  const fm_exact *extra = &total[FM__SLOT_EXTRA(t, p->num_metric_values)];
  double denom = fm_exact_to_double(&total[FM__SLOT_DENOM(t)]);
  switch (p->algo) {
    case FM__ALGO_FEDNOVA: { /* update = tau_eff * mean of normalised deltas */
      double tau_eff = fm_exact_to_double(extra) / denom;
      for (size_t i = 0; i < t; i++) mean[i] = (float)((double)mean[i] * tau_eff);
      break;
    }
    case FM__ALGO_MIME: { /* advance the base optimizer's global state with the mean full gradient */
      if (*non_finite) break;
      float *g = fm__malloc((t ? t : 1) * sizeof *g), *scratch = fm__calloc(t ? t : 1, sizeof *scratch);
      int rc = g && scratch ? FM_OK : FM_ERR_NOMEM;
      for (size_t i = 0; rc == FM_OK && i < t; i++) {
        g[i] = (float)(fm_exact_to_double(&extra[i]) / denom);
        if (!isfinite(g[i])) *non_finite = 1;
      }
      if (rc == FM_OK && !*non_finite) rc = fm_optimizer_step(s->client_opt, &s->base_state, scratch, g, t);
      fm__free(g);
      fm__free(scratch);
      FM_CALL(rc);
      break;
    }
    case FM__ALGO_SCAFFOLD: /* c += sum(delta c_i) / N */
      if (*non_finite) break;
      for (size_t i = 0; i < t; i++)
        s->control[i] = (float)((double)s->control[i] + fm_exact_to_double(&extra[i]) / (double)population);
      break;
    default:
      break;
  }
  return FM_OK;
}

int fm_process_next(const fm_process *p, fm_state *s, const fm_round_input *in, fm_comm *comm,
                    fm_metrics *metrics) {
  FM_CHECK(p && s && comm, FM_ERR_INVALID_ARG, "NULL process, state or communicator");
  FM_CHECK(s->owner == p, FM_ERR_STATE_MISMATCH, "the state was initialized by a different process");
  const size_t t = p->trainable, mvals = p->num_metric_values;
  const size_t num_slots = FM__SLOT_EXTRA(t, mvals) + p->extra_slots;
  int rc = fm__check_round_input(p, in);
  if (rc == FM_OK && in->assignment == FM_ASSIGN_BALANCED && p->algo == FM__ALGO_SCAFFOLD)
    rc = FM_ERR(FM_ERR_INVALID_ARG, "scaffold keeps per-client state on the client's owning rank: it needs the "
                                    "shard assignment, not balanced");
  rc = fm_comm_agree(comm, rc);
  if (rc != FM_OK) return rc;
  const uint64_t population = fm_client_data_num_clients(in->data);
  double t_start = fm__now(), t_dist = 0, t_map = 0, t_reduce = 0, t_server = 0, busy = 0;
  int threads_used = 1;

  /* 1. distributor: weights, client hparams and what the algorithm's clients
   * need (Mime Lite's base optimizer state, SCAFFOLD's c) from rank 0. */
  fm__bcast_header h = {.round = s->round, .seed = s->seed, .base_step = s->base_state.step};
  if (s->client_opt) fm_optimizer_get_hparams(s->client_opt, &h.client_hp);
  FM_CALL(fm_comm_bcast(comm, &h, sizeof h));
  FM_CALL(fm_comm_bcast(comm, s->weights, p->numel * sizeof(float)));
  if (p->algo == FM__ALGO_MIME && s->base_state.num_slots)
    FM_CALL(fm_comm_bcast(comm, s->base_state.slots, s->base_state.num_slots * t * sizeof(float)));
  if (p->algo == FM__ALGO_SCAFFOLD) FM_CALL(fm_comm_bcast(comm, s->control, t * sizeof(float)));
  t_dist = fm__now();
  if (comm->rank != 0) {
    s->round = h.round;
    s->seed = h.seed;
    s->base_state.step = h.base_step;
    if (s->client_opt) FM_CALL(fm_optimizer_set_hparams(s->client_opt, &h.client_hp));
  }

  /* Per-client state of the owned cohort clients exists before the threads start. */
  rc = FM_OK;
  if (p->algo == FM__ALGO_SCAFFOLD)
    for (size_t i = 0; rc == FM_OK && i < in->cohort_size; i++)
      if (fm_client_owner(in->cohort[i], population, comm->size) == comm->rank) {
        float *ci;
        rc = fm__client_store_get(&s->clients, in->cohort[i], &ci);
      }

  /* 2. client work + aggregator prepare, per client, into exact sums. */
  fm_exact *total = fm__malloc(num_slots * sizeof *total);
  float *mean = fm__malloc((t ? t : 1) * sizeof *mean);
  if (!total || !mean) rc = FM_ERR_NOMEM;
  if (rc == FM_OK) {
    fm__round_shared sh = {.w0 = s->weights, .base = &s->base_state, .control = s->control,
                           .limit = fm_exact_limit(in->cohort_size + 1)};
    fm__train_ctx ctx = {p, s, &sh, in};
    fm__map_args ma = {.model = p->model, .batch = in->batching.batch_size, .client_opt = s->client_opt,
                       .clients = in->cohort, .num_clients = in->cohort_size, .data = in->data,
                       .epochs = in->batching.epochs, .policy = in->assignment, .comm = comm,
                       .num_threads = in->num_threads, .num_slots = num_slots, .pool = &s->pool};
    rc = fm__client_map(&ma, fm__train_fn, &ctx, total, &busy, &threads_used);
  }
  t_map = fm__now();
  rc = fm_comm_agree(comm, rc);
  if (rc != FM_OK) goto done;
  FM_CALL_GOTO(rc, fm_comm_reduce_exact(comm, total, num_slots), done);
  t_reduce = fm__now();

  /* 3. server: aggregator finalize, algorithm extras, finalizer, metrics (rank 0). */
  if (comm->rank == 0) {
    if (metrics) FM_CALL_GOTO(rc, fm_metrics_put(metrics, "distributor", 0, FM_METRIC_GROUP), done);
    FM_CALL_GOTO(rc, fm__aggregator_finalize(p->agg, total, t, mean), done);
    int non_finite = fm_exact_to_double(&total[FM__SLOT_REJECTED(t)]) > 0.0;
    for (size_t i = 0; i < t && !non_finite; i++)
      if (!isfinite(mean[i])) non_finite = 1;
    FM_CALL_GOTO(rc, fm__server_extras(p, s, total, population, mean, &non_finite), done);
    for (size_t i = 0; i < t && !non_finite; i++)
      if (!isfinite(mean[i])) non_finite = 1;
    if (!non_finite) FM_CALL_GOTO(rc, fm_optimizer_step(s->server_opt, &s->server_state, s->weights, mean, t), done);
    if (metrics) {
      FM_CALL_GOTO(rc, fm__metrics_finalize(p->model, &total[FM__SLOT_METRICS(t)], "client_work/train", metrics),
                   done);
      FM_CALL_GOTO(rc, fm__aggregator_measurements(p->agg, metrics), done);
      FM_CALL_GOTO(rc, fm_metrics_put(metrics, "finalizer/update_non_finite", non_finite, FM_METRIC_INT), done);
    }
  }
  s->round++;
  t_server = fm__now();
  if (in->stats) FM_CALL_GOTO(rc, fm__round_stats(comm, in->stats, t_start, t_dist, t_map, t_reduce, t_server, busy,
                                                  threads_used), done);
done:
  fm__free(total);
  fm__free(mean);
  return rc;
}

/* ---- evaluation ------------------------------------------------------------- */

typedef struct fm__eval_ctx {
  const fm_model *model;
  const float *w;
  const fm_client_data *data;
  size_t batch;
  double limit;
} fm__eval_ctx;

static int fm__eval_fn(void *vctx, uint64_t c, fm__worker *k) {
  fm__eval_ctx *x = vctx;
  return fm__eval_client(x->model, x->w, x->data, c, x->batch, k, x->limit);
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
  if (rc == FM_OK) {
    fm__eval_ctx ctx = {model, wb, data, batch_size, fm_exact_limit(num_clients + 1)};
    fm__map_args ma = {.model = model, .batch = batch_size, .client_opt = NULL, .clients = clients,
                       .num_clients = num_clients, .data = data, .epochs = 1, .policy = FM_ASSIGN_SHARD,
                       .comm = comm, .num_threads = num_threads, .num_slots = mvals};
    double busy;
    int used;
    rc = fm__client_map(&ma, fm__eval_fn, &ctx, total, &busy, &used);
  }
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

int fm_build_fed_eval(const fm_model *model, fm_eval_process **out) {
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
