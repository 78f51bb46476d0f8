/* src/learning/algorithms/fedsgd.c — FedSGD (build_fed_sgd): no local steps;
 * the update is the example-weighted mean gradient at the broadcast weights
 * over every batch, and no client optimizer exists. */
#include <string.h>

#include "internal.h"
#include "learning_impl.h"

static int fedsgd_client_begin(fm__client_ctx *x) {
  memset(x->k->gacc, 0, x->p->trainable * sizeof(float));
  return 0;
}

/* No step: accumulate n_b * g_b at w0. */
static int fedsgd_gradient(fm__client_ctx *x) {
  fm__worker *k = x->k;
  const float nb = (float)x->nb;
  for (size_t i = 0; i < x->p->trainable; i++) k->gacc[i] += nb * k->grad[i];
  return 1;
}

static void fedsgd_update(fm__client_ctx *x) {
  fm__worker *k = x->k;
  const uint64_t n = x->examples;
  for (size_t i = 0; i < x->p->trainable; i++) k->grad[i] = n ? k->gacc[i] / (float)n : 0.0f;
}

const fm__algorithm_ops fm__algorithm_fedsgd = {
    .name = "fedsgd",
    .tff_name = "build_fed_sgd",
    .help = "FedSGD: no local steps; each client sends its example-weighted mean gradient",
    .flags = FM__ALGO_NO_CLIENT_OPT,
    .client_begin = fedsgd_client_begin,
    .gradient = fedsgd_gradient,
    .update = fedsgd_update,
};
