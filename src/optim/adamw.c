/* src/optim/adamw.c — AdamW exactly as tff.learning.optimizers.build_adamw
 * (TFF v0.87+, decoupled weight decay, Loshchilov & Hutter):
 *   m, s, t as Adam (adam.c)
 *   norm = sqrt(1 - beta_2^t) / (1 - beta_1^t)
 *   w -= lr * (norm * m / (sqrt(s) + epsilon) + weight_decay * w)
 * The decay is multiplied by lr (TFF/Keras), not by lr_t. float32 in TFF's
 * order. With weight_decay = 0 the step is Adam's own loop, so adamw(wd=0)
 * equals adam bit for bit; TFF's adamw(wd=0) rounds lr*(norm*m/..) where
 * Adam rounds (lr*norm)*m/.., a difference of about one float32 ulp.
 * hparams: learning_rate, beta_1, beta_2, epsilon, weight_decay (0.004, the
 * Keras default). learning_rate defaults to 0.001 (TFF requires it). */
#include <string.h>

#include "internal.h"
#include "optim_impl.h"

static const fm__hp_spec adamw_spec[] = {
    {"learning_rate", 0.001, 0}, {"beta_1", 0.9, 0}, {"beta_2", 0.999, 0}, {"epsilon", 1e-7, 0},
    {"weight_decay", 0.004, 0},
};
#define ADAMW_NSPEC (sizeof adamw_spec / sizeof adamw_spec[0])

static size_t adamw_num_slots(const fm_optimizer *o) {
  (void)o;
  return 2; /* accumulator m, preconditioner s */
}

static int adamw_step(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n) {
  const float lr = (float)fm__hp(o, "learning_rate"), b1 = (float)fm__hp(o, "beta_1"),
              b2 = (float)fm__hp(o, "beta_2"), eps = (float)fm__hp(o, "epsilon"),
              wd = (float)fm__hp(o, "weight_decay");
  s->step++;
  float num, den;
  fm__bias_terms(b1, b2, s->step, &num, &den);
  float *m = s->slots, *v = s->slots + n;
  if (wd == 0.0f) {
    fm__adam_apply(lr * num / den, b1, b2, eps, m, v, w, g, n);
    return FM_OK;
  }
  const float norm = num / den, omb1 = 1.0f - b1, omb2 = 1.0f - b2;
  for (size_t i = 0; i < n; i++) {
    m[i] = m[i] + (g[i] - m[i]) * omb1;
    v[i] = v[i] + (g[i] * g[i] - v[i]) * omb2;
    w[i] = w[i] - lr * (norm * m[i] / (sqrtf(v[i]) + eps) + wd * w[i]);
  }
  return FM_OK;
}

static int adamw_validate(const fm_optimizer *o, const char *key, double value) {
  (void)o;
  if (strcmp(key, "learning_rate") == 0 || strcmp(key, "epsilon") == 0 || strcmp(key, "weight_decay") == 0)
    return fm__check_nonneg("adamw", key, value);
  if (strcmp(key, "beta_1") == 0 || strcmp(key, "beta_2") == 0) return fm__check_unit("adamw", key, value);
  return fm__optim_unknown_key("adamw", adamw_spec, ADAMW_NSPEC, key);
}

const fm_optimizer_ops fm__adamw_ops = {
    .type = "adamw",
    .num_slots = adamw_num_slots,
    .init_state = NULL, /* both moments start at 0 */
    .step = adamw_step,
    .validate = adamw_validate,
};

int fm__adamw_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts) {
  return fm__optim_fill("adamw", adamw_spec, ADAMW_NSPEC, user, hp, opts);
}

int fm_optimizer_create_adamw(double learning_rate, double beta_1, double beta_2, double epsilon, double weight_decay,
                              fm_optimizer **out) {
  fm_hparams hp = {0};
  FM_CALL(fm_hparams_put(&hp, "learning_rate", learning_rate));
  FM_CALL(fm_hparams_put(&hp, "beta_1", beta_1));
  FM_CALL(fm_hparams_put(&hp, "beta_2", beta_2));
  FM_CALL(fm_hparams_put(&hp, "epsilon", epsilon));
  FM_CALL(fm_hparams_put(&hp, "weight_decay", weight_decay));
  return fm_optimizer_create("adamw", &hp, out);
}
