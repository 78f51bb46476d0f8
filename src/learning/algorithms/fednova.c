/* src/learning/algorithms/fednova.c — FedNova (Wang et al. 2020): each
 * client's update is divided by a_i, its number of local steps (with momentum
 * rho: (tau - rho (1 - rho^tau) / (1 - rho)) / (1 - rho)); clients also send
 * a_i, averaged like the update, and the server rescales the mean update by
 * tau_eff = sum p_i a_i. With equal local steps it is FedAvg. The client
 * optimizer must be sgdm. */
#include <math.h>

#include "internal.h"
#include "learning_impl.h"

static double fednova_norm(const fm_optimizer *opt, uint64_t steps) {
  double rho = fm_optimizer_hparam(opt, "momentum"); /* NaN when built without momentum */
  if (!(rho > 0)) return (double)steps;
  double tau = (double)steps;
  return (tau - rho * (1.0 - pow(rho, tau)) / (1.0 - rho)) / (1.0 - rho);
}

static void fednova_update(fm__client_ctx *x) {
  fm__worker *k = x->k;
  const float *w0 = x->sh->w0;
  const size_t t = x->p->trainable;
  for (size_t i = 0; i < t; i++) k->grad[i] = w0[i] - k->w[i];
  x->norm = 1.0;
  if (x->steps > 0) {
    x->norm = fednova_norm(x->s->client_opt, x->steps);
    for (size_t i = 0; i < t; i++) k->grad[i] = (float)(k->grad[i] / x->norm);
  }
}

static void fednova_extra_value(fm__client_ctx *x, size_t j, int finite, fm__agg_value *v) {
  (void)j;
  if (!finite) x->norm = 0.0;
  *v = (fm__agg_value){.d = &x->norm, .n = 1};
}

/* update = tau_eff * mean of the normalised updates */
static int fednova_server_step(const fm_process *p, fm_state *s, double *const *extras, uint64_t population,
                               float *mean, int *non_finite) {
  (void)s, (void)population, (void)non_finite;
  const double tau_eff = extras[0][0];
  for (size_t i = 0; i < p->trainable; i++) mean[i] = (float)((double)mean[i] * tau_eff);
  return 0;
}

const fm__algorithm_ops fm__algorithm_fednova = {
    .name = "fednova",
    .tff_name = "(none in TFF: Wang et al. 2020)",
    .help = "FedNova: updates normalised by each client's local steps, rescaled by tau_eff; client optimizer sgdm",
    .flags = FM__ALGO_SGD_ONLY,
    .num_extras = 1,
    .extra_kind = {FM__EXTRA_MEAN},
    .extra_is_scalar = {1},
    .update = fednova_update,
    .extra_value = fednova_extra_value,
    .server_step = fednova_server_step,
};
