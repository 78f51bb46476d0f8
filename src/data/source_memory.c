/* src/data/source_memory.c — the ClientData source behind
 * fm_client_data_from_memory: a copy of the caller's rows, x (total, D)
 * float32 and y (total) int32, with each client's rows contiguous in id
 * order.
 *
 * Loads copy a client's rows (or lend them, fm_client_data_load_shared);
 * nothing is read or generated, so the source is never cached and its loads
 * need no lock.
 *
 * Deliberately does not: check x for non-finite values (the learning tests
 * build such data on purpose), or keep features other than "x" and "y". */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "data_impl.h"
#include "fedmpi/data.h"
#include "internal.h"

/* The in-memory source's state (cd->src). */
typedef struct fm__mem_src {
  char **ids;       /* (cd->num_clients) sorted */
  size_t *counts;   /* (cd->num_clients) examples n_k */
  size_t *offsets;  /* (cd->num_clients) first row of each client */
  uint64_t total;   /* sum of counts */
  float *x;         /* (total, D) */
  int32_t *y;       /* (total) */
} fm__mem_src;

static fm__mem_src *fm__mem(const fm_client_data *cd) { return cd->src; }

static const char *fm__mem_client_id(const fm_client_data *cd, size_t i) { return fm__mem(cd)->ids[i]; }

static size_t fm__mem_num_examples(const fm_client_data *cd, size_t i) { return fm__mem(cd)->counts[i]; }

static uint64_t fm__mem_total_examples(const fm_client_data *cd) { return fm__mem(cd)->total; }

static int fm__mem_load(const fm_client_data *cd, size_t i, int want_x, fm_examples *out) {
  const fm__mem_src *s = fm__mem(cd);
  const size_t n = out->n, D = out->num_features;
  FM_CALL(fm__cd_alloc_examples(cd, i, want_x, out));
  if (want_x) memcpy(out->x, s->x + s->offsets[i] * D, n * D * sizeof *out->x);
  memcpy(out->y, s->y + s->offsets[i], n * sizeof *out->y);
  return FM_OK;
}

static int fm__mem_lend(const fm_client_data *cd, size_t i, fm_examples *out) {
  const fm__mem_src *s = fm__mem(cd);
  out->x = s->x + s->offsets[i] * out->num_features;
  out->y = s->y + s->offsets[i];
  out->owner_ = &fm__lent_owner;
  return FM_OK;
}

static void fm__mem_destroy(fm_client_data *cd) {
  fm__mem_src *s = cd->src;
  if (!s) return;
  if (s->ids)
    for (size_t i = 0; i < cd->num_clients; i++) fm__free(s->ids[i]);
  fm__free(s->ids);
  fm__free(s->counts);
  fm__free(s->offsets);
  fm__free(s->x);
  fm__free(s->y);
  fm__free(s);
  cd->src = NULL;
}

static const fm__cd_source_ops fm__mem_ops = {
    .name = "in-memory",
    .client_id = fm__mem_client_id,
    .num_examples = fm__mem_num_examples,
    .total_examples = fm__mem_total_examples,
    .load = fm__mem_load,
    .lend = fm__mem_lend,
    .destroy = fm__mem_destroy,
};

/* The arguments of fm_client_data_from_memory; *D and *total computed. */
static int fm__mem_check_args(size_t num_clients, const char *const *ids, const size_t *counts, const float *x,
                              const int32_t *y, int ndim, const size_t *shape, size_t *D_out,
                              uint64_t *total_out) {
  FM_CHECK(num_clients == 0 || counts, FM_ERR_INVALID_ARG, "fm_client_data_from_memory: counts must not be NULL");
  FM_CHECK(ndim >= 1 && ndim <= FM_MAX_DIMS && shape, FM_ERR_INVALID_ARG,
           "fm_client_data_from_memory: ndim %d outside 1..%d (or shape NULL)", ndim, FM_MAX_DIMS);
  size_t D = 1;
  for (int j = 0; j < ndim; j++) {
    FM_CHECK(shape[j] > 0, FM_ERR_INVALID_ARG, "fm_client_data_from_memory: shape[%d] is 0", j);
    D *= shape[j];
  }
  uint64_t total = 0;
  for (size_t i = 0; i < num_clients; i++) total += counts[i];
  FM_CHECK(total == 0 || (x && y), FM_ERR_INVALID_ARG, "fm_client_data_from_memory: x and y must not be NULL");
  for (uint64_t r = 0; r < total; r++)
    FM_CHECK(y[r] >= 0, FM_ERR_INVALID_ARG, "fm_client_data_from_memory: label %d of row %llu is negative",
             (int)y[r], (unsigned long long)r);
  if (ids) {
    for (size_t i = 0; i < num_clients; i++) {
      FM_CHECK(ids[i] && ids[i][0], FM_ERR_INVALID_ARG, "fm_client_data_from_memory: client id %zu is empty", i);
      FM_CHECK(i == 0 || strcmp(ids[i - 1], ids[i]) < 0, FM_ERR_INVALID_ARG,
               "fm_client_data_from_memory: client ids must be unique and sorted ('%s' before '%s')", ids[i - 1],
               ids[i]);
    }
  }
  *D_out = D;
  *total_out = total;
  return FM_OK;
}

int fm__cd_open_memory(size_t num_clients, const char *const *ids, const size_t *counts, const float *x,
                       const int32_t *y, int ndim, const size_t *shape, fm_client_data **out) {
  *out = NULL;
  size_t D = 0;
  uint64_t total = 0;
  FM_CALL(fm__mem_check_args(num_clients, ids, counts, x, y, ndim, shape, &D, &total));

  int rc = FM_OK;
  fm_client_data *cd = fm__calloc(1, sizeof *cd);
  fm__mem_src *s = fm__calloc(1, sizeof *s);
  if (!cd || !s) {
    fm__free(s);
    fm__free(cd);
    return FM_ERR_NOMEM;
  }
  cd->ops = &fm__mem_ops;
  cd->src = s;
  cd->num_clients = num_clients;
  cd->num_features = D;
  s->total = total;
  cd->path = fm__strdup("<memory>");
  FM_CHECK_GOTO(rc, fm__cd_set_xy_features(cd, ndim, shape) == FM_OK, fail, FM_ERR_NOMEM,
                "out of memory creating in-memory client data");
  s->ids = fm__calloc(num_clients, sizeof *s->ids);
  s->counts = fm__calloc(num_clients, sizeof *s->counts);
  s->offsets = fm__calloc(num_clients, sizeof *s->offsets);
  s->x = fm__malloc((size_t)total * D * sizeof *s->x);
  s->y = fm__malloc((size_t)total * sizeof *s->y);
  FM_CHECK_GOTO(rc, cd->path && s->ids && s->counts && s->offsets && s->x && s->y, fail, FM_ERR_NOMEM,
                "out of memory copying client data (%llu examples x %zu features)", (unsigned long long)total, D);
  if (total) {
    memcpy(s->x, x, (size_t)total * D * sizeof *s->x);
    memcpy(s->y, y, (size_t)total * sizeof *s->y);
  }
  int width = 1;
  for (size_t k = num_clients > 0 ? num_clients - 1 : 0; k >= 10; k /= 10) width++;
  size_t off = 0;
  for (size_t i = 0; i < num_clients; i++) {
    char buf[64];
    if (snprintf(buf, sizeof buf, "client_%0*zu", width, i) >= (int)sizeof buf) buf[sizeof buf - 1] = '\0';
    s->ids[i] = fm__strdup(ids ? ids[i] : buf);
    FM_CHECK_GOTO(rc, s->ids[i] != NULL, fail, FM_ERR_NOMEM, "out of memory copying client ids");
    s->counts[i] = counts[i];
    s->offsets[i] = off;
    off += counts[i];
  }
  *out = cd;
  return FM_OK;
fail:
  fm__cd_free(cd);
  return rc;
}
