/* src/learning/algorithms/fedprox.c — FedProx (build_weighted_fed_prox, Li et
 * al. 2020): every step's gradient gets + mu (w - w0), the gradient of the
 * proximal term (mu/2)||w - w0||^2 (the paper's sign; TFF v0.82's code has
 * the opposite one). mu is the hyperparameter proximal_strength. */
#include "internal.h"
#include "learning_impl.h"

static int fedprox_gradient(fm__client_ctx *x) {
  const float mu = (float)x->p->cw->hparam, *w0 = x->sh->w0;
  fm__worker *k = x->k;
  for (size_t i = 0; i < x->p->trainable; i++) k->grad[i] += mu * (k->w[i] - w0[i]);
  return 0;
}

const fm__algorithm_ops fm__algorithm_fedprox = {
    .name = "fedprox",
    .tff_name = "build_weighted_fed_prox",
    .help = "FedProx: FedAvg with the proximal term (mu/2)||w - w0||^2 (--proximal-strength mu)",
    .hparam = "proximal_strength",
    .gradient = fedprox_gradient,
};
