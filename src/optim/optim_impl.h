/* src/optim/optim_impl.h — what optimizer implementations share (private). */
#ifndef FEDMPI_OPTIM_IMPL_H
#define FEDMPI_OPTIM_IMPL_H

#include "fedmpi/optim.h"

const fm_hparams *fm__optimizer_hp(const fm_optimizer *o);

/* Read a hyperparameter the optimizer is known to have (0 if absent). */
static inline double fm__hp(const fm_optimizer *o, const char *key) {
  double v = 0.0;
  fm_hparams_get(fm__optimizer_hp(o), key, &v);
  return v;
}

extern const fm_optimizer_ops fm__sgdm_ops;
int fm__sgdm_defaults(const fm_hparams *user, fm_hparams *hp);

#endif
