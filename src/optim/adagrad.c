/* src/optim/adagrad.c — Adagrad exactly as tff.learning.optimizers.build_adagrad:
 *   s += g^2                                preconditioner, starts at
 *                                           initial_preconditioner_value (0.1)
 *   w -= lr * g / sqrt(s + epsilon)         (epsilon INSIDE the sqrt)
 * float32 in TFF's order. hparams: learning_rate, epsilon (1e-7). TFF
 * requires learning_rate; fedmpi defaults it to 0.001 (Keras).
 * initial_preconditioner_value is a construction option (>= 0), not an
 * hparam: it only sets the state, so set_hparams refuses it as TFF does. The
 * step counter is kept (TFF's adagrad has none) but not used. */
#include <string.h>

#include "internal.h"
#include "optim_impl.h"

static const fm__hp_spec adagrad_spec[] = {
    {"learning_rate", 0.001, 0},
    {"initial_preconditioner_value", 0.1, 1},
    {"epsilon", 1e-7, 0},
};
#define ADAGRAD_NSPEC (sizeof adagrad_spec / sizeof adagrad_spec[0])

static size_t adagrad_num_slots(const fm_optimizer *o) {
  (void)o;
  return 1; /* preconditioner s */
}

static int adagrad_init_state(const fm_optimizer *o, fm_optimizer_state *s) {
  const float init = (float)fm__opt_option(o, "initial_preconditioner_value", 0.1);
  for (size_t i = 0; i < s->n; i++) s->slots[i] = init;
  return FM_OK;
}

static int adagrad_step(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n) {
  const float lr = (float)fm__hp(o, "learning_rate"), eps = (float)fm__hp(o, "epsilon");
  float *p = s->slots;
  for (size_t i = 0; i < n; i++) {
    p[i] = p[i] + g[i] * g[i];
    w[i] = w[i] - lr * g[i] / sqrtf(p[i] + eps);
  }
  s->step++;
  return FM_OK;
}

static int adagrad_validate(const fm_optimizer *o, const char *key, double value) {
  (void)o;
  for (size_t j = 0; j < ADAGRAD_NSPEC; j++)
    if (strcmp(key, adagrad_spec[j].key) == 0) return fm__check_nonneg("adagrad", key, value);
  return fm__optim_unknown_key("adagrad", adagrad_spec, ADAGRAD_NSPEC, key);
}

const fm_optimizer_ops fm__adagrad_ops = {
    .type = "adagrad",
    .num_slots = adagrad_num_slots,
    .init_state = adagrad_init_state,
    .step = adagrad_step,
    .validate = adagrad_validate,
};

int fm__adagrad_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts) {
  return fm__optim_fill("adagrad", adagrad_spec, ADAGRAD_NSPEC, user, hp, opts);
}

int fm_optimizer_create_adagrad(double learning_rate, double initial_preconditioner_value, double epsilon,
                                fm_optimizer **out) {
  fm_hparams hp = {0};
  FM_CALL(fm_hparams_put(&hp, "learning_rate", learning_rate));
  FM_CALL(fm_hparams_put(&hp, "initial_preconditioner_value", initial_preconditioner_value));
  FM_CALL(fm_hparams_put(&hp, "epsilon", epsilon));
  return fm_optimizer_create("adagrad", &hp, out);
}
