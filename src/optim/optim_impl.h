/* src/optim/optim_impl.h — what optimizer implementations share (private):
 * hparam/option accessors, table-driven defaults, TFF's range checks and
 * Adam's bias-correction terms in TFF's float32 order. */
#ifndef FEDMPI_OPTIM_IMPL_H
#define FEDMPI_OPTIM_IMPL_H

#include <math.h>
#include <stdint.h>

#include "fedmpi/optim.h"

const fm_hparams *fm__optimizer_hp(const fm_optimizer *o);
/* Construction options that are not hparams (initial_preconditioner_value). */
const fm_hparams *fm__optimizer_options(const fm_optimizer *o);

/* Read a hyperparameter the optimizer is known to have (0 if absent). */
static inline double fm__hp(const fm_optimizer *o, const char *key) {
  double v = 0.0;
  fm_hparams_get(fm__optimizer_hp(o), key, &v);
  return v;
}

/* Read a construction option, or def if it was not given. */
static inline double fm__opt_option(const fm_optimizer *o, const char *key, double def) {
  double v = def;
  if (fm_hparams_has(fm__optimizer_options(o), key)) fm_hparams_get(fm__optimizer_options(o), key, &v);
  return v;
}

/* One key a type accepts at creation: its TFF default and whether it is a
 * construction option (kept out of get_hparams) rather than a hyperparameter. */
typedef struct fm__hp_spec {
  const char *key;
  double def;
  int option;
} fm__hp_spec;

/* Fill hp (hyperparameters, in the spec's order, which is TFF's) and opts
 * (construction options) from the user's keys and the defaults. A user key
 * not in the spec -> FM_ERR_HPARAM_UNKNOWN naming it and listing the keys. */
int fm__optim_fill(const char *type, const fm__hp_spec *spec, size_t nspec, const fm_hparams *user, fm_hparams *hp,
                   fm_hparams *opts);
/* The unknown-key error for validate(): lists the spec's keys. */
int fm__optim_unknown_key(const char *type, const fm__hp_spec *spec, size_t nspec, const char *key);

/* TFF's checks (the optimizers' __init__ in TFF), FM_ERR_HPARAM_VALUE naming the
 * optimizer, the key and the value. */
int fm__check_nonneg(const char *type, const char *key, double value);
int fm__check_unit(const char *type, const char *key, double value); /* [0, 1] */

/* Adam/Yogi bias correction exactly as TFF evaluates it on float32 tensors:
 * num = sqrt(1 - b2^t), den = 1 - b1^t, with t cast to float32. The pow and
 * the subtraction are float32 on purpose: 1 - b2^t cancels, so doing them in
 * double would move lr_t by up to ~1e-5 relative from TFF's value. */
static inline void fm__bias_terms(float b1, float b2, int64_t t, float *num, float *den) {
  const float tf = (float)t;
  *num = sqrtf(1.0f - powf(b2, tf));
  *den = 1.0f - powf(b1, tf);
}

/* Adam's element loop with the bias-corrected rate lr_t; shared by adamw
 * when weight_decay is 0 so that adamw(wd=0) is adam bit for bit. */
void fm__adam_apply(float lr_t, float b1, float b2, float eps, float *m, float *v, float *w, const float *g,
                    size_t n);

/* Registry entry points: (user hparams) -> (hparams, options). */
typedef int (*fm__optim_defaults_fn)(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts);

extern const fm_optimizer_ops fm__sgdm_ops;
int fm__sgdm_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts);
extern const fm_optimizer_ops fm__adam_ops;
int fm__adam_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts);
extern const fm_optimizer_ops fm__adamw_ops;
int fm__adamw_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts);
extern const fm_optimizer_ops fm__adagrad_ops;
int fm__adagrad_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts);
extern const fm_optimizer_ops fm__yogi_ops;
int fm__yogi_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts);
extern const fm_optimizer_ops fm__rmsprop_ops;
int fm__rmsprop_defaults(const fm_hparams *user, fm_hparams *hp, fm_hparams *opts);

#endif
