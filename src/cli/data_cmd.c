/* src/cli/data_cmd.c — `fedmpi data synth` (Synthetic(alpha, beta) in TFF's
 * layout), `fedmpi data import-idx` (MNIST-format IDX files, partitioned),
 * `fedmpi data fashion-mnist` (the installed Fashion-MNIST, train and test)
 * `fedmpi data info` (what any TFF ClientData file holds: features,
 * sizes, label skew, Shakespeare's token rows) and `fedmpi data tokens` (a
 * text feature as TFF's baseline preprocessing turns it into token ids, row
 * by row). Rank 0 does the work; the other ranks only agree on the
 * outcome. The partitioning and the checks themselves are the library's
 * (fm_idx_import, fm_partition_labels); this file only maps options. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fedmpi/text.h"

typedef struct synth_cfg {
  char out_train[CLI_STR_MAX], out_test[CLI_STR_MAX];
  int64_t clients, features, classes, max_examples, seed;
  double alpha, beta, test_fraction;
  int iid;
} synth_cfg;

#define OFF(f) offsetof(synth_cfg, f)
static const cli_opt synth_opts[] = {
    {"out-train", CLI_STR, OFF(out_train), "synthetic_train.h5", 0, 0, NULL, "FILE", "training file to write"},
    {"out-test", CLI_STR, OFF(out_test), "synthetic_test.h5", 0, 0, NULL, "FILE",
     "test file to write (empty: none; every example goes to training)"},
    {"clients", CLI_INT, OFF(clients), "30", 1, 1e9, NULL, "K", "number of clients"},
    {"alpha", CLI_DOUBLE, OFF(alpha), "1", 0, INFINITY, NULL, "A", "model heterogeneity (std of u_k)"},
    {"beta", CLI_DOUBLE, OFF(beta), "1", 0, INFINITY, NULL, "B", "data heterogeneity (std of B_k)"},
    {"iid", CLI_FLAG, OFF(iid), "0", 0, 0, NULL, NULL, "Synthetic-IID: one shared model, v_k = 0"},
    {"features", CLI_INT, OFF(features), "60", 1, 1e6, NULL, "D", "features per example"},
    {"classes", CLI_INT, OFF(classes), "10", 2, 1e6, NULL, "C", "classes"},
    {"test-fraction", CLI_DOUBLE, OFF(test_fraction), "0.1", 0, 1, NULL, "F",
     "fraction of each client's examples held out for the test file"},
    {"max-examples", CLI_INT, OFF(max_examples), "0", 0, 9.2e18, NULL, "N",
     "cap on a client's examples (0: the recipe's log-normal sizes, uncapped)"},
    {"seed", CLI_INT, OFF(seed), "0", 0, 9.2e18, NULL, "S", "generator seed"},
};
#undef OFF
static const cli_command synth_cmd = {
    "synth", "fedmpi data synth [options]",
    "Write Synthetic(alpha, beta) (Li et al., FedProx, MLSys 2020): per-client softmax models W_k ~ N(u_k, 1),\n"
    "u_k ~ N(0, alpha^2); inputs x ~ N(v_k, diag(j^-1.2)), v_k ~ N(B_k, 1), B_k ~ N(0, beta^2); client sizes\n"
    "floor(LogNormal(4, 2)) + 50. Files use TFF's layout /examples/<client>/{x,y}, seeded and reproducible.",
    synth_opts, sizeof synth_opts / sizeof synth_opts[0], 1};

typedef struct info_cfg {
  char x_feature[CLI_STR_MAX], y_feature[CLI_STR_MAX];
} info_cfg;
#define OFF(f) offsetof(info_cfg, f)
static const cli_opt info_opts[] = {
    {"x-feature", CLI_STR, OFF(x_feature), "", 0, 0, NULL, "NAME", "input feature (default: x, pixels or image)"},
    {"y-feature", CLI_STR, OFF(y_feature), "", 0, 0, NULL, "NAME", "label feature (default: y or label)"},
};
#undef OFF
static const cli_command info_cmd = {
    "info", "fedmpi data info [options] FILE",
    "Describe any TFF HDF5 ClientData file (EMNIST, Shakespeare, CIFAR-100, Stack Overflow, fedmpi's own): every\n"
    "feature of the first non-empty client with its dtype and per-example shape, the number of clients and\n"
    "examples, quantiles of client sizes and, when there is an integer label feature, the number of classes and\n"
    "the label skew (mean fraction of a client's examples in its majority class; labels per client). A string\n"
    "feature 'snippets' (Shakespeare) is also tokenised as TFF's baseline does: rows, bytes, OOV, padding.",
    info_opts, sizeof info_opts / sizeof info_opts[0], 0};

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* "min 1  p10 2  p50 4  p90 6  max 8  mean 4.1" of v (n > 0, sorted here). */
static void print_quantiles(const char *label, size_t *v, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i];
  qsort(v, n, sizeof *v, cmp_size);
  printf("%s min %zu  p10 %zu  p50 %zu  p90 %zu  max %zu  mean %.1f\n", label, v[0], v[n / 10], v[n / 2],
         v[(9 * n) / 10 < n ? (9 * n) / 10 : n - 1], v[n - 1], sum / (double)n);
}

static void shape_text(int ndim, const size_t *shape, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  snprintf(buf, size, "(");
  used = 1;
  for (int d = 0; d < ndim && used + 1 < size; d++) {
    int w = snprintf(buf + used, size - used, "%s%zu", d ? ", " : "", shape[d]);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (used + 1 < size) snprintf(buf + used, size - used, ")");
}

/* Labels of every client: classes (largest + 1), and per non-empty client the
 * number of distinct labels and the majority-class fraction. */
static int label_stats(const fm_client_data *cd, size_t *num_classes, size_t *distinct, size_t *nonempty,
                       double *mean_majority) {
  const size_t K = fm_client_data_num_clients(cd);
  int32_t mx = -1;
  double maj = 0;
  *nonempty = 0;
  for (size_t i = 0; i < K; i++) {
    fm_examples ex;
    int rc = fm_client_data_load_labels(cd, i, &ex);
    if (rc != FM_OK) return rc;
    if (ex.n > 0) {
      qsort(ex.y, ex.n, sizeof *ex.y, cmp_i32);
      size_t d = 0, run = 0, best = 0;
      for (size_t r = 0; r < ex.n; r++) {
        if (r == 0 || ex.y[r] != ex.y[r - 1]) {
          d++;
          run = 0;
        }
        if (++run > best) best = run;
      }
      if (ex.y[ex.n - 1] > mx) mx = ex.y[ex.n - 1];
      distinct[(*nonempty)++] = d;
      maj += (double)best / (double)ex.n;
    }
    fm_examples_free(&ex);
  }
  *num_classes = (size_t)(mx + 1);
  *mean_majority = *nonempty ? maj / (double)*nonempty : 0.0;
  return FM_OK;
}

/* Shakespeare's token rows (fm_tokenizer_create_shakespeare) over every
 * client's snippets. */
typedef struct text_stats {
  uint64_t rows, bytes, oov, pad_targets;
  size_t *rows_per_client; /* (K) */
} text_stats;

static int shakespeare_stats(const fm_client_data *cd, text_stats *st) {
  fm_tokenizer *t = NULL;
  FM_CALL_CLI(fm_tokenizer_create_shakespeare(0, &t));
  fm_token_specials sp;
  fm_tokenizer_specials(t, &sp);
  int rc = FM_OK;
  for (size_t i = 0; i < fm_client_data_num_clients(cd) && rc == FM_OK; i++) {
    fm_token_rows r;
    rc = fm_tokenizer_encode_client(t, cd, i, "snippets", &r);
    if (rc != FM_OK) break;
    st->rows += r.n_rows;
    st->rows_per_client[i] = r.n_rows;
    /* row k's L + 1 ids are x[k][0] then y[k][...]: each byte of a snippet is one of them that is
     * neither BOS, EOS nor padding */
    for (size_t k = 0; k < r.n_rows; k++)
      for (size_t j = 0; j <= r.seq_len; j++) {
        int32_t id = j == 0 ? r.x[k * r.seq_len] : r.y[k * r.seq_len + j - 1];
        st->bytes += id != sp.bos && id != sp.eos && id != sp.pad;
        st->oov += id == sp.oov;
        st->pad_targets += j > 0 && id == sp.pad;
      }
    fm_token_rows_free(&r);
  }
  fm_tokenizer_destroy(&t);
  return rc;
}

static void print_shakespeare_stats(text_stats *st, size_t n) {
  printf("tokens      snippets as TFF's Shakespeare task: 90 ids (86 characters; pad 0, OOV 87, BOS 88, EOS 89),"
         " rows of 81 (x, y 80)\n");
  printf("token rows  %llu (%llu bytes, %.2f%% OOV; %.1f%% of targets are padding)\n", (unsigned long long)st->rows,
         (unsigned long long)st->bytes, st->bytes ? 100.0 * (double)st->oov / (double)st->bytes : 0.0,
         st->rows ? 100.0 * (double)st->pad_targets / (double)(st->rows * 80) : 0.0);
  if (n) print_quantiles("rows per client", st->rows_per_client, n);
}

/* The reference client has a string feature called name. */
static int has_string_feature(const fm_client_data *cd, const char *name) {
  for (size_t j = 0; j < fm_client_data_num_feature_infos(cd); j++) {
    const fm_feature_info *f = fm_client_data_feature_info(cd, j);
    if (!strcmp(f->name, name) && f->dtype == FM_DTYPE_STRING && f->ndim == 0) return 1;
  }
  return 0;
}

static int describe(const char *path, const fm_client_data *cd) {
  const size_t n = fm_client_data_num_clients(cd);
  size_t *sizes = malloc((n ? n : 1) * sizeof *sizes), *distinct = malloc((n ? n : 1) * sizeof *distinct);
  if (!sizes || !distinct) {
    free(sizes);
    free(distinct);
    return fm_set_error(FM_ERR_NOMEM, "out of memory");
  }
  size_t empty = 0, ref = n;
  for (size_t i = 0; i < n; i++) {
    sizes[i] = fm_client_data_num_examples(cd, i);
    empty += sizes[i] == 0;
    if (ref == n && sizes[i] > 0) ref = i;
  }
  /* Labels first: a bad label fails before anything is printed. */
  const char *x = fm_client_data_x_feature(cd), *y = fm_client_data_y_feature(cd);
  size_t ncls = 0, nonempty = 0;
  double majority = 0;
  int rc = y ? label_stats(cd, &ncls, distinct, &nonempty, &majority) : FM_OK;
  text_stats ts = {0, 0, 0, 0, NULL};
  const int text = has_string_feature(cd, "snippets");
  if (rc == FM_OK && text) {
    ts.rows_per_client = calloc(n ? n : 1, sizeof *ts.rows_per_client);
    rc = ts.rows_per_client ? shakespeare_stats(cd, &ts) : fm_set_error(FM_ERR_NOMEM, "out of memory");
  }
  if (rc != FM_OK) {
    free(sizes);
    free(distinct);
    free(ts.rows_per_client);
    return rc;
  }
  if (y && fm_client_data_num_classes(cd)) ncls = fm_client_data_num_classes(cd);
  char buf[256];
  printf("file        %s\nclients     %zu\nexamples    %llu\nempty       %zu\n", path, n,
         (unsigned long long)fm_client_data_total_examples(cd), empty);
  printf("features of client '%s'%s:\n", fm_client_data_client_id(cd, ref < n ? ref : 0),
         ref < n ? "" : " (every client is empty)");
  for (size_t j = 0; j < fm_client_data_num_feature_infos(cd); j++) {
    const fm_feature_info *f = fm_client_data_feature_info(cd, j);
    shape_text(f->ndim, f->shape, buf, sizeof buf);
    printf("  %-20s %-8s %s\n", f->name, fm_dtype_name(f->dtype), buf);
  }
  if (x) {
    int ndim;
    size_t shape[FM_MAX_DIMS];
    fm_client_data_feature_shape(cd, &ndim, shape);
    shape_text(ndim, shape, buf, sizeof buf);
    printf("input       %s %s\n", x, buf);
  } else {
    printf("input       none (no numeric x, pixels or image feature)\n");
  }
  if (y) {
    printf("label       %s\n", y);
  } else {
    const fm_feature_info *bad = NULL;
    for (size_t j = 0; j < fm_client_data_num_feature_infos(cd); j++) {
      const fm_feature_info *f = fm_client_data_feature_info(cd, j);
      if (!bad && (!strcmp(f->name, "y") || !strcmp(f->name, "label"))) bad = f;
    }
    if (bad) {
      shape_text(bad->ndim, bad->shape, buf, sizeof buf);
      printf("label       none ('%s' is %s %s; labels must be integers, one per example)\n", bad->name,
             fm_dtype_name(bad->dtype), buf);
    }
    else
      printf("label       none (no y or label feature)\n");
  }
  if (y) printf("classes     %zu\n", ncls);
  if (n) print_quantiles("client size", sizes, n);
  if (y && nonempty) {
    printf("label skew  majority-class fraction %.3f (mean over %zu non-empty clients; 1 = one class each)\n",
           majority, nonempty);
    print_quantiles("labels per client", distinct, nonempty);
  }
  if (text) print_shakespeare_stats(&ts, n);
  free(sizes);
  free(distinct);
  free(ts.rows_per_client);
  return FM_OK;
}

static int data_info(cli_ctx *ctx, int argc, char **argv) {
  info_cfg c;
  char *pos[1];
  int npos = 0;
  int ex = cli_parse_or_exit(ctx, &info_cmd, &c, argc, argv, pos, 1, &npos);
  if (ex >= 0) return ex;
  if (npos != 1) {
    cli_error(ctx, "data info", "expected one ClientData file");
    return CLI_EXIT_USAGE;
  }
  int rc = FM_OK;
  fm_client_data *cd = NULL;
  if (ctx->rank == 0) {
    fm_data_options dopt = {.x_feature = c.x_feature[0] ? c.x_feature : NULL,
                            .y_feature = c.y_feature[0] ? c.y_feature : NULL};
    rc = fm_client_data_open_kind(pos[0], &dopt, FM_DATA_ANY, &cd);
    if (rc == FM_OK) rc = describe(pos[0], cd);
    fflush(stdout);
  }
  int status = cli_agree(ctx, "data info", rc) == FM_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
  fm_client_data_close(&cd);
  return status;
}

/* ---- tokens: a text feature as token rows ------------------------------------------ */

typedef struct tokens_cfg {
  char task[CLI_STR_MAX], feature[CLI_STR_MAX], vocab[CLI_STR_MAX], client[CLI_STR_MAX];
  int64_t vocab_size, seq_len;
} tokens_cfg;
#define OFF(f) offsetof(tokens_cfg, f)
static const cli_opt tokens_opts[] = {
    {"task", CLI_CHOICE, OFF(task), "shakespeare", 0, 0, "shakespeare|stackoverflow", NULL,
     "shakespeare: next character over 'snippets'; stackoverflow: next word over 'tokens'"},
    {"feature", CLI_STR, OFF(feature), "", 0, 0, NULL, "NAME", "string feature (default: the task's)"},
    {"vocab", CLI_STR, OFF(vocab), "", 0, 0, NULL, "FILE",
     "stackoverflow: word count file, 'word count' per line, most frequent first (default: the file's own most "
     "frequent words, counted per client)"},
    {"vocab-size", CLI_INT, OFF(vocab_size), "10000", 1, 2.1e9, NULL, "V", "stackoverflow: vocabulary words"},
    {"seq-len", CLI_INT, OFF(seq_len), "0", 0, 16777216, NULL, "L", "length of x and y (0: the task's, 80 or 20)"},
    {"client", CLI_STR, OFF(client), "", 0, 0, NULL, "ID", "only this client (default: every client)"},
};
#undef OFF
static const cli_command tokens_cmd = {
    "tokens", "fedmpi data tokens [options] FILE",
    "Print a text feature as the token rows TFF's baseline preprocessing makes of it: a header line '# ...' with\n"
    "the vocabulary size and special ids, then one line per row, 'CLIENT_INDEX ROW: x ids | y ids', rows in the\n"
    "order of the client's strings (no shuffling). Shakespeare: [BOS] bytes [EOS] cut into rows of L + 1;\n"
    "Stack Overflow: [BOS] up to L words [EOS if fewer], one row per string.",
    tokens_opts, sizeof tokens_opts / sizeof tokens_opts[0], 0};

static int make_tokenizer(const tokens_cfg *c, const fm_client_data *cd, fm_tokenizer **t) {
  if (!strcmp(c->task, "shakespeare")) return fm_tokenizer_create_shakespeare((size_t)c->seq_len, t);
  if (c->vocab[0]) return fm_tokenizer_create_words_file(c->vocab, (size_t)c->vocab_size, (size_t)c->seq_len, t);
  return fm_tokenizer_create_words_data(cd, c->feature[0] ? c->feature : NULL, (size_t)c->vocab_size,
                                        (size_t)c->seq_len, t);
}

static void print_ids(const int32_t *v, size_t n) {
  for (size_t j = 0; j < n; j++) printf(" %d", (int)v[j]);
}

static int print_tokens(const tokens_cfg *c, const fm_client_data *cd, const fm_tokenizer *t) {
  fm_token_specials sp;
  fm_tokenizer_specials(t, &sp);
  const char *feature = c->feature[0] ? c->feature : fm_tokenizer_default_feature(t);
  size_t first = 0, end = fm_client_data_num_clients(cd);
  if (c->client[0]) {
    for (first = 0; first < end && strcmp(fm_client_data_client_id(cd, first), c->client); first++) {
    }
    if (first == end)
      return fm_set_error(FM_ERR_INVALID_ARG, "%s: no client '%s'", fm_client_data_path(cd), c->client);
    end = first + 1;
  }
  printf("# task %s feature %s entries %zu ids %zu pad %d oov %d bos %d eos %d seq_len %zu\n", c->task, feature,
         fm_tokenizer_num_tokens(t), fm_tokenizer_vocab_size(t), (int)sp.pad, (int)sp.oov, (int)sp.bos,
         (int)sp.eos, fm_tokenizer_seq_len(t));
  for (size_t i = first; i < end; i++) {
    fm_token_rows r;
    FM_CALL_CLI(fm_tokenizer_encode_client(t, cd, i, feature, &r));
    for (size_t k = 0; k < r.n_rows; k++) {
      printf("%zu %zu:", i, k);
      print_ids(r.x + k * r.seq_len, r.seq_len);
      printf(" |");
      print_ids(r.y + k * r.seq_len, r.seq_len);
      printf("\n");
    }
    fm_token_rows_free(&r);
  }
  return FM_OK;
}

static int data_tokens(cli_ctx *ctx, int argc, char **argv) {
  tokens_cfg c;
  char *pos[1];
  int npos = 0;
  int ex = cli_parse_or_exit(ctx, &tokens_cmd, &c, argc, argv, pos, 1, &npos);
  if (ex >= 0) return ex;
  if (npos != 1) {
    cli_error(ctx, "data tokens", "expected one ClientData file");
    return CLI_EXIT_USAGE;
  }
  if (!strcmp(c.task, "shakespeare") && c.vocab[0]) {
    cli_error(ctx, "data tokens", "--vocab is for --task stackoverflow (Shakespeare's vocabulary is fixed)");
    return CLI_EXIT_USAGE;
  }
  int rc = FM_OK;
  fm_client_data *cd = NULL;
  fm_tokenizer *t = NULL;
  if (ctx->rank == 0) {
    rc = fm_client_data_open_kind(pos[0], NULL, FM_DATA_ANY, &cd);
    if (rc == FM_OK) rc = make_tokenizer(&c, cd, &t);
    if (rc == FM_OK) rc = print_tokens(&c, cd, t);
    fflush(stdout);
  }
  int status = cli_agree(ctx, "data tokens", rc) == FM_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
  fm_tokenizer_destroy(&t);
  fm_client_data_close(&cd);
  return status;
}

/* ---- import-idx and fashion-mnist ------------------------------------------------ */

#define PARTITIONS "iid|dirichlet|hetero-dir|shards|quantity"

typedef struct import_cfg {
  char images[CLI_STR_MAX], labels[CLI_STR_MAX], out[CLI_STR_MAX], partition[CLI_STR_MAX];
  char out_dir[CLI_STR_MAX], dataset_dir[CLI_STR_MAX], test_partition[CLI_STR_MAX];
  int64_t clients, classes_per_client, min_size, max_attempts, seed, test_clients;
  double alpha, sigma;
  int invert, flatten, no_scale;
} import_cfg;

#define OFF(f) offsetof(import_cfg, f)
#define PARTITION_OPTS                                                                                              \
  {"partition", CLI_CHOICE, OFF(partition), "iid", 0, 0, PARTITIONS, NULL,                                         \
   "how examples become clients: iid (shuffle, equal sizes), dirichlet (Hsu et al.: per-client class mix q ~ "     \
   "Dir(alpha p), equal sizes), hetero-dir (per-class Dir_K(alpha) over clients, FedMA; bounded), shards "         \
   "(McMahan: k label-sorted shards per client), quantity (log-normal sizes, iid labels)"},                        \
      {"clients", CLI_INT, OFF(clients), "100", 1, 4294967295.0, NULL, "K", "number of clients"},                  \
      {"alpha", CLI_DOUBLE, OFF(alpha), "0.5", 0, INFINITY, NULL, "A",                                             \
       "dirichlet / hetero-dir concentration (> 0; smaller is more skewed)"},                                      \
      {"classes-per-client", CLI_INT, OFF(classes_per_client), "2", 1, 1e9, NULL, "k", "shards: shards per client"}, \
      {"sigma", CLI_DOUBLE, OFF(sigma), "1", 0, INFINITY, NULL, "S", "quantity: log-normal sigma of client sizes"}, \
      {"min-size", CLI_INT, OFF(min_size), "10", 0, 1e12, NULL, "M",                                               \
       "hetero-dir, quantity: examples every client gets at least"},                                               \
      {"max-attempts", CLI_INT, OFF(max_attempts), "100", 1, 1e6, NULL, "R",                                       \
       "hetero-dir: draws before the deterministic repair"},                                                       \
      {"seed", CLI_INT, OFF(seed), "0", 0, 9.2e18, NULL, "S", "partition seed"},                                    \
      {"invert", CLI_FLAG, OFF(invert), "0", 0, 0, NULL, NULL, "pixels 1 - x (EMNIST style: 1.0 = background)"},    \
      {"flatten", CLI_FLAG, OFF(flatten), "0", 0, 0, NULL, NULL, "pixels (n, R*C) instead of (n, R, C)"},           \
      {"no-scale", CLI_FLAG, OFF(no_scale), "0", 0, 0, NULL, NULL, "keep pixels as uint8 0..255 (default: float32 x/255)"}

static const cli_opt import_opts[] = {
    {"images", CLI_STR, OFF(images), "", 0, 0, NULL, "FILE", "IDX images (magic 0x00000803), .gz or plain (required)"},
    {"labels", CLI_STR, OFF(labels), "", 0, 0, NULL, "FILE", "IDX labels (magic 0x00000801), .gz or plain (required)"},
    {"out", CLI_STR, OFF(out), "", 0, 0, NULL, "FILE", "ClientData file to write (required)"},
    PARTITION_OPTS,
};
static const cli_command import_cmd = {
    "import-idx", "fedmpi data import-idx --images F --labels F --out F [options]",
    "Import an MNIST-format IDX pair (MNIST, Fashion-MNIST, EMNIST; gzipped or not) as TFF HDF5 ClientData:\n"
    "/examples/f_NNNNN/{pixels float32 (n, 28, 28) in [0, 1], label int32}, partitioned into clients. The method\n"
    "and its parameters are recorded as root attributes; the same options give the same file.",
    import_opts, sizeof import_opts / sizeof import_opts[0], 0};

static const cli_opt fmnist_opts[] = {
    {"out-dir", CLI_STR, OFF(out_dir), ".", 0, 0, NULL, "DIR",
     "where fashion_mnist_train.h5 and fashion_mnist_test.h5 go (created)"},
    PARTITION_OPTS,
    {"test-partition", CLI_CHOICE, OFF(test_partition), "iid", 0, 0, PARTITIONS, NULL,
     "partition of the t10k test set (same alpha, k, sigma, min-size, seed)"},
    {"test-clients", CLI_INT, OFF(test_clients), "100", 1, 4294967295.0, NULL, "K", "number of test clients"},
    {"dataset-dir", CLI_STR, OFF(dataset_dir), "/usr/share/datasets/fashion-mnist", 0, 0, NULL, "DIR",
     "the installed IDX files (Debian package dataset-fashion-mnist)"},
};
#undef OFF
static const cli_command fmnist_cmd = {
    "fashion-mnist", "fedmpi data fashion-mnist [--out-dir D] [options]",
    "Import the installed Fashion-MNIST (train-*-ubyte.gz: 60,000 examples; t10k-*: 10,000) as two ClientData\n"
    "files, the training set partitioned with --partition and the test set with --test-partition, both in\n"
    "TFF's EMNIST layout (pixels (n, 28, 28) float32 in [0, 1], label int32, 10 classes).",
    fmnist_opts, sizeof fmnist_opts / sizeof fmnist_opts[0], 0};

/* Options -> library options; a usage message if a value cannot work. */
static int import_options(const import_cfg *c, const char *method, int64_t clients, fm_idx_import_options *o,
                          char *err, size_t errlen) {
  fm_idx_import_defaults(o);
  if (fm_partition_method_parse(method, &o->partition.method) != FM_OK) {
    snprintf(err, errlen, "%s", fm_last_error());
    return -1;
  }
  if ((o->partition.method == FM_PARTITION_DIRICHLET || o->partition.method == FM_PARTITION_HETERO_DIR) &&
      !(c->alpha > 0)) {
    snprintf(err, errlen, "--alpha must be > 0 for --partition %.32s", method);
    return -1;
  }
  o->partition.num_clients = (size_t)clients;
  o->partition.alpha = c->alpha;
  o->partition.classes_per_client = (size_t)c->classes_per_client;
  o->partition.sigma = c->sigma;
  o->partition.min_size = (size_t)c->min_size;
  o->partition.max_attempts = (unsigned)c->max_attempts;
  o->partition.seed = (uint64_t)c->seed;
  o->invert = c->invert;
  o->flatten = c->flatten;
  o->no_scale = c->no_scale;
  return 0;
}

static void print_written(const char *path, const fm_idx_import_options *o, const fm_partition_result *res) {
  printf("wrote %s (%zu clients, partition %s", path, o->partition.num_clients,
         fm_partition_method_name(o->partition.method));
  if (o->partition.method == FM_PARTITION_HETERO_DIR)
    printf(", %u attempt%s, %llu examples moved to reach min-size %zu", res->attempts, res->attempts == 1 ? "" : "s",
           (unsigned long long)res->moved, o->partition.min_size);
  printf(")\n");
}

/* Import one IDX image/label pair into out and report what was written. */
static int import_one(fm_idx_import_options *o, const char *images, const char *labels, const char *out) {
  o->images_path = images;
  o->labels_path = labels;
  fm_partition_result res;
  int rc = fm_idx_import(o, out, &res);
  if (rc == FM_OK) print_written(out, o, &res);
  return rc;
}

static int data_import_idx(cli_ctx *ctx, int argc, char **argv) {
  import_cfg c;
  char *pos[1];
  int npos;
  int ex = cli_parse_or_exit(ctx, &import_cmd, &c, argc, argv, pos, 0, &npos);
  if (ex >= 0) return ex;
  const char *missing = !c.images[0] ? "--images" : !c.labels[0] ? "--labels" : !c.out[0] ? "--out" : NULL;
  char err[1024];
  fm_idx_import_options o;
  if (missing) {
    snprintf(err, sizeof err, "%s is required (see fedmpi data import-idx --help)", missing);
    cli_error(ctx, "data import-idx", err);
    return CLI_EXIT_USAGE;
  }
  if (import_options(&c, c.partition, c.clients, &o, err, sizeof err) != 0) {
    cli_error(ctx, "data import-idx", err);
    return CLI_EXIT_USAGE;
  }
  int rc = FM_OK;
  if (ctx->rank == 0) {
    rc = import_one(&o, c.images, c.labels, c.out);
    fflush(stdout);
  }
  return cli_agree(ctx, "data import-idx", rc) == FM_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

static int data_fashion_mnist(cli_ctx *ctx, int argc, char **argv) {
  import_cfg c;
  char *pos[1];
  int npos;
  int ex = cli_parse_or_exit(ctx, &fmnist_cmd, &c, argc, argv, pos, 0, &npos);
  if (ex >= 0) return ex;
  char err[1024];
  fm_idx_import_options tr, te;
  if (import_options(&c, c.partition, c.clients, &tr, err, sizeof err) != 0 ||
      import_options(&c, c.test_partition, c.test_clients, &te, err, sizeof err) != 0) {
    cli_error(ctx, "data fashion-mnist", err);
    return CLI_EXIT_USAGE;
  }
  int rc = FM_OK;
  if (ctx->rank == 0) {
    static const char *const names[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    char src[4][CLI_STR_MAX + 64], out_tr[CLI_STR_MAX + 64], out_te[CLI_STR_MAX + 64];
    for (int j = 0; j < 4 && rc == FM_OK; j++) {
      snprintf(src[j], sizeof src[j], "%s/%s", c.dataset_dir, names[j]);
      FILE *f = fopen(src[j], "rb");
      if (f)
        fclose(f);
      else
        rc = fm_set_error(FM_ERR_IO, "Fashion-MNIST not found: cannot read '%s'; install dataset-fashion-mnist "
                          "(scripts/install-deps)", src[j]);
    }
    if (rc == FM_OK && cli_mkdirs(c.out_dir) != 0)
      rc = fm_set_error(FM_ERR_IO, "cannot create output directory '%s'", c.out_dir);
    snprintf(out_tr, sizeof out_tr, "%s/fashion_mnist_train.h5", c.out_dir);
    snprintf(out_te, sizeof out_te, "%s/fashion_mnist_test.h5", c.out_dir);
    if (rc == FM_OK) rc = import_one(&tr, src[0], src[1], out_tr);
    if (rc == FM_OK) rc = import_one(&te, src[2], src[3], out_te);
    fflush(stdout);
  }
  return cli_agree(ctx, "data fashion-mnist", rc) == FM_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

static int data_synth(cli_ctx *ctx, int argc, char **argv) {
  synth_cfg c;
  char *pos[1];
  int npos;
  int ex = cli_parse_or_exit(ctx, &synth_cmd, &c, argc, argv, pos, 0, &npos);
  if (ex >= 0) return ex;
  int rc = FM_OK;
  if (ctx->rank == 0) {
    fm_synth_options o;
    fm_synth_defaults(&o);
    o.alpha = c.alpha;
    o.beta = c.beta;
    o.iid = c.iid;
    o.num_clients = (size_t)c.clients;
    o.num_features = (size_t)c.features;
    o.num_classes = (size_t)c.classes;
    o.test_fraction = c.out_test[0] ? c.test_fraction : 0.0;
    o.max_examples = (size_t)c.max_examples;
    o.seed = (uint64_t)c.seed;
    rc = fm_synth_write(&o, c.out_train, c.out_test[0] ? c.out_test : NULL);
    if (rc == FM_OK) printf("wrote %s%s%s\n", c.out_train, c.out_test[0] ? " and " : "", c.out_test);
  }
  return cli_agree(ctx, "data synth", rc) == FM_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cmd_data(cli_ctx *ctx, int argc, char **argv) {
  const char *sub = argc > 1 ? argv[1] : NULL;
  if (sub && !strcmp(sub, "synth")) return data_synth(ctx, argc - 1, argv + 1);
  if (sub && !strcmp(sub, "info")) return data_info(ctx, argc - 1, argv + 1);
  if (sub && !strcmp(sub, "tokens")) return data_tokens(ctx, argc - 1, argv + 1);
  if (sub && !strcmp(sub, "import-idx")) return data_import_idx(ctx, argc - 1, argv + 1);
  if (sub && !strcmp(sub, "fashion-mnist")) return data_fashion_mnist(ctx, argc - 1, argv + 1);
  if (sub && (!strcmp(sub, "--help") || !strcmp(sub, "-h"))) {
    if (ctx->rank == 0)
      printf("usage: fedmpi data synth [options]\n"
             "       fedmpi data import-idx --images F --labels F --out F [options]\n"
             "       fedmpi data fashion-mnist [--out-dir D] [options]\n"
             "       fedmpi data info FILE\n"
             "       fedmpi data tokens [--task shakespeare|stackoverflow] [options] FILE\n"
             "(each takes --help)\n");
    return CLI_EXIT_OK;
  }
  char msg[256];
  snprintf(msg, sizeof msg, "unknown data command '%s' (expected synth, import-idx, fashion-mnist, info or tokens)",
           sub ? sub : "");
  cli_error(ctx, "data", msg);
  return CLI_EXIT_USAGE;
}
