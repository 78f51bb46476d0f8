/* src/core/hparams.c — fixed-capacity ordered name -> double dictionaries. */
#include <string.h>

#include "fedmpi/hparams.h"
#include "internal.h"

void fm_hparams_clear(fm_hparams *h) { h->n = 0; }

static long fm__hparams_find(const fm_hparams *h, const char *name) {
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->item[i].name, name) == 0) return (long)i;
  return -1;
}

int fm_hparams_put(fm_hparams *h, const char *name, double value) {
  FM_CHECK(name && *name, FM_ERR_INVALID_ARG, "hyperparameter name is empty");
  FM_CHECK(strlen(name) < FM_HPARAM_NAME_MAX, FM_ERR_INVALID_ARG, "hyperparameter name too long: '%s'", name);
  long i = fm__hparams_find(h, name);
  if (i < 0) {
    FM_CHECK(h->n < FM_HPARAMS_MAX, FM_ERR_INVALID_ARG, "too many hyperparameters (max %d) adding '%s'",
             FM_HPARAMS_MAX, name);
    i = (long)h->n++;
    strcpy(h->item[i].name, name);
  }
  h->item[i].value = value;
  return FM_OK;
}

int fm_hparams_get(const fm_hparams *h, const char *name, double *value) {
  long i = fm__hparams_find(h, name);
  FM_CHECK(i >= 0, FM_ERR_HPARAM_UNKNOWN, "unknown hyperparameter '%s'", name);
  *value = h->item[i].value;
  return FM_OK;
}

int fm_hparams_has(const fm_hparams *h, const char *name) { return fm__hparams_find(h, name) >= 0; }
