/* fedmpi/hparams.h — hyperparameter dictionaries keyed by TFF's names.
 *
 * A small ordered map name -> double ("learning_rate", "momentum", ...), as
 * returned by TFF's get_hparams. Fixed capacity, no allocation: copy freely. */
#ifndef FEDMPI_HPARAMS_H
#define FEDMPI_HPARAMS_H

#include <stddef.h>

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FM_HPARAMS_MAX 16
#define FM_HPARAM_NAME_MAX 48

typedef struct fm_hparam {
  char name[FM_HPARAM_NAME_MAX];
  double value;
} fm_hparam;

typedef struct fm_hparams {
  size_t n;
  fm_hparam item[FM_HPARAMS_MAX];
} fm_hparams;

/* Empty the dictionary. */
FM_EXTERN void fm_hparams_clear(fm_hparams *h);
/* Insert or overwrite name. FM_ERR_INVALID_ARG if the name is too long or the
 * dictionary is full. */
FM_EXTERN int fm_hparams_put(fm_hparams *h, const char *name, double value);
/* Look name up: FM_OK and *value, or FM_ERR_HPARAM_UNKNOWN. */
FM_EXTERN int fm_hparams_get(const fm_hparams *h, const char *name, double *value);
/* 1 if name is present. */
FM_EXTERN int fm_hparams_has(const fm_hparams *h, const char *name);

#ifdef __cplusplus
}
#endif
#endif
