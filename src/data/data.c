/* src/data/data.c — federated client data: the reader for TFF's HDF5
 * ClientData layout (/examples/<client_id>/<feature>), in-memory client
 * data and procedural Synthetic(alpha, beta) data (synth_source.c) with the
 * same interface.
 *
 * Opening reads only the index and metadata (client ids in HDF5 name order,
 * example counts, every client's feature names, dtypes and shapes, the root
 * "num_classes" attribute) and validates it; a client's arrays are read when
 * it is loaded. Two kinds of open (fm_data_options.kind): FM_DATA_XY needs a
 * numeric input x and integer labels y (training); FM_DATA_ANY needs only the
 * index (Shakespeare's string snippets, Stack Overflow, `fedmpi data info`).
 * Loads check what the file cannot promise: labels in range, floats finite.
 * The file stays open read-only; every HDF5 call goes through the
 * module-wide lock (h5lock.h), so loads from several OpenMP threads are safe.
 * Decoded clients may be kept in a bounded LRU cache (cache.c). Procedural
 * data keeps nothing per client: ids, sizes and examples are computed on
 * demand, so its ids/counts arrays stay NULL.
 *
 * Deliberately does not: normalise features (uint8 pixels become 0..255
 * floats, as TFF leaves them), tokenize strings, cache string or generic
 * feature reads, or write ClientData files (synth.c, writer.c do). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"
#include "fedmpi/data.h"
#include "internal.h"

#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t fm__link_info;
#else
typedef H5L_info_t fm__link_info;
#endif

struct fm_client_data {
  char *path;         /* file path or "<memory>" */
  hid_t file;         /* open read-only; -1 for in-memory data */
  fm_data_kind kind;
  char *x_name;       /* resolved feature names; NULL if none (FM_DATA_ANY) */
  char *y_name;
  fm_feature_info *feats; /* (num_feats) of the reference client, names owned */
  size_t num_feats;
  fm__cache *cache;   /* file data only; limit 0 = off */
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
  fm__synth_src *synth; /* procedural data (ids, counts, offsets NULL; total computed on demand) */
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
  fm_dtype dtype;
} fm__dset_meta;

/* The fm_dtype of an HDF5 datatype. */
static fm_dtype fm__dtype_of(hid_t t) {
  H5T_class_t c = H5Tget_class(t);
  size_t sz = H5Tget_size(t);
  if (c == H5T_STRING) return FM_DTYPE_STRING;
  if (c == H5T_FLOAT) return sz == 4 ? FM_DTYPE_FLOAT32 : sz == 8 ? FM_DTYPE_FLOAT64 : sz == 2 ? FM_DTYPE_FLOAT16
                                                                                            : FM_DTYPE_OTHER;
  if (c == H5T_INTEGER) {
    int sgn = H5Tget_sign(t) == H5T_SGN_2;
    switch (sz) {
      case 1: return sgn ? FM_DTYPE_INT8 : FM_DTYPE_UINT8;
      case 2: return sgn ? FM_DTYPE_INT16 : FM_DTYPE_UINT16;
      case 4: return sgn ? FM_DTYPE_INT32 : FM_DTYPE_UINT32;
      case 8: return sgn ? FM_DTYPE_INT64 : FM_DTYPE_UINT64;
      default: return FM_DTYPE_OTHER;
    }
  }
  return FM_DTYPE_OTHER;
}

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
  m->dtype = fm__dtype_of(t);
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

/* Resolve a feature name: the option, or the first candidate present in g.
 * Nothing found: an error if required, else *out = NULL. */
static int fm__resolve_feature(hid_t g, const char *opt, const char *const *cand, size_t ncand, const char *path,
                               const char *id, const char *role, int required, char **out) {
  const char *name = opt;
  *out = NULL;
  if (!name) {
    for (size_t i = 0; i < ncand && !name; i++)
      if (H5Lexists(g, cand[i], H5P_DEFAULT) > 0) name = cand[i];
  }
  if (!name && !required) return FM_OK;
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

/* FM_DATA_ANY: drop an automatically found x or y that training could not
 * use (a string "x", float "label", ...), so the file still opens. */
static void fm__drop_unusable(hid_t g, const char *path, const char *id, int is_x, char **name) {
  fm__dset_meta m;
  if (!*name || fm__dset_meta_get(g, path, id, *name, &m) != FM_OK) {
    fm_clear_error();
    fm__free(*name);
    *name = NULL;
    return;
  }
  int ok = is_x ? ((m.cls == H5T_FLOAT || m.cls == H5T_INTEGER) && m.rank <= 1 + FM_MAX_DIMS)
                : (m.cls == H5T_INTEGER && (m.rank == 1 || (m.rank == 2 && m.dims[1] == 1)));
  if (!ok) {
    fm__free(*name);
    *name = NULL;
  }
}

static void fm__feats_free(fm_client_data *cd) {
  for (size_t j = 0; j < cd->num_feats; j++) fm__free((char *)cd->feats[j].name);
  fm__free(cd->feats);
  cd->feats = NULL;
  cd->num_feats = 0;
}

/* ---- open ----------------------------------------------------------------- */

/* Check client id's features (names fl), each dataset opened once, and set
 * *n_out, its example count, and *mx the x feature's metadata (if any). The
 * reference client's features are recorded when take_info. Lock held. */
static int fm__check_client(fm_client_data *cd, hid_t g, const char *id, const fm__name_list *fl, int take_info,
                            size_t *n_out, fm__dset_meta *mx) {
  const char *path = cd->path;
  FM_CHECK(fl->n > 0, FM_ERR_FORMAT,
           "%s: client '%s' has no features (an empty client still needs its datasets, with 0 rows)", path, id);
  int rc = FM_OK;
  fm_feature_info *fi = NULL;
  fm__dset_meta *m = fm__malloc(fl->n * sizeof *m), my;
  FM_CHECK(m != NULL, FM_ERR_NOMEM, "%s: out of memory listing the features of client '%s'", path, id);
  size_t jx = fl->n, jy = fl->n;
  for (size_t j = 0; j < fl->n; j++) {
    FM_CALL_GOTO(rc, fm__dset_meta_get(g, path, id, fl->names[j], &m[j]), done);
    if (cd->x_name && !strcmp(fl->names[j], cd->x_name)) jx = j;
    if (cd->y_name && !strcmp(fl->names[j], cd->y_name)) jy = j;
  }
  /* x or y absent: the same lookup names what the client has instead. */
  if (cd->x_name && jx == fl->n) FM_CALL_GOTO(rc, fm__dset_meta_get(g, path, id, cd->x_name, mx), done);
  if (cd->y_name && jy == fl->n) FM_CALL_GOTO(rc, fm__dset_meta_get(g, path, id, cd->y_name, &my), done);
  if (cd->x_name) *mx = m[jx];
  if (cd->y_name) my = m[jy];
  if (cd->x_name)
    FM_CHECK_GOTO(rc, mx->cls == H5T_FLOAT || mx->cls == H5T_INTEGER, done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has %s dtype; features must be float or integer numbers", path, id,
                  cd->x_name, fm__class_name(mx->cls));
  if (cd->y_name) {
    FM_CHECK_GOTO(rc, my.cls == H5T_INTEGER, done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has %s dtype; labels must be integers (int32, int64, uint8, ...)",
                  path, id, cd->y_name, fm__class_name(my.cls));
    FM_CHECK_GOTO(rc, my.rank == 1 || (my.rank == 2 && my.dims[1] == 1), done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has rank %d; labels must be one integer per example, shape (n,)",
                  path, id, cd->y_name, my.rank);
  }
  if (cd->x_name && cd->y_name)
    FM_CHECK_GOTO(rc, mx->dims[0] == my.dims[0], done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has %llu rows but '%s' has %llu", path, id, cd->x_name,
                  (unsigned long long)mx->dims[0], cd->y_name, (unsigned long long)my.dims[0]);
  if (cd->x_name)
    FM_CHECK_GOTO(rc, mx->rank <= 1 + FM_MAX_DIMS, done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has rank %d; at most %d per-example dimensions are supported", path,
                  id, cd->x_name, mx->rank, FM_MAX_DIMS);

  /* The example count: y's rows, else x's, else the first feature's. */
  const char *ref = cd->y_name ? cd->y_name : cd->x_name ? cd->x_name : fl->names[0];
  const hsize_t n = cd->y_name ? my.dims[0] : cd->x_name ? mx->dims[0] : m[0].dims[0];
  if (take_info) {
    fi = fm__calloc(fl->n, sizeof *fi);
    FM_CHECK_GOTO(rc, fi != NULL, done, FM_ERR_NOMEM, "%s: out of memory listing the features of client '%s'", path,
                  id);
  }
  for (size_t j = 0; j < fl->n; j++) {
    const char *f = fl->names[j];
    FM_CHECK_GOTO(rc, m[j].dims[0] == n, done, FM_ERR_FORMAT,
                  "%s: client '%s': feature '%s' has %llu rows but '%s' has %llu", path, id, f,
                  (unsigned long long)m[j].dims[0], ref, (unsigned long long)n);
    if (fi) {
      FM_CHECK_GOTO(rc, m[j].rank - 1 <= FM_FEATURE_MAX_DIMS, done, FM_ERR_FORMAT,
                    "%s: client '%s': feature '%s' has rank %d; at most %d per-example dimensions are supported", path,
                    id, f, m[j].rank, FM_FEATURE_MAX_DIMS);
      fi[j].name = fm__strdup(f);
      FM_CHECK_GOTO(rc, fi[j].name != NULL, done, FM_ERR_NOMEM, "%s: out of memory", path);
      fi[j].dtype = m[j].dtype;
      fi[j].ndim = m[j].rank - 1;
      for (int k = 0; k < m[j].rank - 1; k++) fi[j].shape[k] = (size_t)m[j].dims[k + 1];
    }
  }
  if (fi) {
    fm__feats_free(cd);
    cd->feats = fi;
    cd->num_feats = fl->n;
    fi = NULL;
  }
  *n_out = (size_t)n;
done:
  if (fi) {
    for (size_t j = 0; j < fl->n; j++) fm__free((char *)fi[j].name);
    fm__free(fi);
  }
  fm__free(m);
  return rc;
}

/* Per-example shape of x from its metadata: dims[1..]; a rank-1 feature is
 * one value per example. */
static void fm__x_shape(const fm__dset_meta *mx, int *ndim, size_t shape[FM_MAX_DIMS]) {
  *ndim = mx->rank == 1 ? 1 : mx->rank - 1;
  for (int j = 0; j < FM_MAX_DIMS; j++) shape[j] = j < *ndim ? (mx->rank == 1 ? 1 : (size_t)mx->dims[j + 1]) : 0;
}

static int fm__open_locked(fm_client_data *cd, const fm_data_options *opt) {
  const int any = cd->kind == FM_DATA_ANY;
  const char *path = cd->path;
  int rc = FM_OK;
  hid_t ex = -1, g = -1;
  fm__name_list l = {0}, fl = {0};
  int have_shape = 0, have_info = 0;
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
    g = H5Gopen2(ex, id, H5P_DEFAULT);
    FM_CHECK_GOTO(rc, g >= 0, done, FM_ERR_FORMAT, "%s: '/examples/%s' is not a group (client '%s')", path, id, id);
    if (i == 0) {
      const char *xo = opt ? opt->x_feature : NULL, *yo = opt ? opt->y_feature : NULL;
      FM_CALL_GOTO(rc, fm__resolve_feature(g, xo, fm__auto_x, 3, path, id, "x", !any || xo, &cd->x_name), done);
      FM_CALL_GOTO(rc, fm__resolve_feature(g, yo, fm__auto_y, 2, path, id, "y", !any || yo, &cd->y_name), done);
      if (any && !xo) fm__drop_unusable(g, path, id, 1, &cd->x_name);
      if (any && !yo) fm__drop_unusable(g, path, id, 0, &cd->y_name);
    }
    FM_CALL_GOTO(rc, fm__list_children(g, &fl, path, "its features"), done);
    size_t n = 0;
    fm__dset_meta mx;
    FM_CALL_GOTO(rc, fm__check_client(cd, g, id, &fl, !have_info, &n, &mx), done);
    fm__name_list_free(&fl);
    if (n > 0) have_info = 1;
    cd->counts[i] = n;
    cd->total += n;

    if (cd->x_name && (n > 0 || (i == 0))) {
      int ndim;
      size_t shape[FM_MAX_DIMS];
      fm__x_shape(&mx, &ndim, shape);
      if (!have_shape) {
        /* The first non-empty client fixes the shape (client 0 until then). */
        cd->ndim = ndim;
        memcpy(cd->shape, shape, sizeof shape);
        have_shape = n > 0;
        ref = i;
      } else {
        int same = ndim == cd->ndim;
        for (int j = 0; same && j < ndim; j++) same = shape[j] == cd->shape[j];
        if (!same) {
          char a[96], b[96];
          fm__shape_text(shape, ndim, a, sizeof a);
          fm__shape_text(cd->shape, cd->ndim, b, sizeof b);
          rc = FM_ERR(FM_ERR_FORMAT,
                      "%s: client '%s': feature '%s' has per-example shape (%s) but client '%s' has (%s)", path, id,
                      cd->x_name, a, cd->ids[ref], b);
          goto done;
        }
      }
    }
    H5Gclose(g);
    g = -1;
  }
  if (cd->x_name) {
    cd->num_features = 1;
    for (int j = 0; j < cd->ndim; j++) cd->num_features *= cd->shape[j];
    FM_CHECK_GOTO(rc, cd->num_features > 0, done, FM_ERR_FORMAT, "%s: feature '%s' has a zero per-example dimension",
                  path, cd->x_name);
  }
done:
  fm__name_list_free(&l);
  fm__name_list_free(&fl);
  if (g >= 0) H5Gclose(g);
  if (ex >= 0) H5Gclose(ex);
  return rc;
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
  fm_client_data *cd = fm__calloc(1, sizeof *cd);
  if (!cd) return FM_ERR_NOMEM;
  cd->file = -1;
  cd->kind = kind;
  cd->path = fm__strdup(path);
  if (!cd->path || fm__cache_create(&cd->cache) != FM_OK) {
    fm__free(cd->path);
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

/* The two features of generated and in-memory client data: "x" (float32,
 * per-example shape) and "y" (int32), as dimensions, names and feature infos.
 * FM_ERR_NOMEM (no message set) if an allocation failed; the caller closes cd. */
static int fm__set_xy_features(fm_client_data *cd, int ndim, const size_t *shape) {
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

int fm_client_data_open_synthetic_split(const fm_synth_options *o, fm_synth_split split, fm_client_data **out) {
  FM_CHECK(o && out, FM_ERR_INVALID_ARG, "fm_client_data_open_synthetic: options and out must not be NULL");
  *out = NULL;
  fm_client_data *cd = fm__calloc(1, sizeof *cd);
  FM_CHECK(cd != NULL, FM_ERR_NOMEM, "out of memory opening synthetic data");
  cd->file = -1;
  int rc = fm__synth_src_create(o, split, &cd->synth);
  if (rc != FM_OK) {
    fm__free(cd);
    return rc;
  }
  const size_t d = o->num_features;
  cd->kind = FM_DATA_XY;
  cd->num_clients = o->num_clients;
  cd->num_features = d;
  cd->num_classes = o->num_classes;
  cd->path = fm__strdup(fm__synth_src_spec(cd->synth));
  if (!cd->path || fm__set_xy_features(cd, 1, &d) != FM_OK || fm__cache_create(&cd->cache) != FM_OK) {
    fm_client_data_close(&cd);
    return FM_ERR(FM_ERR_NOMEM, "out of memory opening synthetic data");
  }
  *out = cd;
  return FM_OK;
}

int fm_client_data_open_synthetic(const fm_synth_options *o, fm_client_data **out) {
  return fm_client_data_open_synthetic_split(o, FM_SYNTH_TRAIN, out);
}

int fm_client_data_open_spec(const char *spec, const fm_data_options *opt, fm_client_data **out) {
  FM_CHECK(spec && out, FM_ERR_INVALID_ARG, "fm_client_data_open_spec: spec and out must not be NULL");
  *out = NULL;
  if (!fm_synth_spec_is_synthetic(spec)) return fm_client_data_open(spec, opt, out);
  fm_synth_options o;
  fm_synth_split split;
  FM_CALL(fm_synth_parse_spec(spec, &o, &split));
  const char *xo = opt ? opt->x_feature : NULL, *yo = opt ? opt->y_feature : NULL;
  FM_CHECK(!xo || !strcmp(xo, "x"), FM_ERR_FORMAT, "%s: no feature '%s' (synthetic data has 'x' and 'y')", spec, xo);
  FM_CHECK(!yo || !strcmp(yo, "y"), FM_ERR_FORMAT, "%s: no feature '%s' (synthetic data has 'x' and 'y')", spec, yo);
  return fm_client_data_open_synthetic_split(&o, split, out);
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
  cd->num_features = D;
  cd->total = total;
  cd->path = fm__strdup("<memory>");
  FM_CHECK_GOTO(rc, fm__set_xy_features(cd, ndim, shape) == FM_OK, fail, FM_ERR_NOMEM,
                "out of memory creating in-memory client data");
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
  fm__synth_src_destroy(cd->synth);
  fm__free(cd->x_name);
  fm__free(cd->y_name);
  fm__feats_free(cd);
  fm__cache_destroy(cd->cache);
  fm__free(cd->path);
  fm__free(cd);
  *pcd = NULL;
}

/* ---- accessors ------------------------------------------------------------ */

size_t fm_client_data_num_clients(const fm_client_data *cd) { return cd ? cd->num_clients : 0; }

/* Procedural data's id of client i, in a per-thread ring of buffers. */
static const char *fm__synth_id(const fm_client_data *cd, size_t i) {
  enum { RING = 16, LEN = 32 };
  static _Thread_local char ring[RING][LEN];
  static _Thread_local unsigned next;
  char *b = ring[next++ % RING];
  fm__client_id(b, LEN, i, cd->num_clients);
  return b;
}

const char *fm_client_data_client_id(const fm_client_data *cd, size_t i) {
  if (!cd || i >= cd->num_clients) return NULL;
  return cd->synth ? fm__synth_id(cd, i) : cd->ids[i];
}

int fm_client_data_copy_client_id(const fm_client_data *cd, size_t i, char *buf, size_t size) {
  FM_CHECK(cd && buf && size > 0, FM_ERR_INVALID_ARG, "fm_client_data_copy_client_id: NULL argument or size 0");
  buf[0] = '\0';
  FM_CHECK(i < cd->num_clients, FM_ERR_INVALID_ARG, "%s: client index %zu out of range (%zu clients)", cd->path, i,
           cd->num_clients);
  char tmp[32];
  const char *id = cd->ids ? cd->ids[i] : tmp;
  if (cd->synth) fm__client_id(tmp, sizeof tmp, i, cd->num_clients);
  size_t len = strlen(id);
  FM_CHECK(snprintf(buf, size, "%s", id) >= 0 && len < size, FM_ERR_OVERFLOW,
           "%s: client id of index %zu needs %zu bytes, the buffer has %zu", cd->path, i, len + 1, size);
  return FM_OK;
}

size_t fm_client_data_num_examples(const fm_client_data *cd, size_t i) {
  if (!cd || i >= cd->num_clients) return 0;
  return cd->synth ? fm__synth_src_num_examples(cd->synth, i) : cd->counts[i];
}

uint64_t fm_client_data_total_examples(const fm_client_data *cd) {
  if (!cd) return 0;
  return cd->synth ? fm__synth_src_total(cd->synth) : cd->total;
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

const char *fm_client_data_path(const fm_client_data *cd) { return cd ? cd->path : NULL; }

const char *fm_client_data_x_feature(const fm_client_data *cd) { return cd ? cd->x_name : NULL; }

const char *fm_client_data_y_feature(const fm_client_data *cd) { return cd ? cd->y_name : NULL; }

size_t fm_client_data_num_feature_infos(const fm_client_data *cd) { return cd ? cd->num_feats : 0; }

const fm_feature_info *fm_client_data_feature_info(const fm_client_data *cd, size_t j) {
  return (cd && j < cd->num_feats) ? &cd->feats[j] : NULL;
}

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

/* /examples/<id> of client i, or -1 with the error recorded (lock held). */
static hid_t fm__open_client_group(const fm_client_data *cd, size_t i) {
  hid_t g = H5Gopen2(cd->file, "examples", H5P_DEFAULT), cg = -1;
  if (g >= 0) cg = H5Gopen2(g, cd->ids[i], H5P_DEFAULT);
  if (g >= 0) H5Gclose(g);
  if (cg < 0) FM_ERR(FM_ERR_FORMAT, "%s: client '%s': cannot open '/examples/%s'", cd->path, cd->ids[i], cd->ids[i]);
  return cg;
}

/* The first non-finite value of x (count values, per-example stride D) is an
 * error naming the example. The common case (all finite) is an OR over the
 * exponent bits, which vectorizes; only a failing block is searched for the
 * position. */
static int fm__check_finite(const fm_client_data *cd, size_t i, const char *feat, const float *x, size_t count,
                            size_t D) {
  enum { BLOCK = 4096 };
  for (size_t b = 0; b < count; b += BLOCK) {
    const size_t e = count - b < BLOCK ? count : b + BLOCK;
    uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t k = b; k < e; k++) {
      uint32_t u;
      memcpy(&u, &x[k], sizeof u);
      bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u); /* exponent all ones: Inf or NaN */
    }
    if (!bad) continue;
    for (size_t k = b; k < e; k++)
      if (!isfinite(x[k]))
        return FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' has a non-finite value at example %zu", cd->path,
                      cd->ids[i], feat, D ? k / D : k);
  }
  return FM_OK;
}

static int fm__check_index(const fm_client_data *cd, size_t i, const char *what) {
  FM_CHECK(cd, FM_ERR_INVALID_ARG, "%s: client data is NULL", what);
  FM_CHECK(i < cd->num_clients, FM_ERR_INVALID_ARG, "%s: client index %zu out of range (%zu clients)", cd->path, i,
           cd->num_clients);
  return FM_OK;
}

/* owner_ of examples that point into in-memory data: nothing to give back. */
static char fm__in_memory_owner;

/* Load client i: labels always, features only if want_x. share: lend a cache
 * entry or the in-memory arrays instead of copying (fm_client_data_load_shared). */
static int fm__load(const fm_client_data *cd, size_t i, int want_x, int share, fm_examples *out) {
  memset(out, 0, sizeof *out);
  FM_CALL(fm__check_index(cd, i, "fm_client_data_load"));
  FM_CHECK(cd->y_name && (!want_x || cd->x_name), FM_ERR_UNSUPPORTED,
           "%s: opened without %s feature (no usable %s); name it (--x-feature, --y-feature) or read features one "
           "by one",
           cd->path, cd->y_name ? "an input" : "a label", cd->y_name ? "x, pixels or image" : "y or label");
  const char *id = cd->synth ? NULL : cd->ids[i];
  size_t n = fm_client_data_num_examples(cd, i), D = cd->num_features;
  out->n = n;
  out->num_features = D;
  if (n == 0) return FM_OK;
  int rc = FM_OK;
  if (share && cd->file < 0 && !cd->synth) {
    out->x = cd->mx + cd->offsets[i] * D;
    out->y = cd->my + cd->offsets[i];
    out->owner_ = &fm__in_memory_owner;
    return FM_OK;
  }
  if (share && cd->cache && fm__cache_borrow(cd->cache, i, out)) return FM_OK;
  if (cd->cache && !share) {
    rc = fm__cache_get(cd->cache, i, want_x, out);
    if (rc < 0) return rc;
    if (rc == 1) return FM_OK;
    rc = FM_OK;
  }
  if (cd->synth) {
    /* Generated on the spot (labels need x anyway); no lock, no file. */
    FM_CALL(fm__synth_src_load(cd->synth, i, out));
    if (want_x && cd->cache) fm__cache_put(cd->cache, i, out);
    if (!want_x) {
      fm__free(out->x);
      out->x = NULL;
    }
    return FM_OK;
  }
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
  hid_t cg = fm__open_client_group(cd, i);
  if (cg < 0) rc = FM_ERR_FORMAT;
  if (rc == FM_OK && want_x) rc = fm__read_feature(cd, cg, id, cd->x_name, H5T_NATIVE_FLOAT, n, out->x);
  if (rc == FM_OK) rc = fm__read_feature(cd, cg, id, cd->y_name, H5T_NATIVE_INT32, n, out->y);
  if (cg >= 0) H5Gclose(cg);
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
  /* float64 values beyond float32's range arrive here as infinities too. */
  if (want_x) FM_CALL_GOTO(rc, fm__check_finite(cd, i, cd->x_name, out->x, n * D, D), fail);
  if (want_x && cd->cache) fm__cache_put(cd->cache, i, out);
  return FM_OK;
fail:
  fm_examples_free(out);
  return rc;
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

void fm_examples_free(fm_examples *ex) {
  if (!ex) return;
  if (ex->owner_) {
    if (ex->owner_ != &fm__in_memory_owner) fm__cache_release(ex->owner_);
    memset(ex, 0, sizeof *ex);
    return;
  }
  fm__free(ex->x);
  fm__free(ex->y);
  memset(ex, 0, sizeof *ex);
}

int fm_client_data_scan_num_classes(const fm_client_data *cd, size_t *num_classes) {
  FM_CHECK(cd && num_classes, FM_ERR_INVALID_ARG, "fm_client_data_scan_num_classes: NULL argument");
  if (cd->synth) { /* labels are argmax over C classes by construction */
    *num_classes = cd->num_classes;
    return FM_OK;
  }
  int32_t mx = -1;
  for (size_t i = 0; i < cd->num_clients; i++) {
    fm_examples ex;
    FM_CALL(fm__load(cd, i, 0, 0, &ex));
    for (size_t r = 0; r < ex.n; r++)
      if (ex.y[r] > mx) mx = ex.y[r];
    fm_examples_free(&ex);
  }
  *num_classes = (size_t)(mx + 1);
  return FM_OK;
}

/* ---- any feature: strings and numbers ------------------------------------- */

/* Open feature feat of client i's group cg and check it is still (n, ...)
 * (lock held). *count = number of values; m filled. */
static int fm__open_any_feature(const fm_client_data *cd, size_t i, hid_t cg, const char *feat, fm__dset_meta *m,
                                hid_t *d, size_t *count) {
  const char *id = cd->ids[i];
  FM_CALL(fm__dset_meta_get(cg, cd->path, id, feat, m));
  FM_CHECK(m->dims[0] == cd->counts[i], FM_ERR_FORMAT, "%s: client '%s': feature '%s' changed since the file was opened",
           cd->path, id, feat);
  size_t c = 1;
  for (int k = 0; k < m->rank; k++) {
    FM_CHECK(m->dims[k] == 0 || c <= SIZE_MAX / (size_t)m->dims[k], FM_ERR_OVERFLOW,
             "%s: client '%s': feature '%s' is too large", cd->path, id, feat);
    c *= (size_t)m->dims[k];
  }
  *d = H5Dopen2(cg, feat, H5P_DEFAULT);
  FM_CHECK(*d >= 0, FM_ERR_FORMAT, "%s: client '%s': cannot open feature '%s'", cd->path, id, feat);
  *count = c;
  return FM_OK;
}

/* Strings of client i's feature into a new array (lock held). */
static int fm__read_strings_locked(const fm_client_data *cd, size_t i, const char *feat, char ***out, size_t *count) {
  const char *id = cd->ids[i], *path = cd->path;
  int rc = FM_OK;
  hid_t cg = -1, d = -1, ft = -1, mt = -1, sp = -1;
  char **strs = NULL, **raw = NULL;
  char *fixed = NULL;
  size_t c = 0;
  fm__dset_meta m;
  cg = fm__open_client_group(cd, i);
  if (cg < 0) return FM_ERR_FORMAT;
  FM_CALL_GOTO(rc, fm__open_any_feature(cd, i, cg, feat, &m, &d, &c), done);
  FM_CHECK_GOTO(rc, m.cls == H5T_STRING, done, FM_ERR_FORMAT,
                "%s: client '%s': feature '%s' has %s dtype, not string", path, id, feat, fm_dtype_name(m.dtype));
  strs = fm__calloc(c ? c : 1, sizeof *strs);
  FM_CHECK_GOTO(rc, strs != NULL, done, FM_ERR_NOMEM, "%s: client '%s': out of memory for %zu strings", path, id, c);
  ft = H5Dget_type(d);
  mt = H5Tcopy(H5T_C_S1);
  FM_CHECK_GOTO(rc, ft >= 0 && mt >= 0, done, FM_ERR_FORMAT, "%s: client '%s': cannot read feature '%s'", path, id,
                feat);
  htri_t vl = H5Tis_variable_str(ft);
  H5Tset_cset(mt, H5Tget_cset(ft));
  if (c > 0 && vl > 0) {
    H5Tset_size(mt, H5T_VARIABLE);
    raw = fm__calloc(c, sizeof *raw);
    FM_CHECK_GOTO(rc, raw != NULL, done, FM_ERR_NOMEM, "%s: client '%s': out of memory for %zu strings", path, id, c);
    FM_CHECK_GOTO(rc, H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0, done, FM_ERR_FORMAT,
                  "%s: client '%s': cannot read feature '%s' (corrupted file?)", path, id, feat);
    for (size_t k = 0; k < c && rc == FM_OK; k++) {
      strs[k] = fm__strdup(raw[k] ? raw[k] : "");
      if (!strs[k]) rc = FM_ERR(FM_ERR_NOMEM, "%s: client '%s': out of memory copying strings", path, id);
    }
    sp = H5Dget_space(d);
#if H5_VERSION_GE(1, 12, 0)
    if (sp >= 0) H5Treclaim(mt, sp, H5P_DEFAULT, raw);
#else
    if (sp >= 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
#endif
  } else if (c > 0) {
    FM_CHECK_GOTO(rc, vl == 0, done, FM_ERR_FORMAT, "%s: client '%s': feature '%s' has a bad string type", path, id,
                  feat);
    size_t w = H5Tget_size(ft) + 1;
    H5Tset_size(mt, w);
    H5Tset_strpad(mt, H5T_STR_NULLTERM);
    fixed = fm__calloc(c, w);
    FM_CHECK_GOTO(rc, fixed != NULL, done, FM_ERR_NOMEM, "%s: client '%s': out of memory for %zu strings", path, id,
                  c);
    FM_CHECK_GOTO(rc, H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, fixed) >= 0, done, FM_ERR_FORMAT,
                  "%s: client '%s': cannot read feature '%s' (corrupted file?)", path, id, feat);
    for (size_t k = 0; k < c && rc == FM_OK; k++) {
      strs[k] = fm__strdup(fixed + k * w);
      if (!strs[k]) rc = FM_ERR(FM_ERR_NOMEM, "%s: client '%s': out of memory copying strings", path, id);
    }
  }
done:
  fm__free(raw);
  fm__free(fixed);
  if (sp >= 0) H5Sclose(sp);
  if (mt >= 0) H5Tclose(mt);
  if (ft >= 0) H5Tclose(ft);
  if (d >= 0) H5Dclose(d);
  if (cg >= 0) H5Gclose(cg);
  if (rc != FM_OK) {
    fm_strings_free(strs, c);
    return rc;
  }
  *out = strs;
  *count = c;
  return FM_OK;
}

int fm_client_data_load_strings(const fm_client_data *cd, size_t i, const char *feature, char ***out,
                                size_t *count) {
  FM_CHECK(feature && out && count, FM_ERR_INVALID_ARG, "fm_client_data_load_strings: NULL argument");
  *out = NULL;
  *count = 0;
  FM_CALL(fm__check_index(cd, i, "fm_client_data_load_strings"));
  FM_CHECK(cd->file >= 0, FM_ERR_UNSUPPORTED, "%s: client '%s': %s client data has no string feature '%s'",
           cd->path, fm_client_data_client_id(cd, i), cd->synth ? "synthetic" : "in-memory", feature);
  fm__h5_lock();
  int rc = fm__read_strings_locked(cd, i, feature, out, count);
  fm__h5_unlock();
  return rc;
}

void fm_strings_free(char **strings, size_t count) {
  if (!strings) return;
  for (size_t k = 0; k < count; k++) fm__free(strings[k]);
  fm__free(strings);
}

void fm_data_free(void *p) { fm__free(p); }

static size_t fm__dtype_size(fm_dtype t) {
  switch (t) {
    case FM_DTYPE_FLOAT32: case FM_DTYPE_INT32: return 4;
    case FM_DTYPE_FLOAT64: case FM_DTYPE_INT64: return 8;
    case FM_DTYPE_UINT8: return 1;
    default: return 0;
  }
}

/* Narrow 64-bit integers (count) into out as `as`, checking the range.
 * Unsigned sources come as uint64 (u != NULL), the others as int64. */
static int fm__narrow_ints(const fm_client_data *cd, size_t i, const char *feat, const int64_t *s, const uint64_t *u,
                           size_t count, fm_dtype as, void *out) {
  const int64_t lo = as == FM_DTYPE_UINT8 ? 0 : as == FM_DTYPE_INT32 ? INT32_MIN : INT64_MIN;
  const int64_t hi = as == FM_DTYPE_UINT8 ? 255 : as == FM_DTYPE_INT32 ? INT32_MAX : INT64_MAX;
  for (size_t k = 0; k < count; k++) {
    int64_t v;
    if (u) {
      if (u[k] > (uint64_t)hi)
        return FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' has value %llu (value %zu), out of %s's range",
                      cd->path, fm_client_data_client_id(cd, i), feat, (unsigned long long)u[k], k, fm_dtype_name(as));
      v = (int64_t)u[k];
    } else {
      v = s[k];
      if (v < lo || v > hi)
        return FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' has value %lld (value %zu), out of %s's range",
                      cd->path, fm_client_data_client_id(cd, i), feat, (long long)v, k, fm_dtype_name(as));
    }
    if (as == FM_DTYPE_UINT8) ((uint8_t *)out)[k] = (uint8_t)v;
    else if (as == FM_DTYPE_INT32) ((int32_t *)out)[k] = (int32_t)v;
    else ((int64_t *)out)[k] = v;
  }
  return FM_OK;
}

/* In-memory and procedural data: "x" (float32) and "y" (int32) only, from
 * client i's n examples x (n, D) and y (n). */
static int fm__memory_feature(const fm_client_data *cd, size_t i, const float *x, const int32_t *y, size_t n,
                              const char *feat, fm_dtype as, void *buf, size_t count) {
  const int is_x = strcmp(feat, "x") == 0;
  if (is_x) {
    if (as == FM_DTYPE_FLOAT32) memcpy(buf, x, count * sizeof *x);
    else if (as == FM_DTYPE_FLOAT64)
      for (size_t k = 0; k < count; k++) ((double *)buf)[k] = (double)x[k];
    else
      return FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature 'x' is float32; cannot read it as %s", cd->path,
                    fm_client_data_client_id(cd, i), fm_dtype_name(as));
    return FM_OK;
  }
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

/* Read client i's numeric feature into a new buffer as `as` (file data). */
static int fm__file_feature(const fm_client_data *cd, size_t i, const char *feature, fm_dtype as, void **out,
                            size_t *count) {
  const char *id = cd->ids[i], *path = cd->path;
  const int to_float = as == FM_DTYPE_FLOAT32 || as == FM_DTYPE_FLOAT64;
  int rc = FM_OK;
  void *buf = NULL, *tmp = NULL;
  size_t c = 0;
  fm__dset_meta m;
  hid_t d = -1;
  fm__h5_lock();
  hid_t cg = fm__open_client_group(cd, i);
  if (cg < 0) rc = FM_ERR_FORMAT;
  if (rc == FM_OK) rc = fm__open_any_feature(cd, i, cg, feature, &m, &d, &c);
  if (rc == FM_OK && m.cls != H5T_FLOAT && m.cls != H5T_INTEGER)
    rc = FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' has %s dtype, not a number", path, id, feature,
                fm_dtype_name(m.dtype));
  if (rc == FM_OK && !to_float && m.cls == H5T_FLOAT)
    rc = FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' is %s; cannot read it as %s", path, id, feature,
                fm_dtype_name(m.dtype), fm_dtype_name(as));
  if (rc == FM_OK) {
    buf = fm__malloc((c ? c : 1) * fm__dtype_size(as));
    if (!to_float) tmp = fm__malloc((c ? c : 1) * sizeof(int64_t));
    if (!buf || (!to_float && !tmp))
      rc = FM_ERR(FM_ERR_NOMEM, "%s: client '%s': out of memory for %zu values of '%s'", path, id, c, feature);
  }
  const int unsig = rc == FM_OK && m.dtype == FM_DTYPE_UINT64;
  if (rc == FM_OK && c > 0) {
    hid_t mt = as == FM_DTYPE_FLOAT32   ? H5T_NATIVE_FLOAT
               : as == FM_DTYPE_FLOAT64 ? H5T_NATIVE_DOUBLE
               : unsig                  ? H5T_NATIVE_UINT64
                                        : H5T_NATIVE_INT64;
    if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, to_float ? buf : tmp) < 0)
      rc = FM_ERR(FM_ERR_FORMAT, "%s: client '%s': cannot read feature '%s' (corrupted file?)", path, id, feature);
  }
  if (d >= 0) H5Dclose(d);
  if (cg >= 0) H5Gclose(cg);
  fm__h5_unlock();
  if (rc == FM_OK && !to_float)
    rc = fm__narrow_ints(cd, i, feature, unsig ? NULL : tmp, unsig ? tmp : NULL, c, as, buf);
  fm__free(tmp);
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
  const size_t esz = fm__dtype_size(as);
  FM_CHECK(esz > 0, FM_ERR_INVALID_ARG,
           "fm_client_data_load_feature: cannot convert to %s (float32, float64, int32, int64 or uint8)",
           fm_dtype_name(as));
  const char *id = fm_client_data_client_id(cd, i), *path = cd->path;
  const size_t n = fm_client_data_num_examples(cd, i);
  void *buf = NULL;
  size_t c = 0;
  int rc;
  if (cd->file < 0) {
    FM_CHECK(!strcmp(feature, "x") || !strcmp(feature, "y"), FM_ERR_FORMAT,
             "%s: client '%s': no feature '%s' (it has 'x', 'y')", path, id, feature);
    c = n * (strcmp(feature, "x") == 0 ? cd->num_features : 1);
    buf = fm__malloc((c ? c : 1) * esz);
    FM_CHECK(buf != NULL, FM_ERR_NOMEM, "%s: client '%s': out of memory", path, id);
    if (cd->synth) {
      fm_examples ex;
      rc = fm__load(cd, i, 1, 0, &ex);
      if (rc == FM_OK) rc = fm__memory_feature(cd, i, ex.x, ex.y, n, feature, as, buf, c);
      fm_examples_free(&ex);
    } else {
      const size_t off = cd->offsets[i];
      rc = fm__memory_feature(cd, i, cd->mx + off * cd->num_features, cd->my + off, n, feature, as, buf, c);
    }
  } else {
    rc = fm__file_feature(cd, i, feature, as, &buf, &c);
  }
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
