/* src/optim/sgdm.c — SGD with momentum exactly as tff.learning.optimizers.build_sgdm:
 *   momentum absent or 0:  w -= lr * g
 *   momentum > 0:          v = momentum * v + g;  w -= lr * v      (v starts at 0)
 * No dampening, no Nesterov. The "momentum" key exists only when the
 * optimizer was built with momentum > 0 (TFF's hparams behave the same).
 * Registered as "sgdm" and "sgd". */
#include <string.h>

#include "internal.h"
#include "optim_impl.h"

static size_t sgdm_num_slots(const fm_optimizer *o) {
  return fm_hparams_has(fm__optimizer_hp(o), "momentum") ? 1 : 0;
}

static int sgdm_step(const fm_optimizer *o, fm_optimizer_state *s, float *w, const float *g, size_t n) {
  const float lr = (float)fm__hp(o, "learning_rate");
  if (s->num_slots == 0) {
    for (size_t i = 0; i < n; i++) w[i] -= lr * g[i];
  } else {
    const float m = (float)fm__hp(o, "momentum");
    float *v = s->slots;
    for (size_t i = 0; i < n; i++) {
      v[i] = m * v[i] + g[i];
      w[i] -= lr * v[i];
    }
  }
  s->step++;
  return FM_OK;
}

static int sgdm_validate(const fm_optimizer *o, const char *key, double value) {
  (void)o;
  if (strcmp(key, "learning_rate") == 0)
    FM_CHECK(value >= 0.0, FM_ERR_HPARAM_VALUE, "sgdm: learning_rate must be >= 0, got %g", value);
  else if (strcmp(key, "momentum") == 0)
    FM_CHECK(value >= 0.0 && value <= 1.0, FM_ERR_HPARAM_VALUE, "sgdm: momentum must be in [0, 1], got %g", value);
  else
    return FM_ERR(FM_ERR_HPARAM_UNKNOWN, "sgdm has no hyperparameter '%s' (it has learning_rate, momentum)", key);
  return FM_OK;
}

const fm_optimizer_ops fm__sgdm_ops = {
    .type = "sgdm",
    .num_slots = sgdm_num_slots,
    .init_state = NULL,
    .step = sgdm_step,
    .validate = sgdm_validate,
};

int fm__sgdm_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts) {
  fm_hparams_clear(opts); /* sgdm has no construction options */
  double lr = 0.01, m = 0.0;
  for (size_t i = 0; i < user->n; i++) {
    const char *k = user->item[i].name;
    if (strcmp(k, "learning_rate") == 0)
      lr = user->item[i].value;
    else if (strcmp(k, "momentum") == 0)
      m = user->item[i].value;
    else
      return FM_ERR(FM_ERR_HPARAM_UNKNOWN, "sgdm has no hyperparameter '%s' (it has learning_rate, momentum)", k);
  }
  fm_hparams_clear(hp);
  FM_CALL(fm_hparams_put(hp, "learning_rate", lr));
  /* A negative momentum must reach validation rather than silently vanish. */
  if (m != 0.0) FM_CALL(fm_hparams_put(hp, "momentum", m));
  return FM_OK;
}

int fm_optimizer_create_sgdm(double learning_rate, double momentum, fm_optimizer **out) {
  fm_hparams hp = {0};
  FM_CALL(fm_hparams_put(&hp, "learning_rate", learning_rate));
  FM_CALL(fm_hparams_put(&hp, "momentum", momentum));
  return fm_optimizer_create("sgdm", &hp, out);
}
