/* src/data/source_common.c — what every ClientData source (source_*.c) and
 * the generic API (data.c) share: releasing an fm_client_data and what the
 * API hands out (examples, strings, buffers), the x/y feature set of
 * generated and in-memory data, the allocation of a client's examples, and
 * the dtype names, sizes and integer narrowing of feature reads.
 *
 * Nothing here knows one source from another or calls data.c: the sources
 * depend on this file, never the other way round.
 *
 * Deliberately does not: read any data (each source does), or touch HDF5. */
#include <stdint.h>
#include <string.h>

#include "data_impl.h"
#include "fedmpi/data.h"
#include "internal.h"

char fm__lent_owner;

void fm__cd_feats_free(fm_client_data *cd) {
  for (size_t j = 0; j < cd->num_feats; j++) fm__free((char *)cd->feats[j].name);
  fm__free(cd->feats);
  cd->feats = NULL;
  cd->num_feats = 0;
}

void fm__cd_free(fm_client_data *cd) {
  if (!cd) return;
  if (cd->ops) cd->ops->destroy(cd);
  fm__free(cd->x_name);
  fm__free(cd->y_name);
  fm__cd_feats_free(cd);
  fm__cache_destroy(cd->cache);
  fm__free(cd->path);
  fm__free(cd);
}

int fm__cd_set_xy_features(fm_client_data *cd, int ndim, const size_t *shape) {
  cd->ndim = ndim;
  for (int j = 0; j < ndim; j++) cd->shape[j] = shape[j];
  cd->x_name = fm__strdup("x");
  cd->y_name = fm__strdup("y");
  cd->feats = fm__calloc(2, sizeof *cd->feats);
  if (cd->feats) {
    cd->num_feats = 2;
    cd->feats[0].name = fm__strdup("x");
    cd->feats[0].dtype = FM_DTYPE_FLOAT32;
    cd->feats[0].ndim = ndim;
    for (int j = 0; j < ndim; j++) cd->feats[0].shape[j] = shape[j];
    cd->feats[1].name = fm__strdup("y");
    cd->feats[1].dtype = FM_DTYPE_INT32;
  }
  return cd->x_name && cd->y_name && cd->feats && cd->feats[0].name && cd->feats[1].name ? FM_OK : FM_ERR_NOMEM;
}

int fm__cd_alloc_examples(const fm_client_data *cd, size_t i, int want_x, fm_examples *out) {
  const size_t n = out->n, D = out->num_features;
  if (want_x) {
    out->x = fm__malloc(n * D * sizeof *out->x);
    FM_CHECK(out->x != NULL, FM_ERR_NOMEM, "%s: client '%s': out of memory for %zu x %zu features", cd->path,
             fm__cd_id(cd, i), n, D);
  }
  const size_t T = out->num_targets > 1 ? out->num_targets : 1;
  out->y = fm__malloc(n * T * sizeof *out->y);
  FM_CHECK(out->y != NULL, FM_ERR_NOMEM, "%s: client '%s': out of memory for %zu labels", cd->path,
           fm__cd_id(cd, i), n * T);
  return FM_OK;
}

void fm_examples_free(fm_examples *ex) {
  if (!ex) return;
  if (ex->owner_) {
    if (ex->owner_ != &fm__lent_owner) fm__cache_release(ex->owner_);
    memset(ex, 0, sizeof *ex);
    return;
  }
  fm__free(ex->x);
  fm__free(ex->y);
  memset(ex, 0, sizeof *ex);
}

void fm_strings_free(char **strings, size_t count) {
  if (!strings) return;
  for (size_t k = 0; k < count; k++) fm__free(strings[k]);
  fm__free(strings);
}

void fm_data_free(void *p) { fm__free(p); }

const char *fm_dtype_name(fm_dtype t) {
  switch (t) {
    case FM_DTYPE_FLOAT32: return "float32";
    case FM_DTYPE_FLOAT64: return "float64";
    case FM_DTYPE_FLOAT16: return "float16";
    case FM_DTYPE_INT8: return "int8";
    case FM_DTYPE_UINT8: return "uint8";
    case FM_DTYPE_INT16: return "int16";
    case FM_DTYPE_UINT16: return "uint16";
    case FM_DTYPE_INT32: return "int32";
    case FM_DTYPE_UINT32: return "uint32";
    case FM_DTYPE_INT64: return "int64";
    case FM_DTYPE_UINT64: return "uint64";
    case FM_DTYPE_STRING: return "string";
    default: return "other";
  }
}

size_t fm__dtype_size(fm_dtype t) {
  switch (t) {
    case FM_DTYPE_FLOAT32: case FM_DTYPE_INT32: return 4;
    case FM_DTYPE_FLOAT64: case FM_DTYPE_INT64: return 8;
    case FM_DTYPE_UINT8: return 1;
    default: return 0;
  }
}

int fm__narrow_ints(const fm_client_data *cd, size_t i, const char *feat, const int64_t *s, const uint64_t *u,
                    size_t count, fm_dtype as, void *out) {
  const int64_t lo = as == FM_DTYPE_UINT8 ? 0 : as == FM_DTYPE_INT32 ? INT32_MIN : INT64_MIN;
  const int64_t hi = as == FM_DTYPE_UINT8 ? 255 : as == FM_DTYPE_INT32 ? INT32_MAX : INT64_MAX;
  for (size_t k = 0; k < count; k++) {
    int64_t v;
    if (u) {
      if (u[k] > (uint64_t)hi)
        return FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' has value %llu (value %zu), out of %s's range",
                      cd->path, fm__cd_id(cd, i), feat, (unsigned long long)u[k], k, fm_dtype_name(as));
      v = (int64_t)u[k];
    } else {
      v = s[k];
      if (v < lo || v > hi)
        return FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' has value %lld (value %zu), out of %s's range",
                      cd->path, fm__cd_id(cd, i), feat, (long long)v, k, fm_dtype_name(as));
    }
    if (as == FM_DTYPE_UINT8) ((uint8_t *)out)[k] = (uint8_t)v;
    else if (as == FM_DTYPE_INT32) ((int32_t *)out)[k] = (int32_t)v;
    else ((int64_t *)out)[k] = v;
  }
  return FM_OK;
}
