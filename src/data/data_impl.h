/* src/data/data_impl.h — what the data module's files share privately: the
 * fm_client_data object and its source vtable (data.c dispatches, one
 * source_*.c per kind of data), the helpers every source shares
 * (source_common.c), the bounded client cache (cache.c), the ClientData
 * writer (writer.c) and the Synthetic(alpha, beta) recipe (synth.c). Not
 * installed.
 *
 * Dependencies run one way: data.c -> source_*.c -> source_common.c, cache.c,
 * synth.c, writer.c, h5lock.c. A source never calls data.c; it reads and
 * fills the fields of the fm_client_data it builds.
 *
 * How to add a source (say "csv", opened by fm_client_data_open_spec):
 *   1. Write src/data/source_csv.c (CMake builds every .c file in src/data). In it:
 *      - a struct for the source's own state, hung on cd->src;
 *      - a static const fm__cd_source_ops with at least the required slots
 *        (client_id, num_examples, total_examples, load, destroy) and the
 *        optional ones it can serve (a NULL slot gets data.c's default);
 *      - a constructor that fm__calloc's the fm_client_data, sets cd->ops,
 *        cd->src, cd->path and the generic fields below (num_clients, x/y
 *        names, ndim/shape/num_features, num_classes, feats: see
 *        fm__cd_set_xy_features), cd->cache if its loads are worth caching,
 *        and on failure releases everything with fm__cd_free;
 *      - const fm__cd_spec_source fm__cd_spec_csv = {"csv", claims, open}
 *        where claims(spec) says whether a --data argument is this source's.
 *   2. Add X(name) to FM__CD_SPEC_SOURCES below, before X(file) (the file
 *      source, source_text.c's, takes every spec, so it stays last).
 * The text source (source_text.c) is an example of a source over another
 * one: it holds an HDF5 source opened FM_DATA_ANY and calls its ops.
 * A source that is not reached through a spec (as in-memory data) skips the
 * fm__cd_spec_source and gets a public constructor in data.c instead. */
#ifndef FEDMPI_DATA_IMPL_H
#define FEDMPI_DATA_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/data.h"
#include "h5lock.h"

typedef struct fm__cache fm__cache;

/* ---- the fm_client_data object and its sources (data.c, source_*.c) ---------- */

typedef struct fm__cd_source_ops fm__cd_source_ops;

struct fm_client_data {
  const fm__cd_source_ops *ops; /* the source's methods: never NULL once opened */
  void *src;                    /* the source's own state; ops->destroy frees it */
  char *path;                   /* file path, "<memory>" or the canonical spec: every message starts with it */
  fm_data_kind kind;
  char *x_name;                 /* resolved feature names; NULL if none (FM_DATA_ANY) */
  char *y_name;
  fm_feature_info *feats;       /* (num_feats) of the reference client, names owned */
  size_t num_feats;
  fm__cache *cache;             /* NULL: the source is not cached (in-memory); limit 0 = off */
  size_t num_clients;
  int ndim;                     /* per-example shape of x */
  size_t shape[FM_MAX_DIMS];
  size_t num_features;          /* D = prod(shape) */
  size_t num_classes;           /* the file's "num_classes", the generator's C, or 0 */
  size_t num_targets;           /* T labels per example: 1 for label data, L for tokenised text; a source
                                 * that leaves it 0 gets 1 (fm__cd_attach), and loads set out->num_targets */
};

/* What a kind of client data must (or may) do. data.c checks i < num_clients
 * and the arguments before calling, and the required slots when a source is
 * opened; an optional slot left NULL gets the default its comment names. */
struct fm__cd_source_ops {
  const char *name; /* the kind in messages: "HDF5", "in-memory", "synthetic" */
  /* Required. Client i's id, borrowed (until close, or for generated ids a
   * per-thread buffer reused after 16 calls). */
  const char *(*client_id)(const fm_client_data *cd, size_t i);
  /* Required. n_i, and the sum over every client (thread-safe). */
  size_t (*num_examples)(const fm_client_data *cd, size_t i);
  uint64_t (*total_examples)(const fm_client_data *cd);
  /* Required. Client i's examples when n_i > 0: out->n and out->num_features
   * are set, x and y NULL. Allocate and fill y, and x (n, D) if want_x,
   * checked as the source promises. On failure the caller frees out.
   * Thread-safe (an HDF5 source takes the lock itself). */
  int (*load)(const fm_client_data *cd, size_t i, int want_x, fm_examples *out);
  /* Optional. Lend client i's x and y from the source's own storage (owner_
   * = &fm__lent_owner) for fm_client_data_load_shared. NULL: the cache lends,
   * else a copy. */
  int (*lend)(const fm_client_data *cd, size_t i, fm_examples *out);
  /* Optional. The number of classes known without reading the labels. NULL:
   * fm_client_data_scan_num_classes loads every client's labels. */
  int (*scan_num_classes)(const fm_client_data *cd, size_t *num_classes);
  /* Optional. Client i's string feature (fm_client_data_load_strings). NULL:
   * FM_ERR_UNSUPPORTED ("<name> client data has no string feature"). */
  int (*load_strings)(const fm_client_data *cd, size_t i, const char *feature, char ***out, size_t *count);
  /* Optional. Client i's numeric feature as `as` (a type fm__dtype_size
   * knows) into a new buffer; data.c then checks float targets are finite.
   * NULL: only "x" and "y", converted from what load gives. */
  int (*load_feature)(const fm_client_data *cd, size_t i, const char *feature, fm_dtype as, void **out,
                      size_t *count);
  /* Required. Free cd->src (called once, also for a half-built source). */
  void (*destroy)(fm_client_data *cd);
};

/* A source that fm_client_data_open_spec can open from a --data argument. */
typedef struct fm__cd_spec_source {
  const char *name;
  /* 1 if spec is this source's ("synthetic:..."), else 0. */
  int (*claims)(const char *spec);
  /* Open spec into *out (NULL on failure), with the caller's feature names. */
  int (*open)(const char *spec, const fm_data_options *opt, fm_client_data **out);
} fm__cd_spec_source;

/* The sources fm_client_data_open_spec tries, in order: the first that
 * claims the spec opens it. The file source claims everything: keep it last. */
#define FM__CD_SPEC_SOURCES(X) \
  X(synthetic)                 \
  X(file)

#define FM__CD_DECLARE_SPEC_SOURCE(name) extern const fm__cd_spec_source fm__cd_spec_##name;
FM__CD_SPEC_SOURCES(FM__CD_DECLARE_SPEC_SOURCE)
#undef FM__CD_DECLARE_SPEC_SOURCE

/* source_h5.c: TFF's HDF5 layout. path, out non-NULL; kind checked. */
int fm__cd_open_h5(const char *path, const fm_data_options *opt, fm_data_kind kind, fm_client_data **out);
/* source_text.c: a ClientData file opened for training (FM_DATA_XY, and the
 * "file" spec source): the text source over the HDF5 source when
 * opt->tokenizer is set or the file holds Shakespeare's snippets and no
 * numbers, else the HDF5 source as fm__cd_open_h5. path, out non-NULL. */
int fm__cd_open_file(const char *path, const fm_data_options *opt, fm_client_data **out);

/* text.c: the token rows string s gives (characters ceil((bytes + 2) / (L + 1)),
 * words 1), as fm_tokenizer_encode counts them. */
size_t fm__tokenizer_rows(const fm_tokenizer *t, const char *s);
/* source_memory.c: a copy of the caller's arrays (fm_client_data_from_memory). */
int fm__cd_open_memory(size_t num_clients, const char *const *ids, const size_t *counts, const float *x,
                       const int32_t *y, int ndim, const size_t *shape, fm_client_data **out);
/* source_synth.c: procedural Synthetic(alpha, beta). o, out non-NULL. */
int fm__cd_open_synthetic(const fm_synth_options *o, fm_synth_split split, fm_client_data **out);

/* ---- source_common.c: what the sources (and data.c) share --------------------- */

/* owner_ of examples lent from a source's own storage: nothing to give back. */
extern char fm__lent_owner;

/* Client i's id through the source (messages). */
static inline const char *fm__cd_id(const fm_client_data *cd, size_t i) { return cd->ops->client_id(cd, i); }
/* Free cd: the source's state (if ops is set), the generic fields, the cache.
 * Accepts NULL. The one way to release a half-built or open fm_client_data. */
void fm__cd_free(fm_client_data *cd);
/* Free and clear cd->feats. */
void fm__cd_feats_free(fm_client_data *cd);
/* The two features of generated and in-memory client data: "x" (float32,
 * per-example shape) and "y" (int32), as dimensions, names and feature infos.
 * FM_ERR_NOMEM (no message set) if an allocation failed; the caller frees cd. */
int fm__cd_set_xy_features(fm_client_data *cd, int ndim, const size_t *shape);
/* Allocate out->y (n, T), T = max(1, out->num_targets), and, if want_x,
 * out->x (n, D) for client i, with the message naming the client if memory
 * runs out. */
int fm__cd_alloc_examples(const fm_client_data *cd, size_t i, int want_x, fm_examples *out);
/* Bytes of one value of a type fm_client_data_load_feature converts to
 * (float32, float64, int32, int64, uint8); 0 for any other. */
size_t fm__dtype_size(fm_dtype t);
/* Narrow count 64-bit integers into out as `as`, checking the range (the
 * message names client i and feat). Unsigned sources come as uint64 (u !=
 * NULL), the others as int64 (s). */
int fm__narrow_ints(const fm_client_data *cd, size_t i, const char *feat, const int64_t *s, const uint64_t *u,
                    size_t count, fm_dtype as, void *out);

/* ---- cache.c: LRU of decoded clients, bounded in bytes ---------------------- */

/* A cache with limit 0 (off). FM_ERR_NOMEM. */
int fm__cache_create(fm__cache **out);
void fm__cache_destroy(fm__cache *c);
/* Change the bound; evicts unpinned entries until the bytes fit. */
void fm__cache_set_limit(fm__cache *c, size_t bytes);
/* Bytes an entry of n examples with D features and T labels each takes. */
size_t fm__cache_entry_bytes(size_t n, size_t D, size_t T);
/* Copy client i out of the cache into out (x too if want_x; y (n, T) and
 * out->num_targets = T as stored): 1 if it was there, 0 if not (out
 * untouched), FM_ERR_NOMEM. Thread-safe. */
int fm__cache_get(fm__cache *c, size_t i, int want_x, fm_examples *out);
/* Offer a copy of client i's examples (x (n, D) and y (n, T), T =
 * max(1, ex->num_targets)); silently not kept if it is
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

#endif
