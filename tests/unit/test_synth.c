/* tests/unit/test_synth.c — the Synthetic(alpha, beta) generator: the recipe
 * itself (sizes and every label recomputed from the documented Philox
 * streams), determinism (byte-identical files for the same seed), clients
 * independent of the number of clients, the train/test split, the cap, the
 * IID variant, root attributes, option checks and the atomic write. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"

static size_t recipe_n(uint64_t seed, uint64_t k) {
  fm_rng r;
  fm_rng_init(&r, seed, 0, k, FM_RNG_SYNTH);
  return (size_t)floor(exp(4.0 + 2.0 * fm_rng_normal(&r))) + 50;
}

static int files_equal(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int eq = fa && fb;
  while (eq) {
    int ca = fgetc(fa), cb = fgetc(fb);
    if (ca != cb) eq = 0;
    if (ca == EOF || cb == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return eq;
}

/* Check every label of a client against argmax(x W + b), W and b drawn as
 * the recipe says (per-client stream, or the shared IID stream). */
static void check_labels(const fm_synth_options *o, uint64_t k, const fm_examples *ex) {
  size_t d = o->num_features, C = o->num_classes;
  double *W = calloc(d * C, sizeof *W), *b = calloc(C, sizeof *b);
  fm_rng r;
  if (o->iid) {
    fm_rng_init(&r, o->seed, 0, (uint64_t)1 << 47, FM_RNG_SYNTH);
    for (size_t i = 0; i < d * C; i++) W[i] = fm_rng_normal(&r);
    for (size_t c = 0; c < C; c++) b[c] = fm_rng_normal(&r);
  } else {
    fm_rng_init(&r, o->seed, 0, k, FM_RNG_SYNTH);
    (void)fm_rng_normal(&r); /* n_k */
    double u = o->alpha * fm_rng_normal(&r);
    (void)fm_rng_normal(&r); /* B_k */
    for (size_t j = 0; j < d; j++) (void)fm_rng_normal(&r); /* v_k */
    for (size_t i = 0; i < d * C; i++) W[i] = u + fm_rng_normal(&r);
    for (size_t c = 0; c < C; c++) b[c] = u + fm_rng_normal(&r);
  }
  for (size_t e = 0; e < ex->n; e++) {
    size_t best = 0;
    double bestv = -INFINITY;
    for (size_t c = 0; c < C; c++) {
      double z = b[c];
      for (size_t j = 0; j < d; j++) z += (double)ex->x[e * d + j] * W[j * C + c];
      if (z > bestv) {
        bestv = z;
        best = c;
      }
    }
    assert_int_equal(ex->y[e], (int32_t)best);
  }
  free(W);
  free(b);
}

static void test_recipe_and_split(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  assert_true(o.alpha == 1.0 && o.beta == 1.0 && o.iid == 0);
  assert_int_equal(o.num_clients, 30);
  assert_int_equal(o.num_features, 60);
  assert_int_equal(o.num_classes, 10);
  assert_true(o.test_fraction == 0.1);
  assert_int_equal(o.max_examples, 0);
  assert_int_equal(o.seed, 0);
  o.num_clients = 8;
  o.num_features = 10;
  o.num_classes = 5;
  o.seed = 1234;
  assert_int_equal(fm_synth_write(&o, "r_train.h5", "r_test.h5"), FM_OK);
  assert_int_equal(access("r_train.h5.tmp", F_OK), -1);
  assert_int_equal(access("r_test.h5.tmp", F_OK), -1);
  fm_client_data *tr = NULL, *te = NULL;
  assert_int_equal(fm_client_data_open("r_train.h5", NULL, &tr), FM_OK);
  assert_int_equal(fm_client_data_open("r_test.h5", NULL, &te), FM_OK);
  assert_int_equal(fm_client_data_num_clients(tr), 8);
  assert_int_equal(fm_client_data_num_clients(te), 8);
  assert_int_equal(fm_client_data_num_classes(tr), 5);
  int distinct_sizes = 0;
  for (size_t k = 0; k < 8; k++) {
    size_t ntr = fm_client_data_num_examples(tr, k), nte = fm_client_data_num_examples(te, k);
    size_t n = recipe_n(o.seed, k);
    assert_true(n >= 50);
    assert_int_equal(ntr + nte, n);
    assert_int_equal(nte, (size_t)llround(0.1 * (double)n));
    if (k && n != recipe_n(o.seed, k - 1)) distinct_sizes = 1;
    fm_examples a, b;
    assert_int_equal(fm_client_data_load(tr, k, &a), FM_OK);
    assert_int_equal(fm_client_data_load(te, k, &b), FM_OK);
    for (size_t e = 0; e < a.n; e++) assert_true(a.y[e] >= 0 && a.y[e] < 5);
    for (size_t e = 0; e < b.n; e++) assert_true(b.y[e] >= 0 && b.y[e] < 5);
    check_labels(&o, k, &a);
    check_labels(&o, k, &b);
    fm_examples_free(&a);
    fm_examples_free(&b);
  }
  assert_true(distinct_sizes);
  fm_client_data_close(&tr);
  fm_client_data_close(&te);
}

static void test_deterministic(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 6;
  o.max_examples = 300;
  o.seed = 77;
  assert_int_equal(fm_synth_write(&o, "d1_train.h5", "d1_test.h5"), FM_OK);
  assert_int_equal(fm_synth_write(&o, "d2_train.h5", "d2_test.h5"), FM_OK);
  assert_true(files_equal("d1_train.h5", "d2_train.h5"));
  assert_true(files_equal("d1_test.h5", "d2_test.h5"));
  /* Clients do not depend on K, and the test file never changes the train file. */
  o.num_clients = 3;
  assert_int_equal(fm_synth_write(&o, "d3_train.h5", NULL), FM_OK);
  o.seed = 78;
  o.num_clients = 6;
  assert_int_equal(fm_synth_write(&o, "d4_train.h5", NULL), FM_OK);
  fm_client_data *a = NULL, *b = NULL, *c = NULL;
  assert_int_equal(fm_client_data_open("d1_train.h5", NULL, &a), FM_OK);
  assert_int_equal(fm_client_data_open("d3_train.h5", NULL, &b), FM_OK);
  assert_int_equal(fm_client_data_open("d4_train.h5", NULL, &c), FM_OK);
  assert_int_equal(fm_client_data_num_clients(b), 3);
  int differs = 0;
  for (size_t k = 0; k < 3; k++) {
    fm_examples ea, eb, ec;
    assert_int_equal(fm_client_data_load(a, k, &ea), FM_OK);
    assert_int_equal(fm_client_data_load(b, k, &eb), FM_OK);
    assert_int_equal(fm_client_data_load(c, k, &ec), FM_OK);
    assert_true(ea.n <= 300);
    assert_int_equal(ea.n, eb.n);
    assert_memory_equal(ea.x, eb.x, ea.n * ea.num_features * sizeof(float));
    assert_memory_equal(ea.y, eb.y, ea.n * sizeof(int32_t));
    if (ea.n != ec.n || memcmp(ea.x, ec.x, ea.n * ea.num_features * sizeof(float)) != 0) differs = 1;
    fm_examples_free(&ea);
    fm_examples_free(&eb);
    fm_examples_free(&ec);
  }
  assert_true(differs); /* another seed, other data */
  fm_client_data_close(&a);
  fm_client_data_close(&b);
  fm_client_data_close(&c);
}

static void test_cap_and_iid(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 10;
  o.num_features = 8;
  o.num_classes = 4;
  o.max_examples = 64;
  o.iid = 1;
  o.seed = 5;
  o.test_fraction = 0.25;
  assert_int_equal(fm_synth_write(&o, "i_train.h5", "i_test.h5"), FM_OK);
  fm_client_data *tr = NULL, *te = NULL;
  assert_int_equal(fm_client_data_open("i_train.h5", NULL, &tr), FM_OK);
  assert_int_equal(fm_client_data_open("i_test.h5", NULL, &te), FM_OK);
  double mean0 = 0.0;
  size_t count = 0;
  for (size_t k = 0; k < 10; k++) {
    size_t n = recipe_n(o.seed, k);
    if (n > 64) n = 64;
    assert_int_equal(fm_client_data_num_examples(tr, k) + fm_client_data_num_examples(te, k), n);
    assert_int_equal(fm_client_data_num_examples(te, k), (size_t)llround(0.25 * (double)n));
    fm_examples ex;
    assert_int_equal(fm_client_data_load(tr, k, &ex), FM_OK);
    check_labels(&o, k, &ex);
    for (size_t e = 0; e < ex.n; e++) mean0 += ex.x[e * 8];
    count += ex.n;
    fm_examples_free(&ex);
  }
  /* IID: v_k = 0 and x_0 ~ N(0, 1), so the mean of feature 0 is near 0. */
  assert_true(count > 200);
  assert_true(fabs(mean0 / (double)count) < 0.25);
  fm_client_data_close(&tr);
  fm_client_data_close(&te);
}

static void test_attributes(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 2;
  o.alpha = 0.5;
  o.beta = 0.25;
  o.max_examples = 55;
  o.seed = 9;
  assert_int_equal(fm_synth_write(&o, "a_train.h5", "a_test.h5"), FM_OK);
  hid_t f = H5Fopen("a_test.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(f >= 0);
  const char *names[] = {"num_classes", "generator", "alpha", "beta", "iid", "seed", "num_clients", "split"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) assert_true(H5Aexists(f, names[i]) > 0);
  long long v = 0;
  double dv = 0;
  hid_t a = H5Aopen(f, "num_classes", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
  H5Aclose(a);
  assert_int_equal(v, 10);
  a = H5Aopen(f, "num_clients", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
  H5Aclose(a);
  assert_int_equal(v, 2);
  a = H5Aopen(f, "seed", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
  H5Aclose(a);
  assert_int_equal(v, 9);
  a = H5Aopen(f, "iid", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
  H5Aclose(a);
  assert_int_equal(v, 0);
  a = H5Aopen(f, "alpha", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &dv) >= 0);
  H5Aclose(a);
  assert_true(dv == 0.5);
  a = H5Aopen(f, "beta", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &dv) >= 0);
  H5Aclose(a);
  assert_true(dv == 0.25);
  char *s = NULL;
  a = H5Aopen(f, "generator", H5P_DEFAULT);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  assert_true(H5Aread(a, t, &s) >= 0);
  assert_string_equal(s, "synthetic");
  H5free_memory(s);
  H5Aclose(a);
  a = H5Aopen(f, "split", H5P_DEFAULT);
  assert_true(H5Aread(a, t, &s) >= 0);
  assert_string_equal(s, "test");
  H5free_memory(s);
  H5Aclose(a);
  H5Tclose(t);
  /* datasets: x float32 (n, d), y int32 (n) */
  hid_t d = H5Dopen2(f, "/examples/f_00000/x", H5P_DEFAULT);
  assert_true(d >= 0);
  hid_t ty = H5Dget_type(d);
  assert_true(H5Tequal(ty, H5T_IEEE_F32LE) > 0);
  H5Tclose(ty);
  H5Dclose(d);
  d = H5Dopen2(f, "/examples/f_00001/y", H5P_DEFAULT);
  assert_true(d >= 0);
  ty = H5Dget_type(d);
  assert_true(H5Tequal(ty, H5T_STD_I32LE) > 0);
  H5Tclose(ty);
  H5Dclose(d);
  H5Fclose(f);
}

static void test_bad_options(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.max_examples = 60;
  fm_synth_options b = o;
  b.num_clients = 0;
  assert_int_equal(fm_synth_write(&b, "x.h5", NULL), FM_ERR_INVALID_ARG);
  b = o;
  b.num_classes = 1;
  assert_int_equal(fm_synth_write(&b, "x.h5", NULL), FM_ERR_INVALID_ARG);
  b = o;
  b.test_fraction = 1.5;
  assert_int_equal(fm_synth_write(&b, "x.h5", NULL), FM_ERR_INVALID_ARG);
  b = o;
  b.alpha = -1;
  assert_int_equal(fm_synth_write(&b, "x.h5", NULL), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_synth_write(&o, "same.h5", "same.h5"), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_synth_write(NULL, "x.h5", NULL), FM_ERR_INVALID_ARG);
  assert_int_equal(access("x.h5", F_OK), -1);
  /* unwritable location: FM_ERR_IO naming it, nothing left behind */
  assert_int_equal(fm_synth_write(&o, "no_such_dir/train.h5", NULL), FM_ERR_IO);
  assert_non_null(strstr(fm_last_error(), "no_such_dir/train.h5"));
  /* an existing file is replaced whole */
  assert_int_equal(fm_synth_write(&o, "replace.h5", NULL), FM_OK);
  o.num_clients = 2;
  assert_int_equal(fm_synth_write(&o, "replace.h5", NULL), FM_OK);
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("replace.h5", NULL, &cd), FM_OK);
  assert_int_equal(fm_client_data_num_clients(cd), 2);
  fm_client_data_close(&cd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_recipe_and_split),
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_cap_and_iid),
      cmocka_unit_test(test_attributes),
      cmocka_unit_test(test_bad_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
