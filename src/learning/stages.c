/* src/learning/stages.c — the three configurable stages of a learning
 * process: client work (FedAvg's model-delta client), aggregators (weighted
 * and unweighted mean) and the apply-optimizer finalizer. Each is a plain
 * object; process.c runs them as per-client map -> exact sum -> server
 * finalize. No MPI here. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

/* ---- client work ---------------------------------------------------------- */

int fm_client_work_create_model_delta(const fm_model *model, fm_optimizer *client_opt, fm_weighting weighting,
                                      fm_client_work **out) {
  int rc = FM_OK;
  fm_client_work *cw = NULL;
  FM_CHECK_GOTO(rc, out, fail, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CHECK_GOTO(rc, model, fail, FM_ERR_INVALID_ARG, "client work needs a model");
  FM_CHECK_GOTO(rc, client_opt, fail, FM_ERR_INVALID_ARG, "client work needs a client optimizer");
  FM_CHECK_GOTO(rc, weighting == FM_WEIGHTING_UNIFORM || weighting == FM_WEIGHTING_NUM_EXAMPLES, fail,
                FM_ERR_INVALID_ARG, "unknown client weighting %d (use NUM_EXAMPLES or UNIFORM)", (int)weighting);
  cw = fm__calloc(1, sizeof *cw);
  if (!cw) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  cw->model = model;
  cw->opt = client_opt;
  cw->weighting = weighting;
  *out = cw;
  return FM_OK;
fail:
  fm_optimizer_destroy(&client_opt);
  return rc;
}

void fm_client_work_destroy(fm_client_work **cw) {
  if (!cw || !*cw) return;
  fm_optimizer_destroy(&(*cw)->opt);
  fm__free(*cw);
  *cw = NULL;
}

fm_weighting fm_client_work_weighting(const fm_client_work *cw) { return cw->weighting; }

/* ---- aggregators ------------------------------------------------------------ */

static int fm__aggregator_new(const char *name, int weighted, fm_aggregator **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "out is NULL");
  fm_aggregator *a = fm__calloc(1, sizeof *a);
  if (!a) return FM_ERR_NOMEM;
  a->name = name;
  a->weighted = weighted;
  *out = a;
  return FM_OK;
}

int fm_aggregator_create_mean(fm_aggregator **out) { return fm__aggregator_new("mean", 1, out); }
int fm_aggregator_create_unweighted_mean(fm_aggregator **out) {
  return fm__aggregator_new("unweighted_mean", 0, out);
}
int fm_aggregator_is_weighted(const fm_aggregator *a) { return a->weighted; }
const char *fm_aggregator_name(const fm_aggregator *a) { return a->name; }

void fm_aggregator_destroy(fm_aggregator **a) {
  if (!a || !*a) return;
  fm__free(*a);
  *a = NULL;
}

size_t fm__aggregator_prepare(const fm_aggregator *a, const float *delta, float weight, size_t t, fm_exact *slots,
                              double limit) {
  /* MeanFactory: sum(w * v) and sum(w); UnweightedMeanFactory: sum(v) and
   * the number of clients (TFF counts every client, zeroed ones included). */
  float w = a->weighted ? weight : 1.0f;
  size_t bad = fm_exact_add_scaled(slots, delta, w, t, limit);
  bad += (size_t)fm_exact_add(&slots[t], (double)w, limit);
  return bad;
}

int fm__aggregator_finalize(const fm_aggregator *a, const fm_exact *slots, size_t t, float *mean) {
  (void)a;
  /* A zero denominator gives NaN (0/0), as MeanFactory without no_nan_division. */
  double denom = fm_exact_to_double(&slots[t]);
  for (size_t i = 0; i < t; i++) mean[i] = (float)(fm_exact_to_double(&slots[i]) / denom);
  return FM_OK;
}

int fm__aggregator_measurements(const fm_aggregator *a, fm_metrics *meas) {
  /* MeanFactory reports OrderedDict(mean_value=(), mean_weight=()). */
  FM_CALL(fm_metrics_put(meas, "aggregator/mean_value", 0, FM_METRIC_GROUP));
  FM_CALL(fm_metrics_put(meas, a->weighted ? "aggregator/mean_weight" : "aggregator/mean_count", 0,
                         FM_METRIC_GROUP));
  return FM_OK;
}

/* ---- finalizer ------------------------------------------------------------- */

int fm_finalizer_create_apply_optimizer(fm_optimizer *server_opt, const fm_layout *weights_layout,
                                        fm_finalizer **out) {
  int rc = FM_OK;
  fm_finalizer *f = NULL;
  FM_CHECK_GOTO(rc, out, fail, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CHECK_GOTO(rc, server_opt, fail, FM_ERR_INVALID_ARG, "finalizer needs a server optimizer");
  FM_CHECK_GOTO(rc, weights_layout, fail, FM_ERR_INVALID_ARG, "finalizer needs the weights layout");
  f = fm__calloc(1, sizeof *f);
  if (!f) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  FM_CALL_GOTO(rc, fm_layout_clone(weights_layout, &f->layout), fail);
  f->opt = server_opt;
  *out = f;
  return FM_OK;
fail:
  if (f) fm__free(f);
  fm_optimizer_destroy(&server_opt);
  return rc;
}

void fm_finalizer_destroy(fm_finalizer **f) {
  if (!f || !*f) return;
  fm_optimizer_destroy(&(*f)->opt);
  fm_layout_destroy(&(*f)->layout);
  fm__free(*f);
  *f = NULL;
}
