/* fedmpi/data.h — federated client data in TFF's HDF5 layout, batching,
 * partitioners, IDX (MNIST-format) import and the Synthetic(alpha, beta)
 * generator.
 *
 * File layout (TFF's HDF5ClientData): /examples/<client_id>/<feature>, one
 * dataset per feature, all features of a client sharing their first dimension
 * (the client's number of examples). Client ids are in sorted (name) order,
 * so client index i means the i-th id in that order, as TFF's client_ids.
 * A client's features are read only when it is loaded (streaming); opening a
 * file reads only the index (ids and example counts) and the metadata of
 * every client's features. docs/data.md describes all of it in prose.
 *
 * Dimension legend: n examples of a client, D features per example, K
 * clients, C classes, N examples in total. */
#ifndef FEDMPI_DATA_H
#define FEDMPI_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"
#include "fedmpi/model.h"
#include "fedmpi/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_client_data fm_client_data;

/* One client's examples in memory. */
typedef struct fm_examples {
  size_t n;             /* examples */
  size_t num_features;  /* D */
  float *x;             /* (n, D) features as float32 */
  int32_t *y;           /* (n, T) labels, T = num_targets */
  void *owner_;         /* internal: set when x and y are borrowed (fm_client_data_load_shared) */
  size_t num_targets;   /* T, labels per example: 0 or 1 for one label (a class), L for a label
                         * per time step (tokenised text: y = the next token at each of L steps) */
} fm_examples;

/* What the caller needs from a file (fm_client_data_open_kind). */
typedef enum fm_data_kind {
  /* Training data (the default, 0): every client has a numeric input feature
   * x and an integer label feature y; fm_client_data_load works. */
  FM_DATA_XY = 0,
  /* Any TFF file (Shakespeare's snippets, Stack Overflow, ...): only the
   * index is required. x and y are resolved when present and usable (named
   * explicitly: must be present and usable), otherwise left unset, and
   * fm_client_data_load then fails with FM_ERR_UNSUPPORTED. String and other
   * features are read with fm_client_data_load_strings / _load_feature. */
  FM_DATA_ANY = 1
} fm_data_kind;

/* Feature names. The kind is a separate argument of fm_client_data_open_kind
 * rather than a field here, so that existing {x, y} initialisers stay
 * complete (-Wmissing-field-initializers) and the struct keeps its size. */
typedef struct fm_tokenizer fm_tokenizer; /* fedmpi/text.h */

typedef struct fm_data_options {
  const char *x_feature; /* NULL: auto ("x", else "pixels", else "image") */
  const char *y_feature; /* NULL: auto ("y", else "label") */
  /* Text (fedmpi/text.h): with a tokenizer, the file's string feature (x_feature,
   * else the tokenizer's default feature) is tokenised into rows; without one, a
   * file whose only usable feature is Shakespeare's 'snippets' strings gets
   * TFF's character tokenizer. Borrowed: it must outlive the client data. */
  const fm_tokenizer *tokenizer;
} fm_data_options;

/* Element type of a feature as stored in the file. */
typedef enum fm_dtype {
  FM_DTYPE_OTHER = 0, /* compound, enum, array, ...: listed but not readable */
  FM_DTYPE_FLOAT32,
  FM_DTYPE_FLOAT64,
  FM_DTYPE_FLOAT16,   /* any other float width */
  FM_DTYPE_INT8,
  FM_DTYPE_UINT8,
  FM_DTYPE_INT16,
  FM_DTYPE_UINT16,
  FM_DTYPE_INT32,
  FM_DTYPE_UINT32,
  FM_DTYPE_INT64,
  FM_DTYPE_UINT64,
  FM_DTYPE_STRING     /* variable- or fixed-length string (h5py's str / bytes) */
} fm_dtype;
/* "float32", "uint8", "string", ... Not collective. */
FM_EXTERN const char *fm_dtype_name(fm_dtype t);

#define FM_FEATURE_MAX_DIMS 8
/* One feature of the reference client (the first non-empty client, or the
 * first client when all are empty). */
typedef struct fm_feature_info {
  const char *name;
  fm_dtype dtype;
  int ndim;                             /* per-example rank: 0 for one value per example, shape (n,) */
  size_t shape[FM_FEATURE_MAX_DIMS];    /* per-example shape */
} fm_feature_info;

/* Open an HDF5 ClientData file; reads the client index (ids, counts) and the
 * metadata of every client's features (FM_DATA_XY; opt NULL: automatic
 * feature names). Errors name the file and the client/feature: FM_ERR_IO
 * (cannot open), FM_ERR_FORMAT (no /examples, a feature missing, first
 * dimensions of a client's features differ, per-example shapes differ
 * between clients, unsupported dtype, no clients, a client without
 * features). Not collective (every rank opens the file itself).
 * Text (docs/data.md, "Text data"): with opt->tokenizer, client i's examples
 * are the token rows of its string feature (opt->x_feature, else the
 * tokenizer's default feature): x (R, L) float32 token ids, y (R, L) int32
 * (the next id at each step), num_targets L, feature shape (L,), num_classes
 * the tokenizer's vocab size; fm_client_data_x_feature and _y_feature name
 * the string feature, the feature infos describe x float32 (L) and y int32
 * (L). Without a tokenizer, a file that fails to open for training and whose
 * only text is a string feature "snippets" (Shakespeare) is opened so with
 * TFF's character tokenizer (L = 80), which reads every client's snippets to
 * count their rows; a string feature "tokens" (Stack Overflow) fails with
 * FM_ERR_FORMAT asking for a vocabulary. opt->y_feature does not apply to
 * text (FM_ERR_INVALID_ARG). */
FM_EXTERN int fm_client_data_open(const char *path, const fm_data_options *opt, fm_client_data **out);
/* fm_client_data_open with an explicit kind: FM_DATA_XY is the same as
 * fm_client_data_open; FM_DATA_ANY opens any TFF file, e.g. Shakespeare's
 * (snippets only). */
FM_EXTERN int fm_client_data_open_kind(const char *path, const fm_data_options *opt, fm_data_kind kind,
                                       fm_client_data **out);
/* In-memory client data (tests, user code): client i has counts[i] examples,
 * rows of x (sum counts, D) and y in client order, ids in sorted order
 * (NULL ids: "client_<i>" zero padded). Copies everything. */
FM_EXTERN int fm_client_data_from_memory(size_t num_clients, const char *const *ids, const size_t *counts,
                                         const float *x, const int32_t *y, int ndim, const size_t *shape,
                                         fm_client_data **out);
FM_EXTERN void fm_client_data_close(fm_client_data **cd);

FM_EXTERN size_t fm_client_data_num_clients(const fm_client_data *cd);
FM_EXTERN const char *fm_client_data_client_id(const fm_client_data *cd, size_t i);
FM_EXTERN size_t fm_client_data_num_examples(const fm_client_data *cd, size_t i);
FM_EXTERN uint64_t fm_client_data_total_examples(const fm_client_data *cd);
/* Per-example feature shape of the x feature (ndim 0 if the file was opened
 * with FM_DATA_ANY and has no x feature). */
FM_EXTERN void fm_client_data_feature_shape(const fm_client_data *cd, int *ndim, size_t shape[FM_MAX_DIMS]);
/* Number of classes recorded in the file's root attribute "num_classes", or 0.
 * Text data: the tokenizer's ids (fm_tokenizer_vocab_size: 90, or V + 4). */
FM_EXTERN size_t fm_client_data_num_classes(const fm_client_data *cd);
/* Labels per example, T: 1 for label data (every file, in-memory and
 * synthetic source), L for tokenised text (a label per time step). Loads
 * give y (n, T) and set fm_examples.num_targets to it. 0 for NULL. */
FM_EXTERN size_t fm_client_data_num_targets(const fm_client_data *cd);
/* The path it was opened from ("<memory>" for in-memory data). */
FM_EXTERN const char *fm_client_data_path(const fm_client_data *cd);
/* Resolved x and y feature names, or NULL when there is none (FM_DATA_ANY).
 * In-memory data: "x" and "y". */
FM_EXTERN const char *fm_client_data_x_feature(const fm_client_data *cd);
FM_EXTERN const char *fm_client_data_y_feature(const fm_client_data *cd);
/* The features of the reference client, in name order. */
FM_EXTERN size_t fm_client_data_num_feature_infos(const fm_client_data *cd);
FM_EXTERN const fm_feature_info *fm_client_data_feature_info(const fm_client_data *cd, size_t j);

/* Load client i's examples into *out (allocated; free with fm_examples_free).
 * Safe to call from several threads at once (HDF5 access is serialised).
 * Errors name file, client id and feature: FM_ERR_FORMAT for a NaN or an
 * infinity in x ("<file>: client '<id>': feature 'pixels' has a non-finite
 * value at example 3"; a float64 value beyond float32's range counts), a
 * negative label or one >= the file's num_classes, or unreadable data;
 * FM_ERR_UNSUPPORTED if the file was opened without x or y (FM_DATA_ANY).
 * Served from the client cache when one is set (fm_client_data_set_cache_bytes). */
FM_EXTERN int fm_client_data_load(const fm_client_data *cd, size_t i, fm_examples *out);
/* As fm_client_data_load, but only the labels, y (n, T): out->x is NULL. Needs y only. */
FM_EXTERN int fm_client_data_load_labels(const fm_client_data *cd, size_t i, fm_examples *out);
/* As fm_client_data_load, but a cache hit (or in-memory data) lends the
 * stored arrays instead of copying them: x and y are then read-only and stay
 * valid until fm_examples_free, which gives them back (a borrowed cache entry
 * is never evicted meanwhile). A miss returns an owned copy as
 * fm_client_data_load does. For the training loop, where a client is read
 * once per round and copying it out of the cache cost more than training a
 * softmax model on it. Free every result before fm_client_data_close. */
FM_EXTERN int fm_client_data_load_shared(const fm_client_data *cd, size_t i, fm_examples *out);
FM_EXTERN void fm_examples_free(fm_examples *ex);

/* Read a string feature of client i (e.g. Shakespeare's "snippets", vlen
 * UTF-8 as h5py writes str; fixed-length byte strings too): *out is an array
 * of *count NUL-terminated strings (count = n * per-example size; n for an
 * (n,) feature), bytes as stored (UTF-8 is not re-encoded). Free with
 * fm_strings_free. Works in either kind. FM_ERR_FORMAT if the feature is
 * missing or not a string (messages name file, client, feature). Thread-safe;
 * not cached. */
FM_EXTERN int fm_client_data_load_strings(const fm_client_data *cd, size_t i, const char *feature, char ***out,
                                          size_t *count);
FM_EXTERN void fm_strings_free(char **strings, size_t count);
/* Read any numeric feature of client i converted to `as` (FM_DTYPE_FLOAT32,
 * FM_DTYPE_FLOAT64, FM_DTYPE_INT32, FM_DTYPE_INT64 or FM_DTYPE_UINT8):
 * *out holds *count = n * prod(per-example shape) values, row-major. Floats
 * are checked finite; a float feature cannot be read as an integer type
 * (FM_ERR_FORMAT); an integer value out of the target's range fails
 * (FM_ERR_FORMAT). Free with fm_data_free. Thread-safe; not cached. */
FM_EXTERN int fm_client_data_load_feature(const fm_client_data *cd, size_t i, const char *feature, fm_dtype as,
                                          void **out, size_t *count);
FM_EXTERN void fm_data_free(void *p);

/* ---- bounded client cache ----------------------------------------------------
 * An optional least-recently-used cache of decoded clients (x as float32 and
 * y as int32, as fm_client_data_load returns them) per fm_client_data. The
 * bytes it holds (n * (D + T) * 4 per client plus a small fixed overhead, T
 * labels per example)
 * never exceed the bound, whatever the population or the number of rounds: a
 * client larger than the bound is not cached, and entries being copied out
 * by another thread are never evicted (a new entry is then not inserted).
 * fm_client_data_load copies out of the cache, so callers own what they get;
 * fm_client_data_load_shared lends the entry instead (pinned). Default 0:
 * off, since with cohorts sampled from a large population most loads miss and
 * memory is the scarce resource on a node; turn it on when the population (or
 * the part one rank owns) fits. Safe to call at any time, also while other
 * threads load; lowering the bound evicts at once. In-memory data ignores it. */
typedef struct fm_cache_stats {
  uint64_t hits, misses, evictions;
  size_t bytes, peak_bytes, entries, limit;
} fm_cache_stats;
FM_EXTERN int fm_client_data_set_cache_bytes(fm_client_data *cd, size_t bytes);
FM_EXTERN void fm_client_data_cache_stats(const fm_client_data *cd, fm_cache_stats *stats);
/* Largest label + 1 over all clients (reads every client; for files without
 * a num_classes attribute). */
FM_EXTERN int fm_client_data_scan_num_classes(const fm_client_data *cd, size_t *num_classes);

/* ---- batching: shuffle -> repeat(epochs) -> batch(batch_size) -------------- */

typedef struct fm_batching {
  int epochs;            /* >= 1 */
  size_t batch_size;     /* >= 1 */
  int shuffle;           /* 1: a fresh seeded permutation per epoch */
  uint64_t max_examples; /* cap on the examples iterated per client (TFF's take(max_elements)), 0 = none */
  size_t shuffle_buffer; /* tf.data shuffle buffer size; 0 or >= n: a full permutation per epoch */
} fm_batching;

/* Examples iterated (epochs * n, capped at max_examples) and batches (ceil of that / batch_size). */
FM_EXTERN void fm_batching_counts(const fm_batching *b, size_t n, uint64_t *num_examples, uint64_t *num_batches);

/* Iterator over one client's batches. Batches may span epoch boundaries,
 * exactly as TFF's dataset.shuffle().repeat(E).batch(B). The permutation of
 * epoch e comes from fm_rng(seed, round, client, FM_RNG_SHUFFLE). */
typedef struct fm_batch_iter {
  fm_batching b;
  size_t n;          /* examples of the client */
  uint64_t total;    /* epochs * n */
  uint64_t pos;      /* examples emitted so far */
  uint32_t *order;   /* (n) scratch owned by the caller */
  uint64_t seed, round, client;
  fm_rng rng;       /* the shuffle stream */
  uint64_t epoch_end; /* stream position where the current permutation ends */
} fm_batch_iter;

/* order must hold fm_batch_iter_scratch(b, n) entries and stay valid while iterating. */
FM_EXTERN size_t fm_batch_iter_scratch(const fm_batching *b, size_t n);
FM_EXTERN void fm_batch_iter_init(fm_batch_iter *it, const fm_batching *b, size_t n, uint32_t *order, uint64_t seed,
                                  uint64_t round, uint64_t client);
/* Gather the next batch into xb (batch_size, D) and yb (batch_size, T), T =
 * max(1, ex->num_targets) labels per example (1 for label data, L for text),
 * each example's T labels kept together and in order: returns its size, 0
 * when the stream is exhausted. xb may be NULL (labels only). */
FM_EXTERN size_t fm_batch_iter_next(fm_batch_iter *it, const fm_examples *ex, float *xb, int32_t *yb);

/* ---- gamma and Dirichlet sampling ---------------------------------------------- */

/* Gamma(shape, 1) by Marsaglia and Tsang (2000) on fm_rng_normal and
 * fm_rng_uniform; shape < 1 uses Gamma(shape + 1) * U^(1/shape). shape > 0. */
FM_EXTERN double fm_sample_gamma(fm_rng *r, double shape);
/* log of a Gamma(shape, 1) draw, exact also where the draw itself underflows
 * (shape far below 1): log Gamma(shape + 1) + log(U) / shape. */
FM_EXTERN double fm_sample_log_gamma(fm_rng *r, double shape);
/* out (k) ~ Dirichlet(alpha (k)), computed from log-gamma draws normalised
 * in log space, so it sums to 1 even for tiny alpha. alpha[j] == 0 gives
 * out[j] = 0 (at least one alpha must be > 0). */
FM_EXTERN void fm_sample_dirichlet(fm_rng *r, const double *alpha, size_t k, double *out);

/* ---- partitioners: labels -> client assignments ---------------------------------
 * Every draw comes from fm_rng(seed, stream, j, FM_RNG_PARTITION), with the
 * stream and j documented per method in src/data/partition.c and
 * docs/data.md, so a partition is a pure function of (method, parameters,
 * labels, seed). */

/* The data module's purpose tag, at the top of the 16-bit range so it stays
 * clear of user code counting up from FM_RNG_USER. */
#define FM_RNG_PARTITION ((uint32_t)FM_RNG_USER + 0xFE00u)

typedef enum fm_partition_method {
  FM_PARTITION_IID = 0,   /* shuffle, K near-equal parts */
  FM_PARTITION_DIRICHLET, /* Hsu et al. 2019: per-client class mix q ~ Dir(alpha p), equal quotas */
  FM_PARTITION_HETERO_DIR,/* Yurochkin et al. 2019 / FedMA: per-class Dir_K(alpha) over clients, balance cap, min size */
  FM_PARTITION_SHARDS,    /* McMahan et al. 2017: label-sorted shards, k per client */
  FM_PARTITION_QUANTITY   /* client sizes ~ LogNormal(0, sigma), labels iid */
} fm_partition_method;
/* "iid", "dirichlet", "hetero-dir", "shards", "quantity". */
FM_EXTERN const char *fm_partition_method_name(fm_partition_method m);
/* The inverse; FM_ERR_INVALID_ARG naming the choices. */
FM_EXTERN int fm_partition_method_parse(const char *name, fm_partition_method *m);

typedef struct fm_partition_options {
  fm_partition_method method;
  size_t num_clients;        /* K >= 1 */
  double alpha;              /* dirichlet, hetero-dir concentration (> 0), default 0.5 */
  size_t classes_per_client; /* shards: shards (of one label each) per client, default 2 */
  double sigma;              /* quantity: log-normal sigma (>= 0), default 1 */
  size_t min_size;           /* hetero-dir, quantity: examples every client gets at least, default 10 */
  unsigned max_attempts;     /* hetero-dir: draws before the deterministic repair, default 100 */
  uint64_t seed;
} fm_partition_options;

typedef struct fm_partition_result {
  unsigned attempts;  /* hetero-dir: draws made (1 for the other methods) */
  uint64_t moved;     /* hetero-dir: examples moved by the repair (0 if a draw met min_size) */
} fm_partition_result;

FM_EXTERN void fm_partition_defaults(fm_partition_options *o);
/* Assign each of the n examples (labels in [0, num_classes)) to a client:
 * client_of (n) receives values in [0, K). Every example is assigned exactly
 * once. Deterministic. res may be NULL. FM_ERR_INVALID_ARG naming the
 * parameter (K > n, alpha <= 0, K * min_size > n, K * k > n, a label out
 * of range, ...). */
FM_EXTERN int fm_partition_labels(const fm_partition_options *o, const int32_t *labels, size_t n,
                                  size_t num_classes, uint32_t *client_of, fm_partition_result *res);

/* ---- IDX (MNIST format) import ---------------------------------------------------- */

/* An IDX file of unsigned bytes: magic 0x0000 08 <ndims>, ndims big-endian
 * uint32 dimensions, then the bytes. */
typedef struct fm_idx {
  uint32_t magic;   /* 0x00000803 images (N, R, C), 0x00000801 labels (N) */
  int ndims;        /* 1..4 */
  size_t dims[4];
  size_t count;     /* product of dims */
  uint8_t *data;    /* (count) */
} fm_idx;

/* Read an IDX file, gzipped or not (zlib detects which). expect_magic 0
 * accepts any unsigned-byte IDX. FM_ERR_IO (cannot open), FM_ERR_FORMAT
 * naming the file: wrong magic, a zero dimension, truncated header or data,
 * bytes after the data, corrupted gzip stream. */
FM_EXTERN int fm_idx_read(const char *path, uint32_t expect_magic, fm_idx *out);
FM_EXTERN void fm_idx_free(fm_idx *x);

typedef struct fm_idx_import_options {
  const char *images_path;  /* IDX 0x803 (N, R, C), .gz or raw */
  const char *labels_path;  /* IDX 0x801 (N) */
  int no_scale;  /* 0 (default): pixels float32 in [0, 1] (x / 255); 1: the raw bytes as uint8 */
  int invert;    /* 1: 1 - x (255 - x with no_scale), EMNIST's 1.0 = background */
  int flatten;   /* 0 (default): pixels (n, R, C) as TFF's EMNIST; 1: (n, R * C) */
  fm_partition_options partition;
} fm_idx_import_options;

FM_EXTERN void fm_idx_import_defaults(fm_idx_import_options *o);
/* Read both files, check they agree (FM_ERR_FORMAT "... has 60000 images
 * but ... has 59999 labels"), partition, and write out_path in TFF's layout:
 * /examples/<f_00000 ...>/{pixels, label int32}, client ids zero padded so
 * their sorted order is the index order, examples of a client in their
 * order in the source. Root attributes record the source files, the
 * preprocessing and the partition (docs/data.md). Written to
 * "<out_path>.tmp" and renamed into place. res may be NULL. */
FM_EXTERN int fm_idx_import(const fm_idx_import_options *o, const char *out_path, fm_partition_result *res);

/* ---- Synthetic(alpha, beta) (Li et al., FedProx, MLSys 2020) -------------- */

typedef struct fm_synth_options {
  double alpha;          /* model heterogeneity (std of u_k) */
  double beta;           /* data heterogeneity (std of B_k) */
  int iid;               /* 1: Synthetic-IID (one W, b; v_k = 0) */
  size_t num_clients;    /* K, default recipe 30 */
  size_t num_features;   /* d = 60 */
  size_t num_classes;    /* C = 10 */
  double test_fraction;  /* 0.1: last 10% of each client's shuffled examples */
  size_t max_examples;   /* cap on a client's examples before the split, 0 = none */
  uint64_t seed;
} fm_synth_options;

/* The recipe's defaults (K 30, d 60, C 10, test 0.1, seed 0, alpha = beta = 1). */
FM_EXTERN void fm_synth_defaults(fm_synth_options *o);
/* Write the train and test files (test_path may be NULL). Same client ids in
 * both. Root attributes record the generator and its parameters. Files are
 * written to a temporary name and renamed into place. */
FM_EXTERN int fm_synth_write(const fm_synth_options *o, const char *train_path, const char *test_path);

/* ---- procedural Synthetic(alpha, beta) ClientData ------------------------------
 * Client data whose client i is generated when it is loaded, from the same
 * streams (seed, i) and the same code as fm_synth_write: client i equals
 * client i of the file fm_synth_write writes with the same options, bit for
 * bit, in either split. Nothing is stored per client, so memory does not
 * depend on num_clients (up to 2^47 - 1):
 *   ids           f_00000 ... (f_%05zu, wider beyond 10^5 clients, as the
 *                 files), formatted on demand; sorted order = index order
 *   num_examples  O(1) (the client's first draw; max_examples caps it, then
 *                 the split takes its share as fm_synth_write does)
 *   total_examples  exact, O(K) on the first call only (about 60 ns per
 *                 client), remembered afterwards; nothing O(K) at open
 *   num_classes   C; features "x" float32 (d) and "y" int32
 *   path          the canonical spec (fm_synth_parse_spec reads it back)
 * fm_client_data_load and _load_labels are thread-safe (no HDF5, no lock).
 * fm_client_data_client_id returns a per-thread buffer reused after 16 more
 * calls on the same thread: copy it (or use fm_client_data_copy_client_id)
 * to keep it. A client whose recipe size exceeds 10^9 fails to load with
 * FM_ERR_OVERFLOW (set max_examples). The client cache works as for files. */
typedef enum fm_synth_split {
  FM_SYNTH_TRAIN = 0, /* each client's first n - round(test_fraction n) permuted examples (the train file) */
  FM_SYNTH_TEST = 1   /* the remaining round(test_fraction n) (the test file) */
} fm_synth_split;

/* The train split. FM_ERR_INVALID_ARG naming a bad option (as fm_synth_write). */
FM_EXTERN int fm_client_data_open_synthetic(const fm_synth_options *o, fm_client_data **out);
FM_EXTERN int fm_client_data_open_synthetic_split(const fm_synth_options *o, fm_synth_split split,
                                                  fm_client_data **out);
/* 1 if spec names procedural data ("synthetic" or "synthetic:..."), else 0. */
FM_EXTERN int fm_synth_spec_is_synthetic(const char *spec);
/* Parse "synthetic:KEY=VALUE,..." into *o (starting from fm_synth_defaults)
 * and *split (may be NULL). Keys, as `fedmpi data synth`'s options:
 *   clients=K  alpha=A  beta=B  iid[=0|1]  features=D  classes=C
 *   test-fraction=F  max-examples=N (0: uncapped)  seed=S  split=train|test
 * Integers may be written 1000000 or 1e6. "synthetic" alone is the
 * defaults. FM_ERR_CONFIG naming the spec and the bad key or value
 * (unknown key, a key given twice, a value out of range). */
FM_EXTERN int fm_synth_parse_spec(const char *spec, fm_synth_options *o, fm_synth_split *split);
/* Open a data argument as the CLI's --data takes it: a synthetic spec
 * (fm_synth_parse_spec; opt must then be NULL or name "x"/"y") or else an
 * HDF5 ClientData path (fm_client_data_open). A file whose name starts with
 * "synthetic" is reached as ./synthetic... */
FM_EXTERN int fm_client_data_open_spec(const char *spec, const fm_data_options *opt, fm_client_data **out);
/* Client i's id into buf (size bytes), for any client data: FM_OK,
 * FM_ERR_INVALID_ARG (index), FM_ERR_OVERFLOW (buf too small; truncated). */
FM_EXTERN int fm_client_data_copy_client_id(const fm_client_data *cd, size_t i, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
