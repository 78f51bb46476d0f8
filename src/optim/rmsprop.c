/* src/optim/rmsprop.c — RMSprop exactly as tff.learning.optimizers.build_rmsprop:
 *   s += (g^2 - s) * (1 - decay)            preconditioner, starts at 0
 *   w -= lr * g / (sqrt(s) + epsilon)       (epsilon outside the sqrt)
 * No momentum, not centered, no bias correction. float32 in TFF's order.
 * hparams: learning_rate, decay (0.9), epsilon (1e-7). TFF requires
 * learning_rate (despite its docstring's 0.01); fedmpi defaults it to 0.001
 * (Keras). The step counter is kept (TFF's rmsprop has none) but not used. */
#include <string.h>

#include "internal.h"
#include "optim_impl.h"

static const fm__hp_spec rmsprop_spec[] = {
    {"learning_rate", 0.001, 0},
    {"decay", 0.9, 0},
    {"epsilon", 1e-7, 0},
};
#define RMSPROP_NSPEC (sizeof rmsprop_spec / sizeof rmsprop_spec[0])

static size_t rmsprop_num_slots(const fm_optimizer *o) {
  (void)o;
  return 1; /* preconditioner s */
}

static int rmsprop_step(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n) {
  const float lr = (float)fm__hp(o, "learning_rate"), d = (float)fm__hp(o, "decay"),
              eps = (float)fm__hp(o, "epsilon");
  const float omd = 1.0f - d;
  float *p = s->slots;
  for (size_t i = 0; i < n; i++) {
    p[i] = p[i] + (g[i] * g[i] - p[i]) * omd;
    w[i] = w[i] - lr * g[i] / (sqrtf(p[i]) + eps);
  }
  s->step++;
  return FM_OK;
}

static int rmsprop_validate(const fm_optimizer *o, const char *key, double value) {
  (void)o;
  if (strcmp(key, "learning_rate") == 0 || strcmp(key, "epsilon") == 0) return fm__check_nonneg("rmsprop", key, value);
  if (strcmp(key, "decay") == 0) return fm__check_unit("rmsprop", key, value);
  return fm__optim_unknown_key("rmsprop", rmsprop_spec, RMSPROP_NSPEC, key);
}

const fm_optimizer_ops fm__rmsprop_ops = {
    .type = "rmsprop",
    .num_slots = rmsprop_num_slots,
    .init_state = NULL, /* the preconditioner starts at 0 */
    .step = rmsprop_step,
    .validate = rmsprop_validate,
};

int fm__rmsprop_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts) {
  return fm__optim_fill("rmsprop", rmsprop_spec, RMSPROP_NSPEC, user, hp, opts);
}

int fm_optimizer_create_rmsprop(double learning_rate, double decay, double epsilon, fm_optimizer **out) {
  fm_hparams hp = {0};
  FM_CALL(fm_hparams_put(&hp, "learning_rate", learning_rate));
  FM_CALL(fm_hparams_put(&hp, "decay", decay));
  FM_CALL(fm_hparams_put(&hp, "epsilon", epsilon));
  return fm_optimizer_create("rmsprop", &hp, out);
}
