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
 * Files: /examples/f_00000/{x float32 (n, d), y int32 (n)}, root attributes
 * num_classes, num_clients, num_features, generator = "synthetic", alpha,
 * beta, iid, seed, test_fraction, max_examples, split; written to
 * "<path>.tmp" and renamed into place.
 *
 * Deliberately does not: normalise x, balance classes, or parallelise the
 * generation (it is I/O bound and must stay bit-reproducible). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fedmpi/data.h"
#include "h5lock.h"
#include "internal.h"

#define FM__SYNTH_SHARED_CLIENT ((uint64_t)1 << 47)
#define FM__SYNTH_MAX_N 1000000000.0

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
  f->file = fm__h5_create_file(f->tmp);
  FM_CHECK(f->file >= 0, FM_ERR_IO, "cannot create '%s' (directory missing or not writable?)", f->tmp);
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

/* Close (lock held); returns FM_ERR_IO if the final flush fails (recorded
 * only if report, so cleanup after an error keeps the first message). */
static int fm__synth_file_close(fm__synth_file *f, int report) {
  int rc = FM_OK;
  if (f->examples >= 0) H5Gclose(f->examples);
  f->examples = -1;
  if (f->file >= 0 && H5Fclose(f->file) < 0)
    rc = report ? FM_ERR(FM_ERR_IO, "%s: cannot flush and close (disk full?)", f->tmp) : FM_ERR_IO;
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

/* Generator state shared by all clients. */
typedef struct {
  const fm_synth_options *o;
  double *sd;       /* (d) sqrt(j^-1.2) */
  double *W;        /* (d, C) this client's (or the shared) model */
  double *b;        /* (C) */
  double *v;        /* (d) mean of x */
  double *logits;   /* (C) */
} fm__synth_gen;

/* Draw client k: *n examples into freshly allocated x (n, d), y (n). */
static int fm__synth_client(fm__synth_gen *gen, uint64_t k, size_t *n_out, float **x_out, int32_t **y_out) {
  const fm_synth_options *o = gen->o;
  size_t d = o->num_features, C = o->num_classes;
  fm_rng r;
  fm_rng_init(&r, o->seed, 0, k, FM_RNG_SYNTH);
  double nd = floor(exp(4.0 + 2.0 * fm_rng_normal(&r))) + 50.0;
  if (o->max_examples > 0 && nd > (double)o->max_examples) nd = (double)o->max_examples;
  FM_CHECK(nd <= FM__SYNTH_MAX_N, FM_ERR_OVERFLOW,
           "synthetic client %llu drew %.0f examples (lognormal tail); set max_examples to cap it",
           (unsigned long long)k, nd);
  size_t n = (size_t)nd;
  if (!o->iid) {
    double u = o->alpha * fm_rng_normal(&r);
    double B = o->beta * fm_rng_normal(&r);
    for (size_t j = 0; j < d; j++) gen->v[j] = B + fm_rng_normal(&r);
    for (size_t i = 0; i < d * C; i++) gen->W[i] = u + fm_rng_normal(&r);
    for (size_t c = 0; c < C; c++) gen->b[c] = u + fm_rng_normal(&r);
  }
  float *x = fm__malloc(n * d * sizeof *x);
  int32_t *y = fm__malloc(n * sizeof *y);
  if (!x || !y) {
    fm__free(x);
    fm__free(y);
    return FM_ERR(FM_ERR_NOMEM, "out of memory for synthetic client %llu (%zu x %zu)", (unsigned long long)k, n, d);
  }
  for (size_t e = 0; e < n; e++) {
    float *xe = x + e * d; /* (d) */
    for (size_t c = 0; c < C; c++) gen->logits[c] = gen->b[c];
    for (size_t j = 0; j < d; j++) {
      xe[j] = (float)(gen->v[j] + gen->sd[j] * fm_rng_normal(&r));
      const double xj = (double)xe[j];
      const double *Wj = gen->W + j * C; /* row j of W (C) */
      for (size_t c = 0; c < C; c++) gen->logits[c] += xj * Wj[c];
    }
    size_t best = 0;
    for (size_t c = 1; c < C; c++)
      if (gen->logits[c] > gen->logits[best]) best = c;
    y[e] = (int32_t)best;
  }
  *n_out = n;
  *x_out = x;
  *y_out = y;
  return FM_OK;
}

int fm_synth_write(const fm_synth_options *o, const char *train_path, const char *test_path) {
  FM_CHECK(o && train_path, FM_ERR_INVALID_ARG, "fm_synth_write: options and train_path must not be NULL");
  FM_CHECK(o->num_clients >= 1 && (uint64_t)o->num_clients < FM__SYNTH_SHARED_CLIENT, FM_ERR_INVALID_ARG,
           "synthetic data: num_clients must be in 1..2^47 (got %zu)", o->num_clients);
  FM_CHECK(o->num_features >= 1, FM_ERR_INVALID_ARG, "synthetic data: num_features must be >= 1");
  FM_CHECK(o->num_classes >= 2 && o->num_classes <= 1u << 30, FM_ERR_INVALID_ARG,
           "synthetic data: num_classes must be >= 2 (got %zu)", o->num_classes);
  FM_CHECK(o->test_fraction >= 0.0 && o->test_fraction <= 1.0, FM_ERR_INVALID_ARG,
           "synthetic data: test_fraction must be in [0, 1] (got %g)", o->test_fraction);
  FM_CHECK(isfinite(o->alpha) && isfinite(o->beta) && o->alpha >= 0.0 && o->beta >= 0.0, FM_ERR_INVALID_ARG,
           "synthetic data: alpha and beta must be finite and >= 0 (got %g, %g)", o->alpha, o->beta);
  FM_CHECK(!test_path || strcmp(train_path, test_path) != 0, FM_ERR_INVALID_ARG,
           "synthetic data: train and test paths are the same ('%s')", train_path);

  const size_t K = o->num_clients, d = o->num_features, C = o->num_classes;
  int rc = FM_OK, locked = 0;
  fm__synth_file files[2] = {{train_path, NULL, -1, -1}, {test_path, NULL, -1, -1}};
  const int nfiles = test_path ? 2 : 1;
  fm__synth_gen gen = {o, NULL, NULL, NULL, NULL, NULL};
  float *x = NULL, *xs = NULL;
  int32_t *y = NULL, *ys = NULL;
  uint32_t *perm = NULL;

  gen.sd = fm__malloc(d * sizeof *gen.sd);
  gen.W = fm__malloc(d * C * sizeof *gen.W);
  gen.b = fm__malloc(C * sizeof *gen.b);
  gen.v = fm__calloc(d, sizeof *gen.v);
  gen.logits = fm__malloc(C * sizeof *gen.logits);
  FM_CHECK_GOTO(rc, gen.sd && gen.W && gen.b && gen.v && gen.logits, done, FM_ERR_NOMEM,
                "out of memory for the synthetic generator (d %zu, C %zu)", d, C);
  for (size_t j = 0; j < d; j++) gen.sd[j] = sqrt(pow((double)(j + 1), -1.2));
  if (o->iid) {
    fm_rng r;
    fm_rng_init(&r, o->seed, 0, FM__SYNTH_SHARED_CLIENT, FM_RNG_SYNTH);
    for (size_t i = 0; i < d * C; i++) gen.W[i] = fm_rng_normal(&r);
    for (size_t c = 0; c < C; c++) gen.b[c] = fm_rng_normal(&r);
  }

  for (int f = 0; f < nfiles; f++) {
    files[f].tmp = fm__h5_tmp_name(files[f].path);
    FM_CHECK_GOTO(rc, files[f].tmp != NULL, done, FM_ERR_NOMEM, "out of memory");
  }
  fm__h5_lock();
  locked = 1;
  for (int f = 0; f < nfiles; f++) FM_CALL_GOTO(rc, fm__synth_file_create(&files[f], o, f ? "test" : "train"), done);
  fm__h5_unlock();
  locked = 0;

  int width = 5;
  for (size_t k = K - 1; k >= 100000; k /= 10) width++;
  for (size_t k = 0; k < K; k++) {
    size_t n = 0;
    char id[32];
    if (snprintf(id, sizeof id, "f_%0*zu", width, k) >= (int)sizeof id) id[sizeof id - 1] = '\0';
    FM_CALL_GOTO(rc, fm__synth_client(&gen, k, &n, &x, &y), done);

    /* Permute, then split: rows perm[0 .. n - n_test) train, the rest test. */
    size_t n_test = (size_t)llround(o->test_fraction * (double)n);
    if (n_test > n) n_test = n;
    size_t n_train = n - n_test;
    perm = fm__malloc(n * sizeof *perm);
    xs = fm__malloc(n * d * sizeof *xs);
    ys = fm__malloc(n * sizeof *ys);
    FM_CHECK_GOTO(rc, perm && xs && ys, done, FM_ERR_NOMEM, "out of memory for synthetic client %zu", k);
    for (size_t e = 0; e < n; e++) perm[e] = (uint32_t)e;
    fm_rng s;
    fm_rng_init(&s, o->seed, 0, k, FM_RNG_SPLIT);
    fm_rng_shuffle_u32(&s, perm, n);
    for (size_t e = 0; e < n; e++) {
      memcpy(xs + e * d, x + (size_t)perm[e] * d, d * sizeof *xs);
      ys[e] = y[perm[e]];
    }
    fm__h5_lock();
    locked = 1;
    FM_CALL_GOTO(rc, fm__write_client(&files[0], id, n_train, d, xs, ys), done);
    if (nfiles == 2) FM_CALL_GOTO(rc, fm__write_client(&files[1], id, n_test, d, xs + n_train * d, ys + n_train), done);
    fm__h5_unlock();
    locked = 0;
    fm__free(x);
    fm__free(y);
    fm__free(xs);
    fm__free(ys);
    fm__free(perm);
    x = xs = NULL;
    y = ys = NULL;
    perm = NULL;
  }

  fm__h5_lock();
  locked = 1;
  for (int f = 0; f < nfiles; f++) {
    int rc2 = fm__synth_file_close(&files[f], rc == FM_OK);
    if (rc == FM_OK) rc = rc2;
  }
  fm__h5_unlock();
  locked = 0;
  for (int f = 0; f < nfiles && rc == FM_OK; f++) rc = fm__h5_commit_tmp(files[f].tmp, files[f].path);

done:
  if (!locked) fm__h5_lock();
  for (int f = 0; f < nfiles; f++) {
    fm__synth_file_close(&files[f], 0);
    if (rc != FM_OK && files[f].tmp) remove(files[f].tmp);
    fm__free(files[f].tmp);
  }
  fm__h5_unlock();
  fm__free(x);
  fm__free(y);
  fm__free(xs);
  fm__free(ys);
  fm__free(perm);
  fm__free(gen.sd);
  fm__free(gen.W);
  fm__free(gen.b);
  fm__free(gen.v);
  fm__free(gen.logits);
  return rc;
}
