/* tests/unit/test_data_text.c — text client data through the data layer
 * (src/data/source_text.c) on the h5py-written fixtures
 * (tests/data/make_h5_fixtures.py): Shakespeare's snippets opened for
 * training with and without a tokenizer (rows and num_examples agree, x and
 * y equal fm_tokenizer_encode_client's, an empty client, a client with an
 * empty snippet, num_targets L), the client cache with L labels per example
 * (hit = miss, lent entries, the bytes counting n (D + T)), Stack Overflow's
 * tokens with a word count file and without one (the message asks for a
 * vocabulary), and strings where numbers are expected (clear messages naming
 * file and feature); label data keeps one label per example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"
#include "fedmpi/text.h"
#include "fm_test.h"
#include "h5_fixtures.h"

/* Client i of cd, loaded, equals t's rows of the string feature of raw
 * (opened FM_DATA_ANY) client i: x as float ids, y, n, T = L. */
static void expect_client_rows(const fm_client_data *cd, const fm_client_data *raw, const fm_tokenizer *t,
                               const char *feature, size_t i) {
  fm_token_rows rows;
  FM_ASSERT_OK(fm_tokenizer_encode_client(t, raw, i, feature, &rows));
  const size_t L = fm_tokenizer_seq_len(t);
  assert_int_equal(fm_client_data_num_examples(cd, i), rows.n_rows);
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, i, &ex));
  assert_int_equal(ex.n, rows.n_rows);
  assert_int_equal(ex.num_features, L);
  assert_int_equal(ex.num_targets, L);
  for (size_t k = 0; k < rows.n_rows * L; k++) {
    if (ex.x[k] != (float)rows.x[k] || ex.y[k] != rows.y[k])
      fail_msg("client %zu value %zu: (%g, %d), expected (%d, %d)", i, k, (double)ex.x[k], ex.y[k], rows.x[k],
               rows.y[k]);
  }
  fm_examples_free(&ex);
  FM_ASSERT_OK(fm_client_data_load_labels(cd, i, &ex));
  assert_null(ex.x);
  assert_int_equal(ex.num_targets, L);
  if (rows.n_rows) assert_memory_equal(ex.y, rows.y, rows.n_rows * L * sizeof *ex.y);
  fm_examples_free(&ex);
  fm_token_rows_free(&rows);
}

static size_t client_index(const fm_client_data *cd, const char *id) {
  for (size_t i = 0; i < fm_client_data_num_clients(cd); i++)
    if (!strcmp(fm_client_data_client_id(cd, i), id)) return i;
  fail_msg("no client '%s'", id);
  return 0;
}

/* Opened for training without a tokenizer: TFF's character tokenizer (80). */
static void test_shakespeare_without_tokenizer(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL, *raw = NULL, *spec = NULL;
  FM_ASSERT_OK(fm_client_data_open("fx/shakespeare.h5", NULL, &cd));
  FM_ASSERT_OK(fm_client_data_open_kind("fx/shakespeare.h5", NULL, FM_DATA_ANY, &raw));
  FM_ASSERT_OK(fm_client_data_open_spec("fx/shakespeare.h5", NULL, &spec)); /* --data's way in */
  assert_string_equal(fm_client_data_path(cd), "fx/shakespeare.h5");
  assert_int_equal(fm_client_data_num_targets(cd), 80);
  assert_int_equal(fm_client_data_num_targets(spec), 80);
  assert_int_equal(fm_client_data_num_targets(raw), 1); /* FM_DATA_ANY stays the file as it is */
  assert_int_equal(fm_client_data_num_classes(cd), 90);
  size_t nc = 0;
  FM_ASSERT_OK(fm_client_data_scan_num_classes(cd, &nc));
  assert_int_equal(nc, 90);
  int ndim = 0;
  size_t shape[FM_MAX_DIMS];
  fm_client_data_feature_shape(cd, &ndim, shape);
  assert_int_equal(ndim, 1);
  assert_int_equal(shape[0], 80);
  assert_string_equal(fm_client_data_x_feature(cd), "snippets");
  assert_string_equal(fm_client_data_y_feature(cd), "snippets");
  /* the infos describe what training sees */
  assert_int_equal(fm_client_data_num_feature_infos(cd), 2);
  const fm_feature_info *fx = fm_client_data_feature_info(cd, 0), *fy = fm_client_data_feature_info(cd, 1);
  assert_string_equal(fx->name, "x");
  assert_int_equal(fx->dtype, FM_DTYPE_FLOAT32);
  assert_int_equal(fx->ndim, 1);
  assert_int_equal(fx->shape[0], 80);
  assert_string_equal(fy->name, "y");
  assert_int_equal(fy->dtype, FM_DTYPE_INT32);
  assert_int_equal(fy->ndim, 1);
  assert_int_equal(fy->shape[0], 80);

  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(0, &t));
  assert_int_equal(fm_client_data_num_clients(cd), fm_client_data_num_clients(raw));
  uint64_t total = 0;
  for (size_t i = 0; i < fm_client_data_num_clients(cd); i++) {
    assert_string_equal(fm_client_data_client_id(cd, i), fm_client_data_client_id(raw, i));
    expect_client_rows(cd, raw, t, NULL, i);
    expect_client_rows(spec, raw, t, NULL, i);
    total += fm_client_data_num_examples(cd, i);
  }
  assert_int_equal(fm_client_data_total_examples(cd), total);
  assert_int_equal(total, 2 + 0 + 1 + 3 + 64); /* ROMEO: 1 + 1 + ceil(5002 / 81) */
  /* an empty client: no rows, an empty load */
  size_t nobody = client_index(cd, "AS_YOU_LIKE_IT_NOBODY");
  assert_int_equal(fm_client_data_num_examples(cd, nobody), 0);
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, nobody, &ex));
  assert_int_equal(ex.n, 0);
  fm_examples_free(&ex);
  /* an empty snippet is one row [BOS, EOS, 0 ...]: PERICLES' second of three */
  size_t per = client_index(cd, "PERICLES, PRINCE OF TYRE_GOWER");
  assert_int_equal(fm_client_data_num_examples(cd, per), 3);
  FM_ASSERT_OK(fm_client_data_load(cd, per, &ex));
  assert_true(ex.x[80] == 88.0f && ex.x[81] == 89.0f && ex.x[82] == 0.0f);
  assert_int_equal(ex.y[80], 89);
  assert_int_equal(ex.y[81], 0);
  fm_examples_free(&ex);
  /* the string feature stays readable through the text source */
  char **s = NULL;
  size_t n = 0;
  FM_ASSERT_OK(fm_client_data_load_strings(cd, per, "snippets", &s, &n));
  assert_int_equal(n, 3);
  assert_string_equal(s[1], "");
  fm_strings_free(s, n);
  /* features as training sees them; y (n, L) */
  void *buf = NULL;
  size_t count = 0;
  FM_ASSERT_OK(fm_client_data_load_feature(cd, per, "y", FM_DTYPE_INT64, &buf, &count));
  assert_int_equal(count, 3 * 80);
  assert_int_equal(((int64_t *)buf)[80], 89);
  fm_data_free(buf);
  fm_tokenizer_destroy(&t);
  fm_client_data_close(&spec);
  fm_client_data_close(&raw);
  fm_client_data_close(&cd);
}

/* A caller's tokenizer (borrowed), another sequence length. */
static void test_shakespeare_with_tokenizer(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(10, &t));
  fm_data_options opt = {.tokenizer = t};
  fm_client_data *cd = NULL, *raw = NULL;
  FM_ASSERT_OK(fm_client_data_open("fx/shakespeare.h5", &opt, &cd));
  FM_ASSERT_OK(fm_client_data_open_kind("fx/shakespeare.h5", NULL, FM_DATA_ANY, &raw));
  assert_int_equal(fm_client_data_num_targets(cd), 10);
  for (size_t i = 0; i < fm_client_data_num_clients(cd); i++) expect_client_rows(cd, raw, t, "snippets", i);
  /* ROMEO: 48 + 2, 38 + 2 and 5002 ids in rows of 11 */
  size_t romeo = client_index(cd, "ROMEO_AND_JULIET_ROMEO");
  assert_int_equal(fm_client_data_num_examples(cd, romeo), 5 + 4 + 455);
  /* with a tokenizer, a label feature does not apply */
  fm_client_data *bad = NULL;
  fm_data_options yo = {.y_feature = "label", .tokenizer = t};
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_client_data_open("fx/shakespeare.h5", &yo, &bad));
  FM_ASSERT_MSG_HAS("fx/shakespeare.h5");
  assert_null(bad);
  /* a string feature that is not there: the first client that lacks it */
  fm_data_options missing = {.x_feature = "lines", .tokenizer = t};
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/shakespeare.h5", &missing, &bad));
  FM_ASSERT_MSG_HAS("fx/shakespeare.h5: client 'ALLS_WELL_THAT_ENDS_WELL_HELENA': no feature 'lines'");
  fm_client_data_close(&raw);
  fm_client_data_close(&cd);
  fm_tokenizer_destroy(&t);
}

/* The client cache with L labels per example. */
static void test_text_cache(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL, *plain = NULL;
  FM_ASSERT_OK(fm_client_data_open("fx/shakespeare.h5", NULL, &cd));
  FM_ASSERT_OK(fm_client_data_open("fx/shakespeare.h5", NULL, &plain));
  size_t romeo = client_index(cd, "ROMEO_AND_JULIET_ROMEO");
  const size_t R = fm_client_data_num_examples(cd, romeo), L = 80;
  /* a bound below the entry (its labels counted): not kept */
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, R * (L + 1) * 4 + 1024));
  fm_examples miss, hit, lent, ref;
  FM_ASSERT_OK(fm_client_data_load(cd, romeo, &miss));
  fm_cache_stats st;
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 0);
  fm_examples_free(&miss);
  FM_ASSERT_OK(fm_client_data_set_cache_bytes(cd, 64u << 20));
  FM_ASSERT_OK(fm_client_data_load(cd, romeo, &miss));
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.entries, 1);
  assert_true(st.bytes >= R * (L + L) * 4 && st.bytes < R * (L + L) * 4 + 512); /* n (D + T) 4 + a header */
  FM_ASSERT_OK(fm_client_data_load(cd, romeo, &hit));
  FM_ASSERT_OK(fm_client_data_load_shared(cd, romeo, &lent));
  FM_ASSERT_OK(fm_client_data_load(plain, romeo, &ref)); /* no cache */
  fm_client_data_cache_stats(cd, &st);
  assert_int_equal(st.hits, 2);
  const fm_examples *all[] = {&miss, &hit, &lent};
  for (size_t k = 0; k < 3; k++) {
    assert_int_equal(all[k]->n, R);
    assert_int_equal(all[k]->num_features, L);
    assert_int_equal(all[k]->num_targets, L);
    assert_memory_equal(all[k]->x, ref.x, R * L * sizeof *ref.x);
    assert_memory_equal(all[k]->y, ref.y, R * L * sizeof *ref.y);
  }
  assert_non_null(lent.owner_);
  assert_null(hit.owner_);
  /* labels only, from the cache */
  fm_examples lab;
  FM_ASSERT_OK(fm_client_data_load_labels(cd, romeo, &lab));
  assert_null(lab.x);
  assert_int_equal(lab.num_targets, L);
  assert_memory_equal(lab.y, ref.y, R * L * sizeof *ref.y);
  fm_examples_free(&lab);
  fm_examples_free(&lent);
  fm_examples_free(&hit);
  fm_examples_free(&miss);
  fm_examples_free(&ref);
  fm_client_data_close(&plain);
  fm_client_data_close(&cd);
}

/* Stack Overflow's tokens: with TFF's word count file, one row per sentence;
 * without a vocabulary, a message that says how to give one. */
static void test_stackoverflow(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL, *raw = NULL;
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/stackoverflow.h5", NULL, &cd));
  FM_ASSERT_MSG_HAS("fx/stackoverflow.h5");
  FM_ASSERT_MSG_HAS("'tokens'");
  FM_ASSERT_MSG_HAS("vocabulary");
  FM_ASSERT_MSG_HAS("--vocab FILE");
  FM_ASSERT_MSG_HAS("--vocab-size N");
  assert_null(cd);
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open_spec("fx/stackoverflow.h5", NULL, &cd));
  FM_ASSERT_MSG_HAS("--vocab FILE");
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_words_file("fx/stackoverflow_counts.txt", 5, 0, &t));
  fm_data_options opt = {.tokenizer = t};
  FM_ASSERT_OK(fm_client_data_open("fx/stackoverflow.h5", &opt, &cd));
  FM_ASSERT_OK(fm_client_data_open_kind("fx/stackoverflow.h5", NULL, FM_DATA_ANY, &raw));
  assert_int_equal(fm_client_data_num_targets(cd), 20);
  assert_int_equal(fm_client_data_num_classes(cd), 5 + 4);
  assert_int_equal(fm_client_data_num_clients(cd), 3);
  assert_int_equal(fm_client_data_total_examples(cd), 5); /* one row per sentence */
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(fm_client_data_num_examples(cd, i), fm_client_data_num_examples(raw, i));
    expect_client_rows(cd, raw, t, "tokens", i);
  }
  assert_int_equal(fm_client_data_num_examples(cd, 2), 0); /* u2 is empty */
  /* u1's first sentence is empty: [BOS] one empty (OOV) word [EOS] */
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, 1, &ex));
  assert_true(ex.x[0] == 7.0f && ex.x[1] == 6.0f && ex.x[2] == 8.0f);
  assert_int_equal(ex.y[0], 6);
  assert_int_equal(ex.y[1], 8);
  assert_int_equal(ex.y[2], 0);
  fm_examples_free(&ex);
  fm_client_data_close(&cd);
  /* another string feature of the file, named */
  opt.x_feature = "title";
  FM_ASSERT_OK(fm_client_data_open("fx/stackoverflow.h5", &opt, &cd));
  assert_string_equal(fm_client_data_x_feature(cd), "title");
  expect_client_rows(cd, raw, t, "title", 0);
  fm_client_data_close(&cd);
  /* named without a tokenizer: a vocabulary is still needed */
  fm_data_options named = {.x_feature = "title"};
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/stackoverflow.h5", &named, &cd));
  FM_ASSERT_MSG_HAS("fx/stackoverflow.h5: feature 'title' holds text");
  fm_client_data_close(&raw);
  fm_tokenizer_destroy(&t);
}

/* Strings where numbers are expected, numbers where strings are: messages
 * naming file, client and feature; label data keeps T = 1 and its errors. */
static void test_strings_and_numbers(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(0, &t));
  fm_data_options px = {.x_feature = "pixels", .tokenizer = t};
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/emnist.h5", &px, &cd));
  FM_ASSERT_MSG_HAS("fx/emnist.h5: feature 'pixels' has float32 dtype, not strings");
  assert_null(cd);
  fm_data_options dflt = {.tokenizer = t}; /* 'snippets', which EMNIST has not */
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/emnist.h5", &dflt, &cd));
  FM_ASSERT_MSG_HAS("fx/emnist.h5: client ");
  FM_ASSERT_MSG_HAS("no feature 'snippets'");
  /* a string x or label without a tokenizer: the file source's own message, unchanged */
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/string_x.h5", NULL, &cd));
  FM_ASSERT_MSG_HAS("fx/string_x.h5: client 'c0': feature 'x' has string dtype; features must be float or integer");
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/string_label.h5", NULL, &cd));
  FM_ASSERT_MSG_HAS("fx/string_label.h5: client 'c0': feature 'label' has string dtype; labels must be integers");
  fm_data_options sx = {.x_feature = "snippets"};
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_client_data_open("fx/emnist.h5", &sx, &cd));
  FM_ASSERT_MSG_HAS("fx/emnist.h5: client ");
  FM_ASSERT_MSG_HAS("'snippets'");
  /* label data: one label per example, as before */
  FM_ASSERT_OK(fm_client_data_open("fx/emnist.h5", NULL, &cd));
  assert_int_equal(fm_client_data_num_targets(cd), 1);
  fm_examples ex;
  FM_ASSERT_OK(fm_client_data_load(cd, 0, &ex));
  assert_int_equal(ex.num_targets, 1);
  fm_examples_free(&ex);
  fm_client_data_close(&cd);
  size_t shape[1] = {1};
  const size_t counts[2] = {1, 2};
  const float x[3] = {0, 1, 2};
  const int32_t y[3] = {0, 1, 0};
  FM_ASSERT_OK(fm_client_data_from_memory(2, NULL, counts, x, y, 1, shape, &cd));
  assert_int_equal(fm_client_data_num_targets(cd), 1);
  FM_ASSERT_OK(fm_client_data_load_shared(cd, 1, &ex));
  assert_int_equal(ex.num_targets, 1);
  fm_examples_free(&ex);
  fm_client_data_close(&cd);
  fm_tokenizer_destroy(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shakespeare_without_tokenizer),
      cmocka_unit_test(test_shakespeare_with_tokenizer),
      cmocka_unit_test(test_text_cache),
      cmocka_unit_test(test_stackoverflow),
      cmocka_unit_test(test_strings_and_numbers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
