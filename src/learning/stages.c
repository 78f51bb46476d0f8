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

const char *fm__algo_name(fm__algo algo) {
  switch (algo) {
    case FM__ALGO_FEDAVG: return "fedavg";
    case FM__ALGO_FEDPROX: return "fedprox";
    case FM__ALGO_FEDSGD: return "fedsgd";
    case FM__ALGO_MIME: return "mime_lite";
    case FM__ALGO_SCAFFOLD: return "scaffold";
    case FM__ALGO_FEDNOVA: return "fednova";
  }
  return "?";
}

size_t fm__algo_extra_slots(fm__algo algo, size_t t) {
  switch (algo) {
    case FM__ALGO_MIME:
    case FM__ALGO_SCAFFOLD: return t;
    case FM__ALGO_FEDNOVA: return 1;
    default: return 0;
  }
}

int fm__client_work_new_kind(const fm_model *model, fm_optimizer *opt, fm_weighting weighting, fm__algo algo,
                               double mu, fm_client_work **out) {
  int rc = FM_OK;
  fm_client_work *cw = NULL;
  const char *name = fm__algo_name(algo);
  FM_CHECK_GOTO(rc, out, fail, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CHECK_GOTO(rc, model, fail, FM_ERR_INVALID_ARG, "%s client work needs a model", name);
  FM_CHECK_GOTO(rc, opt || algo == FM__ALGO_FEDSGD, fail, FM_ERR_INVALID_ARG, "%s client work needs a client optimizer",
                name);
  FM_CHECK_GOTO(rc, weighting == FM_WEIGHTING_UNIFORM || weighting == FM_WEIGHTING_NUM_EXAMPLES, fail,
                FM_ERR_INVALID_ARG, "unknown client weighting %d (use NUM_EXAMPLES or UNIFORM)", (int)weighting);
  FM_CHECK_GOTO(rc, isfinite(mu) && mu >= 0.0, fail, FM_ERR_HPARAM_VALUE,
                "fedprox: proximal_strength must be a finite number >= 0, got %g", mu);
  if (algo == FM__ALGO_SCAFFOLD || algo == FM__ALGO_FEDNOVA)
    FM_CHECK_GOTO(rc, strcmp(fm_optimizer_type(opt), "sgdm") == 0, fail, FM_ERR_INVALID_ARG,
                  "%s needs an SGD client optimizer (sgdm), not '%s': its update rule assumes SGD steps", name,
                  fm_optimizer_type(opt));
  cw = fm__calloc(1, sizeof *cw);
  if (!cw) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  cw->model = model;
  cw->opt = opt;
  cw->weighting = weighting;
  cw->algo = algo;
  cw->mu = mu;
  *out = cw;
  return FM_OK;
fail:
  fm_optimizer_destroy(&opt);
  return rc;
}

int fm_client_work_create_model_delta(const fm_model *model, fm_optimizer *client_opt, fm_weighting weighting,
                                      fm_client_work **out) {
  return fm__client_work_new_kind(model, client_opt, weighting, FM__ALGO_FEDAVG, 0.0, out);
}

int fm_client_work_create_fed_prox(const fm_model *model, fm_optimizer *client_opt, fm_weighting weighting,
                                   double proximal_strength, fm_client_work **out) {
  return fm__client_work_new_kind(model, client_opt, weighting, FM__ALGO_FEDPROX, proximal_strength, out);
}

int fm_client_work_create_fed_sgd(const fm_model *model, fm_weighting weighting, fm_client_work **out) {
  return fm__client_work_new_kind(model, NULL, weighting, FM__ALGO_FEDSGD, 0.0, out);
}

int fm_client_work_create_mime_lite(const fm_model *model, fm_optimizer *base_opt, fm_weighting weighting,
                                    fm_client_work **out) {
  return fm__client_work_new_kind(model, base_opt, weighting, FM__ALGO_MIME, 0.0, out);
}

int fm_client_work_create_scaffold(const fm_model *model, fm_optimizer *client_opt, fm_weighting weighting,
                                   fm_client_work **out) {
  return fm__client_work_new_kind(model, client_opt, weighting, FM__ALGO_SCAFFOLD, 0.0, out);
}

int fm_client_work_create_fed_nova(const fm_model *model, fm_optimizer *client_opt, fm_weighting weighting,
                                   fm_client_work **out) {
  return fm__client_work_new_kind(model, client_opt, weighting, FM__ALGO_FEDNOVA, 0.0, out);
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

const char *fm_client_work_algorithm(const fm_client_work *cw) { return fm__algo_name(cw->algo); }
