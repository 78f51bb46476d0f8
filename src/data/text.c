/* src/data/text.c — TFF's text preprocessing: Shakespeare's characters and
 * Stack Overflow's words to rows of token ids (include/fedmpi/text.h).
 *
 * Re-implemented from TFF's char_prediction_preprocessing.py,
 * word_prediction_preprocessing.py and datasets/stackoverflow.py
 * (load_word_counts), semantics only:
 *   - characters are bytes (tf.strings.bytes_split), looked up in CHAR_VOCAB
 *     through a 256-entry table; every byte outside it (so every byte of a
 *     non-ASCII character) is the one OOV id;
 *   - words are Python's str.split(' ') pieces, looked up in an
 *     open-addressing hash table (FNV-1a) of the vocabulary;
 *   - the word count file is read as Python reads it in text mode: lines end
 *     at \n, \r or \r\n (universal newlines), each must be valid UTF-8, and
 *     is split on Python's whitespace (str.split() with no argument, Unicode
 *     spaces included) into exactly word and count.
 *
 * Deliberately does not: hash OOV words into more than one bucket (TFF's
 * default and the baseline's setting is one; more would need TF's
 * Fingerprint64), shuffle (the batch iterator does), lower-case or otherwise
 * normalise text (TFF's files are already tokenised), cache anything.
 *
 * Dimension legend: R rows, L sequence length, V vocabulary entries, K
 * clients, n bytes of one string. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"
#include "fedmpi/text.h"
#include "internal.h"

/* CHAR_VOCAB of char_prediction_preprocessing.py, in its order: id = index + 1. */
static const char fm__char_vocab[] =
    "dhlptx@DHLPTX $(,048cgkoswCGKOSW[_#'/37;?bfjnrvzBFJNRVZ\"&*.26:\naeimquyAEIMQUY]!%)-159\r";
#define FM__MAX_SEQ_LEN ((size_t)1 << 24)

/* ---- a string -> int64 hash table ------------------------------------------- */

typedef struct fm__wslot {
  char *key;     /* owned, NUL-terminated; NULL: empty slot */
  size_t len;
  uint64_t hash;
  int64_t val;   /* id (lookup) or count (counting) */
  int64_t last;  /* counting: the last client that counted this word */
} fm__wslot;

typedef struct fm__wtable {
  fm__wslot *slot; /* (cap) */
  size_t cap, used; /* cap a power of two, used <= cap / 2 */
} fm__wtable;

static uint64_t fm__fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t k = 0; k < n; k++) h = (h ^ (unsigned char)s[k]) * 0x100000001b3ull;
  return h;
}

/* The slot holding (s, n), or the empty slot where it belongs. */
static fm__wslot *fm__wt_find(const fm__wtable *t, const char *s, size_t n, uint64_t h) {
  size_t m = t->cap - 1;
  for (size_t k = (size_t)h & m;; k = (k + 1) & m) {
    fm__wslot *e = &t->slot[k];
    if (!e->key || (e->hash == h && e->len == n && !memcmp(e->key, s, n))) return e;
  }
}

static int fm__wt_init(fm__wtable *t, size_t expect) {
  size_t cap = 64;
  while (cap / 2 < expect && cap < SIZE_MAX / 4) cap *= 2;
  t->slot = fm__calloc(cap, sizeof *t->slot);
  if (!t->slot) return FM_ERR_NOMEM;
  t->cap = cap;
  t->used = 0;
  return FM_OK;
}

static void fm__wt_free(fm__wtable *t) {
  if (!t->slot) return;
  for (size_t k = 0; k < t->cap; k++) fm__free(t->slot[k].key);
  fm__free(t->slot);
  t->slot = NULL;
  t->cap = t->used = 0;
}

static int fm__wt_grow(fm__wtable *t) {
  FM_CHECK(t->cap <= SIZE_MAX / 2 / sizeof *t->slot, FM_ERR_OVERFLOW, "word table: too many distinct words");
  fm__wtable bigger = {fm__calloc(t->cap * 2, sizeof *t->slot), t->cap * 2, t->used};
  if (!bigger.slot) return FM_ERR_NOMEM;
  for (size_t k = 0; k < t->cap; k++)
    if (t->slot[k].key) *fm__wt_find(&bigger, t->slot[k].key, t->slot[k].len, t->slot[k].hash) = t->slot[k];
  fm__free(t->slot);
  *t = bigger;
  return FM_OK;
}

/* The slot of (s, n), inserted (key copied, val 0, last -1) when absent;
 * *added says which. */
static int fm__wt_upsert(fm__wtable *t, const char *s, size_t n, fm__wslot **out, int *added) {
  uint64_t h = fm__fnv1a(s, n);
  fm__wslot *e = fm__wt_find(t, s, n, h);
  *added = !e->key;
  if (e->key) {
    *out = e;
    return FM_OK;
  }
  if (t->used + 1 > t->cap / 2) {
    FM_CALL(fm__wt_grow(t));
    e = fm__wt_find(t, s, n, h);
  }
  char *key = fm__malloc(n + 1);
  if (!key) return FM_ERR_NOMEM;
  memcpy(key, s, n);
  key[n] = '\0';
  *e = (fm__wslot){key, n, h, 0, -1};
  t->used++;
  *out = e;
  return FM_OK;
}

/* ---- the tokenizer ------------------------------------------------------------ */

struct fm_tokenizer {
  fm_tokenizer_kind kind;
  size_t seq_len;       /* L */
  size_t n_tokens;      /* V: 86 characters or the words */
  const char **tokens;  /* (V) entry of id k + 1; words point into table keys */
  size_t tokens_cap;    /* entries tokens has room for */
  fm_token_specials sp;
  int32_t byte_id[256]; /* characters: byte -> id */
  char chars[2 * FM_SHAKESPEARE_NUM_CHARS]; /* characters: one-byte strings */
  fm__wtable table;     /* words -> id */
};

static fm_token_specials fm__specials(size_t entries) {
  /* get_special_tokens of both tasks (one OOV bucket): pad 0, OOV V + 1, BOS V + 2, EOS V + 3 */
  fm_token_specials s = {0, (int32_t)entries + 1, (int32_t)entries + 2, (int32_t)entries + 3};
  return s;
}

static int fm__tokenizer_new(fm_tokenizer_kind kind, size_t seq_len, size_t dflt, fm_tokenizer **out) {
  FM_CHECK(out, FM_ERR_INVALID_ARG, "tokenizer: NULL output");
  *out = NULL;
  if (seq_len == 0) seq_len = dflt;
  FM_CHECK(seq_len <= FM__MAX_SEQ_LEN, FM_ERR_INVALID_ARG, "tokenizer: sequence length %zu is above %zu", seq_len,
           FM__MAX_SEQ_LEN);
  fm_tokenizer *t = fm__calloc(1, sizeof *t);
  if (!t) return FM_ERR_NOMEM;
  t->kind = kind;
  t->seq_len = seq_len;
  *out = t;
  return FM_OK;
}

int fm_tokenizer_create_shakespeare(size_t seq_len, fm_tokenizer **out) {
  fm_tokenizer *t;
  FM_CALL(fm__tokenizer_new(FM_TOKENIZER_CHARS, seq_len, FM_SHAKESPEARE_SEQ_LEN, &t));
  const size_t V = sizeof fm__char_vocab - 1;
  t->tokens = fm__calloc(V, sizeof *t->tokens);
  if (!t->tokens) {
    fm_tokenizer_destroy(&t);
    return FM_ERR_NOMEM;
  }
  t->n_tokens = V;
  t->sp = fm__specials(V);
  for (int b = 0; b < 256; b++) t->byte_id[b] = t->sp.oov;
  for (size_t k = 0; k < V; k++) {
    t->byte_id[(unsigned char)fm__char_vocab[k]] = (int32_t)k + 1; /* + 1: 0 is pad */
    t->chars[2 * k] = fm__char_vocab[k];
    t->chars[2 * k + 1] = '\0';
    t->tokens[k] = &t->chars[2 * k];
  }
  *out = t;
  return FM_OK;
}

void fm_tokenizer_destroy(fm_tokenizer **t) {
  if (!t || !*t) return;
  fm__wt_free(&(*t)->table);
  fm__free((void *)(*t)->tokens);
  fm__free(*t);
  *t = NULL;
}

/* Append word (s, n) as the next id unless already present. */
static int fm__add_word(fm_tokenizer *t, const char *s, size_t n) {
  if (t->n_tokens == t->tokens_cap) { /* room first, so that a failure leaves table and list in step */
    size_t ncap = t->tokens_cap ? 2 * t->tokens_cap : 1024;
    const char **grown = fm__realloc((void *)t->tokens, ncap * sizeof *grown);
    if (!grown) return FM_ERR_NOMEM;
    t->tokens = grown;
    t->tokens_cap = ncap;
  }
  fm__wslot *e;
  int added;
  FM_CALL(fm__wt_upsert(&t->table, s, n, &e, &added));
  if (!added) return FM_OK;
  t->tokens[t->n_tokens] = e->key;
  e->val = (int64_t)++t->n_tokens;
  return FM_OK;
}

/* ---- the word count file ---------------------------------------------------------- */

/* Bytes of the Python whitespace character (str.isspace) at p, or 0. p holds
 * n > 0 bytes of valid UTF-8. */
static size_t fm__py_space(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
  if (c == 0xc2 && n >= 2 && (p[1] == 0x85 || p[1] == 0xa0)) return 2; /* U+0085, U+00A0 */
  if (n < 3) return 0;
  if (c == 0xe1 && p[1] == 0x9a && p[2] == 0x80) return 3;              /* U+1680 */
  if (c == 0xe2 && p[1] == 0x80 && (p[2] <= 0x8a || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
    return 3;                                                           /* U+2000..200A, 2028, 2029, 202F */
  if (c == 0xe2 && p[1] == 0x81 && p[2] == 0x9f) return 3;              /* U+205F */
  if (c == 0xe3 && p[1] == 0x80 && p[2] == 0x80) return 3;              /* U+3000 */
  return 0;
}

/* 1 if s (n bytes) is valid UTF-8 as Python's decoder accepts it (no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static int fm__utf8_valid(const unsigned char *s, size_t n) {
  for (size_t k = 0; k < n;) {
    unsigned c = s[k];
    size_t len = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3
                                                            : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
    if (!len || k + len > n) return 0;
    for (size_t j = 1; j < len; j++)
      if ((s[k + j] & 0xc0) != 0x80) return 0;
    if (len == 3 && ((c == 0xe0 && s[k + 1] < 0xa0) || (c == 0xed && s[k + 1] >= 0xa0))) return 0;
    if (len == 4 && ((c == 0xf0 && s[k + 1] < 0x90) || (c == 0xf4 && s[k + 1] >= 0x90))) return 0;
    k += len;
  }
  return 1;
}

/* Python's int() of an ASCII field: optional sign, digits, single
 * underscores between digits. */
static int fm__parse_count(const char *s, size_t n, int64_t *out) {
  size_t k = 0;
  int neg = 0;
  if (k < n && (s[k] == '+' || s[k] == '-')) neg = s[k++] == '-';
  if (k == n) return 0;
  uint64_t v = 0;
  int prev_digit = 0;
  for (; k < n; k++) {
    if (s[k] == '_') {
      if (!prev_digit || k + 1 == n) return 0;
      prev_digit = 0;
      continue;
    }
    if (s[k] < '0' || s[k] > '9') return 0;
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(s[k] - '0');
    prev_digit = 1;
  }
  if (v > (uint64_t)INT64_MAX + (uint64_t)neg) return 0;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 1;
}

/* Read one line (universal newlines) into *buf; *len its bytes (no
 * terminator). Returns 1 for a line, 0 at the end of the file, < 0 on error. */
static int fm__read_line(FILE *f, char **buf, size_t *cap, size_t *len) {
  size_t n = 0;
  int c, any = 0;
  while ((c = getc(f)) != EOF) {
    any = 1;
    if (c == '\n') break;
    if (c == '\r') {
      int d = getc(f);
      if (d != '\n' && d != EOF) ungetc(d, f);
      break;
    }
    if (n + 2 > *cap) {
      size_t ncap = *cap ? 2 * *cap : 256;
      char *grown = fm__realloc(*buf, ncap);
      if (!grown) return FM_ERR_NOMEM;
      *buf = grown;
      *cap = ncap;
    }
    (*buf)[n++] = (char)c;
  }
  if (ferror(f)) return FM_ERR_IO;
  if (!any) return 0;
  if (!*buf) {
    *buf = fm__malloc(1);
    if (!*buf) return FM_ERR_NOMEM;
    *cap = 1;
  }
  (*buf)[n] = '\0';
  *len = n;
  return 1;
}

/* Split line (len bytes) on Python whitespace into up to 3 fields (start,
 * length); returns the number of fields found (3 means "more than two"). */
static size_t fm__fields(const char *line, size_t len, size_t start[3], size_t flen[3]) {
  const unsigned char *p = (const unsigned char *)line;
  size_t nf = 0, k = 0;
  while (k < len && nf < 3) {
    size_t sp = fm__py_space(p + k, len - k);
    if (sp) {
      k += sp;
      continue;
    }
    start[nf] = k;
    while (k < len && !fm__py_space(p + k, len - k)) k++;
    flen[nf] = k - start[nf];
    nf++;
  }
  return nf;
}

/* Parse and add one line of the word count file (lineno from 1). */
static int fm__vocab_line(fm_tokenizer *t, const char *path, size_t lineno, const char *line, size_t len) {
  FM_CHECK(memchr(line, '\0', len) == NULL, FM_ERR_FORMAT, "%s:%zu: NUL byte in the line", path, lineno);
  FM_CHECK(fm__utf8_valid((const unsigned char *)line, len), FM_ERR_FORMAT, "%s:%zu: not valid UTF-8", path,
           lineno);
  size_t st[3], fl[3];
  size_t nf = fm__fields(line, len, st, fl);
  FM_CHECK(nf == 2, FM_ERR_FORMAT, "%s:%zu: expected 'word count', found %s", path, lineno,
           nf == 0 ? "an empty line" : nf == 1 ? "one field" : "more than two fields");
  int64_t count;
  FM_CHECK(fm__parse_count(line + st[1], fl[1], &count), FM_ERR_FORMAT,
           "%s:%zu: count '%.*s' of word '%.*s' is not an integer", path, lineno, (int)(fl[1] > 40 ? 40 : fl[1]),
           line + st[1], (int)(fl[0] > 80 ? 80 : fl[0]), line + st[0]);
  int rc = fm__add_word(t, line + st[0], fl[0]);
  if (rc == FM_ERR_NOMEM) return FM_ERR(FM_ERR_NOMEM, "%s:%zu: out of memory for the vocabulary", path, lineno);
  return rc;
}

int fm_tokenizer_create_words_file(const char *vocab_path, size_t vocab_size, size_t seq_len, fm_tokenizer **out) {
  FM_CHECK(vocab_path, FM_ERR_INVALID_ARG, "fm_tokenizer_create_words_file: NULL vocabulary path");
  if (vocab_size == 0) vocab_size = FM_STACKOVERFLOW_VOCAB_SIZE;
  FM_CHECK(vocab_size < INT32_MAX - 4, FM_ERR_INVALID_ARG, "%s: vocabulary size %zu does not fit int32 ids",
           vocab_path, vocab_size);
  fm_tokenizer *t;
  FM_CALL(fm__tokenizer_new(FM_TOKENIZER_WORDS, seq_len, FM_STACKOVERFLOW_SEQ_LEN, &t));
  int rc = fm__wt_init(&t->table, vocab_size < 1u << 20 ? vocab_size : 1u << 20);
  FILE *f = NULL;
  char *line = NULL;
  size_t cap = 0, len = 0, lineno = 0;
  FM_CHECK_GOTO(rc, rc == FM_OK, done, FM_ERR_NOMEM, "%s: out of memory for the vocabulary", vocab_path);
  errno = 0;
  f = fopen(vocab_path, "rb");
  FM_CHECK_GOTO(rc, f != NULL, done, FM_ERR_IO, "cannot open vocabulary file '%s': %s", vocab_path,
                errno ? strerror(errno) : "unknown error");
  while (t->n_tokens < vocab_size) {
    int got = fm__read_line(f, &line, &cap, &len);
    FM_CHECK_GOTO(rc, got != FM_ERR_NOMEM, done, FM_ERR_NOMEM, "%s: out of memory reading line %zu", vocab_path,
                  lineno + 1);
    FM_CHECK_GOTO(rc, got >= 0, done, FM_ERR_IO, "%s: read error after line %zu: %s", vocab_path, lineno,
                  strerror(errno));
    if (got == 0) break;
    FM_CALL_GOTO(rc, fm__vocab_line(t, vocab_path, ++lineno, line, len), done);
  }
  FM_CHECK_GOTO(rc, t->n_tokens > 0, done, FM_ERR_FORMAT,
                "%s: empty vocabulary file (expected lines 'word count', most frequent first)", vocab_path);
  t->sp = fm__specials(t->n_tokens);
done:
  if (f) fclose(f);
  fm__free(line);
  if (rc != FM_OK) {
    fm_tokenizer_destroy(&t);
    return rc;
  }
  *out = t;
  return FM_OK;
}

/* ---- the vocabulary of a training file ---------------------------------------------- */

/* Count client ci's words into counts: each word once per client. */
static int fm__count_client(fm__wtable *counts, char **s, size_t n, size_t ci) {
  for (size_t k = 0; k < n; k++) {
    const char *p = s[k];
    for (;;) {
      const char *sp = strchr(p, ' ');
      size_t len = sp ? (size_t)(sp - p) : strlen(p);
      if (len > 0) {
        fm__wslot *e;
        int added;
        FM_CALL(fm__wt_upsert(counts, p, len, &e, &added));
        if (e->last != (int64_t)ci) {
          e->val++;
          e->last = (int64_t)ci;
        }
      }
      if (!sp) break;
      p = sp + 1;
    }
  }
  return FM_OK;
}

/* Most frequent first; ties: byte order. */
static int fm__cmp_count(const void *a, const void *b) {
  const fm__wslot *x = *(const fm__wslot *const *)a, *y = *(const fm__wslot *const *)b;
  if (x->val != y->val) return x->val > y->val ? -1 : 1;
  return strcmp(x->key, y->key);
}

/* The vocab_size most frequent words of counts, in order, into t. */
static int fm__vocab_from_counts(fm_tokenizer *t, const fm__wtable *counts, size_t vocab_size) {
  int rc = FM_OK;
  const fm__wslot **all = fm__malloc((counts->used ? counts->used : 1) * sizeof *all);
  if (!all) return FM_ERR_NOMEM;
  size_t m = 0;
  for (size_t k = 0; k < counts->cap; k++)
    if (counts->slot[k].key) all[m++] = &counts->slot[k];
  qsort((void *)all, m, sizeof *all, fm__cmp_count);
  size_t V = m < vocab_size ? m : vocab_size;
  FM_CALL_GOTO(rc, fm__wt_init(&t->table, V), done);
  for (size_t k = 0; k < V; k++) FM_CALL_GOTO(rc, fm__add_word(t, all[k]->key, all[k]->len), done);
done:
  fm__free((void *)all);
  return rc;
}

int fm_tokenizer_create_words_data(const fm_client_data *cd, const char *feature, size_t vocab_size, size_t seq_len,
                                   fm_tokenizer **out) {
  FM_CHECK(cd, FM_ERR_INVALID_ARG, "fm_tokenizer_create_words_data: NULL client data");
  if (!feature) feature = "tokens";
  if (vocab_size == 0) vocab_size = FM_STACKOVERFLOW_VOCAB_SIZE;
  FM_CHECK(vocab_size < INT32_MAX - 4, FM_ERR_INVALID_ARG, "%s: vocabulary size %zu does not fit int32 ids",
           fm_client_data_path(cd), vocab_size);
  fm_tokenizer *t;
  FM_CALL(fm__tokenizer_new(FM_TOKENIZER_WORDS, seq_len, FM_STACKOVERFLOW_SEQ_LEN, &t));
  fm__wtable counts = {NULL, 0, 0};
  int rc = fm__wt_init(&counts, 1024);
  FM_CHECK_GOTO(rc, rc == FM_OK, done, FM_ERR_NOMEM, "%s: out of memory counting words", fm_client_data_path(cd));
  for (size_t i = 0; i < fm_client_data_num_clients(cd); i++) {
    char **s = NULL;
    size_t n = 0;
    FM_CALL_GOTO(rc, fm_client_data_load_strings(cd, i, feature, &s, &n), done);
    rc = fm__count_client(&counts, s, n, i);
    fm_strings_free(s, n);
    FM_CHECK_GOTO(rc, rc == FM_OK, done, rc, "%s: client '%s': cannot count the words of feature '%s'",
                  fm_client_data_path(cd), fm_client_data_client_id(cd, i), feature);
  }
  FM_CHECK_GOTO(rc, counts.used > 0, done, FM_ERR_FORMAT, "%s: feature '%s' holds no words to build a vocabulary from",
                fm_client_data_path(cd), feature);
  rc = fm__vocab_from_counts(t, &counts, vocab_size);
  FM_CHECK_GOTO(rc, rc == FM_OK, done, rc, "%s: out of memory for the vocabulary", fm_client_data_path(cd));
  t->sp = fm__specials(t->n_tokens);
done:
  fm__wt_free(&counts);
  if (rc != FM_OK) {
    fm_tokenizer_destroy(&t);
    return rc;
  }
  *out = t;
  return FM_OK;
}

/* ---- queries ------------------------------------------------------------------ */

fm_tokenizer_kind fm_tokenizer_get_kind(const fm_tokenizer *t) { return t->kind; }
size_t fm_tokenizer_seq_len(const fm_tokenizer *t) { return t->seq_len; }
size_t fm_tokenizer_num_tokens(const fm_tokenizer *t) { return t->n_tokens; }
size_t fm_tokenizer_vocab_size(const fm_tokenizer *t) { return t->n_tokens + 4; }
void fm_tokenizer_specials(const fm_tokenizer *t, fm_token_specials *out) { *out = t->sp; }

const char *fm_tokenizer_default_feature(const fm_tokenizer *t) {
  return t->kind == FM_TOKENIZER_CHARS ? "snippets" : "tokens";
}

const char *fm_tokenizer_token(const fm_tokenizer *t, int32_t id) {
  if (id < 1 || (size_t)id > t->n_tokens) return NULL;
  return t->tokens[id - 1];
}

static int32_t fm__word_id(const fm_tokenizer *t, const char *s, size_t n) {
  const fm__wslot *e = fm__wt_find(&t->table, s, n, fm__fnv1a(s, n));
  return e->key ? (int32_t)e->val : t->sp.oov;
}

int32_t fm_tokenizer_lookup(const fm_tokenizer *t, const char *token) {
  if (!token) return t->sp.oov;
  size_t n = strlen(token);
  if (t->kind == FM_TOKENIZER_CHARS) return n == 1 ? t->byte_id[(unsigned char)token[0]] : t->sp.oov;
  return fm__word_id(t, token, n);
}

/* ---- encoding ------------------------------------------------------------------ */

/* Rows string s takes: characters ceil((n + 2) / (L + 1)), words 1. */
static size_t fm__rows_of(const fm_tokenizer *t, const char *s) {
  if (t->kind == FM_TOKENIZER_WORDS) return 1;
  size_t n = strlen(s), w = t->seq_len + 1;
  return n / w + (n % w + 2 + w - 1) / w; /* ceil((n + 2) / w) without overflow */
}

size_t fm__tokenizer_rows(const fm_tokenizer *t, const char *s) { return fm__rows_of(t, s); }

/* Characters: the padded sequence [BOS] ids [EOS] 0..., rows of L + 1 from row0. */
static void fm__encode_chars(const fm_tokenizer *t, const char *s, int32_t *x, int32_t *y, size_t rows) {
  const size_t n = strlen(s), L = t->seq_len, w = L + 1;
  const unsigned char *p = (const unsigned char *)s;
  for (size_t r = 0; r < rows; r++)
    for (size_t j = 0; j < w; j++) {
      size_t k = r * w + j; /* position in the padded sequence */
      int32_t id = k == 0 ? t->sp.bos : k <= n ? t->byte_id[p[k - 1]] : k == n + 1 ? t->sp.eos : t->sp.pad;
      if (j < L) x[r * L + j] = id;
      if (j > 0) y[r * L + j - 1] = id;
    }
}

/* Words: [BOS] the first L words' ids [EOS if fewer than L words] 0... (L + 1). */
static void fm__encode_words(const fm_tokenizer *t, const char *s, int32_t *x, int32_t *y) {
  const size_t L = t->seq_len;
  int32_t prev = t->sp.bos;
  size_t k = 1, words = 0;
  const char *p = s;
  for (; words < L; words++) { /* str.split(' '): every space ends a word, "" is one empty word */
    const char *sp = strchr(p, ' ');
    size_t len = sp ? (size_t)(sp - p) : strlen(p);
    int32_t id = fm__word_id(t, p, len);
    x[k - 1] = prev;
    y[k - 1] = id;
    prev = id;
    k++;
    if (!sp) {
      words++;
      break;
    }
    p = sp + 1;
  }
  if (words < L) { /* TFF appends EOS only to a sentence shorter than L */
    x[k - 1] = prev;
    y[k - 1] = t->sp.eos;
    prev = t->sp.eos;
    k++;
  }
  for (; k <= L; k++) {
    x[k - 1] = prev;
    y[k - 1] = t->sp.pad;
    prev = t->sp.pad;
  }
}

int fm_tokenizer_encode(const fm_tokenizer *t, const char *const *strings, size_t count, fm_token_rows *out) {
  FM_CHECK(t && out && (strings || count == 0), FM_ERR_INVALID_ARG, "fm_tokenizer_encode: NULL argument");
  *out = (fm_token_rows){0, t->seq_len, NULL, NULL};
  size_t R = 0;
  for (size_t k = 0; k < count; k++) {
    FM_CHECK(strings[k], FM_ERR_INVALID_ARG, "fm_tokenizer_encode: string %zu is NULL", k);
    size_t r = fm__rows_of(t, strings[k]);
    FM_CHECK(R <= SIZE_MAX - r, FM_ERR_OVERFLOW, "fm_tokenizer_encode: too many rows");
    R += r;
  }
  const size_t L = t->seq_len;
  if (R == 0 || L == 0) {
    out->n_rows = R;
    return FM_OK;
  }
  FM_CHECK(R <= SIZE_MAX / sizeof(int32_t) / L, FM_ERR_OVERFLOW, "fm_tokenizer_encode: %zu rows of %zu ids are too many",
           R, L);
  int32_t *x = fm__malloc(R * L * sizeof *x), *y = fm__malloc(R * L * sizeof *y);
  if (!x || !y) {
    fm__free(x);
    fm__free(y);
    return FM_ERR(FM_ERR_NOMEM, "fm_tokenizer_encode: out of memory for %zu rows of %zu ids", R, L);
  }
  size_t r = 0;
  for (size_t k = 0; k < count; k++) {
    size_t rk = fm__rows_of(t, strings[k]);
    if (t->kind == FM_TOKENIZER_CHARS)
      fm__encode_chars(t, strings[k], x + r * L, y + r * L, rk);
    else
      fm__encode_words(t, strings[k], x + r * L, y + r * L);
    r += rk;
  }
  *out = (fm_token_rows){R, L, x, y};
  return FM_OK;
}

int fm_tokenizer_encode_client(const fm_tokenizer *t, const fm_client_data *cd, size_t i, const char *feature,
                               fm_token_rows *out) {
  FM_CHECK(t && cd && out, FM_ERR_INVALID_ARG, "fm_tokenizer_encode_client: NULL argument");
  *out = (fm_token_rows){0, t->seq_len, NULL, NULL};
  char **s = NULL;
  size_t n = 0;
  FM_CALL(fm_client_data_load_strings(cd, i, feature ? feature : fm_tokenizer_default_feature(t), &s, &n));
  int rc = fm_tokenizer_encode(t, (const char *const *)s, n, out);
  fm_strings_free(s, n);
  return rc;
}

void fm_token_rows_free(fm_token_rows *rows) {
  if (!rows) return;
  fm__free(rows->x);
  fm__free(rows->y);
  *rows = (fm_token_rows){0, 0, NULL, NULL};
}
