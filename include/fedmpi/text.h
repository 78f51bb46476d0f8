/* fedmpi/text.h — text features as TFF's baseline tasks prepare them:
 * strings to rows of token ids (x, y) for next-token prediction.
 *
 * Two tokenizers, each reproducing one TFF preprocessing function exactly
 * (docs/data.md section 13 works through both):
 *
 *   Shakespeare next character (tff.simulation.baselines.shakespeare,
 *   char_prediction_preprocessing.py): the 86-character vocabulary CHAR_VOCAB,
 *   looked up byte by byte (tf.strings.bytes_split: a non-ASCII character is
 *   one OOV id per UTF-8 byte); ids pad 0, characters 1..86, OOV 87, BOS 88,
 *   EOS 89. Each snippet becomes [BOS] bytes [EOS], padded with 0 to a
 *   multiple of L + 1 and cut into rows of L + 1 (L = 80): a long snippet
 *   gives several rows, the last one padded; an empty snippet gives one row
 *   [BOS, EOS, 0, ...].
 *
 *   Stack Overflow next word (baselines/stackoverflow,
 *   word_prediction_preprocessing.py): a vocabulary of V words (TFF's word
 *   count file, or the most frequent words of a training file); ids pad 0,
 *   words 1..V, OOV V + 1 (one bucket), BOS V + 2, EOS V + 3. Each string is
 *   split on single spaces (as Python's str.split(' '): consecutive spaces
 *   give empty words, which are OOV), truncated to L words (L = 20); EOS is
 *   appended only when fewer than L words remain; [BOS] goes in front, and
 *   the row is padded with 0 to L + 1. One row per string.
 *
 * In both, x = row[:-1] and y = row[1:] (each L ids). Rows come in the order
 * of the strings; TFF's shuffle of the strings before tokenising is the batch
 * iterator's business, not the tokenizer's.
 *
 * Dimension legend: R rows, L sequence length (x and y per row), V words of
 * the vocabulary, K clients. */
#ifndef FEDMPI_TEXT_H
#define FEDMPI_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/data.h"
#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_tokenizer fm_tokenizer;

typedef enum fm_tokenizer_kind {
  FM_TOKENIZER_CHARS = 1, /* Shakespeare: bytes of CHAR_VOCAB */
  FM_TOKENIZER_WORDS = 2  /* Stack Overflow: space-separated words */
} fm_tokenizer_kind;

/* TFF's defaults. */
#define FM_SHAKESPEARE_SEQ_LEN 80        /* char_prediction_preprocessing.DEFAULT_SEQUENCE_LENGTH */
#define FM_SHAKESPEARE_NUM_CHARS 86      /* len(CHAR_VOCAB) */
#define FM_STACKOVERFLOW_SEQ_LEN 20      /* stackoverflow/constants.DEFAULT_SEQUENCE_LENGTH */
#define FM_STACKOVERFLOW_VOCAB_SIZE 10000 /* stackoverflow/constants.DEFAULT_WORD_VOCAB_SIZE */

/* The special ids, as TFF's get_special_tokens assigns them. */
typedef struct fm_token_specials {
  int32_t pad; /* 0 */
  int32_t oov; /* number of vocabulary entries + 1 */
  int32_t bos; /* + 2 */
  int32_t eos; /* + 3 */
} fm_token_specials;

/* One client's (or one list of strings') token rows. */
typedef struct fm_token_rows {
  size_t n_rows;  /* R */
  size_t seq_len; /* L */
  int32_t *x;     /* (R, L) row[:-1] */
  int32_t *y;     /* (R, L) row[1:] */
} fm_token_rows;

/* Shakespeare's character tokenizer with sequence length seq_len (0: 80).
 * *out is new; destroy with fm_tokenizer_destroy. Not collective.
 * FM_ERR_INVALID_ARG (seq_len above 2^24), FM_ERR_NOMEM. */
FM_EXTERN int fm_tokenizer_create_shakespeare(size_t seq_len, fm_tokenizer **out);

/* Stack Overflow's word tokenizer over the vocabulary in vocab_path, a word
 * count file as TFF's load_word_counts reads it: one "word count" pair per
 * line (split on whitespace: exactly two fields, count a decimal integer),
 * most frequent first; the vocabulary is the first vocab_size distinct words
 * in file order (0: 10000). Reading stops there, as TFF's does: lines after
 * them are not looked at. A word listed again keeps its first position.
 * seq_len 0: 20. Not collective. Errors name the file and line: FM_ERR_IO
 * (cannot open or read), FM_ERR_FORMAT (a line without exactly two fields,
 * a count that is not an integer, invalid UTF-8, no words at all),
 * FM_ERR_INVALID_ARG, FM_ERR_NOMEM. */
FM_EXTERN int fm_tokenizer_create_words_file(const char *vocab_path, size_t vocab_size, size_t seq_len,
                                             fm_tokenizer **out);

/* Stack Overflow's word tokenizer over the vocab_size (0: 10000) most
 * frequent words of cd's string feature (NULL: "tokens"), for when TFF's word
 * count file is not at hand. A word's count is, as in TFF's file, the number
 * of clients with at least one string containing it (strings split on single
 * spaces; empty words are not counted); ties go to the word that sorts first
 * by bytes (strcmp), so the vocabulary is a pure function of the file. Reads
 * every client. Not collective. FM_ERR_FORMAT (the feature is missing or not
 * a string in some client; no words at all), FM_ERR_NOMEM. */
FM_EXTERN int fm_tokenizer_create_words_data(const fm_client_data *cd, const char *feature, size_t vocab_size,
                                             size_t seq_len, fm_tokenizer **out);

/* Free t and set *t to NULL; NULL and *t == NULL accepted. */
FM_EXTERN void fm_tokenizer_destroy(fm_tokenizer **t);

FM_EXTERN fm_tokenizer_kind fm_tokenizer_get_kind(const fm_tokenizer *t);
/* L: the length of x and y (rows hold L + 1 ids). */
FM_EXTERN size_t fm_tokenizer_seq_len(const fm_tokenizer *t);
/* Number of vocabulary entries: 86 characters, or V words. */
FM_EXTERN size_t fm_tokenizer_num_tokens(const fm_tokenizer *t);
/* Number of distinct ids, the model's embedding and output size: entries + 4
 * (pad, OOV, BOS, EOS): 90 for Shakespeare, V + 4 for Stack Overflow. */
FM_EXTERN size_t fm_tokenizer_vocab_size(const fm_tokenizer *t);
FM_EXTERN void fm_tokenizer_specials(const fm_tokenizer *t, fm_token_specials *out);
/* The feature TFF's files keep the text in: "snippets" or "tokens". */
FM_EXTERN const char *fm_tokenizer_default_feature(const fm_tokenizer *t);
/* The vocabulary entry of id (1 .. entries), NUL-terminated (a character is
 * a one-byte string), or NULL for pad, OOV, BOS, EOS and out-of-range ids.
 * Borrowed; valid while t lives. */
FM_EXTERN const char *fm_tokenizer_token(const fm_tokenizer *t, int32_t id);
/* The id of one vocabulary entry (a word; for characters a one-byte string),
 * else the OOV id. */
FM_EXTERN int32_t fm_tokenizer_lookup(const fm_tokenizer *t, const char *token);

/* Tokenise count strings into *out (allocated; free with
 * fm_token_rows_free), rows in the order of the strings. Not collective;
 * thread-safe (t is read only). FM_ERR_INVALID_ARG (NULL string),
 * FM_ERR_OVERFLOW (more rows than memory can index), FM_ERR_NOMEM. */
FM_EXTERN int fm_tokenizer_encode(const fm_tokenizer *t, const char *const *strings, size_t count,
                                  fm_token_rows *out);
/* Read client i's string feature (NULL: the tokenizer's default feature) and
 * tokenise it as fm_tokenizer_encode. An empty client gives 0 rows. Errors
 * as fm_client_data_load_strings: FM_ERR_FORMAT naming file, client and
 * feature when it is missing or not a string. Thread-safe. */
FM_EXTERN int fm_tokenizer_encode_client(const fm_tokenizer *t, const fm_client_data *cd, size_t i,
                                         const char *feature, fm_token_rows *out);
/* Free x and y and zero *rows; NULL accepted. */
FM_EXTERN void fm_token_rows_free(fm_token_rows *rows);

#ifdef __cplusplus
}
#endif
#endif
