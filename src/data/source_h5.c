/* src/data/source_h5.c — the ClientData source for TFF's HDF5 layout
 * (/examples/<client_id>/<feature>), behind fm_client_data_open_kind (for
 * training through source_text.c, which picks it or the text source).
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
 *
 * Deliberately does not: normalise features (uint8 pixels become 0..255
 * floats, as TFF leaves them), tokenize strings, cache anything (data.c's
 * client cache sits in front of load), or write ClientData files (writer.c
 * does). */
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

/* The file source's state (cd->src). */
typedef struct fm__h5_src {
  hid_t file;     /* open read-only; -1 until opened */
  char **ids;     /* (cd->num_clients) in byte (strcmp) order */
  size_t *counts; /* (cd->num_clients) examples n_k */
  uint64_t total; /* sum of counts */
} fm__h5_src;

static fm__h5_src *fm__h5(const fm_client_data *cd) { return cd->src; }

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
    fm__cd_feats_free(cd);
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

  FM_CALL(fm__h5_open_read(path, &fm__h5(cd)->file));

  htri_t has = H5Lexists(fm__h5(cd)->file, "examples", H5P_DEFAULT);
  FM_CHECK_GOTO(rc, has > 0, done, FM_ERR_FORMAT,
                "%s: no group '/examples' (not a TFF HDF5 ClientData file: expected /examples/<client_id>/<feature>)",
                path);
  ex = H5Gopen2(fm__h5(cd)->file, "examples", H5P_DEFAULT);
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
  fm__h5(cd)->ids = l.names;
  l.names = NULL;
  l.n = l.cap = 0;
  fm__h5(cd)->counts = fm__calloc(cd->num_clients, sizeof *fm__h5(cd)->counts);
  FM_CHECK_GOTO(rc, fm__h5(cd)->counts != NULL, done, FM_ERR_NOMEM, "out of memory opening '%s'", path);

  long long nc = 0;
  int got = fm__h5_read_int_attr(fm__h5(cd)->file, "num_classes", path, &nc);
  if (got < 0) {
    rc = got;
    goto done;
  }
  FM_CHECK_GOTO(rc, nc >= 0, done, FM_ERR_FORMAT, "%s: root attribute num_classes = %lld is negative", path, nc);
  cd->num_classes = (size_t)nc;

  for (size_t i = 0; i < cd->num_clients; i++) {
    const char *id = fm__h5(cd)->ids[i];
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
    fm__h5(cd)->counts[i] = n;
    fm__h5(cd)->total += n;

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
                      cd->x_name, a, fm__h5(cd)->ids[ref], b);
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
  hid_t g = H5Gopen2(fm__h5(cd)->file, "examples", H5P_DEFAULT), cg = -1;
  if (g >= 0) cg = H5Gopen2(g, fm__h5(cd)->ids[i], H5P_DEFAULT);
  if (g >= 0) H5Gclose(g);
  if (cg < 0) FM_ERR(FM_ERR_FORMAT, "%s: client '%s': cannot open '/examples/%s'", cd->path, fm__h5(cd)->ids[i], fm__h5(cd)->ids[i]);
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
                      fm__h5(cd)->ids[i], feat, D ? k / D : k);
  }
  return FM_OK;
}

/* ---- any feature: strings and numbers ------------------------------------- */

/* Open feature feat of client i's group cg and check it is still (n, ...)
 * (lock held). *count = number of values; m filled. */
static int fm__open_any_feature(const fm_client_data *cd, size_t i, hid_t cg, const char *feat, fm__dset_meta *m,
                                hid_t *d, size_t *count) {
  const char *id = fm__h5(cd)->ids[i];
  FM_CALL(fm__dset_meta_get(cg, cd->path, id, feat, m));
  FM_CHECK(m->dims[0] == fm__h5(cd)->counts[i], FM_ERR_FORMAT, "%s: client '%s': feature '%s' changed since the file was opened",
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
  const char *id = fm__h5(cd)->ids[i], *path = cd->path;
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

/* Read client i's numeric feature into a new buffer as `as` (file data). */
static int fm__file_feature(const fm_client_data *cd, size_t i, const char *feature, fm_dtype as, void **out,
                            size_t *count) {
  const char *id = fm__h5(cd)->ids[i], *path = cd->path;
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

/* ---- the source's methods ----------------------------------------------------- */

static const char *fm__h5_client_id(const fm_client_data *cd, size_t i) { return fm__h5(cd)->ids[i]; }

static size_t fm__h5_num_examples(const fm_client_data *cd, size_t i) { return fm__h5(cd)->counts[i]; }

static uint64_t fm__h5_total_examples(const fm_client_data *cd) { return fm__h5(cd)->total; }

/* y (checked against num_classes) and x if want_x (checked finite). */
static int fm__h5_load(const fm_client_data *cd, size_t i, int want_x, fm_examples *out) {
  const char *id = fm__h5(cd)->ids[i];
  const size_t n = out->n, D = out->num_features;
  FM_CALL(fm__cd_alloc_examples(cd, i, want_x, out));
  int rc = FM_OK;
  fm__h5_lock();
  hid_t cg = fm__open_client_group(cd, i);
  if (cg < 0) rc = FM_ERR_FORMAT;
  if (rc == FM_OK && want_x) rc = fm__read_feature(cd, cg, id, cd->x_name, H5T_NATIVE_FLOAT, n, out->x);
  if (rc == FM_OK) rc = fm__read_feature(cd, cg, id, cd->y_name, H5T_NATIVE_INT32, n, out->y);
  if (cg >= 0) H5Gclose(cg);
  fm__h5_unlock();
  if (rc != FM_OK) return rc;
  for (size_t r = 0; r < n; r++) {
    int32_t v = out->y[r];
    FM_CHECK(v >= 0, FM_ERR_FORMAT, "%s: client '%s': feature '%s' has negative label %d at example %zu", cd->path,
             id, cd->y_name, (int)v, r);
    FM_CHECK(cd->num_classes == 0 || (size_t)v < cd->num_classes, FM_ERR_FORMAT,
             "%s: client '%s': feature '%s' has label %d at example %zu but the file's num_classes is %zu", cd->path,
             id, cd->y_name, (int)v, r, cd->num_classes);
  }
  /* float64 values beyond float32's range arrive here as infinities too. */
  if (want_x) FM_CALL(fm__check_finite(cd, i, cd->x_name, out->x, n * D, D));
  return FM_OK;
}

static int fm__h5_load_strings(const fm_client_data *cd, size_t i, const char *feature, char ***out,
                               size_t *count) {
  fm__h5_lock();
  int rc = fm__read_strings_locked(cd, i, feature, out, count);
  fm__h5_unlock();
  return rc;
}

static void fm__h5_destroy(fm_client_data *cd) {
  fm__h5_src *s = cd->src;
  if (!s) return;
  if (s->file >= 0) {
    fm__h5_lock();
    H5Fclose(s->file);
    fm__h5_unlock();
  }
  if (s->ids)
    for (size_t i = 0; i < cd->num_clients; i++) fm__free(s->ids[i]);
  fm__free(s->ids);
  fm__free(s->counts);
  fm__free(s);
  cd->src = NULL;
}

static const fm__cd_source_ops fm__h5_ops = {
    .name = "HDF5",
    .client_id = fm__h5_client_id,
    .num_examples = fm__h5_num_examples,
    .total_examples = fm__h5_total_examples,
    .load = fm__h5_load,
    .load_strings = fm__h5_load_strings,
    .load_feature = fm__file_feature,
    .destroy = fm__h5_destroy,
};

int fm__cd_open_h5(const char *path, const fm_data_options *opt, fm_data_kind kind, fm_client_data **out) {
  *out = NULL;
  fm_client_data *cd = fm__calloc(1, sizeof *cd);
  fm__h5_src *s = fm__calloc(1, sizeof *s);
  if (!cd || !s) {
    fm__free(s);
    fm__free(cd);
    return FM_ERR_NOMEM;
  }
  s->file = -1;
  cd->ops = &fm__h5_ops;
  cd->src = s;
  cd->kind = kind;
  cd->path = fm__strdup(path);
  if (!cd->path || fm__cache_create(&cd->cache) != FM_OK) {
    fm__cd_free(cd);
    return FM_ERR_NOMEM;
  }
  fm__h5_lock();
  int rc = fm__open_locked(cd, opt);
  fm__h5_unlock();
  if (rc != FM_OK) {
    fm__cd_free(cd);
    return rc;
  }
  *out = cd;
  return FM_OK;
}
