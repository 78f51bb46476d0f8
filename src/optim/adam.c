/* src/optim/adam.c — Adam exactly as tff.learning.optimizers.build_adam:
 *   t += 1
 *   m += (g - m) * (1 - beta_1)            accumulator, starts at 0
 *   s += (g^2 - s) * (1 - beta_2)          preconditioner, starts at 0
 *   lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
 *   w -= lr_t * m / (sqrt(s) + epsilon)    (epsilon outside the sqrt)
 * Everything is float32 in TFF's order of operations, including lr_t (see
 * fm__bias_terms). The bias correction is folded into the learning rate, so
 * epsilon is not bias-corrected (unlike the paper's m_hat/v_hat form).
 * hparams: learning_rate, beta_1, beta_2, epsilon. TFF requires
 * learning_rate; fedmpi defaults it to 0.001 (Keras). It does not clip,
 * decay weights (adamw.c) or keep an AMSGrad maximum. */
#include <string.h>

#include "internal.h"
#include "optim_impl.h"

static const fm__hp_spec adam_spec[] = {
    {"learning_rate", 0.001, 0},
    {"beta_1", 0.9, 0},
    {"beta_2", 0.999, 0},
    {"epsilon", 1e-7, 0},
};
#define ADAM_NSPEC (sizeof adam_spec / sizeof adam_spec[0])

static size_t adam_num_slots(const fm_optimizer *o) {
  (void)o;
  return 2; /* accumulator m, preconditioner s */
}

void fm__adam_apply(float lr_t, float b1, float b2, float eps, float *m, float *v, float *w, const float *g,
                    size_t n) {
  const float omb1 = 1.0f - b1, omb2 = 1.0f - b2;
  for (size_t i = 0; i < n; i++) {
    m[i] = m[i] + (g[i] - m[i]) * omb1;
    v[i] = v[i] + (g[i] * g[i] - v[i]) * omb2;
    w[i] = w[i] - lr_t * m[i] / (sqrtf(v[i]) + eps);
  }
}

static int adam_step(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n) {
  const float lr = (float)fm__hp(o, "learning_rate"), b1 = (float)fm__hp(o, "beta_1"),
              b2 = (float)fm__hp(o, "beta_2"), eps = (float)fm__hp(o, "epsilon");
  s->step++;
  float num, den;
  fm__bias_terms(b1, b2, s->step, &num, &den);
  const float lr_t = lr * num / den;
  fm__adam_apply(lr_t, b1, b2, eps, s->slots, s->slots + n, w, g, n);
  return FM_OK;
}

static int adam_validate(const fm_optimizer *o, const char *key, double value) {
  (void)o;
  if (strcmp(key, "learning_rate") == 0 || strcmp(key, "epsilon") == 0) return fm__check_nonneg("adam", key, value);
  if (strcmp(key, "beta_1") == 0 || strcmp(key, "beta_2") == 0) return fm__check_unit("adam", key, value);
  return fm__optim_unknown_key("adam", adam_spec, ADAM_NSPEC, key);
}

const fm_optimizer_ops fm__adam_ops = {
    .type = "adam",
    .num_slots = adam_num_slots,
    .init_state = NULL, /* both moments start at 0 */
    .step = adam_step,
    .validate = adam_validate,
};

int fm__adam_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts) {
  return fm__optim_fill("adam", adam_spec, ADAM_NSPEC, user, hp, opts);
}

int fm_optimizer_create_adam(double learning_rate, double beta_1, double beta_2, double epsilon, fm_optimizer **out) {
  fm_hparams hp = {0};
  FM_CALL(fm_hparams_put(&hp, "learning_rate", learning_rate));
  FM_CALL(fm_hparams_put(&hp, "beta_1", beta_1));
  FM_CALL(fm_hparams_put(&hp, "beta_2", beta_2));
  FM_CALL(fm_hparams_put(&hp, "epsilon", epsilon));
  return fm_optimizer_create("adam", &hp, out);
}
