/* src/io/weights.c — model weights files ("fedmpi-weights", version 1; the
 * layout is documented in fedmpi/io.h): one float32 dataset per layout
 * tensor under /weights, nested groups for '/' in tensor names, root
 * attributes naming the format, its version and the model.
 *
 * Saving builds the file in memory, writes it to "<path>.tmp", fsyncs it and
 * renames it into place. Loading validates
 * the whole file against the layout (format, version, every tensor present
 * with the same shape, no extra tensors) and reads into a scratch buffer, so
 * w is only written when everything matched.
 *
 * Deliberately does not: convert between layouts (no renaming or reshaping),
 * store optimizer state or metrics, or take an MPI communicator (saving is
 * a single-rank operation). All HDF5 calls hold the library's HDF5 lock. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../data/h5lock.h"
#include "fedmpi/io.h"
#include "internal.h"

#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t fm__wlink_info;
#else
typedef H5L_info_t fm__wlink_info;
#endif

static void fm__dims_text(const size_t *dims, int rank, char *buf, size_t size) {
  size_t used = 0;
  used += (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < rank && used + 1 < size; i++) {
    int w = snprintf(buf + used, size - used, "%s%zu", i ? ", " : "", dims[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (used + 1 < size) snprintf(buf + used, size - used, "]");
}

/* Tensor names become HDF5 paths: no empty, "." or ".." components. */
static int fm__valid_tensor_name(const char *name) {
  if (!name[0] || name[0] == '/') return 0;
  const char *p = name;
  while (*p) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return 0;
    if (!e) break;
    p = e + 1;
    if (!*p) return 0; /* trailing '/' */
  }
  return 1;
}

/* ---- save ----------------------------------------------------------------- */

static int fm__weights_write(hid_t file, const char *path, const fm_layout *l, const float *w,
                             const char *model_name) {
  int rc = FM_OK, version = FM_WEIGHTS_FORMAT_VERSION;
  hid_t g = -1, lcpl = -1, s = -1, d = -1;
  FM_CALL(fm__h5_write_string_attr(file, "fedmpi_format", FM_WEIGHTS_FORMAT, path));
  FM_CALL(fm__h5_write_attr(file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, path));
  FM_CALL(fm__h5_write_string_attr(file, "model", model_name ? model_name : "", path));
  g = H5Gcreate2(file, "weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  lcpl = H5Pcreate(H5P_LINK_CREATE);
  FM_CHECK_GOTO(rc, g >= 0 && lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0, done, FM_ERR_IO,
                "%s: cannot create group '/weights'", path);
  size_t nt = fm_layout_num_tensors(l);
  for (size_t i = 0; i < nt; i++) {
    const fm_tensor_info *t = fm_layout_tensor(l, i);
    hsize_t dims[FM_MAX_DIMS];
    for (int j = 0; j < t->ndim; j++) dims[j] = (hsize_t)t->shape[j];
    s = H5Screate_simple(t->ndim, dims, NULL);
    FM_CHECK_GOTO(rc, s >= 0, done, FM_ERR_IO, "%s: cannot create tensor '%s'", path, t->name);
    d = H5Dcreate2(g, t->name, H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    FM_CHECK_GOTO(rc, d >= 0, done, FM_ERR_IO, "%s: cannot create tensor '%s' (name clashes with a group?)", path,
                  t->name);
    FM_CHECK_GOTO(rc, H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w + t->offset) >= 0, done,
                  FM_ERR_IO, "%s: cannot write tensor '%s' (disk full?)", path, t->name);
    int trainable = t->trainable ? 1 : 0, index = (int)i;
    FM_CALL_GOTO(rc, fm__h5_write_attr(d, "trainable", H5T_STD_I32LE, H5T_NATIVE_INT, &trainable, path), done);
    FM_CALL_GOTO(rc, fm__h5_write_attr(d, "index", H5T_STD_I32LE, H5T_NATIVE_INT, &index, path), done);
    H5Dclose(d);
    H5Sclose(s);
    d = s = -1;
  }
done:
  if (d >= 0) H5Dclose(d);
  if (s >= 0) H5Sclose(s);
  if (lcpl >= 0) H5Pclose(lcpl);
  if (g >= 0) H5Gclose(g);
  return rc;
}

int fm_weights_save(const char *path, const fm_layout *l, const float *w, const char *model_name) {
  FM_CHECK(path && l, FM_ERR_INVALID_ARG, "fm_weights_save: path and layout must not be NULL");
  FM_CHECK(w || fm_layout_numel(l) == 0, FM_ERR_INVALID_ARG, "fm_weights_save: weights must not be NULL");
  size_t nt = fm_layout_num_tensors(l);
  for (size_t i = 0; i < nt; i++) {
    const fm_tensor_info *t = fm_layout_tensor(l, i);
    FM_CHECK(fm__valid_tensor_name(t->name), FM_ERR_INVALID_ARG,
             "fm_weights_save: tensor name '%s' cannot be stored (empty, '.' or '..' path component)", t->name);
  }
  char *tmp = fm__h5_tmp_name(path);
  if (!tmp) return FM_ERR_NOMEM;
  int rc = FM_OK;
  fm__h5_lock();
  /* built in memory and written out by fedmpi: a full disk is an error
   * naming the file, never a failed H5Fclose (see h5lock.h) */
  hid_t f = fm__h5_create_mem_file(tmp);
  if (f < 0) {
    rc = FM_ERR(FM_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
  } else {
    rc = fm__weights_write(f, tmp, l, w, model_name);
    rc = fm__h5_close_to_disk(f, rc, tmp, path);
  }
  fm__h5_unlock();
  if (rc == FM_OK) rc = fm__h5_commit_tmp(tmp, path);
  fm__free(tmp);
  return rc;
}

/* ---- load ----------------------------------------------------------------- */

/* Does every component of the relative path name exist under g? */
static int fm__path_exists(hid_t g, const char *name) {
  char buf[FM_TENSOR_NAME_MAX];
  size_t n = strlen(name);
  if (n >= sizeof buf) return 0;
  memcpy(buf, name, n + 1);
  for (size_t i = 0; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      htri_t e = H5Lexists(g, buf, H5P_DEFAULT);
      buf[i] = c;
      if (e <= 0) return 0;
    }
  }
  return 1;
}

typedef struct {
  const fm_layout *l;
  char extra[256]; /* first dataset of the file not in the layout */
} fm__extra_ctx;

static herr_t fm__find_extra(hid_t g, const char *name, const fm__wlink_info *info, void *op) {
  (void)info;
  fm__extra_ctx *c = op;
  hid_t o = H5Oopen(g, name, H5P_DEFAULT);
  if (o < 0) return 0; /* dangling link: not a tensor */
  H5I_type_t t = H5Iget_type(o);
  H5Oclose(o);
  if (t == H5I_DATASET && fm_layout_find(c->l, name) < 0) {
    snprintf(c->extra, sizeof c->extra, "%s", name);
    return 1; /* stop */
  }
  return 0;
}

/* Read one tensor into buf (numel floats) after checking kind and shape. */
static int fm__read_tensor(hid_t g, const char *path, const fm_tensor_info *t, float *buf) {
  int rc = FM_OK;
  hid_t o = -1, s = -1, ty = -1;
  char a[96], b[96];
  FM_CHECK(fm__path_exists(g, t->name), FM_ERR_LAYOUT_MISMATCH,
           "%s: tensor '%s' of the model is missing from the file", path, t->name);
  o = H5Oopen(g, t->name, H5P_DEFAULT);
  FM_CHECK_GOTO(rc, o >= 0, done, FM_ERR_FORMAT, "%s: cannot open tensor '%s' (corrupted file?)", path, t->name);
  FM_CHECK_GOTO(rc, H5Iget_type(o) == H5I_DATASET, done, FM_ERR_LAYOUT_MISMATCH,
                "%s: '%s' is a group in the file, not a tensor", path, t->name);
  s = H5Dget_space(o);
  ty = H5Dget_type(o);
  FM_CHECK_GOTO(rc, s >= 0 && ty >= 0, done, FM_ERR_FORMAT, "%s: cannot read tensor '%s' metadata", path, t->name);
  FM_CHECK_GOTO(rc, H5Tget_class(ty) == H5T_FLOAT, done, FM_ERR_FORMAT,
                "%s: tensor '%s' is not a floating-point dataset", path, t->name);
  hsize_t hd[H5S_MAX_RANK];
  int rank = H5Sget_simple_extent_ndims(s);
  FM_CHECK_GOTO(rc, rank >= 0, done, FM_ERR_FORMAT, "%s: cannot read tensor '%s' shape", path, t->name);
  H5Sget_simple_extent_dims(s, hd, NULL);
  int same = rank == t->ndim;
  size_t fd[H5S_MAX_RANK];
  for (int j = 0; j < rank; j++) {
    fd[j] = (size_t)hd[j];
    if (same && fd[j] != t->shape[j]) same = 0;
  }
  if (!same) {
    fm__dims_text(fd, rank, a, sizeof a);
    fm__dims_text(t->shape, t->ndim, b, sizeof b);
    rc = FM_ERR(FM_ERR_LAYOUT_MISMATCH, "%s: tensor '%s' has shape %s in the file but %s in the model", path,
                t->name, a, b);
    goto done;
  }
  FM_CHECK_GOTO(rc, H5Dread(o, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, done, FM_ERR_FORMAT,
                "%s: cannot read tensor '%s' (corrupted file?)", path, t->name);
done:
  if (ty >= 0) H5Tclose(ty);
  if (s >= 0) H5Sclose(s);
  if (o >= 0) H5Oclose(o);
  return rc;
}

static int fm__weights_read(hid_t file, const char *path, const fm_layout *l, float *buf) {
  int rc = FM_OK;
  char *fmt = NULL;
  long long version = 0;
  hid_t g = -1;
  int got = fm__h5_read_string_attr(file, "fedmpi_format", path, &fmt);
  if (got < 0) return got;
  FM_CHECK(got == 1, FM_ERR_FORMAT,
           "%s: not a fedmpi weights file (no root attribute 'fedmpi_format'; expected a file written by "
           "fm_weights_save)",
           path);
  FM_CHECK_GOTO(rc, strcmp(fmt, FM_WEIGHTS_FORMAT) == 0, done, FM_ERR_FORMAT,
                "%s: not a fedmpi weights file (fedmpi_format is '%s', expected '%s')", path, fmt, FM_WEIGHTS_FORMAT);
  got = fm__h5_read_int_attr(file, "format_version", path, &version);
  if (got < 0) {
    rc = got;
    goto done;
  }
  FM_CHECK_GOTO(rc, got == 1, done, FM_ERR_FORMAT, "%s: weights file has no root attribute 'format_version'", path);
  FM_CHECK_GOTO(rc, version == FM_WEIGHTS_FORMAT_VERSION, done, FM_ERR_FORMAT,
                "%s: weights format_version %lld is not supported: this fedmpi reads version %d (written by a "
                "different fedmpi release?)",
                path, version, FM_WEIGHTS_FORMAT_VERSION);
  FM_CHECK_GOTO(rc, H5Lexists(file, "weights", H5P_DEFAULT) > 0, done, FM_ERR_FORMAT,
                "%s: weights file has no group '/weights'", path);
  g = H5Gopen2(file, "weights", H5P_DEFAULT);
  FM_CHECK_GOTO(rc, g >= 0, done, FM_ERR_FORMAT, "%s: '/weights' is not a group", path);

  size_t nt = fm_layout_num_tensors(l);
  for (size_t i = 0; i < nt; i++) {
    const fm_tensor_info *t = fm_layout_tensor(l, i);
    FM_CALL_GOTO(rc, fm__read_tensor(g, path, t, buf + t->offset), done);
  }
  fm__extra_ctx ctx;
  ctx.l = l;
  ctx.extra[0] = '\0';
  herr_t st = H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, fm__find_extra, &ctx);
  FM_CHECK_GOTO(rc, st >= 0, done, FM_ERR_FORMAT, "%s: cannot list '/weights' (corrupted file?)", path);
  FM_CHECK_GOTO(rc, ctx.extra[0] == '\0', done, FM_ERR_LAYOUT_MISMATCH,
                "%s: the file has tensor '%s', which the model does not have", path, ctx.extra);
done:
  if (g >= 0) H5Gclose(g);
  fm__free(fmt);
  return rc;
}

int fm_weights_load(const char *path, const fm_layout *l, float *w) {
  FM_CHECK(path && l, FM_ERR_INVALID_ARG, "fm_weights_load: path and layout must not be NULL");
  size_t P = fm_layout_numel(l);
  FM_CHECK(w || P == 0, FM_ERR_INVALID_ARG, "fm_weights_load: weights must not be NULL");
  float *buf = fm__malloc(P * sizeof *buf); /* (P) scratch: w is written only on success */
  if (!buf) return FM_ERR_NOMEM;
  hid_t f = -1;
  fm__h5_lock();
  int rc = fm__h5_open_read(path, &f);
  if (rc == FM_OK) {
    rc = fm__weights_read(f, path, l, buf);
    H5Fclose(f);
  }
  fm__h5_unlock();
  if (rc == FM_OK && P) memcpy(w, buf, P * sizeof *buf);
  fm__free(buf);
  return rc;
}
