/* src/data/data.c — the generic federated ClientData API: opening (each kind
 * of data is a source, src/data/source_*.c, with its methods in an
 * fm__cd_source_ops), the accessors, loads in front of the bounded client
 * cache (cache.c), labels-only loads, string and generic feature reads, and
 * the spec dispatch of fm_client_data_open_spec (FM__CD_SPEC_SOURCES).
 *
 * Every call checks its arguments and the client index, then goes through
 * the source's vtable; a source's optional method that is missing gets the
 * default written here (data_impl.h names each one). Nothing here knows
 * which source it is talking to.
 *
 * Deliberately does not: read files, generate data or hold rows (the
 * sources do), normalise features, or cache string or generic feature
 * reads. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"
#include "fedmpi/data.h"
#include "internal.h"

/* ---- opening ------------------------------------------------------------------ */

/* rc and cd from a source's constructor: on success its required methods
 * must be there, so that no later call has to check them. On failure of
 * either, *out stays NULL and cd is freed. */
static int fm__cd_attach(int rc, fm_client_data *cd, fm_client_data **out) {
  if (rc != FM_OK) return rc;
  const fm__cd_source_ops *ops = cd->ops;
  const char *missing = !ops                  ? "ops"
                        : !ops->client_id      ? "client_id"
                        : !ops->num_examples   ? "num_examples"
                        : !ops->total_examples ? "total_examples"
                        : !ops->load           ? "load"
                        : !ops->destroy        ? "destroy"
                                               : NULL;
  if (missing) {
    rc = FM_ERR(FM_ERR_UNSUPPORTED, "%s: %s client data lacks the required method '%s'", cd->path,
                ops && ops->name ? ops->name : "unnamed", missing);
    if (!ops || !ops->destroy) cd->ops = NULL; /* nothing safe to call: the source's own state leaks */
    fm__cd_free(cd);
    return rc;
  }
  if (cd->num_targets == 0) cd->num_targets = 1; /* one label per example */
  *out = cd;
  return FM_OK;
}

int fm_client_data_open(const char *path, const fm_data_options *opt, fm_client_data **out) {
  return fm_client_data_open_kind(path, opt, FM_DATA_XY, out);
}

int fm_client_data_open_kind(const char *path, const fm_data_options *opt, fm_data_kind kind,
                             fm_client_data **out) {
  FM_CHECK(path && out, FM_ERR_INVALID_ARG, "fm_client_data_open: path and out must not be NULL");
  *out = NULL;
  FM_CHECK(kind == FM_DATA_XY || kind == FM_DATA_ANY, FM_ERR_INVALID_ARG,
           "fm_client_data_open_kind: unknown kind %d (FM_DATA_XY or FM_DATA_ANY)", (int)kind);
  fm_client_data *cd = NULL;
  int rc = kind == FM_DATA_XY ? fm__cd_open_file(path, opt, &cd) : fm__cd_open_h5(path, opt, kind, &cd);
  return fm__cd_attach(rc, cd, out);
}

int fm_client_data_open_synthetic_split(const fm_synth_options *o, fm_synth_split split, fm_client_data **out) {
  FM_CHECK(o && out, FM_ERR_INVALID_ARG, "fm_client_data_open_synthetic: options and out must not be NULL");
  *out = NULL;
  fm_client_data *cd = NULL;
  int rc = fm__cd_open_synthetic(o, split, &cd);
  return fm__cd_attach(rc, cd, out);
}

int fm_client_data_open_synthetic(const fm_synth_options *o, fm_client_data **out) {
  return fm_client_data_open_synthetic_split(o, FM_SYNTH_TRAIN, out);
}

#define FM__CD_SPEC_SOURCE_ENTRY(name) &fm__cd_spec_##name,
static const fm__cd_spec_source *const fm__spec_sources[] = {FM__CD_SPEC_SOURCES(FM__CD_SPEC_SOURCE_ENTRY)};
#undef FM__CD_SPEC_SOURCE_ENTRY

int fm_client_data_open_spec(const char *spec, const fm_data_options *opt, fm_client_data **out) {
  FM_CHECK(spec && out, FM_ERR_INVALID_ARG, "fm_client_data_open_spec: spec and out must not be NULL");
  *out = NULL;
  for (size_t k = 0; k < sizeof fm__spec_sources / sizeof *fm__spec_sources; k++) {
    if (!fm__spec_sources[k]->claims(spec)) continue;
    fm_client_data *cd = NULL;
    int rc = fm__spec_sources[k]->open(spec, opt, &cd);
    return fm__cd_attach(rc, cd, out);
  }
  return FM_ERR(FM_ERR_UNSUPPORTED, "%s: no data source reads it", spec);
}

int fm_client_data_from_memory(size_t num_clients, const char *const *ids, const size_t *counts, const float *x,
                               const int32_t *y, int ndim, const size_t *shape, fm_client_data **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_client_data_from_memory: out must not be NULL");
  *out = NULL;
  fm_client_data *cd = NULL;
  int rc = fm__cd_open_memory(num_clients, ids, counts, x, y, ndim, shape, &cd);
  return fm__cd_attach(rc, cd, out);
}

void fm_client_data_close(fm_client_data **pcd) {
  if (!pcd || !*pcd) return;
  fm__cd_free(*pcd);
  *pcd = NULL;
}

/* ---- accessors ------------------------------------------------------------ */

size_t fm_client_data_num_clients(const fm_client_data *cd) { return cd ? cd->num_clients : 0; }

const char *fm_client_data_client_id(const fm_client_data *cd, size_t i) {
  if (!cd || i >= cd->num_clients) return NULL;
  return cd->ops->client_id(cd, i);
}

int fm_client_data_copy_client_id(const fm_client_data *cd, size_t i, char *buf, size_t size) {
  FM_CHECK(cd && buf && size > 0, FM_ERR_INVALID_ARG, "fm_client_data_copy_client_id: NULL argument or size 0");
  buf[0] = '\0';
  FM_CHECK(i < cd->num_clients, FM_ERR_INVALID_ARG, "%s: client index %zu out of range (%zu clients)", cd->path, i,
           cd->num_clients);
  const char *id = cd->ops->client_id(cd, i);
  size_t len = strlen(id);
  FM_CHECK(snprintf(buf, size, "%s", id) >= 0 && len < size, FM_ERR_OVERFLOW,
           "%s: client id of index %zu needs %zu bytes, the buffer has %zu", cd->path, i, len + 1, size);
  return FM_OK;
}

size_t fm_client_data_num_examples(const fm_client_data *cd, size_t i) {
  if (!cd || i >= cd->num_clients) return 0;
  return cd->ops->num_examples(cd, i);
}

uint64_t fm_client_data_total_examples(const fm_client_data *cd) {
  if (!cd) return 0;
  return cd->ops->total_examples(cd);
}

void fm_client_data_feature_shape(const fm_client_data *cd, int *ndim, size_t shape[FM_MAX_DIMS]) {
  if (!cd) {
    if (ndim) *ndim = 0;
    return;
  }
  if (ndim) *ndim = cd->ndim;
  if (shape)
    for (int j = 0; j < FM_MAX_DIMS; j++) shape[j] = j < cd->ndim ? cd->shape[j] : 0;
}

size_t fm_client_data_num_classes(const fm_client_data *cd) { return cd ? cd->num_classes : 0; }

size_t fm_client_data_num_targets(const fm_client_data *cd) { return cd ? cd->num_targets : 0; }

const char *fm_client_data_path(const fm_client_data *cd) { return cd ? cd->path : NULL; }

const char *fm_client_data_x_feature(const fm_client_data *cd) { return cd ? cd->x_name : NULL; }

const char *fm_client_data_y_feature(const fm_client_data *cd) { return cd ? cd->y_name : NULL; }

size_t fm_client_data_num_feature_infos(const fm_client_data *cd) { return cd ? cd->num_feats : 0; }

const fm_feature_info *fm_client_data_feature_info(const fm_client_data *cd, size_t j) {
  return (cd && j < cd->num_feats) ? &cd->feats[j] : NULL;
}

/* ---- loading -------------------------------------------------------------- */

static int fm__check_index(const fm_client_data *cd, size_t i, const char *what) {
  FM_CHECK(cd, FM_ERR_INVALID_ARG, "%s: client data is NULL", what);
  FM_CHECK(i < cd->num_clients, FM_ERR_INVALID_ARG, "%s: client index %zu out of range (%zu clients)", cd->path, i,
           cd->num_clients);
  return FM_OK;
}

/* Load client i: labels always, features only if want_x. share: lend the
 * source's rows or a cache entry instead of copying (fm_client_data_load_shared). */
static int fm__load(const fm_client_data *cd, size_t i, int want_x, int share, fm_examples *out) {
  memset(out, 0, sizeof *out);
  FM_CALL(fm__check_index(cd, i, "fm_client_data_load"));
  FM_CHECK(cd->y_name && (!want_x || cd->x_name), FM_ERR_UNSUPPORTED,
           "%s: opened without %s feature (no usable %s); name it (--x-feature, --y-feature) or read features one "
           "by one",
           cd->path, cd->y_name ? "an input" : "a label", cd->y_name ? "x, pixels or image" : "y or label");
  const size_t n = cd->ops->num_examples(cd, i);
  out->n = n;
  out->num_features = cd->num_features;
  out->num_targets = cd->num_targets;
  if (n == 0) return FM_OK;
  if (share && cd->ops->lend) return cd->ops->lend(cd, i, out);
  if (share && cd->cache && fm__cache_borrow(cd->cache, i, out)) return FM_OK;
  if (cd->cache && !share) {
    int hit = fm__cache_get(cd->cache, i, want_x, out);
    if (hit < 0) return hit;
    if (hit == 1) return FM_OK;
  }
  int rc = cd->ops->load(cd, i, want_x, out);
  if (rc != FM_OK) {
    fm_examples_free(out);
    return rc;
  }
  if (want_x && cd->cache) fm__cache_put(cd->cache, i, out);
  return FM_OK;
}

int fm_client_data_load(const fm_client_data *cd, size_t i, fm_examples *out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_client_data_load: out must not be NULL");
  return fm__load(cd, i, 1, 0, out);
}

int fm_client_data_load_shared(const fm_client_data *cd, size_t i, fm_examples *out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_client_data_load_shared: out must not be NULL");
  return fm__load(cd, i, 1, 1, out);
}

int fm_client_data_load_labels(const fm_client_data *cd, size_t i, fm_examples *out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_client_data_load_labels: out must not be NULL");
  return fm__load(cd, i, 0, 0, out);
}

int fm_client_data_scan_num_classes(const fm_client_data *cd, size_t *num_classes) {
  FM_CHECK(cd && num_classes, FM_ERR_INVALID_ARG, "fm_client_data_scan_num_classes: NULL argument");
  if (cd->ops->scan_num_classes) return cd->ops->scan_num_classes(cd, num_classes);
  int32_t mx = -1;
  for (size_t i = 0; i < cd->num_clients; i++) {
    fm_examples ex;
    FM_CALL(fm__load(cd, i, 0, 0, &ex));
    for (size_t r = 0; r < ex.n * ex.num_targets; r++)
      if (ex.y[r] > mx) mx = ex.y[r];
    fm_examples_free(&ex);
  }
  *num_classes = (size_t)((int64_t)mx + 1); /* a label INT32_MAX must not overflow int */
  return FM_OK;
}

/* ---- any feature: strings and numbers ------------------------------------- */

int fm_client_data_load_strings(const fm_client_data *cd, size_t i, const char *feature, char ***out,
                                size_t *count) {
  FM_CHECK(feature && out && count, FM_ERR_INVALID_ARG, "fm_client_data_load_strings: NULL argument");
  *out = NULL;
  *count = 0;
  FM_CALL(fm__check_index(cd, i, "fm_client_data_load_strings"));
  FM_CHECK(cd->ops->load_strings, FM_ERR_UNSUPPORTED, "%s: client '%s': %s client data has no string feature '%s'",
           cd->path, cd->ops->client_id(cd, i), cd->ops->name, feature);
  return cd->ops->load_strings(cd, i, feature, out, count);
}

/* Client i's examples x (n, D), y (n, T) as feature "x" (float32 values) or
 * "y" (int32 labels), converted to `as` into buf (count values: n D or n T). */
static int fm__xy_feature(const fm_client_data *cd, size_t i, const float *x, const int32_t *y, const char *feat,
                          fm_dtype as, void *buf, size_t count) {
  const int is_x = strcmp(feat, "x") == 0;
  if (is_x) {
    if (as == FM_DTYPE_FLOAT32) {
      if (count) memcpy(buf, x, count * sizeof *x);
    } else if (as == FM_DTYPE_FLOAT64) {
      for (size_t k = 0; k < count; k++) ((double *)buf)[k] = (double)x[k];
    } else {
      return FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature 'x' is float32; cannot read it as %s", cd->path,
                    cd->ops->client_id(cd, i), fm_dtype_name(as));
    }
    return FM_OK;
  }
  const size_t n = count; /* labels: n examples times T */
  int64_t *tmp = fm__malloc((n ? n : 1) * sizeof *tmp);
  if (!tmp) return FM_ERR_NOMEM;
  for (size_t k = 0; k < n; k++) tmp[k] = y[k];
  int rc = FM_OK;
  if (as == FM_DTYPE_FLOAT32)
    for (size_t k = 0; k < n; k++) ((float *)buf)[k] = (float)y[k];
  else if (as == FM_DTYPE_FLOAT64)
    for (size_t k = 0; k < n; k++) ((double *)buf)[k] = (double)y[k];
  else
    rc = fm__narrow_ints(cd, i, feat, tmp, NULL, n, as, buf);
  fm__free(tmp);
  return rc;
}

/* The default for a source without load_feature: "x" and "y" only, from the
 * client's examples (lent, so neither copied twice nor kept). */
static int fm__load_xy_feature(const fm_client_data *cd, size_t i, const char *feature, fm_dtype as, void **out,
                               size_t *count) {
  const char *id = cd->ops->client_id(cd, i), *path = cd->path;
  FM_CHECK(!strcmp(feature, "x") || !strcmp(feature, "y"), FM_ERR_FORMAT,
           "%s: client '%s': no feature '%s' (it has 'x', 'y')", path, id, feature);
  const size_t n = cd->ops->num_examples(cd, i);
  const size_t c = n * (strcmp(feature, "x") == 0 ? cd->num_features : cd->num_targets);
  void *buf = fm__malloc((c ? c : 1) * fm__dtype_size(as));
  FM_CHECK(buf != NULL, FM_ERR_NOMEM, "%s: client '%s': out of memory", path, id);
  fm_examples ex;
  int rc = fm__load(cd, i, 1, 1, &ex);
  if (rc == FM_OK) rc = fm__xy_feature(cd, i, ex.x, ex.y, feature, as, buf, c);
  fm_examples_free(&ex);
  if (rc != FM_OK) {
    fm__free(buf);
    return rc;
  }
  *out = buf;
  *count = c;
  return FM_OK;
}

int fm_client_data_load_feature(const fm_client_data *cd, size_t i, const char *feature, fm_dtype as, void **out,
                                size_t *count) {
  FM_CHECK(feature && out && count, FM_ERR_INVALID_ARG, "fm_client_data_load_feature: NULL argument");
  *out = NULL;
  *count = 0;
  FM_CALL(fm__check_index(cd, i, "fm_client_data_load_feature"));
  FM_CHECK(fm__dtype_size(as) > 0, FM_ERR_INVALID_ARG,
           "fm_client_data_load_feature: cannot convert to %s (float32, float64, int32, int64 or uint8)",
           fm_dtype_name(as));
  const char *id = cd->ops->client_id(cd, i), *path = cd->path;
  const size_t n = cd->ops->num_examples(cd, i);
  void *buf = NULL;
  size_t c = 0;
  int rc = cd->ops->load_feature ? cd->ops->load_feature(cd, i, feature, as, &buf, &c)
                                 : fm__load_xy_feature(cd, i, feature, as, &buf, &c);
  if (rc == FM_OK && (as == FM_DTYPE_FLOAT32 || as == FM_DTYPE_FLOAT64)) {
    size_t per = n ? c / n : 1;
    for (size_t k = 0; k < c && rc == FM_OK; k++) {
      double v = as == FM_DTYPE_FLOAT32 ? (double)((float *)buf)[k] : ((double *)buf)[k];
      if (!isfinite(v))
        rc = FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' has a non-finite value at example %zu", path, id,
                    feature, k / per);
    }
  }
  if (rc != FM_OK) {
    fm__free(buf);
    return rc;
  }
  *out = buf;
  *count = c;
  return FM_OK;
}

/* ---- cache ---------------------------------------------------------------- */

int fm_client_data_set_cache_bytes(fm_client_data *cd, size_t bytes) {
  FM_CHECK(cd, FM_ERR_INVALID_ARG, "fm_client_data_set_cache_bytes: client data is NULL");
  if (cd->cache) fm__cache_set_limit(cd->cache, bytes);
  return FM_OK;
}

void fm_client_data_cache_stats(const fm_client_data *cd, fm_cache_stats *stats) {
  if (!stats) return;
  memset(stats, 0, sizeof *stats);
  if (cd && cd->cache) fm__cache_stats(cd->cache, stats);
}
