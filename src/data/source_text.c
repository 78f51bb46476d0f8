/* src/data/source_text.c — the ClientData source for text: an HDF5
 * ClientData file (opened FM_DATA_ANY by source_h5.c) whose string feature a
 * tokenizer (fedmpi/text.h) turns into token rows, and the choice, on
 * opening a file for training, between that source and the plain HDF5 one
 * (fm__cd_open_file, also the "file" spec source of --data).
 *
 * Client i's examples are its token rows, as fm_tokenizer_encode_client
 * makes them: x (R, L) the ids as float32 (exact: ids < 2^24), y (R, L)
 * int32, num_targets = num_features = L, shape (L,), num_classes the
 * tokenizer's vocab size. R is known without tokenising for words (one row
 * per string: the HDF5 index's count); for characters opening reads every
 * client's strings once and counts their rows (fm__tokenizer_rows). A load
 * reads the strings under the HDF5 lock (the file source takes it) and
 * tokenises outside it; the client cache sits in front as for any source.
 *
 * Without a tokenizer, a file that cannot be opened for training, has no
 * usable numeric input and holds Shakespeare's "snippets" strings gets TFF's
 * character tokenizer (L = 80), made and owned here; Stack Overflow's
 * "tokens" strings need a vocabulary, which only the caller can choose, so
 * they fail with a message saying how to give one. Any other failure keeps
 * the HDF5 source's own message.
 *
 * Deliberately does not: shuffle strings (the batch iterator shuffles rows),
 * keep the file's features in the feature infos (they describe what training
 * sees: x float32 (L), y int32 (L)), or read numeric features (only "x" and
 * "y", data.c's default). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "data_impl.h"
#include "fedmpi/data.h"
#include "fedmpi/text.h"
#include "internal.h"

/* The text source's state (cd->src). */
typedef struct fm__text_src {
  fm_client_data *file;    /* the HDF5 source (FM_DATA_ANY): ids, counts, strings */
  const fm_tokenizer *tok; /* borrowed from the caller, or own */
  fm_tokenizer *own;       /* made here (Shakespeare without a tokenizer), or NULL */
  char *feature;           /* the string feature tokenised */
  size_t *rows;            /* (K) characters: token rows per client; NULL for words (= strings) */
  uint64_t total;          /* rows in all */
} fm__text_src;

static fm__text_src *fm__text(const fm_client_data *cd) { return cd->src; }

/* ---- the source's methods ----------------------------------------------------- */

static const char *fm__text_client_id(const fm_client_data *cd, size_t i) {
  const fm_client_data *f = fm__text(cd)->file;
  return f->ops->client_id(f, i);
}

static size_t fm__text_num_examples(const fm_client_data *cd, size_t i) {
  const fm__text_src *s = fm__text(cd);
  return s->rows ? s->rows[i] : s->file->ops->num_examples(s->file, i);
}

static uint64_t fm__text_total_examples(const fm_client_data *cd) { return fm__text(cd)->total; }

static int fm__text_load_strings(const fm_client_data *cd, size_t i, const char *feature, char ***out,
                                 size_t *count) {
  const fm_client_data *f = fm__text(cd)->file;
  return f->ops->load_strings(f, i, feature, out, count);
}

/* Client i's token rows; R must still be what opening counted. */
static int fm__text_load(const fm_client_data *cd, size_t i, int want_x, fm_examples *out) {
  const fm__text_src *s = fm__text(cd);
  char **str = NULL;
  size_t count = 0;
  FM_CALL(fm__text_load_strings(cd, i, s->feature, &str, &count));
  fm_token_rows rows;
  int rc = fm_tokenizer_encode(s->tok, (const char *const *)str, count, &rows);
  fm_strings_free(str, count);
  if (rc != FM_OK) {
    char why[512];
    snprintf(why, sizeof why, "%s", fm_last_error());
    return FM_ERR(rc, "%s: client '%s': feature '%s': %s", cd->path, fm__cd_id(cd, i), s->feature, why);
  }
  const size_t L = cd->num_targets;
  if (rows.n_rows != out->n || rows.seq_len != L) {
    rc = FM_ERR(FM_ERR_FORMAT, "%s: client '%s': feature '%s' gives %zu token rows but had %zu when the file was opened",
                cd->path, fm__cd_id(cd, i), s->feature, rows.n_rows, out->n);
    fm_token_rows_free(&rows);
    return rc;
  }
  if (want_x) {
    out->x = fm__malloc(rows.n_rows * L * sizeof *out->x);
    if (!out->x) {
      fm_token_rows_free(&rows);
      return FM_ERR(FM_ERR_NOMEM, "%s: client '%s': out of memory for %zu x %zu token ids", cd->path,
                    fm__cd_id(cd, i), out->n, L);
    }
    for (size_t k = 0; k < rows.n_rows * L; k++) out->x[k] = (float)rows.x[k];
  }
  out->y = rows.y; /* fm__malloc'd by the tokenizer: the caller frees it with fm_examples_free */
  rows.y = NULL;
  fm_token_rows_free(&rows);
  return FM_OK;
}

static int fm__text_scan_num_classes(const fm_client_data *cd, size_t *num_classes) {
  *num_classes = cd->num_classes;
  return FM_OK;
}

static void fm__text_destroy(fm_client_data *cd) {
  fm__text_src *s = cd->src;
  if (!s) return;
  fm__cd_free(s->file);
  fm_tokenizer_destroy(&s->own);
  fm__free(s->feature);
  fm__free(s->rows);
  fm__free(s);
  cd->src = NULL;
}

static const fm__cd_source_ops fm__text_ops = {
    .name = "text",
    .client_id = fm__text_client_id,
    .num_examples = fm__text_num_examples,
    .total_examples = fm__text_total_examples,
    .load = fm__text_load,
    .scan_num_classes = fm__text_scan_num_classes,
    .load_strings = fm__text_load_strings,
    .destroy = fm__text_destroy,
};

/* ---- open ----------------------------------------------------------------- */

/* The feature info named name of the reference client, or NULL. */
static const fm_feature_info *fm__find_info(const fm_client_data *f, const char *name) {
  for (size_t j = 0; j < f->num_feats; j++)
    if (!strcmp(f->feats[j].name, name)) return &f->feats[j];
  return NULL;
}

/* Characters: every client's rows, counted from its strings. */
static int fm__text_count_rows(fm_client_data *cd) {
  fm__text_src *s = fm__text(cd);
  s->rows = fm__calloc(cd->num_clients ? cd->num_clients : 1, sizeof *s->rows);
  FM_CHECK(s->rows != NULL, FM_ERR_NOMEM, "%s: out of memory counting token rows", cd->path);
  for (size_t i = 0; i < cd->num_clients; i++) {
    char **str = NULL;
    size_t count = 0;
    FM_CALL(fm__text_load_strings(cd, i, s->feature, &str, &count));
    size_t r = 0;
    for (size_t k = 0; k < count; k++) r += fm__tokenizer_rows(s->tok, str[k]);
    fm_strings_free(str, count);
    s->rows[i] = r;
    s->total += r;
  }
  return FM_OK;
}

/* The text source over file (taken: freed on failure too) with tok
 * (borrowed) or own (taken), tokenising feature (NULL: the tokenizer's). */
static int fm__text_open(const char *path, fm_client_data *file, const fm_tokenizer *tok, fm_tokenizer *own,
                         const char *feature, fm_client_data **out) {
  fm_client_data *cd = fm__calloc(1, sizeof *cd);
  fm__text_src *s = fm__calloc(1, sizeof *s);
  if (!cd || !s) {
    fm__free(s);
    fm__free(cd);
    fm__cd_free(file);
    fm_tokenizer_destroy(&own);
    return FM_ERR(FM_ERR_NOMEM, "%s: out of memory opening text client data", path);
  }
  s->file = file;
  s->own = own;
  s->tok = own ? own : tok;
  cd->ops = &fm__text_ops;
  cd->src = s;
  cd->kind = FM_DATA_XY;
  cd->num_clients = file->num_clients;
  const size_t L = fm_tokenizer_seq_len(s->tok);
  if (!feature) feature = fm_tokenizer_default_feature(s->tok);
  int rc = FM_OK;
  s->feature = fm__strdup(feature);
  cd->path = fm__strdup(path);
  FM_CHECK_GOTO(rc, s->feature && cd->path && fm__cd_set_xy_features(cd, 1, &L) == FM_OK &&
                        fm__cache_create(&cd->cache) == FM_OK,
                fail, FM_ERR_NOMEM, "%s: out of memory opening text client data", path);
  /* x_name / y_name: the string feature both come from; the infos: what training sees */
  fm__free(cd->x_name);
  fm__free(cd->y_name);
  cd->x_name = fm__strdup(feature);
  cd->y_name = fm__strdup(feature);
  FM_CHECK_GOTO(rc, cd->x_name && cd->y_name, fail, FM_ERR_NOMEM, "%s: out of memory", path);
  cd->feats[1].ndim = 1;
  cd->feats[1].shape[0] = L;
  cd->num_features = L;
  cd->num_targets = L;
  cd->num_classes = fm_tokenizer_vocab_size(s->tok);
  FM_CHECK_GOTO(rc, L > 0, fail, FM_ERR_INVALID_ARG, "%s: the tokenizer's sequence length is 0", path);

  const fm_feature_info *fi = fm__find_info(file, feature);
  if (fi && (fi->dtype != FM_DTYPE_STRING || fi->ndim != 0)) {
    char what[160];
    if (fi->dtype != FM_DTYPE_STRING)
      snprintf(what, sizeof what, "has %s dtype, not strings", fm_dtype_name(fi->dtype));
    else
      snprintf(what, sizeof what, "has %d per-example dimensions; text needs one string per example, shape (n,)",
               fi->ndim);
    rc = FM_ERR(FM_ERR_FORMAT, "%s: feature '%s' %s; a tokenizer reads a string feature (such as 'snippets' or "
                               "'tokens')",
                path, feature, what);
    goto fail;
  }
  /* a feature absent from the reference client is reported, naming the client, by the first read */
  if (fm_tokenizer_get_kind(s->tok) == FM_TOKENIZER_CHARS) {
    FM_CALL_GOTO(rc, fm__text_count_rows(cd), fail);
  } else {
    s->total = file->ops->total_examples(file);
    if (!fi && cd->num_clients > 0) {
      char **str = NULL; /* not counted at open: at least check the feature is there */
      size_t count = 0;
      FM_CALL_GOTO(rc, fm__text_load_strings(cd, 0, feature, &str, &count), fail);
      fm_strings_free(str, count);
    }
  }
  *out = cd;
  return FM_OK;
fail:
  fm__cd_free(cd);
  return rc;
}

/* The HDF5 source for the text source to read: FM_DATA_ANY, automatic names. */
static int fm__open_any(const char *path, fm_client_data **file) {
  const fm_data_options any = {.x_feature = NULL, .y_feature = NULL, .tokenizer = NULL};
  return fm__cd_open_h5(path, &any, FM_DATA_ANY, file);
}

/* The reference client has a string feature (n,) called name. */
static int fm__has_strings(const fm_client_data *f, const char *name) {
  const fm_feature_info *fi = fm__find_info(f, name);
  return fi && fi->dtype == FM_DTYPE_STRING && fi->ndim == 0;
}

/* After the file failed to open for training with rc (its message saved in
 * why): text when it is Shakespeare's (or Stack Overflow's: a clear error),
 * else rc with the original message again. */
static int fm__open_text_fallback(const char *path, const fm_data_options *opt, int rc, const char *why,
                                  fm_client_data **out) {
  const char *named = opt ? opt->x_feature : NULL;
  fm_client_data *file = NULL;
  if ((opt && opt->y_feature) || fm__open_any(path, &file) != FM_OK) {
    fm__cd_free(file);
    return FM_ERR(rc, "%s", why);
  }
  const char *feature = named ? named : "snippets";
  const int usable_x = named ? 0 : file->x_name != NULL;
  if (!usable_x && fm__has_strings(file, feature) && !strcmp(feature, "snippets")) {
    fm_tokenizer *own = NULL;
    int trc = fm_tokenizer_create_shakespeare(FM_SHAKESPEARE_SEQ_LEN, &own);
    if (trc != FM_OK) {
      fm__cd_free(file);
      return trc;
    }
    return fm__text_open(path, file, NULL, own, feature, out);
  }
  if (!named) feature = "tokens";
  const int text = !usable_x && fm__has_strings(file, feature);
  fm__cd_free(file);
  if (!text) return FM_ERR(rc, "%s", why);
  return FM_ERR(FM_ERR_FORMAT,
                "%s: feature '%s' holds text (words, as Stack Overflow's); tokenising it needs a vocabulary: fedmpi "
                "train --vocab FILE (TFF's word count file) or --vocab-size N (the N most frequent words of --data); "
                "in the library, fm_data_options.tokenizer",
                path, feature);
}

int fm__cd_open_file(const char *path, const fm_data_options *opt, fm_client_data **out) {
  *out = NULL;
  if (opt && opt->tokenizer) {
    FM_CHECK(!opt->y_feature, FM_ERR_INVALID_ARG,
             "%s: text's labels are its next tokens (from the same string feature); a label feature ('%s') does not "
             "apply",
             path, opt->y_feature);
    fm_client_data *file = NULL;
    FM_CALL(fm__open_any(path, &file));
    return fm__text_open(path, file, opt->tokenizer, NULL, opt->x_feature, out);
  }
  int rc = fm__cd_open_h5(path, opt, FM_DATA_XY, out);
  if (rc != FM_ERR_FORMAT) return rc;
  char why[1024];
  snprintf(why, sizeof why, "%s", fm_last_error());
  return fm__open_text_fallback(path, opt, rc, why, out);
}

/* ---- the "file" spec source: every --data that no other source claims ------------ */

static int fm__file_claims(const char *spec) {
  (void)spec;
  return 1;
}

static int fm__file_open_spec(const char *spec, const fm_data_options *opt, fm_client_data **out) {
  return fm__cd_open_file(spec, opt, out);
}

const fm__cd_spec_source fm__cd_spec_file = {"hdf5", fm__file_claims, fm__file_open_spec};
