/* src/data/data_impl.h — what the data module's files share privately: the
 * bounded client cache (cache.c), the ClientData writer (writer.c), the
 * Synthetic(alpha, beta) recipe (synth.c) and the procedural ClientData
 * source built on it (synth_source.c). Not installed. */
#ifndef FEDMPI_DATA_IMPL_H
#define FEDMPI_DATA_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/data.h"
#include "h5lock.h"

/* ---- cache.c: LRU of decoded clients, bounded in bytes ---------------------- */

typedef struct fm__cache fm__cache;

/* A cache with limit 0 (off). FM_ERR_NOMEM. */
int fm__cache_create(fm__cache **out);
void fm__cache_destroy(fm__cache *c);
/* Change the bound; evicts unpinned entries until the bytes fit. */
void fm__cache_set_limit(fm__cache *c, size_t bytes);
/* Bytes an entry of n examples with D features takes. */
size_t fm__cache_entry_bytes(size_t n, size_t D);
/* Copy client i out of the cache into out (x too if want_x): 1 if it was
 * there, 0 if not (out untouched), FM_ERR_NOMEM. Thread-safe. */
int fm__cache_get(fm__cache *c, size_t i, int want_x, fm_examples *out);
/* Offer a copy of client i's examples (x and y); silently not kept if it is
 * larger than the bound, already cached, or room cannot be made. */
void fm__cache_put(fm__cache *c, size_t i, const fm_examples *ex);
/* A hit lends the entry (pinned): out->x, out->y point into it and
 * out->owner_ is set; fm__cache_release gives it back. 1 = hit, 0 = miss. */
int fm__cache_borrow(fm__cache *c, size_t i, fm_examples *out);
void fm__cache_release(void *owner);
void fm__cache_stats(const fm__cache *c, fm_cache_stats *s);

/* ---- writer.c: a TFF ClientData file written to "<path>.tmp" ----------------- */

typedef struct fm__cd_writer {
  const char *path; /* final name (messages) */
  char *tmp;        /* "<path>.tmp" */
  hid_t file, examples;
} fm__cd_writer;

/* Element types the writer stores (as little-endian, read back natively).
 * Plain tags rather than hid_t, so callers never touch HDF5 (its type
 * constants are calls) outside the lock. */
typedef enum fm__wtype { FM__W_FLOAT32, FM__W_UINT8, FM__W_INT32 } fm__wtype;

/* One feature of one client to write: rank dims, buffer of native values. */
typedef struct fm__wfeat {
  const char *name;
  fm__wtype type;
  int rank;
  size_t dims[5];
  const void *buf;
} fm__wfeat;

/* Create "<path>.tmp" with an empty /examples. Takes the HDF5 lock itself.
 * On failure nothing is left to finish. */
int fm__cd_writer_open(fm__cd_writer *w, const char *path);
/* Root attributes (the lock is taken inside). */
int fm__cd_writer_attr_str(fm__cd_writer *w, const char *name, const char *value);
int fm__cd_writer_attr_i64(fm__cd_writer *w, const char *name, long long value);
int fm__cd_writer_attr_u64(fm__cd_writer *w, const char *name, uint64_t value);
int fm__cd_writer_attr_f64(fm__cd_writer *w, const char *name, double value);
/* /examples/<id>/<feature> for each of the nf features. */
int fm__cd_writer_client(fm__cd_writer *w, const char *id, size_t nf, const fm__wfeat *f);
/* Close; if rc is FM_OK rename into place, else remove the temporary file.
 * Returns the first error (rc if it was one). */
int fm__cd_writer_finish(fm__cd_writer *w, int rc);
/* Client id of index k among K: "f_%05zu", wider when K needs it, so that
 * the sorted order of the ids is the index order. */
void fm__client_id(char *buf, size_t size, size_t k, size_t K);

/* ---- synth.c: the Synthetic(alpha, beta) recipe ------------------------------ */

/* Client index whose stream draws the shared Synthetic-IID model. */
#define FM__SYNTH_SHARED_CLIENT ((uint64_t)1 << 47)
/* Largest client a draw may produce (the lognormal's tail); beyond it,
 * FM_ERR_OVERFLOW asks for max_examples. */
#define FM__SYNTH_MAX_N 1000000000.0

/* What is shared by every client: the options, sqrt(Sigma) and the IID model. */
typedef struct fm__synth_model {
  fm_synth_options o;
  double *sd; /* (d) sqrt(j^-1.2) */
  double *W;  /* (d, C) the shared Synthetic-IID model; NULL unless iid */
  double *b;  /* (C) */
} fm__synth_model;

/* Which of a client's examples fm__synth_client_rows returns. */
typedef enum fm__synth_rows { FM__SYNTH_TRAIN = 0, FM__SYNTH_TEST = 1, FM__SYNTH_ALL = 2 } fm__synth_rows;

/* FM_ERR_INVALID_ARG naming the bad option (K, d, C, test_fraction, alpha, beta). */
int fm__synth_check_options(const fm_synth_options *o);
/* Check o and build the shared part (read-only afterwards). */
int fm__synth_model_init(fm__synth_model *m, const fm_synth_options *o);
void fm__synth_model_free(fm__synth_model *m);
/* n_k of client k as the recipe draws it, capped by max_examples (a double:
 * it may exceed FM__SYNTH_MAX_N). O(1): one normal draw. */
double fm__synth_client_size(const fm_synth_options *o, uint64_t k);
/* n_test = round(test_fraction * n), n_train = n - n_test. */
void fm__synth_split_sizes(const fm_synth_options *o, size_t n, size_t *n_train, size_t *n_test);
/* Client k's examples after the split permutation: TRAIN the first n_train
 * rows, TEST the last n_test, ALL every row (train rows first). out is
 * allocated (free with fm_examples_free). Thread-safe: scratch is per call. */
int fm__synth_client_rows(const fm__synth_model *m, uint64_t k, fm__synth_rows which, fm_examples *out);

/* ---- synth_source.c: the procedural ClientData behind fm_client_data_open_synthetic */

typedef struct fm__synth_src fm__synth_src;

int fm__synth_src_create(const fm_synth_options *o, fm_synth_split split, fm__synth_src **out);
void fm__synth_src_destroy(fm__synth_src *s);
const fm_synth_options *fm__synth_src_options(const fm__synth_src *s);
/* The canonical spec ("synthetic:clients=...,split=train"), as fm_client_data_path returns it. */
const char *fm__synth_src_spec(const fm__synth_src *s);
/* Examples of client i in the split; O(1). */
size_t fm__synth_src_num_examples(const fm__synth_src *s, size_t i);
/* Sum over every client: O(K) the first time, then remembered. Thread-safe. */
uint64_t fm__synth_src_total(const fm__synth_src *s);
/* Client i's examples in the split (allocated). Thread-safe. */
int fm__synth_src_load(const fm__synth_src *s, size_t i, fm_examples *out);

#endif
