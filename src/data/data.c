/* src/data/data.c — federated client data: the reader for TFF's HDF5
 * ClientData layout (/examples/<client_id>/<feature>) and in-memory client
 * data with the same interface.
 *
 * Opening reads only the index and metadata (client ids in HDF5 name order,
 * example counts, dtypes and shapes, the root "num_classes" attribute) and
 * validates it; a client's arrays are read when it is loaded. The file stays
 * open read-only; every HDF5 call goes through the module-wide lock
 * (h5lock.h), so loads from several OpenMP threads are safe.
 *
 * Deliberately does not: cache loaded clients, normalise features (uint8
 * pixels become 0..255 floats, as TFF leaves them), read features other than
 * x and y, or write ClientData files (synth.c does that). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedmpi/data.h"
#include "h5lock.h"
#include "internal.h"

#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t fm__link_info;
#else
typedef H5L_info_t fm__link_info;
#endif

struct fm_client_data {
  char *path;         /* file path or "<memory>" */
  hid_t file;         /* open read-only; -1 for in-memory data */
  char *x_name;       /* resolved feature names (file data) */
  char *y_name;
  size_t num_clients;
  char **ids;         /* (num_clients) in byte (strcmp) order */
  size_t *counts;     /* (num_clients) examples n_k */
  size_t *offsets;    /* (num_clients) first row of each client (in-memory data) */
  uint64_t total;     /* sum of counts */
  int ndim;           /* per-example feature shape */
  size_t shape[FM_MAX_DIMS];
  size_t num_features; /* D = prod(shape) */
  size_t num_classes; /* root attribute "num_classes" or 0 */
  float *mx;          /* in-memory (total, D) */
  int32_t *my;        /* in-memory (total) */
};

/* ---- small helpers -------------------------------------------------------- */

typedef struct {
  char **names;
  size_t n, cap;
  int rc;
} fm__name_list;

static herr_t fm__collect_name(hid_t g, const char *name, const fm__link_info *info, void *op) {
  (void)g;
  (void)info;
  fm__name_list *l = op;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    char **nn = fm__realloc(l->names, cap * sizeof *nn);
    if (!nn) {
      l->rc = FM_ERR_NOMEM;
      return -1;
    }
    l->names = nn;
    l->cap = cap;
  }
  l->names[l->n] = fm__strdup(name);
  if (!l->names[l->n]) {
    l->rc = FM_ERR_NOMEM;
    return -1;
  }
  l->n++;
  return 0;
}

static void fm__name_list_free(fm__name_list *l) {
  for (size_t i = 0; i < l->n; i++) fm__free(l->names[i]);
  fm__free(l->names);
  l->names = NULL;
  l->n = l->cap = 0;
}

/* Names of g's children in name order (lock held). */
static int fm__list_children(hid_t g, fm__name_list *l, const char *path, const char *what) {
  hsize_t idx = 0;
  memset(l, 0, sizeof *l);
  herr_t st = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, fm__collect_name, l);
  if (st < 0) {
    int rc = l->rc;
    fm__name_list_free(l);
    if (rc == FM_ERR_NOMEM) return FM_ERR(FM_ERR_NOMEM, "out of memory listing %s of '%s'", what, path);
    return FM_ERR(FM_ERR_FORMAT, "%s: cannot list %s (corrupted file?)", path, what);
  }
  return FM_OK;
}

/* "a, b, c" (at most size bytes) of g's children, for error messages. */
static void fm__children_text(hid_t g, char *buf, size_t size) {
  fm__name_list l;
  buf[0] = '\0';
  hsize_t idx = 0;
  memset(&l, 0, sizeof l);
  if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, fm__collect_name, &l) < 0) {
    fm__name_list_free(&l);
    return;
  }
  size_t used = 0;
  for (size_t i = 0; i < l.n && used + 1 < size; i++) {
    int w = snprintf(buf + used, size - used, "%s'%s'", i ? ", " : "", l.names[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (l.n == 0) snprintf(buf, size, "nothing");
  fm__name_list_free(&l);
}

static int fm__cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Metadata of one feature dataset of one client (lock held). */
typedef struct {
  int rank;
  hsize_t dims[H5S_MAX_RANK];
  H5T_class_t cls;
} fm__dset_meta;

static int fm__dset_meta_get(hid_t g, const char *path, const char *id, const char *feat, fm__dset_meta *m) {
  int rc = FM_OK;
  hid_t d = -1, s = -1, t = -1;
  htri_t ex = H5Lexists(g, feat, H5P_DEFAULT);
  if (ex <= 0) {
    char have[512];
    fm__children_text(g, have, sizeof have);
    return FM_ERR(FM_ERR_FORMAT, "%s: client '%s': no feature '%s' (it has %s)", path, id, feat, have);
  }
  d = H5Dopen2(g, feat, H5P_DEFAULT);
  FM_CHECK_GOTO(rc, d >= 0, done, FM_ERR_FORMAT, "%s: client '%s': feature '%s' is not a dataset", path, id, feat);
  s = H5Dget_space(d);
  t = H5Dget_type(d);
  FM_CHECK_GOTO(rc, s >= 0 && t >= 0, done, FM_ERR_FORMAT, "%s: client '%s': cannot read feature '%s' metadata",
                path, id, feat);
  m->rank = H5Sget_simple_extent_ndims(s);
  FM_CHECK_GOTO(rc, m->rank >= 1, done, FM_ERR_FORMAT,
                "%s: client '%s': feature '%s' is a scalar; features need a first (example) dimension", path, id,
                feat);
  H5Sget_simple_extent_dims(s, m->dims, NULL);
  m->cls = H5Tget_class(t);
done:
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (d >= 0) H5Dclose(d);
  return rc;
}

static const char *fm__class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum/bool";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length";
    default: return "unsupported";
  }
}

static void fm__shape_text(const size_t *dims, int rank, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < rank && used + 1 < size; i++) {
    int w = snprintf(buf + used, size - used, "%s%zu", i ? ", " : "", dims[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
}

static const char *fm__auto_x[] = {"x", "pixels", "image"};
static const char *fm__auto_y[] = {"y", "label"};

/* Resolve a feature name: the option, or the first candidate present in g. */
static int fm__resolve_feature(hid_t g, const char *opt, const char *const *cand, size_t ncand, const char *path,
                               const char *id, const char *role, char **out) {
  const char *name = opt;
  if (!name) {
    for (size_t i = 0; i < ncand && !name; i++)
      if (H5Lexists(g, cand[i], H5P_DEFAULT) > 0) name = cand[i];
  }
  if (!name) {
    char have[512], want[128];
    fm__children_text(g, have, sizeof have);
    size_t used = 0;
    want[0] = '\0';
    for (size_t i = 0; i < ncand; i++) {
      int w = snprintf(want + used, sizeof want - used, "%s'%s'", i ? (i + 1 == ncand ? " or " : ", ") : "",
                       cand[i]);
      if (w < 0 || (size_t)w >= sizeof want - used) break;
      used += (size_t)w;
    }
    return FM_ERR(FM_ERR_FORMAT, "%s: client '%s': no %s feature (looked for %s; it has %s); name it explicitly",
                  path, id, role, want, have);
  }
  *out = fm__strdup(name);
  return *out ? FM_OK : FM_ERR_NOMEM;
}

/* ---- open ----------------------------------------------------------------- */

static int fm__open_locked(fm_client_data *cd, const fm_data_options *opt) {
  const char *path = cd->path;
  int rc = FM_OK;
  hid_t ex = -1, g = -1;
  fm__name_list l = {0};
  int have_shape = 0;
  size_t ref = 0; /* the client whose per-example shape is the reference */

  FM_CALL(fm__h5_open_read(path, &cd->file));

  htri_t has = H5Lexists(cd->file, "examples", H5P_DEFAULT);
  FM_CHECK_GOTO(rc, has > 0, done, FM_ERR_FORMAT,
                "%s: no group '/examples' (not a TFF HDF5 ClientData file: expected /examples/<client_id>/<feature>)",
                path);
  ex = H5Gopen2(cd->file, "examples", H5P_DEFAULT);
  FM_CHECK_GOTO(rc, ex >= 0, done, FM_ERR_FORMAT, "%s: '/examples' is not a group", path);

  FM_CALL_GOTO(rc, fm__list_children(ex, &l, path, "/examples"), done);
  FM_CHECK_GOTO(rc, l.n > 0, done, FM_ERR_FORMAT, "%s: no clients under '/examples'", path);
  /* HDF5's name index is byte order already; make sure (TFF sorts the ids). */
  for (size_t i = 1; i < l.n; i++)
    if (strcmp(l.names[i - 1], l.names[i]) > 0) {
      qsort(l.names, l.n, sizeof *l.names, fm__cmp_str);
      break;
    }
  cd->num_clients = l.n;
  cd->ids = l.names;
  l.names = NULL;
  l.n = l.cap = 0;
  cd->counts = fm__calloc(cd->num_clients, sizeof *cd->counts);
  FM_CHECK_GOTO(rc, cd->counts != NULL, done, FM_ERR_NOMEM, "out of memory opening '%s'", path);

  long long nc = 0;
  int got = fm__h5_read_int_attr(cd->file, "num_classes", path, &nc);
  if (got < 0) {
    rc = got;
    goto done;
  }
  FM_CHECK_GOTO(rc, nc >= 0, done, FM_ERR_FORMAT, "%s: root attribute num_classes = %lld is negative", path, nc);
  cd->num_classes = (size_t)nc;

  for (size_t i = 0; i < cd->num_clients; i++) {
    const char *id = cd->ids[i];
    fm__dset_meta mx, my;
    g = H5Gopen2(ex, id, H5P_DEFAULT);
    FM_CHECK_GOTO(rc, g >= 0, done, FM_ERR_FORMAT, "%s: '/examples/%s' is not a group (client '%s')", path, id, id);
    if (i == 0) {
      FM_CALL_GOTO(rc, fm__resolve_feature(g, opt ? opt->x_feature : NULL, fm__auto_x, 3, path, id, "x", &cd->x_name),
                   done);
      FM_CALL_GOTO(rc, fm__resolve_feature(g, opt ? opt->y_feature : NULL, fm__auto_y, 2, path, id, "y", &cd->y_name),
                   done);
    }
    FM_CALL_GOTO(rc, fm__dset_meta_get(g, path, id, cd->x_name, &mx), done);
    FM_CALL_GOTO(rc, fm__dset_meta_get(g, path, id, cd->y_name, &my), done);
    H5Gclose(g);
    g = -1;

    FM_CHECK_GOTO(rc, mx.cls == H5T_FLOAT || mx.cls == H5T_INTEGER, done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has %s dtype; features must be float or integer numbers", path, id,
                  cd->x_name, fm__class_name(mx.cls));
    FM_CHECK_GOTO(rc, my.cls == H5T_INTEGER, done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has %s dtype; labels must be integers (int32, int64, uint8, ...)",
                  path, id, cd->y_name, fm__class_name(my.cls));
    FM_CHECK_GOTO(rc, my.rank == 1 || (my.rank == 2 && my.dims[1] == 1), done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has rank %d; labels must be one integer per example, shape (n,)",
                  path, id, cd->y_name, my.rank);
    FM_CHECK_GOTO(rc, mx.dims[0] == my.dims[0], done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has %llu rows but '%s' has %llu", path, id, cd->x_name,
                  (unsigned long long)mx.dims[0], cd->y_name, (unsigned long long)my.dims[0]);
    FM_CHECK_GOTO(rc, mx.rank <= 1 + FM_MAX_DIMS, done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has rank %d; at most %d per-example dimensions are supported", path,
                  id, cd->x_name, mx.rank, FM_MAX_DIMS);
    cd->counts[i] = (size_t)my.dims[0];
    cd->total += cd->counts[i];

    /* Per-example shape: dims[1..]; a rank-1 feature is one value per example. */
    int ndim = mx.rank == 1 ? 1 : mx.rank - 1;
    size_t shape[FM_MAX_DIMS];
    for (int j = 0; j < ndim; j++) shape[j] = mx.rank == 1 ? 1 : (size_t)mx.dims[j + 1];
    if (!have_shape && cd->counts[i] > 0) {
      /* The first non-empty client fixes the shape. */
      cd->ndim = ndim;
      memcpy(cd->shape, shape, sizeof shape);
      have_shape = 1;
      ref = i;
    } else if (have_shape && cd->counts[i] > 0) {
      int same = ndim == cd->ndim;
      for (int j = 0; same && j < ndim; j++) same = shape[j] == cd->shape[j];
      if (!same) {
        char a[96], b[96];
        fm__shape_text(shape, ndim, a, sizeof a);
        fm__shape_text(cd->shape, cd->ndim, b, sizeof b);
        rc = FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' has per-example shape (%s) but client '%s' has (%s)",
                    path, id, cd->x_name, a, cd->ids[ref], b);
        goto done;
      }
    }
  }
  if (!have_shape) {
    /* Every client is empty: shape from the first client. Redo it cheaply. */
    fm__dset_meta mx;
    g = H5Gopen2(ex, cd->ids[0], H5P_DEFAULT);
    FM_CHECK_GOTO(rc, g >= 0, done, FM_ERR_FORMAT, "%s: '/examples/%s' is not a group", path, cd->ids[0]);
    FM_CALL_GOTO(rc, fm__dset_meta_get(g, path, cd->ids[0], cd->x_name, &mx), done);
    cd->ndim = mx.rank == 1 ? 1 : mx.rank - 1;
    for (int j = 0; j < cd->ndim; j++) cd->shape[j] = mx.rank == 1 ? 1 : (size_t)mx.dims[j + 1];
  }
  cd->num_features = 1;
  for (int j = 0; j < cd->ndim; j++) cd->num_features *= cd->shape[j];
  FM_CHECK_GOTO(rc, cd->num_features > 0, done, FM_ERR_FORMAT,
                "%s: feature '%s' has a zero per-example dimension", path, cd->x_name);
done:
  fm__name_list_free(&l);
  if (g >= 0) H5Gclose(g);
  if (ex >= 0) H5Gclose(ex);
  return rc;
}

int fm_client_data_open(const char *path, const fm_data_options *opt, fm_client_data **out) {
  FM_CHECK(path && out, FM_ERR_INVALID_ARG, "fm_client_data_open: path and out must not be NULL");
  *out = NULL;
  fm_client_data *cd = fm__calloc(1, sizeof *cd);
  if (!cd) return FM_ERR_NOMEM;
  cd->file = -1;
  cd->path = fm__strdup(path);
  if (!cd->path) {
    fm__free(cd);
    return FM_ERR_NOMEM;
  }
  fm__h5_lock();
  int rc = fm__open_locked(cd, opt);
  fm__h5_unlock();
  if (rc != FM_OK) {
    fm_client_data_close(&cd);
    return rc;
  }
  *out = cd;
  return FM_OK;
}

int fm_client_data_from_memory(size_t num_clients, const char *const *ids, const size_t *counts, const float *x,
                               const int32_t *y, int ndim, const size_t *shape, fm_client_data **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_client_data_from_memory: out must not be NULL");
  *out = NULL;
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

  int rc = FM_OK;
  fm_client_data *cd = fm__calloc(1, sizeof *cd);
  if (!cd) return FM_ERR_NOMEM;
  cd->file = -1;
  cd->num_clients = num_clients;
  cd->ndim = ndim;
  memcpy(cd->shape, shape, (size_t)ndim * sizeof *shape);
  cd->num_features = D;
  cd->total = total;
  cd->path = fm__strdup("<memory>");
  cd->ids = fm__calloc(num_clients, sizeof *cd->ids);
  cd->counts = fm__calloc(num_clients, sizeof *cd->counts);
  cd->offsets = fm__calloc(num_clients, sizeof *cd->offsets);
  cd->mx = fm__malloc((size_t)total * D * sizeof *cd->mx);
  cd->my = fm__malloc((size_t)total * sizeof *cd->my);
  FM_CHECK_GOTO(rc, cd->path && cd->ids && cd->counts && cd->offsets && cd->mx && cd->my, fail, FM_ERR_NOMEM,
                "out of memory copying client data (%llu examples x %zu features)", (unsigned long long)total, D);
  if (total) {
    memcpy(cd->mx, x, (size_t)total * D * sizeof *cd->mx);
    memcpy(cd->my, y, (size_t)total * sizeof *cd->my);
  }
  int width = 1;
  for (size_t k = num_clients > 0 ? num_clients - 1 : 0; k >= 10; k /= 10) width++;
  size_t off = 0;
  for (size_t i = 0; i < num_clients; i++) {
    char buf[64];
    if (snprintf(buf, sizeof buf, "client_%0*zu", width, i) >= (int)sizeof buf) buf[sizeof buf - 1] = '\0';
    cd->ids[i] = fm__strdup(ids ? ids[i] : buf);
    FM_CHECK_GOTO(rc, cd->ids[i] != NULL, fail, FM_ERR_NOMEM, "out of memory copying client ids");
    cd->counts[i] = counts[i];
    cd->offsets[i] = off;
    off += counts[i];
  }
  *out = cd;
  return FM_OK;
fail:
  fm_client_data_close(&cd);
  return rc;
}

void fm_client_data_close(fm_client_data **pcd) {
  if (!pcd || !*pcd) return;
  fm_client_data *cd = *pcd;
  if (cd->file >= 0) {
    fm__h5_lock();
    H5Fclose(cd->file);
    fm__h5_unlock();
  }
  if (cd->ids)
    for (size_t i = 0; i < cd->num_clients; i++) fm__free(cd->ids[i]);
  fm__free(cd->ids);
  fm__free(cd->counts);
  fm__free(cd->offsets);
  fm__free(cd->mx);
  fm__free(cd->my);
  fm__free(cd->x_name);
  fm__free(cd->y_name);
  fm__free(cd->path);
  fm__free(cd);
  *pcd = NULL;
}

/* ---- accessors ------------------------------------------------------------ */

size_t fm_client_data_num_clients(const fm_client_data *cd) { return cd ? cd->num_clients : 0; }

const char *fm_client_data_client_id(const fm_client_data *cd, size_t i) {
  return (cd && i < cd->num_clients) ? cd->ids[i] : NULL;
}

size_t fm_client_data_num_examples(const fm_client_data *cd, size_t i) {
  return (cd && i < cd->num_clients) ? cd->counts[i] : 0;
}

uint64_t fm_client_data_total_examples(const fm_client_data *cd) { return cd ? cd->total : 0; }

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

const char *fm_client_data_path(const fm_client_data *cd) { return cd ? cd->path : NULL; }

/* ---- loading -------------------------------------------------------------- */

/* Read one feature of client id into buf as mem_type (lock held). Checks the
 * first dimension is still n. buf holds n * per-row values. */
static int fm__read_feature(const fm_client_data *cd, hid_t g, const char *id, const char *feat, hid_t mem_type,
                            size_t n, void *buf) {
  int rc = FM_OK;
  const char *path = cd->path;
  hid_t d = H5Dopen2(g, feat, H5P_DEFAULT), s = -1;
  FM_CHECK_GOTO(rc, d >= 0, done, FM_ERR_FORMAT, "%s: client '%s': cannot open feature '%s'", path, id, feat);
  s = H5Dget_space(d);
  hsize_t dims[H5S_MAX_RANK];
  FM_CHECK_GOTO(rc, s >= 0 && H5Sget_simple_extent_dims(s, dims, NULL) >= 1 && dims[0] == n, done, FM_ERR_FORMAT,
                "%s: client '%s': feature '%s' changed since the file was opened", path, id, feat);
  if (n > 0)
    FM_CHECK_GOTO(rc, H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, done, FM_ERR_FORMAT,
                  "%s: client '%s': cannot read feature '%s' (corrupted file or unconvertible dtype)", path, id, feat);
done:
  if (s >= 0) H5Sclose(s);
  if (d >= 0) H5Dclose(d);
  return rc;
}

/* Load client i: labels always, features only if want_x. */
static int fm__load(const fm_client_data *cd, size_t i, int want_x, fm_examples *out) {
  memset(out, 0, sizeof *out);
  FM_CHECK(cd, FM_ERR_INVALID_ARG, "fm_client_data_load: client data is NULL");
  FM_CHECK(i < cd->num_clients, FM_ERR_INVALID_ARG, "%s: client index %zu out of range (%zu clients)", cd->path, i,
           cd->num_clients);
  const char *id = cd->ids[i];
  size_t n = cd->counts[i], D = cd->num_features;
  out->n = n;
  out->num_features = D;
  if (n == 0) return FM_OK;
  int rc = FM_OK;
  if (want_x) {
    out->x = fm__malloc(n * D * sizeof *out->x);
    FM_CHECK_GOTO(rc, out->x != NULL, fail, FM_ERR_NOMEM, "%s: client '%s': out of memory for %zu x %zu features",
                  cd->path, id, n, D);
  }
  out->y = fm__malloc(n * sizeof *out->y);
  FM_CHECK_GOTO(rc, out->y != NULL, fail, FM_ERR_NOMEM, "%s: client '%s': out of memory for %zu labels", cd->path,
                id, n);
  if (cd->file < 0) {
    if (want_x) memcpy(out->x, cd->mx + cd->offsets[i] * D, n * D * sizeof *out->x);
    memcpy(out->y, cd->my + cd->offsets[i], n * sizeof *out->y);
    return FM_OK;
  }
  fm__h5_lock();
  hid_t g = H5Gopen2(cd->file, "examples", H5P_DEFAULT), cg = -1;
  if (g >= 0) cg = H5Gopen2(g, id, H5P_DEFAULT);
  if (cg < 0)
    rc = FM_ERR(FM_ERR_FORMAT, "%s: client '%s': cannot open '/examples/%s'", cd->path, id, id);
  if (rc == FM_OK && want_x) rc = fm__read_feature(cd, cg, id, cd->x_name, H5T_NATIVE_FLOAT, n, out->x);
  if (rc == FM_OK) rc = fm__read_feature(cd, cg, id, cd->y_name, H5T_NATIVE_INT32, n, out->y);
  if (cg >= 0) H5Gclose(cg);
  if (g >= 0) H5Gclose(g);
  fm__h5_unlock();
  if (rc != FM_OK) goto fail;
  for (size_t r = 0; r < n; r++) {
    int32_t v = out->y[r];
    FM_CHECK_GOTO(rc, v >= 0, fail, FM_ERR_FORMAT, "%s: client '%s': feature '%s' has negative label %d at example %zu",
                  cd->path, id, cd->y_name, (int)v, r);
    FM_CHECK_GOTO(rc, cd->num_classes == 0 || (size_t)v < cd->num_classes, fail, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has label %d at example %zu but the file's num_classes is %zu",
                  cd->path, id, cd->y_name, (int)v, r, cd->num_classes);
  }
  return FM_OK;
fail:
  fm_examples_free(out);
  return rc;
}

int fm_client_data_load(const fm_client_data *cd, size_t i, fm_examples *out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "fm_client_data_load: out must not be NULL");
  return fm__load(cd, i, 1, out);
}

void fm_examples_free(fm_examples *ex) {
  if (!ex) return;
  fm__free(ex->x);
  fm__free(ex->y);
  memset(ex, 0, sizeof *ex);
}

int fm_client_data_scan_num_classes(const fm_client_data *cd, size_t *num_classes) {
  FM_CHECK(cd && num_classes, FM_ERR_INVALID_ARG, "fm_client_data_scan_num_classes: NULL argument");
  int32_t mx = -1;
  for (size_t i = 0; i < cd->num_clients; i++) {
    fm_examples ex;
    FM_CALL(fm__load(cd, i, 0, &ex));
    for (size_t r = 0; r < ex.n; r++)
      if (ex.y[r] > mx) mx = ex.y[r];
    fm_examples_free(&ex);
  }
  *num_classes = (size_t)(mx + 1);
  return FM_OK;
}
