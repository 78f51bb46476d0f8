/* src/data/synth.c — the Synthetic(alpha, beta) federated dataset of Li et al.
 * (FedProx, MLSys 2020), written as TFF HDF5 ClientData train/test files.
 *
 * Recipe, per client k (d features, C classes):
 *   n_k = floor(exp(4 + 2 z)) + 50, z ~ N(0, 1)   (lognormal(4, 2) + 50; capped by max_examples)
 *   u_k ~ N(0, alpha^2), B_k ~ N(0, beta^2)
 *   v_k[j] ~ N(B_k, 1)              (d)       mean of x
 *   W_k ~ N(u_k, 1) (d, C), b_k ~ N(u_k, 1) (C)
 *   x ~ N(v_k, Sigma), Sigma = diag(j^-1.2), j = 1..d;  y = argmax(x W_k + b_k)
 * Synthetic-IID: one shared W, b ~ N(0, 1) and v_k = 0.
 * Each client draws from its own stream fm_rng(seed, 0, k, FM_RNG_SYNTH), so a
 * client's data does not depend on the number of clients; the shared IID
 * model comes from client index 2^47 of the same purpose. Each client's
 * examples are then permuted with fm_rng(seed, 0, k, FM_RNG_SPLIT); the last
 * round(test_fraction * n_k) go to the test file, the rest to the train file
 * (also when test_path is NULL: the train file never depends on it).
 * Labels are computed from the float32-rounded x that is stored.
 *
 * The recipe (fm__synth_client_rows, data_impl.h) is shared with the
 * procedural ClientData source (source_synth.c), which draws a client on
 * load from the same streams: its client k is this file's client k, bit for
 * bit.
 *
 * Files: /examples/f_00000/{x float32 (n, d), y int32 (n)}, root attributes
 * num_classes, num_clients, num_features, generator = "synthetic", alpha,
 * beta, iid, seed, test_fraction, max_examples, split; written to
 * "<path>.tmp" and renamed into place.
 *
 * Deliberately does not: normalise x, balance classes, or parallelise the
 * generation (it is I/O bound and must stay bit-reproducible). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data_impl.h"
#include "fedmpi/data.h"
#include "internal.h"

void fm_synth_defaults(fm_synth_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->alpha = 1.0;
  o->beta = 1.0;
  o->iid = 0;
  o->num_clients = 30;
  o->num_features = 60;
  o->num_classes = 10;
  o->test_fraction = 0.1;
  o->max_examples = 0;
  o->seed = 0;
}

/* One output file being written. */
typedef struct {
  const char *path; /* final name (for messages) */
  char *tmp;        /* "<path>.tmp" */
  hid_t file, examples;
} fm__synth_file;

/* Create the temporary file, /examples and the root attributes (lock held). */
static int fm__synth_file_create(fm__synth_file *f, const fm_synth_options *o, const char *split) {
  f->file = fm__h5_create_mem_file(f->tmp);
  FM_CHECK(f->file >= 0, FM_ERR_IO, "cannot create '%s': %s", f->tmp, strerror(errno));
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  if (gcpl >= 0) H5Pset_obj_track_times(gcpl, 0);
  f->examples = H5Gcreate2(f->file, "examples", H5P_DEFAULT, gcpl >= 0 ? gcpl : H5P_DEFAULT, H5P_DEFAULT);
  if (gcpl >= 0) H5Pclose(gcpl);
  FM_CHECK(f->examples >= 0, FM_ERR_IO, "%s: cannot create group '/examples'", f->tmp);
  int nc = (int)o->num_classes, iid = o->iid ? 1 : 0;
  long long K = (long long)o->num_clients, d = (long long)o->num_features, cap = (long long)o->max_examples;
  FM_CALL(fm__h5_write_attr(f->file, "num_classes", H5T_STD_I32LE, H5T_NATIVE_INT, &nc, f->tmp));
  FM_CALL(fm__h5_write_attr(f->file, "num_clients", H5T_STD_I64LE, H5T_NATIVE_LLONG, &K, f->tmp));
  FM_CALL(fm__h5_write_attr(f->file, "num_features", H5T_STD_I64LE, H5T_NATIVE_LLONG, &d, f->tmp));
  FM_CALL(fm__h5_write_string_attr(f->file, "generator", "synthetic", f->tmp));
  FM_CALL(fm__h5_write_attr(f->file, "alpha", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &o->alpha, f->tmp));
  FM_CALL(fm__h5_write_attr(f->file, "beta", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &o->beta, f->tmp));
  FM_CALL(fm__h5_write_attr(f->file, "iid", H5T_STD_I32LE, H5T_NATIVE_INT, &iid, f->tmp));
  FM_CALL(fm__h5_write_attr(f->file, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &o->seed, f->tmp));
  FM_CALL(fm__h5_write_attr(f->file, "test_fraction", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &o->test_fraction, f->tmp));
  FM_CALL(fm__h5_write_attr(f->file, "max_examples", H5T_STD_I64LE, H5T_NATIVE_LLONG, &cap, f->tmp));
  FM_CALL(fm__h5_write_string_attr(f->file, "split", split, f->tmp));
  return FM_OK;
}

/* Close (lock held). With rc FM_OK the in-memory file is written to its
 * temporary file (fm__h5_close_to_disk), else it is dropped; returns the
 * first error, so cleanup after an error keeps the first message. */
static int fm__synth_file_close(fm__synth_file *f, int rc) {
  if (f->examples >= 0) H5Gclose(f->examples);
  f->examples = -1;
  if (f->file >= 0) rc = fm__h5_close_to_disk(f->file, rc, f->tmp, f->path);
  f->file = -1;
  return rc;
}

static int fm__write_dataset(hid_t g, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                             const void *buf, const char *path, const char *id) {
  int rc = FM_OK;
  hid_t s = H5Screate_simple(rank, dims, NULL), d = -1, dcpl = H5Pcreate(H5P_DATASET_CREATE);
  FM_CHECK_GOTO(rc, s >= 0 && dcpl >= 0, done, FM_ERR_IO, "%s: client '%s': cannot create feature '%s'", path, id,
                name);
  H5Pset_obj_track_times(dcpl, 0); /* no timestamps: same seed, same bytes */
  d = H5Dcreate2(g, name, ftype, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  FM_CHECK_GOTO(rc, d >= 0, done, FM_ERR_IO, "%s: client '%s': cannot create feature '%s'", path, id, name);
  if (dims[0] > 0)
    FM_CHECK_GOTO(rc, H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, done, FM_ERR_IO,
                  "%s: client '%s': cannot write feature '%s' (disk full?)", path, id, name);
done:
  if (d >= 0) H5Dclose(d);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (s >= 0) H5Sclose(s);
  return rc;
}

/* /examples/<id>/x (n, d) float32 and /y (n) int32 (lock held). */
static int fm__write_client(fm__synth_file *f, const char *id, size_t n, size_t d, const float *x,
                            const int32_t *y) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  if (gcpl >= 0) H5Pset_obj_track_times(gcpl, 0);
  hid_t g = H5Gcreate2(f->examples, id, H5P_DEFAULT, gcpl >= 0 ? gcpl : H5P_DEFAULT, H5P_DEFAULT);
  if (gcpl >= 0) H5Pclose(gcpl);
  FM_CHECK(g >= 0, FM_ERR_IO, "%s: cannot create group '/examples/%s'", f->tmp, id);
  hsize_t dx[2] = {(hsize_t)n, (hsize_t)d}, dy[1] = {(hsize_t)n};
  int rc = fm__write_dataset(g, "x", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dx, x, f->tmp, id);
  if (rc == FM_OK) rc = fm__write_dataset(g, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dy, y, f->tmp, id);
  H5Gclose(g);
  return rc;
}

/* ---- the recipe, shared with the procedural source (source_synth.c) ------- */

int fm__synth_check_options(const fm_synth_options *o) {
  FM_CHECK(o, FM_ERR_INVALID_ARG, "synthetic data: options must not be NULL");
  FM_CHECK(o->num_clients >= 1 && (uint64_t)o->num_clients < FM__SYNTH_SHARED_CLIENT, FM_ERR_INVALID_ARG,
           "synthetic data: num_clients must be in 1..2^47 (got %zu)", o->num_clients);
  FM_CHECK(o->num_features >= 1, FM_ERR_INVALID_ARG, "synthetic data: num_features must be >= 1");
  FM_CHECK(o->num_classes >= 2 && o->num_classes <= 1u << 30, FM_ERR_INVALID_ARG,
           "synthetic data: num_classes must be >= 2 (got %zu)", o->num_classes);
  FM_CHECK(o->test_fraction >= 0.0 && o->test_fraction <= 1.0, FM_ERR_INVALID_ARG,
           "synthetic data: test_fraction must be in [0, 1] (got %g)", o->test_fraction);
  FM_CHECK(isfinite(o->alpha) && isfinite(o->beta) && o->alpha >= 0.0 && o->beta >= 0.0, FM_ERR_INVALID_ARG,
           "synthetic data: alpha and beta must be finite and >= 0 (got %g, %g)", o->alpha, o->beta);
  return FM_OK;
}

int fm__synth_model_init(fm__synth_model *m, const fm_synth_options *o) {
  memset(m, 0, sizeof *m);
  FM_CALL(fm__synth_check_options(o));
  m->o = *o;
  const size_t d = o->num_features, C = o->num_classes;
  m->sd = fm__malloc(d * sizeof *m->sd);
  if (o->iid) {
    m->W = fm__malloc(d * C * sizeof *m->W);
    m->b = fm__malloc(C * sizeof *m->b);
  }
  if (!m->sd || (o->iid && (!m->W || !m->b))) {
    fm__synth_model_free(m);
    return FM_ERR(FM_ERR_NOMEM, "out of memory for the synthetic generator (d %zu, C %zu)", d, C);
  }
  for (size_t j = 0; j < d; j++) m->sd[j] = sqrt(pow((double)(j + 1), -1.2));
  if (o->iid) {
    fm_rng r;
    fm_rng_init(&r, o->seed, 0, FM__SYNTH_SHARED_CLIENT, FM_RNG_SYNTH);
    for (size_t i = 0; i < d * C; i++) m->W[i] = fm_rng_normal(&r);
    for (size_t c = 0; c < C; c++) m->b[c] = fm_rng_normal(&r);
  }
  return FM_OK;
}

void fm__synth_model_free(fm__synth_model *m) {
  if (!m) return;
  fm__free(m->sd);
  fm__free(m->W);
  fm__free(m->b);
  m->sd = m->W = m->b = NULL;
}

/* n_k from the first draw of the client's stream, capped: O(1). */
static double fm__synth_size_draw(fm_rng *r, const fm_synth_options *o) {
  double nd = floor(exp(4.0 + 2.0 * fm_rng_normal(r))) + 50.0;
  if (o->max_examples > 0 && nd > (double)o->max_examples) nd = (double)o->max_examples;
  return nd;
}

double fm__synth_client_size(const fm_synth_options *o, uint64_t k) {
  fm_rng r;
  fm_rng_init(&r, o->seed, 0, k, FM_RNG_SYNTH);
  return fm__synth_size_draw(&r, o);
}

void fm__synth_split_sizes(const fm_synth_options *o, size_t n, size_t *n_train, size_t *n_test) {
  size_t t = (size_t)llround(o->test_fraction * (double)n);
  if (t > n) t = n;
  *n_test = t;
  *n_train = n - t;
}

/* Draw client k: *n examples into freshly allocated x (n, d), y (n), in the
 * order the stream draws them. Scratch is per call: thread-safe. */
static int fm__synth_client(const fm__synth_model *m, uint64_t k, size_t *n_out, float **x_out, int32_t **y_out) {
  const fm_synth_options *o = &m->o;
  const size_t d = o->num_features, C = o->num_classes;
  fm_rng r;
  fm_rng_init(&r, o->seed, 0, k, FM_RNG_SYNTH);
  double nd = fm__synth_size_draw(&r, o);
  FM_CHECK(nd <= FM__SYNTH_MAX_N, FM_ERR_OVERFLOW,
           "synthetic client %llu drew %.0f examples (lognormal tail); set max_examples to cap it",
           (unsigned long long)k, nd);
  size_t n = (size_t)nd;
  /* scratch: v (d), logits (C), and this client's W (d, C), b (C) unless IID */
  double *scratch = fm__calloc(d + C + (o->iid ? 0 : d * C + C), sizeof *scratch);
  float *x = fm__malloc((n ? n : 1) * d * sizeof *x);
  int32_t *y = fm__malloc((n ? n : 1) * sizeof *y);
  if (!scratch || !x || !y) {
    fm__free(scratch);
    fm__free(x);
    fm__free(y);
    return FM_ERR(FM_ERR_NOMEM, "out of memory for synthetic client %llu (%zu x %zu)", (unsigned long long)k, n, d);
  }
  double *v = scratch, *logits = scratch + d; /* v = 0 for IID */
  const double *W = m->W, *b = m->b;
  if (!o->iid) {
    double *Wk = logits + C, *bk = Wk + d * C;
    double u = o->alpha * fm_rng_normal(&r);
    double B = o->beta * fm_rng_normal(&r);
    for (size_t j = 0; j < d; j++) v[j] = B + fm_rng_normal(&r);
    for (size_t i = 0; i < d * C; i++) Wk[i] = u + fm_rng_normal(&r);
    for (size_t c = 0; c < C; c++) bk[c] = u + fm_rng_normal(&r);
    W = Wk;
    b = bk;
  }
  for (size_t e = 0; e < n; e++) {
    float *xe = x + e * d; /* (d) */
    for (size_t c = 0; c < C; c++) logits[c] = b[c];
    for (size_t j = 0; j < d; j++) {
      xe[j] = (float)(v[j] + m->sd[j] * fm_rng_normal(&r));
      const double xj = (double)xe[j];
      const double *Wj = W + j * C; /* row j of W (C) */
      for (size_t c = 0; c < C; c++) logits[c] += xj * Wj[c];
    }
    size_t best = 0;
    for (size_t c = 1; c < C; c++)
      if (logits[c] > logits[best]) best = c;
    y[e] = (int32_t)best;
  }
  fm__free(scratch);
  *n_out = n;
  *x_out = x;
  *y_out = y;
  return FM_OK;
}

int fm__synth_client_rows(const fm__synth_model *m, uint64_t k, fm__synth_rows which, fm_examples *out) {
  const fm_synth_options *o = &m->o;
  const size_t d = o->num_features;
  memset(out, 0, sizeof *out);
  size_t n = 0, n_train, n_test;
  float *x = NULL;
  int32_t *y = NULL;
  FM_CALL(fm__synth_client(m, k, &n, &x, &y));
  fm__synth_split_sizes(o, n, &n_train, &n_test);
  /* Permute, then split: rows perm[0 .. n_train) train, the rest test. */
  const size_t first = which == FM__SYNTH_TEST ? n_train : 0;
  const size_t rows = which == FM__SYNTH_TRAIN ? n_train : which == FM__SYNTH_TEST ? n_test : n;
  uint32_t *perm = fm__malloc((n ? n : 1) * sizeof *perm);
  float *xs = fm__malloc((rows ? rows : 1) * d * sizeof *xs);
  int32_t *ys = fm__malloc((rows ? rows : 1) * sizeof *ys);
  if (!perm || !xs || !ys) {
    fm__free(x);
    fm__free(y);
    fm__free(perm);
    fm__free(xs);
    fm__free(ys);
    return FM_ERR(FM_ERR_NOMEM, "out of memory for synthetic client %llu", (unsigned long long)k);
  }
  for (size_t e = 0; e < n; e++) perm[e] = (uint32_t)e;
  fm_rng s;
  fm_rng_init(&s, o->seed, 0, k, FM_RNG_SPLIT);
  fm_rng_shuffle_u32(&s, perm, n);
  for (size_t e = 0; e < rows; e++) {
    memcpy(xs + e * d, x + (size_t)perm[first + e] * d, d * sizeof *xs);
    ys[e] = y[perm[first + e]];
  }
  fm__free(x);
  fm__free(y);
  fm__free(perm);
  out->n = rows;
  out->num_features = d;
  out->x = xs;
  out->y = ys;
  return FM_OK;
}

int fm_synth_write(const fm_synth_options *o, const char *train_path, const char *test_path) {
  FM_CHECK(o && train_path, FM_ERR_INVALID_ARG, "fm_synth_write: options and train_path must not be NULL");
  FM_CALL(fm__synth_check_options(o));
  FM_CHECK(!test_path || strcmp(train_path, test_path) != 0, FM_ERR_INVALID_ARG,
           "synthetic data: train and test paths are the same ('%s')", train_path);

  const size_t K = o->num_clients, d = o->num_features;
  int rc = FM_OK, locked = 0;
  fm__synth_file files[2] = {{train_path, NULL, -1, -1}, {test_path, NULL, -1, -1}};
  const int nfiles = test_path ? 2 : 1;
  fm__synth_model model;
  fm_examples ex = {0};

  FM_CALL(fm__synth_model_init(&model, o));
  for (int f = 0; f < nfiles; f++) {
    files[f].tmp = fm__h5_tmp_name(files[f].path);
    FM_CHECK_GOTO(rc, files[f].tmp != NULL, done, FM_ERR_NOMEM, "out of memory");
  }
  fm__h5_lock();
  locked = 1;
  for (int f = 0; f < nfiles; f++) FM_CALL_GOTO(rc, fm__synth_file_create(&files[f], o, f ? "test" : "train"), done);
  fm__h5_unlock();
  locked = 0;

  for (size_t k = 0; k < K; k++) {
    char id[32];
    fm__client_id(id, sizeof id, k, K);
    /* every example, in split order: the first n_train go to the train file */
    FM_CALL_GOTO(rc, fm__synth_client_rows(&model, k, FM__SYNTH_ALL, &ex), done);
    size_t n_train, n_test;
    fm__synth_split_sizes(o, ex.n, &n_train, &n_test);
    fm__h5_lock();
    locked = 1;
    FM_CALL_GOTO(rc, fm__write_client(&files[0], id, n_train, d, ex.x, ex.y), done);
    if (nfiles == 2)
      FM_CALL_GOTO(rc, fm__write_client(&files[1], id, n_test, d, ex.x + n_train * d, ex.y + n_train), done);
    fm__h5_unlock();
    locked = 0;
    fm_examples_free(&ex);
  }

  fm__h5_lock();
  locked = 1;
  for (int f = 0; f < nfiles; f++) rc = fm__synth_file_close(&files[f], rc);
  fm__h5_unlock();
  locked = 0;
  for (int f = 0; f < nfiles && rc == FM_OK; f++) rc = fm__h5_commit_tmp(files[f].tmp, files[f].path);

done:
  if (!locked) fm__h5_lock();
  for (int f = 0; f < nfiles; f++) {
    fm__synth_file_close(&files[f], rc == FM_OK ? FM_ERR_IO : rc); /* an error path: drop the image */
    if (rc != FM_OK && files[f].tmp) remove(files[f].tmp);
    fm__free(files[f].tmp);
  }
  fm__h5_unlock();
  fm_examples_free(&ex);
  fm__synth_model_free(&model);
  return rc;
}
