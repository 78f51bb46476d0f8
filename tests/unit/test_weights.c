/* tests/unit/test_weights.c — weights files: exact save/load round trip with
 * nested tensor names, the documented attributes, atomic replacement, and
 * the errors: tensor missing, shape differs, extra tensor, a group in place of
 * a tensor (FM_ERR_LAYOUT_MISMATCH), wrong format / version / ClientData
 * file / text file (FM_ERR_FORMAT), missing file (FM_ERR_IO). w is untouched
 * when loading fails. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"
#include "fedmpi/io.h"
#include "fedmpi/model.h"
#include "fedmpi/rng.h"

static int msg_has(const char *needle) {
  if (strstr(fm_last_error(), needle)) return 1;
  fprintf(stderr, "last error '%s' lacks '%s'\n", fm_last_error(), needle);
  return 0;
}

/* dense_0/kernel (4, 3), dense_0/bias (3), bn/moving/mean (2, 2, 1) [not trainable], plus extra. */
static fm_layout *make_layout(size_t kernel_cols, int with_extra, int bias_as_group_parent) {
  fm_layout *l = NULL;
  assert_int_equal(fm_layout_create(&l), FM_OK);
  size_t k[] = {4, kernel_cols}, b[] = {3}, m[] = {2, 2, 1}, e[] = {5};
  assert_int_equal(fm_layout_add(l, "dense_0/kernel", 2, k, 1), FM_OK);
  assert_int_equal(fm_layout_add(l, bias_as_group_parent ? "dense_0" : "dense_0/bias", 1, b, 1), FM_OK);
  if (with_extra) assert_int_equal(fm_layout_add(l, "extra", 1, e, 1), FM_OK);
  assert_int_equal(fm_layout_add(l, "bn/moving/mean", 3, m, 0), FM_OK);
  return l;
}

static float *random_weights(const fm_layout *l, uint64_t seed) {
  size_t P = fm_layout_numel(l);
  float *w = malloc(P * sizeof *w);
  fm_rng r;
  fm_rng_init(&r, seed, 0, 0, FM_RNG_USER);
  for (size_t i = 0; i < P; i++) w[i] = (float)fm_rng_normal(&r);
  return w;
}

static void test_roundtrip(void **state) {
  (void)state;
  fm_layout *l = make_layout(3, 0, 0);
  size_t P = fm_layout_numel(l);
  assert_int_equal(P, 12 + 3 + 4);
  float *w = random_weights(l, 1);
  assert_int_equal(fm_weights_save("w.h5", l, w, "mlp:3"), FM_OK);
  assert_int_equal(access("w.h5.tmp", F_OK), -1);
  float *w2 = calloc(P, sizeof *w2);
  assert_int_equal(fm_weights_load("w.h5", l, w2), FM_OK);
  assert_memory_equal(w, w2, P * sizeof *w);

  /* Overwrite with other weights: the file is replaced whole. */
  float *w3 = random_weights(l, 2);
  assert_int_equal(fm_weights_save("w.h5", l, w3, "mlp:3"), FM_OK);
  assert_int_equal(fm_weights_load("w.h5", l, w2), FM_OK);
  assert_memory_equal(w3, w2, P * sizeof *w);

  /* The documented layout, read with plain HDF5. */
  hid_t f = H5Fopen("w.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  char *s = NULL;
  hid_t a = H5Aopen(f, "fedmpi_format", H5P_DEFAULT);
  assert_true(H5Aread(a, t, &s) >= 0);
  assert_string_equal(s, FM_WEIGHTS_FORMAT);
  H5free_memory(s);
  H5Aclose(a);
  a = H5Aopen(f, "model", H5P_DEFAULT);
  assert_true(H5Aread(a, t, &s) >= 0);
  assert_string_equal(s, "mlp:3");
  H5free_memory(s);
  H5Aclose(a);
  H5Tclose(t);
  int v = 0;
  a = H5Aopen(f, "format_version", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_INT, &v) >= 0);
  H5Aclose(a);
  assert_int_equal(v, FM_WEIGHTS_FORMAT_VERSION);
  hid_t d = H5Dopen2(f, "/weights/bn/moving/mean", H5P_DEFAULT);
  assert_true(d >= 0);
  hid_t ty = H5Dget_type(d);
  assert_true(H5Tequal(ty, H5T_IEEE_F32LE) > 0);
  H5Tclose(ty);
  hid_t sp = H5Dget_space(d);
  hsize_t dims[3];
  assert_int_equal(H5Sget_simple_extent_dims(sp, dims, NULL), 3);
  assert_true(dims[0] == 2 && dims[1] == 2 && dims[2] == 1);
  H5Sclose(sp);
  a = H5Aopen(d, "trainable", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_INT, &v) >= 0);
  H5Aclose(a);
  assert_int_equal(v, 0);
  a = H5Aopen(d, "index", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_INT, &v) >= 0);
  H5Aclose(a);
  assert_int_equal(v, 2);
  float mean[4];
  assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, mean) >= 0);
  assert_memory_equal(mean, w3 + 15, sizeof mean);
  H5Dclose(d);
  d = H5Dopen2(f, "/weights/dense_0/kernel", H5P_DEFAULT);
  a = H5Aopen(d, "trainable", H5P_DEFAULT);
  assert_true(H5Aread(a, H5T_NATIVE_INT, &v) >= 0);
  H5Aclose(a);
  assert_int_equal(v, 1);
  H5Dclose(d);
  H5Fclose(f);

  /* NULL model name is stored as "" and still loads. */
  assert_int_equal(fm_weights_save("w_noname.h5", l, w, NULL), FM_OK);
  assert_int_equal(fm_weights_load("w_noname.h5", l, w2), FM_OK);
  assert_memory_equal(w, w2, P * sizeof *w);
  free(w);
  free(w2);
  free(w3);
  fm_layout_destroy(&l);
}

static void test_layout_mismatches(void **state) {
  (void)state;
  fm_layout *l = make_layout(3, 0, 0);
  fm_layout *l_shape = make_layout(2, 0, 0);
  fm_layout *l_extra = make_layout(3, 1, 0);
  fm_layout *l_group = make_layout(3, 0, 1);
  float *w = random_weights(l, 3);
  float *we = random_weights(l_extra, 4);
  assert_int_equal(fm_weights_save("m.h5", l, w, "m"), FM_OK);
  assert_int_equal(fm_weights_save("m_extra.h5", l_extra, we, "m"), FM_OK);

  size_t P = fm_layout_numel(l_extra);
  float *dst = malloc(P * sizeof *dst);
  for (size_t i = 0; i < P; i++) dst[i] = 7.0f;

  /* shape differs */
  assert_int_equal(fm_weights_load("m.h5", l_shape, dst), FM_ERR_LAYOUT_MISMATCH);
  assert_true(msg_has("m.h5"));
  assert_true(msg_has("'dense_0/kernel'"));
  assert_true(msg_has("[4, 3] in the file"));
  assert_true(msg_has("[4, 2] in the model"));
  for (size_t i = 0; i < fm_layout_numel(l_shape); i++) assert_true(dst[i] == 7.0f); /* untouched */

  /* a tensor missing from the file */
  assert_int_equal(fm_weights_load("m.h5", l_extra, dst), FM_ERR_LAYOUT_MISMATCH);
  assert_true(msg_has("'extra'"));
  assert_true(msg_has("missing"));
  for (size_t i = 0; i < P; i++) assert_true(dst[i] == 7.0f);

  /* an extra tensor in the file */
  assert_int_equal(fm_weights_load("m_extra.h5", l, dst), FM_ERR_LAYOUT_MISMATCH);
  assert_true(msg_has("'extra'"));
  assert_true(msg_has("does not have"));

  /* the model's tensor is a group in the file */
  assert_int_equal(fm_weights_load("m.h5", l_group, dst), FM_ERR_LAYOUT_MISMATCH);
  assert_true(msg_has("'dense_0'"));

  free(w);
  free(we);
  free(dst);
  fm_layout_destroy(&l);
  fm_layout_destroy(&l_shape);
  fm_layout_destroy(&l_extra);
  fm_layout_destroy(&l_group);
}

/* Rewrite a root attribute of an existing file with plain HDF5. */
static void set_root_attr_string(const char *path, const char *name, const char *value) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  if (H5Aexists(f, name) > 0) assert_true(H5Adelete(f, name) >= 0);
  if (value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Awrite(a, t, value) >= 0); /* fixed-length string this time */
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
  }
  H5Fclose(f);
}

static void set_root_attr_int(const char *path, const char *name, int value) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  if (H5Aexists(f, name) > 0) assert_true(H5Adelete(f, name) >= 0);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(H5Awrite(a, H5T_NATIVE_INT, &value) >= 0);
  H5Aclose(a);
  H5Sclose(sp);
  H5Fclose(f);
}

static void test_format_errors(void **state) {
  (void)state;
  fm_layout *l = make_layout(3, 0, 0);
  float *w = random_weights(l, 5);
  float *dst = calloc(fm_layout_numel(l), sizeof *dst);

  /* a fixed-length format string is accepted as well */
  assert_int_equal(fm_weights_save("f_ok.h5", l, w, "m"), FM_OK);
  set_root_attr_string("f_ok.h5", "fedmpi_format", FM_WEIGHTS_FORMAT);
  assert_int_equal(fm_weights_load("f_ok.h5", l, dst), FM_OK);

  assert_int_equal(fm_weights_save("f_fmt.h5", l, w, "m"), FM_OK);
  set_root_attr_string("f_fmt.h5", "fedmpi_format", "something-else");
  assert_int_equal(fm_weights_load("f_fmt.h5", l, dst), FM_ERR_FORMAT);
  assert_true(msg_has("f_fmt.h5"));
  assert_true(msg_has("something-else"));

  set_root_attr_string("f_fmt.h5", "fedmpi_format", NULL);
  assert_int_equal(fm_weights_load("f_fmt.h5", l, dst), FM_ERR_FORMAT);
  assert_true(msg_has("not a fedmpi weights file"));

  assert_int_equal(fm_weights_save("f_ver.h5", l, w, "m"), FM_OK);
  set_root_attr_int("f_ver.h5", "format_version", 2);
  assert_int_equal(fm_weights_load("f_ver.h5", l, dst), FM_ERR_FORMAT);
  assert_true(msg_has("format_version 2"));

  /* a ClientData file is not a weights file */
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 2;
  o.max_examples = 50;
  assert_int_equal(fm_synth_write(&o, "f_data.h5", NULL), FM_OK);
  assert_int_equal(fm_weights_load("f_data.h5", l, dst), FM_ERR_FORMAT);
  assert_true(msg_has("not a fedmpi weights file"));

  FILE *t = fopen("f_text.h5", "w");
  assert_non_null(t);
  fputs("weights? no.\n", t);
  fclose(t);
  assert_int_equal(fm_weights_load("f_text.h5", l, dst), FM_ERR_FORMAT);
  assert_true(msg_has("cannot open 'f_text.h5' as HDF5"));

  assert_int_equal(fm_weights_load("f_missing.h5", l, dst), FM_ERR_IO);
  assert_true(msg_has("f_missing.h5"));

  assert_int_equal(fm_weights_save("no_such_dir/w.h5", l, w, "m"), FM_ERR_IO);
  assert_true(msg_has("no_such_dir/w.h5"));
  assert_int_equal(fm_weights_save(NULL, l, w, "m"), FM_ERR_INVALID_ARG);
  assert_int_equal(fm_weights_load("f_ok.h5", NULL, dst), FM_ERR_INVALID_ARG);

  free(w);
  free(dst);
  fm_layout_destroy(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_layout_mismatches),
      cmocka_unit_test(test_format_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
