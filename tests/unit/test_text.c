/* tests/unit/test_text.c — the text tokenizers (fedmpi/text.h) against
 * hand-worked token rows: Shakespeare's characters (BOS/EOS placement, an
 * OOV character, non-ASCII bytes, snippets longer than one row and exactly
 * at the row boundaries, an empty snippet, a short sequence length) and
 * Stack Overflow's words (a hand-written word count file with CRLF, CR,
 * tabs, Unicode spaces and a repeated word; OOV words; empty words from
 * double spaces; sentences of 19, 20 and 25 words; the vocabulary of a
 * training file, counted per client with ties in byte order), and bad input:
 * a missing, empty or malformed vocabulary file, invalid UTF-8, and a
 * missing or non-string feature, each naming the file and line or feature;
 * every allocation of the three main paths failing in turn (no leak, a
 * clear error).
 * The ClientData files are written here with libhdf5 (vlen UTF-8 strings, as
 * h5py writes str), so these tests need no python; the h5py-written
 * shakespeare fixture is read too when h5py is there. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hdf5.h>

#include "fedmpi/data.h"
#include "fedmpi/error.h"
#include "fedmpi/text.h"
#include "fm_test.h"
#include "h5_fixtures.h"

/* Shakespeare ids worked out by hand from CHAR_VOCAB's order (index + 1). */
enum { C_d = 1, C_T = 12, C_SP = 14, C_o = 24, C_b = 42, C_z = 48, C_NL = 63, C_a = 64, C_e = 65, C_BANG = 79,
       C_CR = 86, C_OOV = 87, C_BOS = 88, C_EOS = 89 };

/* Assert row r of rows has x and y as given (L ids each, the rest 0 after
 * the given prefix of nx / ny ids). */
static void expect_row(const fm_token_rows *rows, size_t r, const int32_t *x, size_t nx, const int32_t *y, size_t ny) {
  const size_t L = rows->seq_len;
  assert_true(r < rows->n_rows);
  for (size_t j = 0; j < L; j++) {
    int32_t wx = j < nx ? x[j] : 0, wy = j < ny ? y[j] : 0;
    if (rows->x[r * L + j] != wx) fail_msg("row %zu: x[%zu] = %d, expected %d", r, j, rows->x[r * L + j], wx);
    if (rows->y[r * L + j] != wy) fail_msg("row %zu: y[%zu] = %d, expected %d", r, j, rows->y[r * L + j], wy);
  }
}

static void encode1(const fm_tokenizer *t, const char *s, fm_token_rows *rows) {
  const char *v[1] = {s};
  FM_ASSERT_OK(fm_tokenizer_encode(t, v, 1, rows));
}

/* ---- Shakespeare ------------------------------------------------------------------ */

static void test_shakespeare_vocabulary_and_specials(void **state) {
  (void)state;
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(0, &t));
  assert_int_equal(fm_tokenizer_get_kind(t), FM_TOKENIZER_CHARS);
  assert_int_equal(fm_tokenizer_seq_len(t), 80);
  assert_int_equal(fm_tokenizer_num_tokens(t), 86);
  assert_int_equal(fm_tokenizer_vocab_size(t), 90); /* the baseline's Embedding(90, 8) and Dense(90) */
  fm_token_specials sp;
  fm_tokenizer_specials(t, &sp);
  assert_int_equal(sp.pad, 0);
  assert_int_equal(sp.oov, 87);
  assert_int_equal(sp.bos, 88);
  assert_int_equal(sp.eos, 89);
  assert_string_equal(fm_tokenizer_default_feature(t), "snippets");
  /* first, last and the escaped entries of CHAR_VOCAB */
  assert_string_equal(fm_tokenizer_token(t, 1), "d");
  assert_string_equal(fm_tokenizer_token(t, 13), "X");
  assert_string_equal(fm_tokenizer_token(t, 14), " ");
  assert_string_equal(fm_tokenizer_token(t, 36), "'");
  assert_string_equal(fm_tokenizer_token(t, 56), "\"");
  assert_string_equal(fm_tokenizer_token(t, 63), "\n");
  assert_string_equal(fm_tokenizer_token(t, 86), "\r");
  assert_null(fm_tokenizer_token(t, 0));
  assert_null(fm_tokenizer_token(t, 87));
  assert_int_equal(fm_tokenizer_lookup(t, "a"), C_a);
  assert_int_equal(fm_tokenizer_lookup(t, "+"), C_OOV); /* not in the vocabulary */
  assert_int_equal(fm_tokenizer_lookup(t, "ab"), C_OOV);
  /* every id 1..86 is a different one-byte entry, and looks itself up */
  for (int32_t id = 1; id <= 86; id++) {
    const char *c = fm_tokenizer_token(t, id);
    assert_non_null(c);
    assert_int_equal(strlen(c), 1);
    assert_int_equal(fm_tokenizer_lookup(t, c), id);
  }
  fm_tokenizer_destroy(&t);
  assert_null(t);
  fm_tokenizer_destroy(&t); /* NULL accepted */
}

static void test_shakespeare_bos_eos(void **state) {
  (void)state;
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(0, &t));
  fm_token_rows rows;
  encode1(t, "To be", &rows);
  assert_int_equal(rows.n_rows, 1);
  assert_int_equal(rows.seq_len, 80);
  const int32_t x[] = {C_BOS, C_T, C_o, C_SP, C_b, C_e, C_EOS}, y[] = {C_T, C_o, C_SP, C_b, C_e, C_EOS};
  expect_row(&rows, 0, x, 7, y, 6);
  fm_token_rows_free(&rows);
  assert_null(rows.x);
  /* newline and carriage return are in the vocabulary; '+' and a tab are not */
  encode1(t, "a+\tb\r\n!", &rows);
  const int32_t x2[] = {C_BOS, C_a, C_OOV, C_OOV, C_b, C_CR, C_NL, C_BANG, C_EOS};
  expect_row(&rows, 0, x2, 9, x2 + 1, 8);
  fm_token_rows_free(&rows);
  fm_tokenizer_destroy(&t);
}

static void test_shakespeare_non_ascii_bytes(void **state) {
  (void)state;
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(0, &t));
  fm_token_rows rows;
  /* tf.strings.bytes_split: U+00E9 is two bytes, U+2014 three, U+1F600 four: one OOV id each byte */
  encode1(t, "d\xc3\xa9 \xe2\x80\x94\xf0\x9f\x98\x80z", &rows);
  const int32_t x[] = {C_BOS, C_d, C_OOV, C_OOV, C_SP, C_OOV, C_OOV, C_OOV, C_OOV, C_OOV, C_OOV, C_OOV, C_z, C_EOS};
  expect_row(&rows, 0, x, 14, x + 1, 13);
  fm_token_rows_free(&rows);
  fm_tokenizer_destroy(&t);
}

/* A snippet of n bytes cycling through "abz", as ids. */
static int32_t cyc_id(size_t k) { return k % 3 == 0 ? C_a : k % 3 == 1 ? C_b : C_z; }
static char *cyc_text(size_t n) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  for (size_t k = 0; k < n; k++) s[k] = "abz"[k % 3];
  s[n] = '\0';
  return s;
}

static void test_shakespeare_long_snippets_split(void **state) {
  (void)state;
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(0, &t));
  /* [BOS] n bytes [EOS] is n + 2 ids, padded to a multiple of 81: rows ceil((n + 2) / 81) */
  const size_t lens[] = {79, 80, 160, 161, 1000};
  const size_t want_rows[] = {1, 2, 2, 3, 13};
  for (size_t c = 0; c < sizeof lens / sizeof *lens; c++) {
    size_t n = lens[c];
    char *s = cyc_text(n);
    fm_token_rows rows;
    encode1(t, s, &rows);
    assert_int_equal(rows.n_rows, want_rows[c]);
    /* the padded sequence: position 0 BOS, 1..n the bytes, n + 1 EOS, then 0 */
    for (size_t r = 0; r < rows.n_rows; r++)
      for (size_t j = 0; j < 80; j++) {
        size_t kx = r * 81 + j, ky = kx + 1;
        int32_t wx = kx == 0 ? C_BOS : kx <= n ? cyc_id(kx - 1) : kx == n + 1 ? C_EOS : 0;
        int32_t wy = ky <= n ? cyc_id(ky - 1) : ky == n + 1 ? C_EOS : 0;
        if (rows.x[r * 80 + j] != wx || rows.y[r * 80 + j] != wy)
          fail_msg("n %zu row %zu col %zu: (%d, %d), expected (%d, %d)", n, r, j, rows.x[r * 80 + j],
                   rows.y[r * 80 + j], wx, wy);
      }
    if (n == 80) {
      /* row 0 is BOS + 80 bytes (no EOS); row 1 starts with EOS and is all padding after */
      assert_int_equal(rows.x[0], C_BOS);
      assert_int_equal(rows.y[79], cyc_id(79));
      assert_int_equal(rows.x[80], C_EOS);
      assert_int_equal(rows.y[80], 0);
    }
    if (n == 79) assert_int_equal(rows.y[79], C_EOS); /* exactly 81 ids: one full row, no padding */
    fm_token_rows_free(&rows);
    free(s);
  }
  fm_tokenizer_destroy(&t);
}

static void test_shakespeare_empty_and_several(void **state) {
  (void)state;
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(0, &t));
  char *longer = cyc_text(100);
  const char *v[] = {"", "ab", longer, ""};
  fm_token_rows rows;
  FM_ASSERT_OK(fm_tokenizer_encode(t, v, 4, &rows));
  /* each snippet is padded on its own: 1 + 1 + 2 + 1 rows, never packed together */
  assert_int_equal(rows.n_rows, 5);
  const int32_t ex[] = {C_BOS, C_EOS}, ey[] = {C_EOS};
  expect_row(&rows, 0, ex, 2, ey, 1);
  const int32_t abx[] = {C_BOS, C_a, C_b, C_EOS};
  expect_row(&rows, 1, abx, 4, abx + 1, 3);
  assert_int_equal(rows.x[2 * 80], C_BOS);
  assert_int_equal(rows.x[3 * 80 + 20], C_EOS); /* position 81 + 20 = 101 = n + 1 */
  expect_row(&rows, 4, ex, 2, ey, 1);
  fm_token_rows_free(&rows);
  /* no strings: no rows */
  FM_ASSERT_OK(fm_tokenizer_encode(t, NULL, 0, &rows));
  assert_int_equal(rows.n_rows, 0);
  assert_null(rows.x);
  fm_token_rows_free(&rows);
  const char *bad[] = {"a", NULL};
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_tokenizer_encode(t, bad, 2, &rows));
  free(longer);
  fm_tokenizer_destroy(&t);
}

static void test_shakespeare_short_sequence_length(void **state) {
  (void)state;
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(3, &t));
  /* L = 3, rows of 4: [BOS a b z] [d EOS 0 0] */
  fm_token_rows rows;
  encode1(t, "abzd", &rows);
  assert_int_equal(rows.n_rows, 2);
  assert_int_equal(rows.seq_len, 3);
  const int32_t x0[] = {C_BOS, C_a, C_b}, y0[] = {C_a, C_b, C_z}, x1[] = {C_d, C_EOS, 0}, y1[] = {C_EOS, 0, 0};
  expect_row(&rows, 0, x0, 3, y0, 3);
  expect_row(&rows, 1, x1, 3, y1, 3);
  fm_token_rows_free(&rows);
  fm_tokenizer_destroy(&t);
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_tokenizer_create_shakespeare((size_t)1 << 30, &t));
  assert_null(t);
}

/* ---- writing small ClientData files with string features --------------------------------- */

typedef struct text_client {
  const char *id;
  size_t n;
  const char *const *s;
} text_client;

/* /examples/<id>/<feature> as vlen UTF-8 strings (h5py's str), or as int64
 * (n) when as_int. */
static void write_text_h5(const char *path, const char *feature, const text_client *c, size_t K, int as_int) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t ex = H5Gcreate2(f, "examples", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, H5T_VARIABLE);
  H5Tset_cset(st, H5T_CSET_UTF8);
  for (size_t k = 0; k < K; k++) {
    hid_t g = H5Gcreate2(ex, c[k].id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dim = c[k].n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(g, feature, as_int ? H5T_STD_I64LE : st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    if (c[k].n && as_int) {
      int64_t v[16] = {0};
      assert_true(c[k].n <= 16);
      assert_true(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    } else if (c[k].n) {
      assert_true(H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, c[k].s) >= 0);
    }
    H5Dclose(d);
    H5Sclose(sp);
    H5Gclose(g);
  }
  H5Tclose(st);
  H5Gclose(ex);
  H5Fclose(f);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  fclose(f);
}

static void test_shakespeare_client_data(void **state) {
  (void)state;
  const char *a[] = {"To be", ""}, *b[] = {"a+"};
  const text_client c[] = {{"HAMLET", 2, a}, {"NOBODY", 0, NULL}, {"OPHELIA", 1, b}};
  write_text_h5("shake.h5", "snippets", c, 3, 0);
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open_kind("shake.h5", NULL, FM_DATA_ANY, &cd));
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(0, &t));
  fm_token_rows rows;
  FM_ASSERT_OK(fm_tokenizer_encode_client(t, cd, 0, NULL, &rows)); /* default feature "snippets" */
  assert_int_equal(rows.n_rows, 2);
  const int32_t x[] = {C_BOS, C_T, C_o, C_SP, C_b, C_e, C_EOS}, ex[] = {C_BOS, C_EOS};
  expect_row(&rows, 0, x, 7, x + 1, 6);
  expect_row(&rows, 1, ex, 2, ex + 1, 1);
  fm_token_rows_free(&rows);
  FM_ASSERT_OK(fm_tokenizer_encode_client(t, cd, 1, "snippets", &rows)); /* an empty client */
  assert_int_equal(rows.n_rows, 0);
  fm_token_rows_free(&rows);
  FM_ASSERT_OK(fm_tokenizer_encode_client(t, cd, 2, NULL, &rows));
  const int32_t xb[] = {C_BOS, C_a, C_OOV, C_EOS};
  expect_row(&rows, 0, xb, 4, xb + 1, 3);
  fm_token_rows_free(&rows);
  /* a feature that is not there names file, client and feature */
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_tokenizer_encode_client(t, cd, 0, "tokens", &rows));
  FM_ASSERT_MSG_HAS("shake.h5");
  FM_ASSERT_MSG_HAS("tokens");
  fm_tokenizer_destroy(&t);
  fm_client_data_close(&cd);
}

/* The h5py-written fixture (tests/data/make_h5_fixtures.py: shakespeare.h5). */
static void test_shakespeare_h5py_fixture(void **state) {
  (void)state;
  REQUIRE_FIXTURES();
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open_kind("fx/shakespeare.h5", NULL, FM_DATA_ANY, &cd));
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_shakespeare(0, &t));
  size_t romeo = SIZE_MAX;
  for (size_t i = 0; i < fm_client_data_num_clients(cd); i++)
    if (!strcmp(fm_client_data_client_id(cd, i), "ROMEO_AND_JULIET_ROMEO")) romeo = i;
  assert_true(romeo != SIZE_MAX);
  fm_token_rows rows;
  FM_ASSERT_OK(fm_tokenizer_encode_client(t, cd, romeo, NULL, &rows));
  /* three snippets: 48 and 38 bytes (one row each) and "x" * 5000 (ceil(5002 / 81) = 62 rows) */
  assert_int_equal(rows.n_rows, 1 + 1 + 62);
  const int32_t C_B = 49; /* "But" */
  assert_int_equal(rows.x[0], C_BOS);
  assert_int_equal(rows.y[0], C_B);
  const int32_t C_x = 6;
  assert_int_equal(rows.x[2 * 80], C_BOS);
  assert_int_equal(rows.y[2 * 80], C_x);
  /* 5002 = 61 * 81 + 61: EOS at position 60 of row 61 (the last), then padding */
  assert_int_equal(rows.x[63 * 80 + 60], C_EOS);
  assert_int_equal(rows.y[63 * 80 + 59], C_EOS);
  assert_int_equal(rows.y[63 * 80 + 60], 0);
  fm_token_rows_free(&rows);
  fm_tokenizer_destroy(&t);
  fm_client_data_close(&cd);
}

/* ---- Stack Overflow ---------------------------------------------------------------- */

/* CRLF, a lone CR, a tab, a no-break space (Python's str.split() splits on
 * it), a repeated word (keeps its first id), a non-ASCII word. */
static const char *const k_counts =
    "the 100\r\n"
    "to\t90\r"
    "a 80\n"
    "the 75\n"
    "caf\xc3\xa9\xc2\xa0" "70\n"
    "is  +60\n"
    "of 1_000\n"
    "not-read here because vocab_size stops first\n";

static void test_stackoverflow_vocab_file(void **state) {
  (void)state;
  write_file("counts.txt", k_counts);
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_words_file("counts.txt", 6, 0, &t));
  assert_int_equal(fm_tokenizer_get_kind(t), FM_TOKENIZER_WORDS);
  assert_int_equal(fm_tokenizer_num_tokens(t), 6);
  assert_int_equal(fm_tokenizer_vocab_size(t), 10);
  assert_int_equal(fm_tokenizer_seq_len(t), 20);
  assert_string_equal(fm_tokenizer_default_feature(t), "tokens");
  fm_token_specials sp;
  fm_tokenizer_specials(t, &sp);
  assert_int_equal(sp.pad, 0);
  assert_int_equal(sp.oov, 7);
  assert_int_equal(sp.bos, 8);
  assert_int_equal(sp.eos, 9);
  const char *want[] = {"the", "to", "a", "caf\xc3\xa9", "is", "of"};
  for (int32_t id = 1; id <= 6; id++) {
    assert_string_equal(fm_tokenizer_token(t, id), want[id - 1]);
    assert_int_equal(fm_tokenizer_lookup(t, want[id - 1]), id);
  }
  assert_int_equal(fm_tokenizer_lookup(t, "The"), sp.oov); /* no case folding */
  assert_int_equal(fm_tokenizer_lookup(t, ""), sp.oov);
  fm_tokenizer_destroy(&t);
  /* vocab_size 3: the first three distinct words */
  FM_ASSERT_OK(fm_tokenizer_create_words_file("counts.txt", 3, 5, &t));
  assert_int_equal(fm_tokenizer_num_tokens(t), 3);
  assert_int_equal(fm_tokenizer_seq_len(t), 5);
  assert_null(fm_tokenizer_token(t, 4));
  assert_int_equal(fm_tokenizer_lookup(t, "is"), 4); /* now OOV: V + 1 */
  fm_tokenizer_destroy(&t);
  /* a larger vocab_size than the file reaches the malformed last line */
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_tokenizer_create_words_file("counts.txt", 0, 0, &t));
  FM_ASSERT_MSG_HAS("counts.txt:8");
  assert_null(t);
}

static void test_stackoverflow_sentences(void **state) {
  (void)state;
  write_file("counts.txt", k_counts);
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_words_file("counts.txt", 6, 0, &t));
  enum { THE = 1, TO = 2, A = 3, CAFE = 4, IS = 5, OF = 6, OOV = 7, BOS = 8, EOS = 9 };
  fm_token_rows rows;
  const char *v[] = {"the cat is a caf\xc3\xa9", "", "a  to ", "to"};
  FM_ASSERT_OK(fm_tokenizer_encode(t, v, 4, &rows));
  assert_int_equal(rows.n_rows, 4); /* one row per string */
  const int32_t r0[] = {BOS, THE, OOV, IS, A, CAFE, EOS};
  expect_row(&rows, 0, r0, 7, r0 + 1, 6);
  const int32_t r1[] = {BOS, OOV, EOS}; /* "".split(' ') == [''] : one empty word, OOV */
  expect_row(&rows, 1, r1, 3, r1 + 1, 2);
  const int32_t r2[] = {BOS, A, OOV, TO, OOV, EOS}; /* "a  to ".split(' ') == ['a', '', 'to', ''] */
  expect_row(&rows, 2, r2, 6, r2 + 1, 5);
  const int32_t r3[] = {BOS, TO, EOS};
  expect_row(&rows, 3, r3, 3, r3 + 1, 2);
  fm_token_rows_free(&rows);

  /* 19 words: EOS ends the row; 20 words: no EOS; 25 words: truncated to 20, no EOS */
  char s19[256] = "", s20[256] = "", s25[256] = "";
  for (int k = 0; k < 25; k++) {
    const char *w = k % 2 ? "of" : "the";
    if (k < 19) snprintf(s19 + strlen(s19), sizeof s19 - strlen(s19), "%s%s", k ? " " : "", w);
    if (k < 20) snprintf(s20 + strlen(s20), sizeof s20 - strlen(s20), "%s%s", k ? " " : "", w);
    snprintf(s25 + strlen(s25), sizeof s25 - strlen(s25), "%s%s", k ? " " : "", k >= 20 ? "zzz" : w);
  }
  const char *v2[] = {s19, s20, s25};
  FM_ASSERT_OK(fm_tokenizer_encode(t, v2, 3, &rows));
  assert_int_equal(rows.n_rows, 3);
  int32_t full[22];
  full[0] = BOS;
  for (int k = 0; k < 20; k++) full[k + 1] = k % 2 ? OF : THE;
  int32_t with_eos[21];
  memcpy(with_eos, full, 20 * sizeof *full);
  with_eos[20] = EOS;
  expect_row(&rows, 0, with_eos, 20, with_eos + 1, 20); /* y[19] = EOS */
  assert_int_equal(rows.y[19], EOS);
  expect_row(&rows, 1, full, 20, full + 1, 20);
  assert_int_equal(rows.y[20 + 19], OF);
  expect_row(&rows, 2, full, 20, full + 1, 20); /* the words after the 20th are dropped */
  fm_token_rows_free(&rows);
  fm_tokenizer_destroy(&t);
}

static void test_stackoverflow_vocab_from_data(void **state) {
  (void)state;
  /* clients holding each word: b 3, a 2, c 2, z 1 (though z occurs three times, all in c0); ties a < c */
  const char *c0[] = {"z z z b", "a"}, *c1[] = {"b c", "a"}, *c2[] = {"c  b", ""};
  const text_client c[] = {{"u0", 2, c0}, {"u1", 2, c1}, {"u2", 2, c2}, {"u3", 0, NULL}};
  write_text_h5("so.h5", "tokens", c, 4, 0);
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open_kind("so.h5", NULL, FM_DATA_ANY, &cd));
  fm_tokenizer *t = NULL;
  FM_ASSERT_OK(fm_tokenizer_create_words_data(cd, NULL, 3, 0, &t));
  assert_int_equal(fm_tokenizer_num_tokens(t), 3);
  assert_string_equal(fm_tokenizer_token(t, 1), "b");
  assert_string_equal(fm_tokenizer_token(t, 2), "a");
  assert_string_equal(fm_tokenizer_token(t, 3), "c");
  assert_int_equal(fm_tokenizer_lookup(t, "z"), 4); /* OOV */
  fm_token_rows rows;
  FM_ASSERT_OK(fm_tokenizer_encode_client(t, cd, 0, NULL, &rows));
  assert_int_equal(rows.n_rows, 2);
  const int32_t r0[] = {5, 4, 4, 4, 1, 6}, r1[] = {5, 2, 6};
  expect_row(&rows, 0, r0, 6, r0 + 1, 5);
  expect_row(&rows, 1, r1, 3, r1 + 1, 2);
  fm_token_rows_free(&rows);
  fm_tokenizer_destroy(&t);
  /* vocab_size above the distinct words: all four, z last; the empty word is never a word */
  FM_ASSERT_OK(fm_tokenizer_create_words_data(cd, "tokens", 100, 0, &t));
  assert_int_equal(fm_tokenizer_num_tokens(t), 4);
  assert_string_equal(fm_tokenizer_token(t, 4), "z");
  fm_tokenizer_destroy(&t);
  fm_client_data_close(&cd);
}

/* ---- bad input ------------------------------------------------------------------------ */

static void expect_vocab_error(const char *text, int code, const char *needle) {
  write_file("bad_counts.txt", text);
  fm_tokenizer *t = NULL;
  FM_ASSERT_ERR(code, fm_tokenizer_create_words_file("bad_counts.txt", 0, 0, &t));
  FM_ASSERT_MSG_HAS(needle);
  assert_null(t);
}

static void test_bad_vocab_files(void **state) {
  (void)state;
  fm_tokenizer *t = NULL;
  FM_ASSERT_ERR(FM_ERR_IO, fm_tokenizer_create_words_file("no/such/counts.txt", 0, 0, &t));
  FM_ASSERT_MSG_HAS("no/such/counts.txt");
  assert_null(t);
  expect_vocab_error("", FM_ERR_FORMAT, "bad_counts.txt: empty vocabulary file");
  expect_vocab_error("the 5\nto\n", FM_ERR_FORMAT, "bad_counts.txt:2: expected 'word count', found one field");
  expect_vocab_error("the 5\n\nto 4\n", FM_ERR_FORMAT, "bad_counts.txt:2: expected 'word count', found an empty");
  expect_vocab_error("the 5 6\n", FM_ERR_FORMAT, "bad_counts.txt:1: expected 'word count', found more than two");
  expect_vocab_error("the 5\nto four\n", FM_ERR_FORMAT, "bad_counts.txt:2: count 'four' of word 'to'");
  expect_vocab_error("the 5\nto 4_\n", FM_ERR_FORMAT, "bad_counts.txt:2: count '4_'");
  expect_vocab_error("the 99999999999999999999\n", FM_ERR_FORMAT, "bad_counts.txt:1: count");
  expect_vocab_error("the 5\ncaf\xe9 4\n", FM_ERR_FORMAT, "bad_counts.txt:2: not valid UTF-8");
  FM_ASSERT_ERR(FM_ERR_INVALID_ARG, fm_tokenizer_create_words_file(NULL, 0, 0, &t));
}

static void test_bad_features(void **state) {
  (void)state;
  const text_client c[] = {{"u0", 3, NULL}};
  write_text_h5("int_tokens.h5", "tokens", c, 1, 1);
  fm_client_data *cd = NULL;
  FM_ASSERT_OK(fm_client_data_open_kind("int_tokens.h5", NULL, FM_DATA_ANY, &cd));
  fm_tokenizer *t = NULL;
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_tokenizer_create_words_data(cd, NULL, 0, 0, &t));
  FM_ASSERT_MSG_HAS("int_tokens.h5");
  FM_ASSERT_MSG_HAS("'tokens'");
  FM_ASSERT_MSG_HAS("not string");
  assert_null(t);
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_tokenizer_create_words_data(cd, "snippets", 0, 0, &t));
  FM_ASSERT_MSG_HAS("'snippets'");
  write_file("counts.txt", k_counts);
  FM_ASSERT_OK(fm_tokenizer_create_words_file("counts.txt", 2, 0, &t));
  fm_token_rows rows;
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_tokenizer_encode_client(t, cd, 0, NULL, &rows));
  FM_ASSERT_MSG_HAS("int_tokens.h5");
  FM_ASSERT_MSG_HAS("'tokens'");
  assert_int_equal(rows.n_rows, 0);
  assert_null(rows.x);
  fm_tokenizer_destroy(&t);
  fm_client_data_close(&cd);
  /* a file whose strings hold no word at all cannot give a vocabulary */
  const char *blank[] = {"", " "};
  const text_client e[] = {{"u0", 2, blank}};
  write_text_h5("blank.h5", "tokens", e, 1, 0);
  FM_ASSERT_OK(fm_client_data_open_kind("blank.h5", NULL, FM_DATA_ANY, &cd));
  FM_ASSERT_ERR(FM_ERR_FORMAT, fm_tokenizer_create_words_data(cd, NULL, 0, 0, &t));
  FM_ASSERT_MSG_HAS("blank.h5: feature 'tokens' holds no words");
  fm_client_data_close(&cd);
}

/* ---- out of memory ------------------------------------------------------------------ */

/* Fails the g_fail_at-th allocation; counts live blocks (a 16-byte header keeps malloc's alignment). */
static long g_calls, g_fail_at, g_live;
static void *o_malloc(size_t n) {
  if (++g_calls == g_fail_at) return NULL;
  char *h = malloc(n + 16);
  if (!h) return NULL;
  g_live++;
  return h + 16;
}
static void *o_calloc(size_t c, size_t n) {
  if (n && c > SIZE_MAX / n) return NULL;
  void *p = o_malloc(c * n);
  if (p) memset(p, 0, c * n);
  return p;
}
static void *o_realloc(void *p, size_t n) {
  if (!p) return o_malloc(n);
  if (++g_calls == g_fail_at) return NULL;
  char *h = realloc((char *)p - 16, n + 16);
  return h ? h + 16 : NULL;
}
static void o_free(void *p) {
  if (!p) return;
  g_live--;
  free((char *)p - 16);
}

/* The three paths; each frees everything it made, whatever failed. */
static int oom_words_file(void) {
  fm_tokenizer *t = NULL;
  int rc = fm_tokenizer_create_words_file("oom_counts.txt", 6, 0, &t);
  if (rc == FM_OK) assert_int_equal(fm_tokenizer_num_tokens(t), 6);
  fm_tokenizer_destroy(&t);
  return rc;
}
static int oom_words_data(void) {
  fm_client_data *cd = NULL;
  fm_tokenizer *t = NULL;
  fm_token_rows rows = {0, 0, NULL, NULL};
  int rc = fm_client_data_open_kind("oom_so.h5", NULL, FM_DATA_ANY, &cd);
  if (rc == FM_OK) rc = fm_tokenizer_create_words_data(cd, NULL, 0, 0, &t);
  if (rc == FM_OK) rc = fm_tokenizer_encode_client(t, cd, 0, NULL, &rows);
  if (rc == FM_OK) assert_int_equal(rows.n_rows, 2);
  fm_token_rows_free(&rows);
  fm_tokenizer_destroy(&t);
  fm_client_data_close(&cd);
  return rc;
}
static int oom_shakespeare(void) {
  fm_tokenizer *t = NULL;
  fm_token_rows rows = {0, 0, NULL, NULL};
  const char *v[] = {"To be", "", "or not"};
  int rc = fm_tokenizer_create_shakespeare(0, &t);
  if (rc == FM_OK) rc = fm_tokenizer_encode(t, v, 3, &rows);
  if (rc == FM_OK) assert_int_equal(rows.n_rows, 3);
  fm_token_rows_free(&rows);
  fm_tokenizer_destroy(&t);
  return rc;
}

static void test_out_of_memory(void **state) {
  (void)state;
  write_file("oom_counts.txt", k_counts);
  const char *c0[] = {"z z z b", "a"}, *c1[] = {"b c"};
  const text_client c[] = {{"u0", 2, c0}, {"u1", 1, c1}};
  write_text_h5("oom_so.h5", "tokens", c, 2, 0);
  int (*const paths[])(void) = {oom_words_file, oom_words_data, oom_shakespeare};
  FM_ASSERT_OK(fm_set_allocator(o_malloc, o_realloc, o_calloc, o_free));
  for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
    long failures = 0;
    for (long n = 1;; n++) {
      g_calls = 0;
      g_fail_at = n;
      g_live = 0;
      int rc = paths[p]();
      if (g_live != 0) fail_msg("path %zu, allocation %ld failing: %ld blocks left", p, n, g_live);
      if (g_calls < n) { /* never reached the failing allocation */
        if (rc != FM_OK) fail_msg("path %zu without a failure: %s", p, fm_last_error());
        break;
      }
      failures++;
      if (rc != FM_ERR_NOMEM && !strstr(fm_last_error(), "out of memory"))
        fail_msg("path %zu, allocation %ld failing: %s (%s)", p, n, fm_err_name(rc), fm_last_error());
    }
    assert_true(failures > 2);
  }
  g_fail_at = 0;
  FM_ASSERT_OK(fm_set_allocator(malloc, realloc, calloc, free));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shakespeare_vocabulary_and_specials),
      cmocka_unit_test(test_shakespeare_bos_eos),
      cmocka_unit_test(test_shakespeare_non_ascii_bytes),
      cmocka_unit_test(test_shakespeare_long_snippets_split),
      cmocka_unit_test(test_shakespeare_empty_and_several),
      cmocka_unit_test(test_shakespeare_short_sequence_length),
      cmocka_unit_test(test_shakespeare_client_data),
      cmocka_unit_test(test_shakespeare_h5py_fixture),
      cmocka_unit_test(test_stackoverflow_vocab_file),
      cmocka_unit_test(test_stackoverflow_sentences),
      cmocka_unit_test(test_stackoverflow_vocab_from_data),
      cmocka_unit_test(test_bad_vocab_files),
      cmocka_unit_test(test_bad_features),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
