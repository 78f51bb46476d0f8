/* tests/unit/test_data.c — the HDF5 ClientData reader and in-memory client
 * data: files written by fedmpi's synthetic generator and by h5py
 * (tests/data/make_h5_fixtures.py; those tests are skipped when no python3
 * with h5py and numpy is found, and fail if the script fails), EMNIST-like
 * structure, id order with odd characters, dtype conversion, empty
 * clients, concurrent loads, and every error path
 * (mismatched rows, float labels, missing /examples, truncated and non-HDF5
 * files, missing file). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"

/* ---- fixtures ---------------------------------------------------------------- */

#include "h5_fixtures.h"

static int msg_has(const char *needle) {
  if (strstr(fm_last_error(), needle)) return 1;
  fprintf(stderr, "last error '%s' lacks '%s'\n", fm_last_error(), needle);
  return 0;
}

static void write_small_synth(const char *train, const char *test, size_t K) {
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = K;
  o.num_features = 6;
  o.num_classes = 3;
  o.max_examples = 80;
  o.seed = 42;
  assert_int_equal(fm_synth_write(&o, train, test), FM_OK);
}

/* ---- files written by fedmpi ---------------------------------------------------- */

static void test_open_synth_file(void **state) {
  (void)state;
  write_small_synth("s_train.h5", "s_test.h5", 5);
  fm_client_data *tr = NULL, *te = NULL;
  assert_int_equal(fm_client_data_open("s_train.h5", NULL, &tr), FM_OK);
  assert_int_equal(fm_client_data_open("s_test.h5", NULL, &te), FM_OK);
  assert_int_equal(fm_client_data_num_clients(tr), 5);
  assert_int_equal(fm_client_data_num_classes(tr), 3);
  assert_string_equal(fm_client_data_path(tr), "s_train.h5");
  int ndim = 0;
  size_t shape[FM_MAX_DIMS];
  fm_client_data_feature_shape(tr, &ndim, shape);
  assert_int_equal(ndim, 1);
  assert_int_equal(shape[0], 6);
  uint64_t total = 0;
  for (size_t i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "f_%05zu", i);
    assert_string_equal(fm_client_data_client_id(tr, i), id);
    assert_string_equal(fm_client_data_client_id(te, i), id);
    fm_examples ex;
    assert_int_equal(fm_client_data_load(tr, i, &ex), FM_OK);
    assert_int_equal(ex.n, fm_client_data_num_examples(tr, i));
    assert_int_equal(ex.num_features, 6);
    for (size_t r = 0; r < ex.n; r++) assert_true(ex.y[r] >= 0 && ex.y[r] < 3);
    total += ex.n;
    fm_examples_free(&ex);
    assert_null(ex.x);
  }
  assert_int_equal(fm_client_data_total_examples(tr), total);
  assert_null(fm_client_data_client_id(tr, 5));
  fm_examples ex;
  assert_int_equal(fm_client_data_load(tr, 5, &ex), FM_ERR_INVALID_ARG);
  size_t nc = 0;
  assert_int_equal(fm_client_data_scan_num_classes(tr, &nc), FM_OK);
  assert_true(nc >= 2 && nc <= 3);
  fm_client_data_close(&tr);
  fm_client_data_close(&te);
  assert_null(tr);
  fm_client_data_close(&tr); /* NULL is fine */
}

/* test_fraction 0: every client of the test file is empty. */
static void test_all_clients_empty(void **state) {
  (void)state;
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = 3;
  o.num_features = 4;
  o.max_examples = 60;
  o.test_fraction = 0.0;
  assert_int_equal(fm_synth_write(&o, "e_train.h5", "e_test.h5"), FM_OK);
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("e_test.h5", NULL, &cd), FM_OK);
  assert_int_equal(fm_client_data_num_clients(cd), 3);
  assert_int_equal(fm_client_data_total_examples(cd), 0);
  int ndim = 0;
  size_t shape[FM_MAX_DIMS];
  fm_client_data_feature_shape(cd, &ndim, shape);
  assert_int_equal(ndim, 1);
  assert_int_equal(shape[0], 4);
  fm_examples ex;
  assert_int_equal(fm_client_data_load(cd, 1, &ex), FM_OK);
  assert_int_equal(ex.n, 0);
  assert_int_equal(ex.num_features, 4);
  fm_examples_free(&ex);
  size_t nc = 99;
  assert_int_equal(fm_client_data_scan_num_classes(cd, &nc), FM_OK);
  assert_int_equal(nc, 0);
  fm_client_data_close(&cd);
}

static void test_concurrent_loads(void **state) {
  (void)state;
  write_small_synth("c_train.h5", NULL, 16);
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("c_train.h5", NULL, &cd), FM_OK);
  const size_t K = fm_client_data_num_clients(cd);
  fm_examples ref[16];
  for (size_t i = 0; i < K; i++) assert_int_equal(fm_client_data_load(cd, i, &ref[i]), FM_OK);
  int bad = 0;
  for (int rep = 0; rep < 4; rep++) {
#pragma omp parallel for num_threads(4) schedule(dynamic, 1) reduction(+ : bad)
    for (long i = 0; i < (long)K; i++) {
      fm_examples ex;
      if (fm_client_data_load(cd, (size_t)i, &ex) != FM_OK) {
        bad++;
        continue;
      }
      if (ex.n != ref[i].n || (ex.n && (memcmp(ex.x, ref[i].x, ex.n * ex.num_features * sizeof(float)) != 0 ||
                                        memcmp(ex.y, ref[i].y, ex.n * sizeof(int32_t)) != 0)))
        bad++;
      fm_examples_free(&ex);
    }
  }
  assert_int_equal(bad, 0);
  for (size_t i = 0; i < K; i++) fm_examples_free(&ref[i]);
  fm_client_data_close(&cd);
}

/* ---- error paths that need no Python ------------------------------------------ */

static void test_missing_file(void **state) {
  (void)state;
  fm_client_data *cd = (fm_client_data *)1;
  assert_int_equal(fm_client_data_open("does_not_exist.h5", NULL, &cd), FM_ERR_IO);
  assert_null(cd);
  assert_true(msg_has("does_not_exist.h5"));
  assert_true(msg_has("No such file"));
}

static void test_text_file(void **state) {
  (void)state;
  FILE *f = fopen("notes.txt", "w");
  assert_non_null(f);
  fputs("this is not an HDF5 file\n", f);
  fclose(f);
  fm_client_data *cd = NULL;
  int rc = fm_client_data_open("notes.txt", NULL, &cd);
  assert_true(rc == FM_ERR_FORMAT || rc == FM_ERR_IO);
  assert_true(msg_has("cannot open 'notes.txt' as HDF5 (not an HDF5 file or corrupted)"));
  assert_null(cd);
}

static void test_truncated_file(void **state) {
  (void)state;
  write_small_synth("t_train.h5", NULL, 4);
  FILE *f = fopen("t_train.h5", "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  assert_true(size > 1000);
  assert_int_equal(truncate("t_train.h5", size / 2), 0);
  fm_client_data *cd = NULL;
  int rc = fm_client_data_open("t_train.h5", NULL, &cd);
  if (rc == FM_OK) {
    /* If the index survived, loading must fail cleanly instead. */
    int any = 0;
    for (size_t i = 0; i < fm_client_data_num_clients(cd); i++) {
      fm_examples ex;
      int lr = fm_client_data_load(cd, i, &ex);
      if (lr != FM_OK) {
        assert_true(lr == FM_ERR_FORMAT || lr == FM_ERR_IO);
        assert_true(msg_has("t_train.h5"));
        any = 1;
      }
      fm_examples_free(&ex);
    }
    fm_client_data_close(&cd);
    assert_true(any);
  } else {
    assert_true(rc == FM_ERR_FORMAT || rc == FM_ERR_IO);
    assert_true(msg_has("t_train.h5"));
    assert_null(cd);
  }
}

static void test_directory(void **state) {
  (void)state;
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open(".", NULL, &cd), FM_ERR_IO);
  assert_int_equal(fm_client_data_open(NULL, NULL, &cd), FM_ERR_INVALID_ARG);
}

/* ---- h5py fixtures -------------------------------------------------------------- */

static void test_emnist_like(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("fx/emnist.h5", NULL, &cd), FM_OK);
  const char *ids[] = {"f0000_14", "f0001_41", "f0002_00", "f0003_07"};
  const size_t counts[] = {3, 0, 5, 2};
  assert_int_equal(fm_client_data_num_clients(cd), 4);
  assert_int_equal(fm_client_data_num_classes(cd), 62);
  assert_int_equal(fm_client_data_total_examples(cd), 10);
  int ndim = 0;
  size_t shape[FM_MAX_DIMS];
  fm_client_data_feature_shape(cd, &ndim, shape);
  assert_int_equal(ndim, 2);
  assert_int_equal(shape[0], 28);
  assert_int_equal(shape[1], 28);
  for (size_t k = 0; k < 4; k++) {
    assert_string_equal(fm_client_data_client_id(cd, k), ids[k]);
    assert_int_equal(fm_client_data_num_examples(cd, k), counts[k]);
    fm_examples ex;
    assert_int_equal(fm_client_data_load(cd, k, &ex), FM_OK);
    assert_int_equal(ex.n, counts[k]);
    assert_int_equal(ex.num_features, 784);
    for (size_t i = 0; i < ex.n; i++) {
      assert_int_equal(ex.y[i], (int32_t)((k * 7 + i) % 62));
      for (size_t j = 0; j < 784; j++) {
        float want = (float)((double)(k + i) + (double)j / 1000.0);
        if (ex.x[i * 784 + j] != want) fail_msg("client %zu example %zu pixel %zu: %g != %g", k, i, j,
                                                (double)ex.x[i * 784 + j], (double)want);
      }
    }
    fm_examples_free(&ex);
  }
  fm_client_data_close(&cd);
}

static void test_odd_ids_sorted(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("fx/odd_ids.h5", NULL, &cd), FM_OK);
  FILE *f = fopen("fx/odd_ids.txt", "r");
  assert_non_null(f);
  char line[256];
  size_t i = 0;
  while (fgets(line, sizeof line, f)) {
    char *tab = strrchr(line, '\t');
    assert_non_null(tab);
    *tab = '\0';
    int k = atoi(tab + 1);
    assert_true(i < fm_client_data_num_clients(cd));
    assert_string_equal(fm_client_data_client_id(cd, i), line);
    fm_examples ex;
    assert_int_equal(fm_client_data_load(cd, i, &ex), FM_OK);
    assert_int_equal(ex.n, (size_t)(k % 4));
    assert_int_equal(ex.num_features, 2);
    for (size_t r = 0; r < ex.n; r++) {
      assert_true(ex.x[2 * r] == (float)k);
      assert_true(ex.x[2 * r + 1] == (float)r + 0.5f);
      assert_int_equal(ex.y[r], k + (int)r);
    }
    fm_examples_free(&ex);
    i++;
  }
  fclose(f);
  assert_int_equal(i, fm_client_data_num_clients(cd));
  assert_int_equal(i, 17);
  for (size_t j = 1; j < i; j++)
    assert_true(strcmp(fm_client_data_client_id(cd, j - 1), fm_client_data_client_id(cd, j)) < 0);
  fm_client_data_close(&cd);
}

static void test_dtype_conversion(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("fx/dtypes.h5", NULL, &cd), FM_OK);
  assert_int_equal(fm_client_data_num_clients(cd), 3);
  assert_string_equal(fm_client_data_client_id(cd, 0), "c_f64");
  assert_string_equal(fm_client_data_client_id(cd, 1), "c_i64");
  assert_string_equal(fm_client_data_client_id(cd, 2), "c_u8");
  assert_int_equal(fm_client_data_num_classes(cd), 0);
  fm_examples ex;
  /* float64 x, int32 y */
  assert_int_equal(fm_client_data_load(cd, 0, &ex), FM_OK);
  assert_int_equal(ex.n, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(ex.y[i], 9 - (int)i);
    for (size_t j = 0; j < 3; j++) assert_true(ex.x[i * 3 + j] == (float)i + (float)j / 4.0f);
  }
  fm_examples_free(&ex);
  /* int64 x, int64 (n, 1) y */
  assert_int_equal(fm_client_data_load(cd, 1, &ex), FM_OK);
  assert_int_equal(ex.n, 2);
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(ex.y[i], 5 + (int)i);
    for (size_t j = 0; j < 3; j++) assert_true(ex.x[i * 3 + j] == -(float)((i * 3 + j) * 1000000));
  }
  fm_examples_free(&ex);
  /* uint8 x and y */
  assert_int_equal(fm_client_data_load(cd, 2, &ex), FM_OK);
  assert_int_equal(ex.n, 4);
  for (size_t i = 0; i < 3; i++)
    for (size_t j = 0; j < 3; j++) assert_true(ex.x[i * 3 + j] == (float)(250 + i + j));
  assert_true(ex.x[9] == 0.0f && ex.x[10] == 1.0f && ex.x[11] == 2.0f);
  for (size_t i = 0; i < 4; i++) assert_int_equal(ex.y[i], (int)i);
  fm_examples_free(&ex);
  size_t nc = 0;
  assert_int_equal(fm_client_data_scan_num_classes(cd, &nc), FM_OK);
  assert_int_equal(nc, 10);
  fm_client_data_close(&cd);
}

static void test_row_mismatch(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("fx/mismatch.h5", NULL, &cd), FM_ERR_FORMAT);
  assert_null(cd);
  assert_true(msg_has("fx/mismatch.h5"));
  assert_true(msg_has("client 'bad_client'"));
  assert_true(msg_has("feature 'x' has 12 rows but 'y' has 10"));
}

static void test_float_labels(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("fx/float_labels.h5", NULL, &cd), FM_ERR_FORMAT);
  assert_true(msg_has("fx/float_labels.h5"));
  assert_true(msg_has("client 'c0'"));
  assert_true(msg_has("feature 'y'"));
  assert_true(msg_has("float"));
}

static void test_no_examples_group(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("fx/no_examples.h5", NULL, &cd), FM_ERR_FORMAT);
  assert_true(msg_has("fx/no_examples.h5"));
  assert_true(msg_has("/examples"));
}

static void test_shape_mismatch(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("fx/shape_mismatch.h5", NULL, &cd), FM_ERR_FORMAT);
  assert_true(msg_has("client 'b'"));
  assert_true(msg_has("(5)"));
  assert_true(msg_has("(4)"));
}

static void test_feature_names(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("fx/no_x.h5", NULL, &cd), FM_ERR_FORMAT);
  assert_true(msg_has("client 'c0'"));
  assert_true(msg_has("'foo'")); /* lists what the client has */
  fm_data_options opt = {.x_feature = "foo"};
  assert_int_equal(fm_client_data_open("fx/no_x.h5", &opt, &cd), FM_OK);
  int ndim = 0;
  size_t shape[FM_MAX_DIMS];
  fm_client_data_feature_shape(cd, &ndim, shape);
  assert_int_equal(ndim, 1);
  assert_int_equal(shape[0], 3);
  fm_client_data_close(&cd);
  fm_data_options bad = {.x_feature = "nope", .y_feature = "label"};
  assert_int_equal(fm_client_data_open("fx/no_x.h5", &bad, &cd), FM_ERR_FORMAT);
  assert_true(msg_has("no feature 'nope'"));
}

static void test_label_outside_num_classes(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_open("fx/bad_label.h5", NULL, &cd), FM_OK);
  fm_examples ex;
  assert_int_equal(fm_client_data_load(cd, 0, &ex), FM_ERR_FORMAT);
  assert_null(ex.x);
  assert_true(msg_has("client 'c0'"));
  assert_true(msg_has("label 5"));
  fm_client_data_close(&cd);
}

/* ---- in-memory data ---------------------------------------------------------- */

static void test_from_memory(void **state) {
  (void)state;
  const size_t counts[] = {2, 0, 3};
  float x[5 * 2];
  int32_t y[5];
  for (int i = 0; i < 10; i++) x[i] = (float)i;
  for (int i = 0; i < 5; i++) y[i] = i % 3;
  const size_t shape[] = {2};
  fm_client_data *cd = NULL;
  assert_int_equal(fm_client_data_from_memory(3, NULL, counts, x, y, 1, shape, &cd), FM_OK);
  x[0] = 99.0f; /* copied: later changes do not show */
  assert_string_equal(fm_client_data_path(cd), "<memory>");
  assert_string_equal(fm_client_data_client_id(cd, 0), "client_0");
  assert_string_equal(fm_client_data_client_id(cd, 2), "client_2");
  assert_int_equal(fm_client_data_total_examples(cd), 5);
  assert_int_equal(fm_client_data_num_classes(cd), 0);
  fm_examples ex;
  assert_int_equal(fm_client_data_load(cd, 2, &ex), FM_OK);
  assert_int_equal(ex.n, 3);
  assert_true(ex.x[0] == 4.0f && ex.x[5] == 9.0f);
  assert_int_equal(ex.y[0], 2);
  fm_examples_free(&ex);
  assert_int_equal(fm_client_data_load(cd, 0, &ex), FM_OK);
  assert_true(ex.x[0] == 0.0f);
  fm_examples_free(&ex);
  assert_int_equal(fm_client_data_load(cd, 1, &ex), FM_OK);
  assert_int_equal(ex.n, 0);
  fm_examples_free(&ex);
  size_t nc = 0;
  assert_int_equal(fm_client_data_scan_num_classes(cd, &nc), FM_OK);
  assert_int_equal(nc, 3);
  fm_client_data_close(&cd);

  /* 12 clients: ids padded to two digits so they sort in index order. */
  size_t c12[12] = {0};
  assert_int_equal(fm_client_data_from_memory(12, NULL, c12, NULL, NULL, 1, shape, &cd), FM_OK);
  assert_string_equal(fm_client_data_client_id(cd, 3), "client_03");
  assert_string_equal(fm_client_data_client_id(cd, 11), "client_11");
  fm_client_data_close(&cd);

  const char *ids[] = {"b", "a", "c"};
  assert_int_equal(fm_client_data_from_memory(3, ids, counts, x, y, 1, shape, &cd), FM_ERR_INVALID_ARG);
  assert_null(cd);
  const size_t zero[] = {0};
  assert_int_equal(fm_client_data_from_memory(3, NULL, counts, x, y, 1, zero, &cd), FM_ERR_INVALID_ARG);
  y[1] = -1;
  assert_int_equal(fm_client_data_from_memory(3, NULL, counts, x, y, 1, shape, &cd), FM_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_synth_file),
      cmocka_unit_test(test_all_clients_empty),
      cmocka_unit_test(test_concurrent_loads),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_text_file),
      cmocka_unit_test(test_truncated_file),
      cmocka_unit_test(test_directory),
      cmocka_unit_test(test_emnist_like),
      cmocka_unit_test(test_odd_ids_sorted),
      cmocka_unit_test(test_dtype_conversion),
      cmocka_unit_test(test_row_mismatch),
      cmocka_unit_test(test_float_labels),
      cmocka_unit_test(test_no_examples_group),
      cmocka_unit_test(test_shape_mismatch),
      cmocka_unit_test(test_feature_names),
      cmocka_unit_test(test_label_outside_num_classes),
      cmocka_unit_test(test_from_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
