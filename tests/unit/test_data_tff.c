/* tests/unit/test_data_tff.c — the reader on files shaped exactly like TFF's
 * real ones (fed_emnist_digitsonly, shakespeare, fed_cifar100, written with
 * h5py by tests/data/make_h5_fixtures.py; skipped without a python3 that has
 * h5py and numpy, failed if the script fails), string features, generic numeric features, the feature listing, the
 * two open kinds, bad input (NaN/Inf, negative labels, wrong dtypes, a
 * client without features, features with different first dimensions), and
 * the bounded client cache (eviction order, the bound, concurrent loads). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"
#include "fm_test.h"

/* ---- fixtures (as in test_data.c) ------------------------------------------------ */

#include "h5_fixtures.h"

static const fm_feature_info *find_info(const fm_client_data *cd, const char *name) {
  for (size_t j = 0; j < fm_client_data_num_feature_infos(cd); j++)
    if (!strcmp(fm_client_data_feature_info(cd, j)->name, name)) return fm_client_data_feature_info(cd, j);
  return NULL;
}

/* ---- TFF's real layouts ------------------------------------------------------------ */

static void test_emnist_digitsonly(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open("fx/fed_emnist_digitsonly.h5", NULL, &cd));
  assert_int_equal(fm_client_data_num_clients(cd), 4);
  assert_int_equal(fm_client_data_total_examples(cd), 9);
  assert_int_equal(fm_client_data_num_classes(cd), 0); /* TFF's files carry no attributes */
  assert_string_equal(fm_client_data_x_feature(cd), "pixels");
  assert_string_equal(fm_client_data_y_feature(cd), "label");
  assert_int_equal(fm_client_data_num_feature_infos(cd), 2);
  const fm_feature_info *px = find_info(cd, "pixels"), *lb = find_info(cd, "label");
  assert_non_null(px);
  assert_non_null(lb);
  assert_int_equal(px->dtype, FM_DTYPE_FLOAT32);
  assert_int_equal(px->ndim, 2);
  assert_int_equal(px->shape[0], 28);
  assert_int_equal(px->shape[1], 28);
  assert_int_equal(lb->dtype, FM_DTYPE_INT32);
  assert_int_equal(lb->ndim, 0);
  assert_string_equal(fm_dtype_name(px->dtype), "float32");
  const size_t counts[] = {3, 4, 0, 2};
  for (size_t k = 0; k < 4; k++) {
    fm_examples ex;
    FM_ASSERT_OK(fm_client_data_load(cd, k, &ex));
    assert_int_equal(ex.n, counts[k]);
    assert_int_equal(ex.num_features, 784);
    for (size_t i = 0; i < ex.n; i++) {
      assert_int_equal(ex.y[i], (int)((k * 3 + i) % 10));
      for (size_t r = 0; r < 28; r++)
        for (size_t c = 0; c < 28; c++) {
          float want = (c == (r + k + i) % 28) ? 0.0f : (r == 0 && c == 27) ? 0.5f : 1.0f;
          if (ex.x[i * 784 + r * 28 + c] != want) fail_msg("client %zu example %zu (%zu, %zu)", k, i, r, c);
        }
    }
    fm_examples_free(&ex);
  }
  size_t nc = 0;
  FM_ASSERT_OK(fm_client_data_scan_num_classes(cd, &nc));
  assert_int_equal(nc, 10);
  fm_client_data_close(&cd);
}

static void test_shakespeare(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  /* Opened for training, snippets only: text, with TFF's character tokenizer (test_data_text.c has the rows) */
  FM_ASSERT_OK(fm_client_data_open("fx/shakespeare.h5", NULL, &cd));
  assert_int_equal(fm_client_data_num_targets(cd), 80);
  assert_int_equal(fm_client_data_num_classes(cd), 90);
  assert_string_equal(fm_client_data_x_feature(cd), "snippets");
  fm_client_data_close(&cd);
  /* with a label feature named, it is not text: the original error, naming what the client has */
  const fm_data_options yo = {.y_feature = "label"};
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/shakespeare.h5", &yo, &cd));
  FM_ASSERT_MSG_HAS("no x feature");
  FM_ASSERT_MSG_HAS("'snippets'");
  assert_null(cd);
  FM_ASSERT_OK(fm_client_data_open_kind("fx/shakespeare.h5", NULL, FM_DATA_ANY, &cd));
  const char *ids[] = {"ALLS_WELL_THAT_ENDS_WELL_HELENA", "AS_YOU_LIKE_IT_NOBODY", "A_LOVER'S_COMPLAINT_MAID",
                       "PERICLES, PRINCE OF TYRE_GOWER", "ROMEO_AND_JULIET_ROMEO"};
  const size_t counts[] = {2, 0, 1, 3, 3};
  assert_int_equal(fm_client_data_num_clients(cd), 5);
  assert_int_equal(fm_client_data_total_examples(cd), 9);
  assert_null(fm_client_data_x_feature(cd));
  assert_null(fm_client_data_y_feature(cd));
  int ndim = -1;
  fm_client_data_feature_shape(cd, &ndim, NULL);
  assert_int_equal(ndim, 0);
  assert_int_equal(fm_client_data_num_feature_infos(cd), 1);
  const fm_feature_info *fi = fm_client_data_feature_info(cd, 0);
  assert_string_equal(fi->name, "snippets");
  assert_int_equal(fi->dtype, FM_DTYPE_STRING);
  assert_int_equal(fi->ndim, 0);
  for (size_t k = 0; k < 5; k++) {
    assert_string_equal(fm_client_data_client_id(cd, k), ids[k]);
    assert_int_equal(fm_client_data_num_examples(cd, k), counts[k]);
  }
  char **s = NULL;
  size_t n = 0;
  FM_ASSERT_OK(fm_client_data_load_strings(cd, 4, "snippets", &s, &n));
  assert_int_equal(n, 3);
  assert_string_equal(s[0], "But, soft! what light through yonder window breaks?");
  assert_string_equal(s[1], "It is the east, and Juliet is the sun.");
  assert_int_equal(strlen(s[2]), 5000);
  fm_strings_free(s, n);
  FM_ASSERT_OK(fm_client_data_load_strings(cd, 3, "snippets", &s, &n));
  assert_int_equal(n, 3);
  assert_string_equal(s[1], "");
  assert_string_equal(s[2], "Caf\xc3\xa9 na\xc3\xafve \xc3\xbc \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac"); /* UTF-8 bytes */
  fm_strings_free(s, n);
  FM_ASSERT_OK(fm_client_data_load_strings(cd, 2, "snippets", &s, &n));
  assert_int_equal(n, 1);
  assert_non_null(strchr(s[0], '\n'));
  fm_strings_free(s, n);
  FM_ASSERT_OK(fm_client_data_load_strings(cd, 1, "snippets", &s, &n)); /* the empty client */
  assert_int_equal(n, 0);
  fm_strings_free(s, n);
  /* What cannot work says so. */
  fm_examples ex;
  FM_ASSERT_ERR(FM_ERR_UNSUPPORTED, fm_client_data_load(cd, 0, &ex));
  FM_ASSERT_MSG_HAS("fx/shakespeare.h5");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load_strings(cd, 0, "tokens", &s, &n));
  FM_ASSERT_MSG_HAS("client 'ALLS_WELL_THAT_ENDS_WELL_HELENA': no feature 'tokens' (it has 'snippets')");
  assert_null(s);
  void *v = NULL;
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load_feature(cd, 0, "snippets", FM_DTYPE_FLOAT32, &v, &n));
  FM_ASSERT_MSG_HAS("feature 'snippets' has string dtype, not a number");
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_data_load_strings(cd, 5, "snippets", &s, &n));
  fm_client_data_close(&cd);
}

static void test_cifar100(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open("fx/fed_cifar100.h5", NULL, &cd));
  assert_int_equal(fm_client_data_num_clients(cd), 12);
  const char *order[] = {"0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9"};
  for (size_t j = 0; j < 12; j++) assert_string_equal(fm_client_data_client_id(cd, j), order[j]);
  assert_string_equal(fm_client_data_x_feature(cd), "image");
  assert_string_equal(fm_client_data_y_feature(cd), "label");
  int ndim = 0;
  size_t shape[FM_MAX_DIMS];
  fm_client_data_feature_shape(cd, &ndim, shape);
  assert_int_equal(ndim, 3);
  assert_true(shape[0] == 32 && shape[1] == 32 && shape[2] == 3);
  assert_int_equal(fm_client_data_num_feature_infos(cd), 3);
  assert_string_equal(fm_client_data_feature_info(cd, 0)->name, "coarse_label");
  assert_int_equal(fm_client_data_feature_info(cd, 0)->dtype, FM_DTYPE_INT64);
  assert_int_equal(fm_client_data_feature_info(cd, 1)->dtype, FM_DTYPE_UINT8);
  assert_int_equal(fm_client_data_feature_info(cd, 1)->ndim, 3);
  assert_int_equal(fm_client_data_feature_info(cd, 2)->dtype, FM_DTYPE_INT64);
  assert_int_equal(fm_client_data_num_examples(cd, 5), 0); /* client "3" */
  /* client "10": k = 10, n = 2 */
  const size_t k = 10, at = 2;
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, at, &ex));
  assert_int_equal(ex.n, 2);
  assert_int_equal(ex.num_features, 3072);
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(ex.y[i], (int)((k * 11 + i) % 100));
    for (size_t r = 0; r < 32; r++)
      for (size_t c = 0; c < 32; c++)
        for (size_t ch = 0; ch < 3; ch++)
          if (ex.x[i * 3072 + (r * 32 + c) * 3 + ch] != (float)((k * 7 + i * 3 + r + c + ch) % 256))
            fail_msg("image value at %zu %zu %zu %zu", i, r, c, ch);
  }
  fm_examples_free(&ex);
  void *v = NULL;
  size_t n = 0;
  FM_ASSERT_OK(fm_client_data_load_feature(cd, at, "coarse_label", FM_DTYPE_INT32, &v, &n));
  assert_int_equal(n, 2);
  for (size_t i = 0; i < 2; i++) assert_int_equal(((int32_t *)v)[i], (int)(((k * 11 + i) % 100) / 5));
  fm_data_free(v);
  FM_ASSERT_OK(fm_client_data_load_feature(cd, at, "image", FM_DTYPE_UINT8, &v, &n));
  assert_int_equal(n, 2 * 3072);
  assert_int_equal(((uint8_t *)v)[3072 + 5], (uint8_t)((k * 7 + 3 + 0 + 1 + 2) % 256));
  fm_data_free(v);
  FM_ASSERT_OK(fm_client_data_load_feature(cd, at, "label", FM_DTYPE_INT64, &v, &n));
  assert_int_equal(((int64_t *)v)[1], (int64_t)((k * 11 + 1) % 100));
  fm_data_free(v);
  FM_ASSERT_OK(fm_client_data_load_feature(cd, at, "image", FM_DTYPE_FLOAT64, &v, &n));
  assert_true(((double *)v)[0] == (double)((k * 7) % 256));
  fm_data_free(v);
  /* uint8 cannot hold 10 * 11 + 1 = 111? it can; int8 is not a target type. */
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_data_load_feature(cd, at, "label", FM_DTYPE_INT8, &v, &n));
  FM_ASSERT_OK(fm_client_data_load_feature(cd, 5, "image", FM_DTYPE_FLOAT32, &v, &n)); /* empty client */
  assert_int_equal(n, 0);
  fm_data_free(v);
  size_t nc = 0;
  FM_ASSERT_OK(fm_client_data_scan_num_classes(cd, &nc));
  assert_true(nc <= 100 && nc >= 90);
  fm_client_data_close(&cd);
}

static void test_fixed_length_strings(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open("fx/dtypes.h5", NULL, &cd));
  char **s = NULL;
  size_t n = 0;
  FM_ASSERT_OK(fm_client_data_load_strings(cd, 0, "id", &s, &n)); /* c_f64: numpy 'S1' */
  assert_int_equal(n, 3);
  assert_string_equal(s[0], "p");
  assert_string_equal(s[2], "r");
  fm_strings_free(s, n);
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load_strings(cd, 0, "x", &s, &n));
  FM_ASSERT_MSG_HAS("feature 'x' has float64 dtype, not string");
  /* a uint8 feature read as int32, an int64 (n, 1) label read as uint8 */
  void *v = NULL;
  FM_ASSERT_OK(fm_client_data_load_feature(cd, 2, "x", FM_DTYPE_INT32, &v, &n));
  assert_int_equal(n, 12);
  assert_int_equal(((int32_t *)v)[0], 250);
  fm_data_free(v);
  FM_ASSERT_OK(fm_client_data_load_feature(cd, 1, "y", FM_DTYPE_UINT8, &v, &n));
  assert_int_equal(n, 2);
  assert_int_equal(((uint8_t *)v)[1], 6);
  fm_data_free(v);
  /* c_i64's x is -(i*3+j) * 10^6: out of uint8's range */
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load_feature(cd, 1, "x", FM_DTYPE_UINT8, &v, &n));
  FM_ASSERT_MSG_HAS("out of uint8's range");
  /* a float feature is not silently truncated into integers */
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load_feature(cd, 0, "x", FM_DTYPE_INT64, &v, &n));
  FM_ASSERT_MSG_HAS("client 'c_f64': feature 'x' is float64; cannot read it as int64");
  fm_client_data_close(&cd);
}

/* Any file opens with FM_DATA_ANY; the feature listing is the reference client's. */
static void test_open_any(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open_kind("fx/fed_emnist_digitsonly.h5", NULL, FM_DATA_ANY, &cd));
  assert_string_equal(fm_client_data_x_feature(cd), "pixels");
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &ex)); /* x and y found: training works too */
  fm_examples_free(&ex);
  fm_client_data_close(&cd);
  /* a float "y" is not a label: ANY drops it, XY fails */
  FM_ASSERT_OK(fm_client_data_open_kind("fx/float_labels.h5", NULL, FM_DATA_ANY, &cd));
  assert_null(fm_client_data_y_feature(cd));
  assert_string_equal(fm_client_data_x_feature(cd), "x");
  FM_ASSERT_ERR(FM_ERR_UNSUPPORTED, fm_client_data_load_labels(cd, 0, &ex));
  fm_client_data_close(&cd);
  /* a name given explicitly must exist and be usable, also with ANY */
  fm_data_options o = {.y_feature = "nope"};
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open_kind("fx/fed_emnist_digitsonly.h5", &o, FM_DATA_ANY, &cd));
  FM_ASSERT_MSG_HAS("no feature 'nope'");
  fm_data_options o2 = {.y_feature = "y"};
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open_kind("fx/float_labels.h5", &o2, FM_DATA_ANY, &cd));
  FM_ASSERT_MSG_HAS("labels must be integers");
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_data_open_kind("fx/float_labels.h5", NULL, (fm_data_kind)7, &cd));
  /* the reference client is the first non-empty one */
  FM_ASSERT_OK(fm_client_data_open_kind("fx/emnist.h5", NULL, FM_DATA_ANY, &cd));
  assert_int_equal(find_info(cd, "pixels")->shape[0], 28);
  fm_client_data_close(&cd);
}

/* ---- bad input ---------------------------------------------------------------------- */

static void test_non_finite(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_open("fx/nan.h5", NULL, &cd));
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &ex));
  fm_examples_free(&ex);
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load(cd, 1, &ex));
  assert_string_equal(fm_last_error(), "fx/nan.h5: client 'c1': feature 'pixels' has a non-finite value at example 3");
  assert_null(ex.x);
  assert_null(ex.y);
  FM_ASSERT_OK(fm_client_data_load_labels(cd, 1, &ex)); /* labels alone are fine */
  assert_null(ex.x);
  fm_examples_free(&ex);
  void *v = NULL;
  size_t n = 0;
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load_feature(cd, 1, "pixels", FM_DTYPE_FLOAT64, &v, &n));
  FM_ASSERT_MSG_HAS("client 'c1': feature 'pixels' has a non-finite value at example 3");
  fm_client_data_close(&cd);

  FM_ASSERT_OK(fm_client_data_open("fx/inf64.h5", NULL, &cd));
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load(cd, 0, &ex));
  assert_string_equal(fm_last_error(), "fx/inf64.h5: client 'a': feature 'x' has a non-finite value at example 1");
  fm_client_data_close(&cd);

  /* 1e300 does not fit a float32: it is not silently clamped */
  FM_ASSERT_OK(fm_client_data_open("fx/big64.h5", NULL, &cd));
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load(cd, 0, &ex));
  FM_ASSERT_MSG_HAS("client 'a': feature 'x' has a non-finite value at example 2");
  FM_ASSERT_OK(fm_client_data_load_feature(cd, 0, "x", FM_DTYPE_FLOAT64, &v, &n)); /* fine as float64 */
  assert_true(((double *)v)[4] == 1e300);
  fm_data_free(v);
  fm_client_data_close(&cd);
}

static void test_bad_files(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_open("fx/neg_label.h5", NULL, &cd));
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_load(cd, 0, &ex));
  assert_string_equal(fm_last_error(), "fx/neg_label.h5: client 'c0': feature 'y' has negative label -2 at example 1");
  fm_client_data_close(&cd);

  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/string_label.h5", NULL, &cd));
  FM_ASSERT_MSG_HAS("fx/string_label.h5: client 'c0': feature 'label' has string dtype; labels must be integers");
  FM_ASSERT_OK(fm_client_data_open_kind("fx/string_label.h5", NULL, FM_DATA_ANY, &cd));
  assert_null(fm_client_data_y_feature(cd));
  char **s = NULL;
  size_t n = 0;
  FM_ASSERT_OK(fm_client_data_load_strings(cd, 0, "label", &s, &n));
  assert_int_equal(n, 2);
  assert_string_equal(s[1], "dog");
  fm_strings_free(s, n);
  fm_client_data_close(&cd);

  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/string_x.h5", NULL, &cd));
  FM_ASSERT_MSG_HAS("client 'c0': feature 'x' has string dtype; features must be float or integer numbers");
  FM_ASSERT_OK(fm_client_data_open_kind("fx/string_x.h5", NULL, FM_DATA_ANY, &cd));
  assert_null(fm_client_data_x_feature(cd));
  assert_string_equal(fm_client_data_y_feature(cd), "y");
  FM_ASSERT_OK(fm_client_data_load_labels(cd, 0, &ex));
  assert_int_equal(ex.n, 2);
  fm_examples_free(&ex);
  FM_ASSERT_ERR(FM_ERR_UNSUPPORTED, fm_client_data_load(cd, 0, &ex));
  FM_ASSERT_MSG_HAS("without an input feature");
  fm_client_data_close(&cd);

  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/no_features.h5", NULL, &cd));
  FM_ASSERT_MSG_HAS("fx/no_features.h5: client 'b' has no features");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open_kind("fx/no_features.h5", NULL, FM_DATA_ANY, &cd));

  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/feature_rows.h5", NULL, &cd));
  FM_ASSERT_MSG_HAS("fx/feature_rows.h5: client 'c0': feature 'w' has 4 rows but 'y' has 3");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open_kind("fx/feature_rows.h5", NULL, FM_DATA_ANY, &cd));
  FM_ASSERT_MSG_HAS("feature 'w' has 4 rows but 'y' has 3");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open_kind("fx/mismatch.h5", NULL, FM_DATA_ANY, &cd));
  FM_ASSERT_MSG_HAS("client 'bad_client': feature 'x' has 12 rows but 'y' has 10");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open_kind("fx/no_examples.h5", NULL, FM_DATA_ANY, &cd));
  FM_ASSERT_MSG_HAS("fx/no_examples.h5: no group '/examples'");
  assert_null(cd);
}

/* ---- the bounded cache ------------------------------------------------------------------ */

/* K synthetic clients of exactly 50 examples (max_examples caps the
 * lognormal(4, 2) + 50 sizes at their minimum; nothing held out). */
static fm_client_data *equal_clients(const char *path, size_t K) {
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.num_clients = K;
  o.num_features = 6;
  o.num_classes = 3;
  o.max_examples = 50;
  o.test_fraction = 0.0;
  o.seed = 5;
  FM_ASSERT_OK(fm_synth_write(&o, path, NULL));
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open(path, NULL, &cd));
  for (size_t k = 0; k < K; k++) assert_int_equal(fm_client_data_num_examples(cd, k), 50);
  return cd;
}

static void load_ok(const fm_client_data *cd, size_t k, const fm_examples *ref) {
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, k, &ex));
  assert_int_equal(ex.n, ref->n);
  assert_memory_equal(ex.x, ref->x, ex.n * ex.num_features * sizeof(float));
  assert_memory_equal(ex.y, ref->y, ex.n * sizeof(int32_t));
  fm_examples_free(&ex);
}

static void test_cache_lru(void **state) {
  (void)state;
  const size_t K = 6;
  fm_client_data *cd = equal_clients("cache.h5", K);
  fm_examples ref[6];
  for (size_t k = 0; k < K; k++) FM_ASSERT_OK(fm_client_data_load(cd, k, &ref[k]));
  fm_cache_stats st;
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.limit, 0); /* off by default: nothing counted, nothing kept */
  assert_int_equal(st.entries + st.hits + st.misses + st.bytes, 0);

  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, (size_t)1 << 30));
  load_ok(cd, 0, &ref[0]);
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.entries, 1);
  const size_t E = st.bytes; /* one entry */
  assert_true(E >= 50 * 7 * 4 && E < 50 * 7 * 4 + 512);
  load_ok(cd, 0, &ref[0]);
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.hits, 1);

  /* Room for two entries and a half. */
  const size_t limit = 2 * E + E / 2;
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, limit));
  load_ok(cd, 1, &ref[1]); /* miss: {1, 0} */
  load_ok(cd, 0, &ref[0]); /* hit: 0 most recent */
  load_ok(cd, 2, &ref[2]); /* miss: evicts 1, the least recent */
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 2);
  assert_int_equal(st.evictions, 1);
  assert_int_equal(st.hits, 2);
  assert_int_equal(st.misses, 3);
  load_ok(cd, 0, &ref[0]); /* still there */
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.hits, 3);
  load_ok(cd, 1, &ref[1]); /* was evicted: miss, evicts 2 */
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.misses, 4);
  assert_int_equal(st.evictions, 2);
  load_ok(cd, 2, &ref[2]);
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.misses, 5); /* 2 had gone */
  assert_true(st.bytes <= limit);

  /* Labels-only loads are served by a cached entry but never insert one. */
  fm_examples lab;
  FM_ASSERT_OK(fm_client_data_load_labels(cd, 2, &lab));
  assert_null(lab.x);
  assert_memory_equal(lab.y, ref[2].y, 50 * sizeof(int32_t));
  fm_examples_free(&lab);
  FM_ASSERT_OK(fm_client_data_load_labels(cd, 5, &lab));
  fm_examples_free(&lab);
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 2);

  /* A bound below one entry: everything goes, nothing new is kept. */
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, E - 1));
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.bytes, 0);
  load_ok(cd, 3, &ref[3]);
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 0);
  /* Back to 0: off. */
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, 0));
  load_ok(cd, 3, &ref[3]);
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 0);
  assert_true(st.peak_bytes <= 2 * E); /* never above the bound of its time */
  for (size_t k = 0; k < K; k++) fm_examples_free(&ref[k]);
  fm_client_data_close(&cd);
}

/* fm_client_data_load_shared: a miss is an owned copy, a hit lends the
 * entry, which survives a lowered bound until it is given back. */
static void test_cache_shared(void **state) {
  (void)state;
  fm_client_data *cd = equal_clients("cache_shared.h5", 3);
  fm_examples ref, a, b;
  FM_ASSERT_OK(fm_client_data_load(cd, 1, &ref));
  FM_ASSERT_OK(fm_client_data_load_shared(cd, 1, &a)); /* cache off: owned */
  assert_null(a.owner_);
  fm_examples_free(&a);
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, (size_t)1 << 30));
  FM_ASSERT_OK(fm_client_data_load_shared(cd, 1, &a)); /* miss: owned, inserted */
  assert_null(a.owner_);
  fm_examples_free(&a);
  FM_ASSERT_OK(fm_client_data_load_shared(cd, 1, &a)); /* hit: lent */
  FM_ASSERT_OK(fm_client_data_load_shared(cd, 1, &b));
  assert_non_null(a.owner_);
  assert_ptr_equal(a.x, b.x);
  assert_int_equal(a.n, ref.n);
  assert_memory_equal(a.x, ref.x, ref.n * ref.num_features * sizeof(float));
  assert_memory_equal(a.y, ref.y, ref.n * sizeof(int32_t));
  fm_cache_stats st;
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, 0)); /* lent entries stay */
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 1);
  fm_examples_free(&a);
  assert_null(a.x);
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 1); /* still lent to b */
  assert_memory_equal(b.x, ref.x, ref.n * ref.num_features * sizeof(float));
  fm_examples_free(&b);
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 0); /* given back: over the bound, evicted */
  assert_int_equal(st.bytes, 0);
  fm_examples_free(&ref);
  fm_client_data_close(&cd);

  /* In-memory data lends its arrays. */
  const size_t counts[] = {1, 2};
  float x[3 * 2] = {1, 2, 3, 4, 5, 6};
  int32_t y[3] = {0, 1, 0};
  const size_t shape[] = {2};
  fm_client_data *mem = NULL;
  FM_ASSERT_OK(fm_client_data_from_memory(2, NULL, counts, x, y, 1, shape, &mem));
  FM_ASSERT_OK(fm_client_data_load_shared(mem, 1, &a));
  assert_non_null(a.owner_);
  assert_int_equal(a.n, 2);
  assert_true(a.x[0] == 3 && a.x[3] == 6 && a.y[0] == 1 && a.y[1] == 0);
  fm_examples_free(&a);
  fm_client_data_close(&mem);
}

/* Many "rounds" of random cohorts from several threads: the data is always
 * right, and the bytes never pass the bound. */
static void test_cache_bound_threads(void **state) {
  (void)state;
  const size_t K = 24;
  fm_client_data *cd = equal_clients("cache_mt.h5", K);
  fm_examples ref[24];
  for (size_t k = 0; k < K; k++) FM_ASSERT_OK(fm_client_data_load(cd, k, &ref[k]));
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, (size_t)1 << 30));
  fm_examples tmp;
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &tmp));
  fm_examples_free(&tmp);
  fm_cache_stats st;
  fm_client_data_cache_stats(cd, &st);
  const size_t E = st.bytes, limit = 5 * E + 7;
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, limit));
  int bad = 0;
  const long loads = 2000;
#pragma omp parallel for num_threads(4) schedule(dynamic, 8) reduction(+ : bad)
  for (long t = 0; t < loads; t++) {
    fm_rng r;
    fm_rng_init(&r, 9, (uint64_t)t, 0, FM_RNG_USER);
    size_t k = (size_t)fm_rng_below(&r, 8); /* a hot set of 8, larger than the cache */
    if (t % 5 == 0) k = 8 + (size_t)fm_rng_below(&r, K - 8);
    fm_examples ex;
    /* half the loads borrow the entry: pinned, never evicted under them */
    if ((t % 2 ? fm_client_data_load_shared(cd, k, &ex) : fm_client_data_load(cd, k, &ex)) != FM_OK) {
      bad++;
      continue;
    }
    if (ex.n != ref[k].n || memcmp(ex.x, ref[k].x, ex.n * 6 * sizeof(float)) ||
        memcmp(ex.y, ref[k].y, ex.n * sizeof(int32_t)))
      bad++;
    fm_examples_free(&ex);
  }
  assert_int_equal(bad, 0);
  fm_client_data_cache_stats(cd, &st);
  assert_true(st.peak_bytes <= (size_t)1 << 30);
  assert_true(st.bytes <= limit);
  assert_true(st.entries <= 5);
  assert_int_equal(st.hits + st.misses, (uint64_t)loads + 1);
  assert_true(st.hits > 0 && st.evictions > 0);
  /* peak since the bound was set: reset by measuring a fresh handle */
  fm_client_data *cd2 = NULL;
  FM_ASSERT_OK(fm_client_data_open("cache_mt.h5", NULL, &cd2));
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd2, limit));
#pragma omp parallel for num_threads(4) schedule(dynamic, 4)
  for (long t = 0; t < 500; t++) {
    fm_examples ex;
    if (fm_client_data_load(cd2, (size_t)(t * 7) % K, &ex) == FM_OK) fm_examples_free(&ex);
  }
  fm_client_data_cache_stats(cd2, &st);
  assert_true(st.peak_bytes <= limit);
  fm_client_data_close(&cd2);
  for (size_t k = 0; k < K; k++) fm_examples_free(&ref[k]);
  fm_client_data_close(&cd);

  /* In-memory data ignores the cache. */
  const size_t counts[] = {1};
  float x[2] = {1, 2};
  int32_t y[1] = {0};
  const size_t shape[] = {2};
  FM_ASSERT_OK(fm_client_data_from_memory(1, NULL, counts, x, y, 1, shape, &cd));
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, 1000));
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.limit, 0);
  assert_string_equal(fm_client_data_x_feature(cd), "x");
  assert_int_equal(fm_client_data_num_feature_infos(cd), 2);
  void *v = NULL;
  size_t n = 0;
  FM_ASSERT_OK(fm_client_data_load_feature(cd, 0, "x", FM_DTYPE_FLOAT64, &v, &n));
  assert_int_equal(n, 2);
  assert_true(((double *)v)[1] == 2.0);
  fm_data_free(v);
  FM_ASSERT_ERR(FM_ERR_UNSUPPORTED, fm_client_data_load_strings(cd, 0, "x", (char ***)&v, &n));
  fm_client_data_close(&cd);
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_data_set_cache_bytes(NULL, 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_emnist_digitsonly), cmocka_unit_test(test_shakespeare),
      cmocka_unit_test(test_cifar100),          cmocka_unit_test(test_fixed_length_strings),
      cmocka_unit_test(test_open_any),          cmocka_unit_test(test_non_finite),
      cmocka_unit_test(test_bad_files),         cmocka_unit_test(test_cache_lru), cmocka_unit_test(test_cache_shared),
      cmocka_unit_test(test_cache_bound_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
