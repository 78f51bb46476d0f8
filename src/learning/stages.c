/* src/learning/stages.c — building the stages of a learning process: the
 * client work of any registered algorithm and the apply-optimizer finalizer
 * with its server step. Aggregators are in aggregators.c, the client work's
 * behaviour in client_work.c, the algorithms in algorithms/. No MPI here. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

/* ---- client work ------------------------------------------------------------ */

int fm__client_work_new(const fm_model *model, fm_optimizer *opt, fm_weighting weighting,
                        const fm__algorithm_ops *algo, double hparam, fm_client_work **out) {
  int rc = FM_OK;
  fm_client_work *cw = NULL;
  const char *name = algo->name;
  FM_CHECK_GOTO(rc, out, fail, FM_ERR_INVALID_ARG, "out is NULL");
  *out = NULL;
  FM_CHECK_GOTO(rc, model, fail, FM_ERR_INVALID_ARG, "%s client work needs a model", name);
  FM_CHECK_GOTO(rc, opt || (algo->flags & FM__ALGO_NO_CLIENT_OPT), fail, FM_ERR_INVALID_ARG,
                "%s client work needs a client optimizer", name);
  FM_CHECK_GOTO(rc, weighting == FM_WEIGHTING_UNIFORM || weighting == FM_WEIGHTING_NUM_EXAMPLES, fail,
                FM_ERR_INVALID_ARG, "unknown client weighting %d (use NUM_EXAMPLES or UNIFORM)", (int)weighting);
  FM_CHECK_GOTO(rc, isfinite(hparam) && hparam >= 0.0, fail, FM_ERR_HPARAM_VALUE,
                "%s: %s must be a finite number >= 0, got %g", name, algo->hparam ? algo->hparam : "hparam", hparam);
  if (algo->flags & FM__ALGO_SGD_ONLY)
    FM_CHECK_GOTO(rc, strcmp(fm_optimizer_type(opt), "sgdm") == 0, fail, FM_ERR_INVALID_ARG,
                  "%s needs an SGD client optimizer (sgdm), not '%s': its update rule assumes SGD steps", name,
                  fm_optimizer_type(opt));
  cw = fm__calloc(1, sizeof *cw);
  if (!cw) {
    rc = FM_ERR_NOMEM;
    goto fail;
  }
  *cw = (fm_client_work){.model = model, .opt = opt, .weighting = weighting, .algo = algo, .hparam = hparam};
  *out = cw;
  return FM_OK;
fail:
  fm_optimizer_destroy(&opt);
  return rc;
}

int fm_client_work_create(const fm_model *model, const char *algorithm, const fm_hparams *hparams,
                          fm_optimizer *client_opt, fm_weighting weighting, fm_client_work **out) {
  const fm__algorithm_ops *algo = fm__algorithm_find(algorithm);
  double hparam = 0.0;
  int rc = FM_OK;
  if (!algo) rc = FM_ERR(FM_ERR_INVALID_ARG, "unknown algorithm '%s'", algorithm ? algorithm : "(null)");
  for (size_t i = 0; rc == FM_OK && hparams && i < hparams->n; i++) {
    if (algo->hparam && strcmp(hparams->item[i].name, algo->hparam) == 0) hparam = hparams->item[i].value;
    else rc = FM_ERR(FM_ERR_HPARAM_UNKNOWN, "algorithm '%s' has no hyperparameter '%s'", algo->name,
                     hparams->item[i].name);
  }
  if (rc != FM_OK) {
    fm_optimizer_destroy(&client_opt);
    return rc;
  }
  return fm__client_work_new(model, client_opt, weighting, algo, hparam, out);
}

int fm_client_work_create_model_delta(const fm_model *model, fm_optimizer *client_opt, fm_weighting weighting,
                                      fm_client_work **out) {
  return fm_client_work_create(model, "fedavg", NULL, client_opt, weighting, out);
}

void fm_client_work_destroy(fm_client_work **cw) {
  if (!cw || !*cw) return;
  fm_optimizer_destroy(&(*cw)->opt);
  fm__free(*cw);
  *cw = NULL;
}


/* ---- finalizer (build_apply_optimizer_finalizer) ------------------------------ */

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

/* should_reject_update = reject_non_finite_update: a non-finite mean keeps
 * the old weights and the old optimizer state. */
int fm__finalizer_apply(const fm_finalizer *f, fm_state *s, const float *mean, size_t t, int *non_finite) {
  (void)f;
  for (size_t i = 0; i < t && !*non_finite; i++)
    if (!isfinite(mean[i])) *non_finite = 1;
  if (*non_finite) return FM_OK;
  return fm_optimizer_step(s->server_opt, &s->server_state, s->weights, mean, t);
}
