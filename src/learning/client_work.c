/* src/learning/client_work.c — the client work stage's behaviour: one
 * client's local training from the broadcast weights, shaped by the
 * algorithm's hooks, then every aggregator's prepare step into the thread's
 * packed exact sums. Also the thread's worker buffers and the metric sums.
 *
 * Memory per thread: model weights + gradient + the algorithm's vector +
 * an aggregator scratch + client optimizer state + one batch and its
 * activations; the executor keeps them across rounds. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

/* ---- the worker ---------------------------------------------------------------- */

void fm__worker_destroy(void *worker) {
  fm__worker *k = worker;
  if (!k) return;
  fm__free(k->ws);
  fm__free(k->w);
  fm__free(k->grad);
  fm__free(k->gacc);
  fm__free(k->scratch);
  fm__free(k->xb);
  fm__free(k->yb);
  fm__free(k->probs);
  fm__free(k->order);
  fm__free(k->msum);
  fm__free(k->mbatch);
  if (k->has_opt) fm_optimizer_state_free(&k->opt);
  fm__free(k);
}

int fm__worker_create(const void *vcfg, void **out) {
  const fm__worker_cfg *cfg = vcfg;
  const fm_model *model = cfg->model;
  const size_t batch = cfg->batch;
  *out = NULL;
  fm__worker *k = fm__calloc(1, sizeof *k);
  if (!k) return FM_ERR_NOMEM;
  const fm_input_spec *spec = fm_model_input_spec(model);
  const fm_layout *l = fm_model_layout(model);
  size_t p = fm_layout_numel(l), t = fm_layout_trainable_numel(l), mv = 0;
  for (size_t i = 0; i < fm_model_num_metrics(model); i++) {
    size_t nv = fm_model_metric(model, i)->num_values;
    if (nv > mv) mv = nv;
  }
  k->ws = fm__malloc(fm_model_workspace_size(model, batch));
  k->w = fm__malloc(p * sizeof(float));
  k->grad = fm__malloc((t ? t : 1) * sizeof(float));
  k->gacc = fm__malloc((t ? t : 1) * sizeof(float));
  k->scratch = fm__malloc((t ? t : 1) * sizeof(float));
  k->xb = fm__malloc(batch * spec->num_features * sizeof(float));
  const size_t T = fm_model_num_targets(model) ? fm_model_num_targets(model) : 1; /* the data's labels per example */
  k->yb = fm__malloc(batch * T * sizeof(int32_t));
  k->probs = fm__malloc(batch * fm_model_prediction_size(model) * sizeof(float));
  k->msum = fm__calloc(fm_model_num_metric_values(model) + 1, sizeof(double));
  k->mbatch = fm__calloc(mv + 1, sizeof(double));
  int rc = k->ws && k->w && k->grad && k->gacc && k->scratch && k->xb && k->yb && k->probs && k->msum && k->mbatch
               ? FM_OK
               : FM_ERR_NOMEM;
  if (rc == FM_OK && cfg->client_opt) {
    rc = fm_optimizer_state_init(cfg->client_opt, t, &k->opt);
    k->has_opt = rc == FM_OK;
  }
  if (rc != FM_OK) {
    fm__worker_destroy(k);
    return rc;
  }
  *out = k;
  return FM_OK;
}

int fm__worker_order(fm__worker *k, size_t n) {
  if (n <= k->order_cap) return FM_OK;
  uint32_t *o = fm__realloc(k->order, n * sizeof *o);
  if (!o) return FM_ERR_NOMEM;
  k->order = o;
  k->order_cap = n;
  return FM_OK;
}

/* ---- loading and metrics -------------------------------------------------------- */

int fm__load_client(const fm_model *model, const fm_client_data *data, uint64_t c, fm_examples *ex) {
  FM_CALL(fm_client_data_load_shared(data, (size_t)c, ex));
  const fm_input_spec *spec = fm_model_input_spec(model);
  const char *id = fm_client_data_client_id(data, (size_t)c);
  if (ex->n && ex->num_features != spec->num_features) {
    int rc = FM_ERR(FM_ERR_SPEC_MISMATCH, "%s: client '%s' has %zu features per example, model '%s' expects %zu",
                    fm_client_data_path(data), id, ex->num_features, fm_model_type(model), spec->num_features);
    fm_examples_free(ex);
    return rc;
  }
  const size_t T = fm_model_num_targets(model), dt = ex->num_targets ? ex->num_targets : 1;
  if (!ex->n || (T == 0 && dt == 1)) return FM_OK; /* T = 0: the target is the input, the labels are not read */
  if (T == 0) { /* the worker's label buffer holds one label per example */
    int rc = FM_ERR(FM_ERR_SPEC_MISMATCH,
                    "%s: client '%s' has a label at each of %zu time steps, but model '%s' reconstructs its input "
                    "(mean squared error) and takes data with one label per example",
                    fm_client_data_path(data), id, dt, fm_model_type(model));
    fm_examples_free(ex);
    return rc;
  }
  if (dt != T) {
    int rc = T == 1 ? FM_ERR(FM_ERR_SPEC_MISMATCH,
                             "%s: client '%s' has a label at each of %zu time steps (a sequence target), but model "
                             "'%s' is a classifier with one label per example; use a sequence model such as "
                             "shakespeare_lstm, or a stack ending in an LSTM with 'sequences' and 'dense'",
                             fm_client_data_path(data), id, dt, fm_model_type(model))
                    : FM_ERR(FM_ERR_SPEC_MISMATCH,
                             "%s: client '%s' has %zu label(s) per example, but model '%s' predicts a label at each of "
                             "%zu time steps (it needs tokenised text, e.g. Shakespeare's snippets)",
                             fm_client_data_path(data), id, dt, fm_model_type(model), T);
    fm_examples_free(ex);
    return rc;
  }
  for (size_t i = 0; i < ex->n * T; i++) {
    if (ex->y[i] < 0 || (size_t)ex->y[i] >= spec->num_classes) {
      int rc = FM_ERR(FM_ERR_SPEC_MISMATCH, "%s: client '%s' example %zu has label %d, outside [0, %zu) of model '%s'",
                      fm_client_data_path(data), id, i / T, (int)ex->y[i], spec->num_classes, fm_model_type(model));
      fm_examples_free(ex);
      return rc;
    }
  }
  return FM_OK;
}

void fm__metrics_update(const fm_model *model, fm__worker *k, size_t nb, float loss) {
  const fm_input_spec *spec = fm_model_input_spec(model);
  const size_t T = fm_model_num_targets(model) > 1 ? fm_model_num_targets(model) : 1;
  size_t off = 0;
  for (size_t i = 0; i < fm_model_num_metrics(model); i++) {
    const fm_metric *m = fm_model_metric(model, i);
    memset(k->mbatch, 0, m->num_values * sizeof(double));
    m->update(m, k->probs, k->yb, m->per_position ? nb * T : nb, spec->num_classes, (double)loss, k->mbatch);
    for (size_t j = 0; j < m->num_values; j++) k->msum[off + j] += k->mbatch[j];
    off += m->num_values;
  }
}

/* Finalized metrics from the summed values, exact (sums) or already doubles (dvals). */
static int fm__metrics_finalize_any(const fm_model *m, const fm_exact *sums, const double *dvals, const char *prefix,
                                    fm_metrics *out) {
  double vals[FM_METRIC_MAX_VALUES];
  char path[FM_METRIC_PATH_MAX];
  size_t off = 0;
  for (size_t i = 0; i < fm_model_num_metrics(m); i++) {
    const fm_metric *mt = fm_model_metric(m, i);
    for (size_t j = 0; j < mt->num_values; j++) vals[j] = sums ? fm_exact_to_double(&sums[off + j]) : dvals[off + j];
    off += mt->num_values;
    snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "/" : "", mt->name);
    FM_CALL(fm_metrics_put(out, path, mt->finalize(mt, vals), mt->is_integer ? FM_METRIC_INT : FM_METRIC_FLOAT));
  }
  return FM_OK;
}

int fm__metrics_finalize(const fm_model *m, const fm_exact *sums, const char *prefix, fm_metrics *out) {
  return fm__metrics_finalize_any(m, sums, NULL, prefix, out);
}

int fm__metrics_finalize_values(const fm_model *m, const double *vals, const char *prefix, fm_metrics *out) {
  return fm__metrics_finalize_any(m, NULL, vals, prefix, out);
}

/* ---- one client's work ------------------------------------------------------------ */

/* Local training: forward -> metrics -> backward -> the algorithm's gradient
 * hook -> optimizer step, over shuffle -> repeat -> batch. */
static int fm__local_training(fm__client_ctx *x) {
  const fm_process *p = x->p;
  const fm__algorithm_ops *algo = p->algo;
  fm__worker *k = x->k;
  const size_t t = p->trainable;
  fm_batch_iter it;
  fm_batch_iter_init(&it, &x->in->batching, x->ex->n, k->order, x->s->seed, x->s->round, x->client);
  size_t nb;
  for (uint64_t step = 0; (nb = fm_batch_iter_next(&it, x->ex, k->xb, k->yb)) > 0; step++) {
    float loss = 0.0f;
    fm_model_set_step(p->model, k->ws, x->s->seed, x->s->round, x->client, step); /* dropout's key */
    FM_CALL(fm_model_forward(p->model, k->ws, k->w, k->xb, k->yb, nb, 1, &loss, k->probs));
    /* Metrics see the predictions made before this batch's step (as TFF). */
    fm__metrics_update(p->model, k, nb, loss);
    memset(k->grad, 0, t * sizeof(float));
    FM_CALL(fm_model_backward(p->model, k->ws, k->w, k->xb, k->yb, nb, k->grad));
    x->examples += nb;
    x->nb = nb;
    if (algo->gradient && algo->gradient(x)) continue;
    FM_CALL(fm_optimizer_step(x->s->client_opt, &k->opt, k->w, k->grad, t));
    x->steps++;
  }
  return FM_OK;
}

/* The client's contributions: the update through the process's aggregator,
 * the metrics, the algorithm's extras through theirs, and the rejected flag. */
static void fm__client_contribute(fm__client_ctx *x, int finite, fm_exact *acc) {
  const fm_process *p = x->p;
  const size_t t = p->trainable, mvals = p->num_metric_values;
  fm__worker *k = x->k;
  const double limit = x->sh->limit;
  float weight = 0.0f;
  if (finite) {
    weight = p->cw->weighting == FM_WEIGHTING_NUM_EXAMPLES ? (float)x->examples : 1.0f;
  } else {
    memset(k->grad, 0, t * sizeof(float));
    memset(k->gacc, 0, t * sizeof(float));
    memset(k->msum, 0, mvals * sizeof(double));
  }
  /* The client's position in the cohort (secure_mean's SecAgg+ masks). */
  size_t pos = 0;
  while (pos < x->in->cohort_size && x->in->cohort[pos] != x->client) pos++;
  fm__agg_value update = {
      .f = k->grad, .n = t, .pos = pos, .cohort = x->in->cohort_size, .seed = x->s->seed, .round = x->s->round};
  size_t rejected = fm__aggregator_prepare(p->agg, x->s->agg_state, &update, weight, acc, limit, k->scratch);
  if (p->secure_metrics)
    rejected += fm__secure_metrics_prepare(p->secure_metrics, k->msum, &acc[p->slot_metrics], limit);
  else
    for (size_t j = 0; j < mvals; j++) rejected += (size_t)fm_exact_add(&acc[p->slot_metrics + j], k->msum[j], limit);
  for (size_t j = 0; j < p->algo->num_extras; j++) {
    fm__agg_value v = {0};
    p->algo->extra_value(x, j, finite, &v);
    rejected += fm__aggregator_prepare(p->extra_agg[j], NULL, &v, weight, &acc[p->slot_extra[j]], limit, k->scratch);
  }
  if (rejected) fm_exact_add(&acc[p->slot_rejected], 1.0, limit);
}

int fm__client_work_run(const fm_process *p, fm_state *s, const fm__round_shared *sh, const fm_round_input *in,
                        uint64_t c, fm__worker *k, fm_exact *acc) {
  const fm__algorithm_ops *algo = p->algo;
  const size_t t = p->trainable;
  fm_examples ex = {0};
  FM_CALL(fm__load_client(p->model, in->data, c, &ex));
  fm__client_ctx x = {.p = p, .s = s, .sh = sh, .in = in, .client = c, .k = k, .ex = &ex};
  int rc = fm__worker_order(k, fm_batch_iter_scratch(&in->batching, ex.n));
  if (rc != FM_OK) goto done;
  memcpy(k->w, sh->w0, p->numel * sizeof(float));
  if (s->client_opt) FM_CALL_GOTO(rc, fm_optimizer_state_reset(s->client_opt, &k->opt), done);
  memset(k->msum, 0, p->num_metric_values * sizeof(double));
  if (algo->client_begin) FM_CALL_GOTO(rc, algo->client_begin(&x), done);
  FM_CALL_GOTO(rc, fm__local_training(&x), done);

  /* The update: initial - trained (the pseudo-gradient), unless the algorithm says otherwise. */
  if (algo->update) {
    algo->update(&x);
  } else {
    for (size_t i = 0; i < t; i++) k->grad[i] = sh->w0[i] - k->w[i];
  }
  int finite = 1;
  for (size_t i = 0; i < t; i++)
    if (!isfinite(k->grad[i])) finite = 0;
  if (algo->client_end) finite = algo->client_end(&x, finite);
  fm__client_contribute(&x, finite, acc);
done:
  fm_examples_free(&ex);
  return rc;
}
