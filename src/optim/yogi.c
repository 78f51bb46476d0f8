/* src/optim/yogi.c — Yogi exactly as tff.learning.optimizers.build_yogi
 * (Zaheer et al. 2018; FedYogi of Reddi et al. 2021):
 *   t += 1
 *   m += (g - m) * (1 - beta_1)                   accumulator, starts at 0
 *   s += (1 - beta_2) * sign(g^2 - s) * g^2       preconditioner, starts at
 *                                                 initial_preconditioner_value (1e-6)
 *   lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)   (Adam's, folded in)
 *   w -= lr_t * m / (sqrt(s) + epsilon)
 * sign(g^2 - s) as TFF's code has it (its docstring says g - s); sign(0) = 0
 * and a NaN stays NaN. float32 in TFF's order. hparams: learning_rate,
 * beta_1 (0.9), beta_2 (0.999), epsilon (1e-3). TFF requires learning_rate;
 * fedmpi defaults it to 0.01 (TF Addons' Yogi). initial_preconditioner_value
 * is a construction option (>= 0), not an hparam. */
#include <string.h>

#include "internal.h"
#include "optim_impl.h"

static const fm__hp_spec yogi_spec[] = {
    {"learning_rate", 0.01, 0}, {"beta_1", 0.9, 0}, {"beta_2", 0.999, 0}, {"epsilon", 1e-3, 0},
    {"initial_preconditioner_value", 1e-6, 1},
};
#define YOGI_NSPEC (sizeof yogi_spec / sizeof yogi_spec[0])

static size_t yogi_num_slots(const fm_optimizer *o) {
  (void)o;
  return 2; /* accumulator m, preconditioner s */
}

static int yogi_init_state(const fm_optimizer *o, fm_optimizer_state *s) {
  const float init = (float)fm__opt_option(o, "initial_preconditioner_value", 1e-6);
  float *p = s->slots + s->n;
  for (size_t i = 0; i < s->n; i++) p[i] = init;
  return FM_OK;
}

/* tf.sign: -1, 0 or 1, NaN for NaN. */
static inline float yogi_sign(float x) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x; }

static int yogi_step(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n) {
  const float lr = (float)fm__hp(o, "learning_rate"), b1 = (float)fm__hp(o, "beta_1"),
              b2 = (float)fm__hp(o, "beta_2"), eps = (float)fm__hp(o, "epsilon");
  s->step++;
  float num, den;
  fm__bias_terms(b1, b2, s->step, &num, &den);
  const float lr_t = lr * num / den, omb1 = 1.0f - b1, omb2 = 1.0f - b2;
  float *m = s->slots, *p = s->slots + n;
  for (size_t i = 0; i < n; i++) {
    m[i] = m[i] + (g[i] - m[i]) * omb1;
    const float g2 = g[i] * g[i];
    p[i] = p[i] + omb2 * yogi_sign(g2 - p[i]) * g2;
    w[i] = w[i] - lr_t * m[i] / (sqrtf(p[i]) + eps);
  }
  return FM_OK;
}

static int yogi_validate(const fm_optimizer *o, const char *key, double value) {
  (void)o;
  if (strcmp(key, "learning_rate") == 0 || strcmp(key, "epsilon") == 0 ||
      strcmp(key, "initial_preconditioner_value") == 0)
    return fm__check_nonneg("yogi", key, value);
  if (strcmp(key, "beta_1") == 0 || strcmp(key, "beta_2") == 0) return fm__check_unit("yogi", key, value);
  return fm__optim_unknown_key("yogi", yogi_spec, YOGI_NSPEC, key);
}

const fm_optimizer_ops fm__yogi_ops = {
    .type = "yogi",
    .num_slots = yogi_num_slots,
    .init_state = yogi_init_state,
    .step = yogi_step,
    .validate = yogi_validate,
};

int fm__yogi_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts) {
  return fm__optim_fill("yogi", yogi_spec, YOGI_NSPEC, user, hp, opts);
}

int fm_optimizer_create_yogi(double learning_rate, double beta_1, double beta_2, double epsilon,
                             double initial_preconditioner_value, fm_optimizer **out) {
  fm_hparams hp = {0};
  FM_CALL(fm_hparams_put(&hp, "learning_rate", learning_rate));
  FM_CALL(fm_hparams_put(&hp, "beta_1", beta_1));
  FM_CALL(fm_hparams_put(&hp, "beta_2", beta_2));
  FM_CALL(fm_hparams_put(&hp, "epsilon", epsilon));
  FM_CALL(fm_hparams_put(&hp, "initial_preconditioner_value", initial_preconditioner_value));
  return fm_optimizer_create("yogi", &hp, out);
}
