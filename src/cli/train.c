/* src/cli/train.c — `fedmpi train`: federated averaging end to end.
 *
 * cmd_train drives one run through its phases (parse and resume, setup,
 * rounds, finish, teardown), each a function below over one train_run.
 * Every rank runs them in lockstep: options are parsed identically
 * everywhere, each rank opens the data itself, and every step that can fail
 * on one rank only (files, directories) is followed by an agreement, so all
 * ranks leave together with one message printed by rank 0. Rank 0 alone
 * writes the output directory: config.ini, metrics.jsonl, metrics.csv,
 * weights.h5 (and the generated Synthetic data when --data is not given),
 * holding the directory's lock (.fedmpi.lock) from before the first write to
 * the end of the run. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "cli.h"
#include "fedmpi/privacy.h"
#include "fedmpi/schedule.h"

typedef struct train_cfg {
  char data[CLI_STR_MAX], test_data[CLI_STR_MAX], model[CLI_STR_MAX], out[CLI_STR_MAX];
  char init_weights[CLI_STR_MAX], weighting[CLI_STR_MAX], x_feature[CLI_STR_MAX], y_feature[CLI_STR_MAX];
  char resume[CLI_STR_MAX], algorithm[CLI_STR_MAX], aggregator[CLI_STR_MAX], metrics[CLI_STR_MAX];
  char assignment[CLI_STR_MAX], client_lr_schedule[CLI_STR_MAX], server_lr_schedule[CLI_STR_MAX];
  char client_optimizer[CLI_STR_MAX], server_optimizer[CLI_STR_MAX], client_opt[CLI_STR_MAX], server_opt[CLI_STR_MAX];
  char dp_tree_participation[CLI_STR_MAX], metrics_aggregator[CLI_STR_MAX], vocab[CLI_STR_MAX];
  int64_t vocab_size, seq_len;
  int64_t rounds, clients_per_round, epochs, batch_size, seed, threads, eval_every, eval_batch_size, num_classes;
  int64_t synth_clients, checkpoint_every, keep_checkpoints, eval_clients;
  int64_t max_examples_per_client, shuffle_buffer, cache_mb;
  double client_lr, client_momentum, server_lr, momentum, synth_alpha, synth_beta, proximal_strength;
  double round_timeout, dp_delta, dp_target_epsilon, dp_q;
  int synth_iid, quiet, no_shuffle, preload;
} train_cfg;

/* The run's DP mechanism as the accountant sees it: the subsampled Gaussian
 * (gaussian_*, dp_aggregator) or a tree (tree_*) with its restarts; z < 0: none. */
typedef struct dp_mech {
  double z;
  int tree;
  uint64_t warmup, period;
} dp_mech;

/* What may change when a run is resumed: nothing that changes the trajectory.
 * The one list of them: it makes resume_safe (what cli_diff skips) and the
 * text that names them in --resume's help and in the refusal. */
#define RESUME_SAFE(FIRST, NEXT)                                                                                      \
  FIRST("rounds") NEXT("assignment") NEXT("cache-mb") NEXT("preload") NEXT("eval-every") NEXT("eval-batch-size")      \
  NEXT("eval-clients") NEXT("test-data") NEXT("threads") NEXT("quiet") NEXT("checkpoint-every")                       \
  NEXT("keep-checkpoints") NEXT("out")
#define RESUME_SAFE_ITEM(name) name,
#define RESUME_SAFE_TEXT_FIRST(name) name
#define RESUME_SAFE_TEXT_NEXT(name) ", " name
/* "rounds, assignment, ..., out" */
#define RESUME_SAFE_TEXT RESUME_SAFE(RESUME_SAFE_TEXT_FIRST, RESUME_SAFE_TEXT_NEXT)
/* --round-timeout may change as well, but it is not part of the run at all:
 * it guards the job that runs it, so the texts name it apart. */
#define RESUME_JOB_TEXT "--round-timeout"
static const char *const resume_safe[] = {RESUME_SAFE(RESUME_SAFE_ITEM, RESUME_SAFE_ITEM) "round-timeout", NULL};

#define OFF(f) offsetof(train_cfg, f)
#define BIG 9.2e18
/* Not const: --algorithm's choices come from the registry (train_opts_init). */
static cli_opt train_opts[] = {
    {"data", CLI_STR, OFF(data), "", 0, 0, NULL, "FILE|SPEC",
     "training ClientData: an HDF5 file in TFF's layout (/examples/<client>/<feature>), or a procedural "
     "population 'synthetic:clients=1e6,alpha=1,beta=1,max-examples=20,seed=0' generated on demand; "
     "empty: write Synthetic(alpha, beta) files into the output directory"},
    {"test-data", CLI_STR, OFF(test_data), "", 0, 0, NULL, "FILE|SPEC",
     "held-out ClientData (or 'synthetic:...,split=test') evaluated every --eval-every rounds and at the end"},
    {"model", CLI_STR, OFF(model), "softmax", 0, 0, NULL, "NAME",
     "model: softmax, mlp:H1,H2,..., 2nn (mlp:200,200), cnn (McMahan et al.'s CNN; cnn:F1,F2,DENSE[,K]), or layers "
     "'stack:conv2d(32,5),relu,maxpool,flatten,dense(128),relu,dense' (dense, relu, conv2d, maxpool, flatten, "
     "reshape; docs/models.md)"},
    {"rounds", CLI_INT, OFF(rounds), "20", 1, BIG, NULL, "N", "federated rounds"},
    {"clients-per-round", CLI_INT, OFF(clients_per_round), "10", 1, BIG, NULL, "K",
     "clients sampled uniformly without replacement each round"},
    {"epochs", CLI_INT, OFF(epochs), "1", 1, 1e6, NULL, "E", "local epochs per client"},
    {"batch-size", CLI_INT, OFF(batch_size), "10", 1, 1e7, NULL, "B", "local batch size"},
    {"algorithm", CLI_CHOICE, OFF(algorithm), "fedavg", 0, 0, NULL /* the registry's names */, NULL,
     "federated algorithm (FedOpt = fedavg with a --server-optimizer other than sgdm)"},
    {"client-optimizer", CLI_STR, OFF(client_optimizer), "sgdm", 0, 0, NULL, "TYPE",
     "client optimizer (Mime Lite's base optimizer): sgdm, adam, adamw, adagrad, yogi, rmsprop"},
    {"client-lr", CLI_DOUBLE, OFF(client_lr), "0.05", 0, INFINITY, NULL, "LR", "client learning_rate"},
    {"client-momentum", CLI_DOUBLE, OFF(client_momentum), "0", 0, 1, NULL, "M", "client sgdm momentum"},
    {"client-opt", CLI_STR, OFF(client_opt), "", 0, 0, NULL, "K=V,...",
     "other client optimizer hyperparameters by TFF name, e.g. beta_1=0.9,epsilon=1e-7"},
    {"server-optimizer", CLI_STR, OFF(server_optimizer), "sgdm", 0, 0, NULL, "TYPE",
     "server optimizer: sgdm (FedAvg/FedAvgM), adam (FedAdam), yogi (FedYogi), adagrad (FedAdagrad), ..."},
    {"server-lr", CLI_DOUBLE, OFF(server_lr), "1", 0, INFINITY, NULL, "LR",
     "server learning_rate (sgdm 1 with momentum 0 is plain FedAvg)"},
    {"momentum", CLI_DOUBLE, OFF(momentum), "0", 0, 1, NULL, "M", "server sgdm momentum (FedAvgM)"},
    {"client-lr-schedule", CLI_STR, OFF(client_lr_schedule), "constant", 0, 0, NULL, "SPEC",
     "client learning rate per round from --client-lr: constant, step:gamma=G,every=K, exp:gamma=G[,every=K], "
     "inverse_sqrt[:timescale=T], cosine:rounds=R[,alpha=A]; any may add warmup=W"},
    {"server-lr-schedule", CLI_STR, OFF(server_lr_schedule), "constant", 0, 0, NULL, "SPEC",
     "server learning rate per round from --server-lr (same forms)"},
    {"server-opt", CLI_STR, OFF(server_opt), "", 0, 0, NULL, "K=V,...",
     "other server optimizer hyperparameters by TFF name, e.g. beta_1=0.9,beta_2=0.99,epsilon=1e-3"},
    {"proximal-strength", CLI_DOUBLE, OFF(proximal_strength), "0", 0, INFINITY, NULL, "MU",
     "FedProx mu: gradient += mu (w - w_initial)"},
    {"weighting", CLI_CHOICE, OFF(weighting), "num_examples", 0, 0, "num_examples|uniform", NULL,
     "client weighting in the mean"},
    {"aggregator", CLI_STR, OFF(aggregator), "auto", 0, 0, NULL, "SPEC",
     "model update aggregator chain in TFF's names (auto: mean, or unweighted_mean with --weighting uniform, as "
     "TFF's builders); e.g. mean, clipping(mean, clipping_norm=0.5), robust_aggregator(), "
     "dp_aggregator(noise_multiplier=1, clients_per_round=10), gaussian_fixed(noise_multiplier=1, "
     "clients_per_round=10, clip=0.5), zeroing(mean, zeroing_norm=no_noise(initial_estimate=10, "
     "target_quantile=0.98, learning_rate=2.3, multiplier=2, increment=1)); see docs/privacy.md"},
    {"metrics-aggregator", CLI_STR, OFF(metrics_aggregator), "sum_then_finalize", 0, 0, NULL, "SPEC",
     "how the round's metrics are summed, in TFF's names: sum_then_finalize (exact, in the clear) or "
     "secure_sum_then_finalize (SecureSumFactory: every value clipped to [0, 2^20 - 1], quantised and summed as "
     "integers; lower=, upper= change that range, <metric>=range(lower=L, upper=U) one metric's, e.g. "
     "secure_sum_then_finalize(loss=range(lower=0, upper=1e4))); see docs/secure-aggregation.md"},
    {"seed", CLI_INT, OFF(seed), "0", 0, BIG, NULL, "S", "seed of every random draw (sampling, shuffling, init)"},
    {"out", CLI_STR, OFF(out), "fedmpi-out", 0, 0, NULL, "DIR", "output directory"},
    {"init-weights", CLI_STR, OFF(init_weights), "", 0, 0, NULL, "FILE",
     "start from a weights file written by a previous run"},
    {"assignment", CLI_CHOICE, OFF(assignment), "auto", 0, 0, "auto|shard|balanced", NULL,
     "which rank trains a sampled client: its shard's owner, or balanced by examples x epochs (same results); "
     "auto: balanced, shard for scaffold (its c_i live on the owner)"},
    {"threads", CLI_INT, OFF(threads), "0", 0, 4096, NULL, "T",
     "OpenMP threads per rank training clients (0: OMP_NUM_THREADS if set, else the rank's share of the CPUs it may "
     "run on: its affinity mask divided among the ranks of its node that share it)"},
    {"eval-every", CLI_INT, OFF(eval_every), "0", 0, BIG, NULL, "K",
     "evaluate on --test-data every K rounds (0: only after the last round)"},
    {"eval-batch-size", CLI_INT, OFF(eval_batch_size), "256", 1, 1e7, NULL, "B", "evaluation batch size"},
    {"eval-clients", CLI_INT, OFF(eval_clients), "0", 0, BIG, NULL, "K",
     "test clients evaluated each time, sampled uniformly (0: all of them)"},
    {"num-classes", CLI_INT, OFF(num_classes), "0", 0, 1e7, NULL, "C",
     "number of classes (0: the file's num_classes attribute, else the largest label + 1)"},
    {"x-feature", CLI_STR, OFF(x_feature), "", 0, 0, NULL, "NAME", "feature holding the inputs (default: x, pixels or image)"},
    {"y-feature", CLI_STR, OFF(y_feature), "", 0, 0, NULL, "NAME", "feature holding the labels (default: y or label)"},
    {"vocab", CLI_STR, OFF(vocab), "", 0, 0, NULL, "FILE",
     "text data: word count file for a string feature of words (Stack Overflow's 'tokens'), 'word count' per "
     "line, most frequent first, as TFF's load_word_counts reads it (default: the --vocab-size most frequent "
     "words of --data, counted per client; --test-data uses the same vocabulary)"},
    {"vocab-size", CLI_INT, OFF(vocab_size), "10000", 1, 2.1e9, NULL, "V",
     "text data: words in the vocabulary (ids: pad 0, words 1..V, OOV, BOS, EOS)"},
    {"seq-len", CLI_INT, OFF(seq_len), "0", 0, 16777216, NULL, "L",
     "text data: length of x and y per example (0: the tokenizer's, 80 for Shakespeare's characters, 20 for "
     "words); docs/data.md, \"Text data\""},
    {"metrics", CLI_STR, OFF(metrics), "", 0, 0, NULL, "LIST",
     "extra metrics, comma separated: top_k:K (top-K accuracy), recall (recall of every class, recall/<c>)"},
    {"max-examples-per-client", CLI_INT, OFF(max_examples_per_client), "0", 0, BIG, NULL, "N",
     "cap on the examples a client iterates per round, epochs included (TFF's max_elements; 0: none)"},
    {"shuffle-buffer", CLI_INT, OFF(shuffle_buffer), "0", 0, BIG, NULL, "N",
     "tf.data-style shuffle buffer per client (0: a full permutation each epoch)"},
    {"cache-mb", CLI_INT, OFF(cache_mb), "0", 0, 1e7, NULL, "MB",
     "keep up to MB megabytes of decoded clients per rank in memory between rounds (0: read every time)"},
    {"preload", CLI_FLAG, OFF(preload), "0", 0, 0, NULL, NULL,
     "read every client into the client cache before round 1 (needs --cache-mb; as simulators preload tensors)"},
    {"no-shuffle", CLI_FLAG, OFF(no_shuffle), "0", 0, 0, NULL, NULL, "do not shuffle client examples each epoch"},
    {"synth-alpha", CLI_DOUBLE, OFF(synth_alpha), "1", 0, INFINITY, NULL, "A",
     "generated data: Synthetic alpha (model heterogeneity)"},
    {"synth-beta", CLI_DOUBLE, OFF(synth_beta), "1", 0, INFINITY, NULL, "B",
     "generated data: Synthetic beta (data heterogeneity)"},
    {"synth-clients", CLI_INT, OFF(synth_clients), "30", 1, 1e9, NULL, "K", "generated data: number of clients"},
    {"synth-iid", CLI_FLAG, OFF(synth_iid), "0", 0, 0, NULL, NULL, "generated data: Synthetic-IID"},
    {"checkpoint-every", CLI_INT, OFF(checkpoint_every), "10", 0, BIG, NULL, "K",
     "write OUT/checkpoints/ckpt_<round>.h5 every K rounds, at round 0 and after the last round (0: never)"},
    {"keep-checkpoints", CLI_INT, OFF(keep_checkpoints), "5", 1, 1e6, NULL, "K",
     "checkpoints kept: the first plus the newest K"},
    {"resume", CLI_STR, OFF(resume), "", 0, 0, NULL, "DIR",
     "continue the run whose output directory is DIR from its newest valid checkpoint, with its configuration "
     "(flags may change only " RESUME_SAFE_TEXT "), and " RESUME_JOB_TEXT " may change too"},
    {"dp-delta", CLI_DOUBLE, OFF(dp_delta), "0", 0, 1, NULL, "D",
     "with a DP aggregator: the delta of the (epsilon, delta) the metrics report each round as privacy/epsilon "
     "(0: the default, min(1e-5, 1 / population))"},
    {"dp-target-epsilon", CLI_DOUBLE, OFF(dp_target_epsilon), "0", 0, 1e9, NULL, "E",
     "with a DP aggregator: stop cleanly, with a checkpoint, after the last round whose epsilon is <= E "
     "(0: no target)"},
    {"dp-q", CLI_DOUBLE, OFF(dp_q), "0", 0, 1, NULL, "Q",
     "with a DP aggregator: the sampling probability the accountant assumes (0: clients-per-round / population)"},
    {"dp-tree-participation", CLI_CHOICE, OFF(dp_tree_participation), "every-round", 0, 0, "every-round|once-per-tree",
     NULL,
     "with tree_aggregation / tree_adaptive: how often the accountant assumes a client takes part, at most "
     "(every-round: the worst case, all that uniform cohort sampling guarantees; once-per-tree: once between the "
     "tree's restarts, the DP-FTRL paper's epochs, an assumption fedmpi does not enforce)"},
    {"round-timeout", CLI_DOUBLE, OFF(round_timeout), "0", 0, 1e9, NULL, "S",
     "end the job when a round (training, evaluation, checkpoint) does not complete within S seconds: rank 0 "
     "names the ranks that did not arrive, every process exits non-zero and the checkpoints written so far stay "
     "intact (0: off, the default; see docs/cluster.md)"},
    {"quiet", CLI_FLAG, OFF(quiet), "0", 0, 0, NULL, NULL, "no per-round progress lines"},
};
/* --preload: every client with examples into the client cache, in index
 * order, until the cache is full (a warning then names how many fit). Every
 * rank loads all of them, as balanced assignment may send any client to any
 * rank. Collective: an unreadable client stops every rank. */
static int preload_clients(cli_ctx *ctx, const train_cfg *c, fm_client_data *train) {
  const double t0 = MPI_Wtime();
  const size_t n = fm_client_data_num_clients(train);
  size_t want = 0;
  int rc = FM_OK;
  for (size_t i = 0; i < n; i++) want += fm_client_data_num_examples(train, i) > 0;
  for (size_t i = 0; i < n && rc == FM_OK; i++) {
    if (fm_client_data_num_examples(train, i) == 0) continue;
    fm_cache_stats before, after;
    fm_client_data_cache_stats(train, &before);
    fm_examples ex;
    rc = fm_client_data_load(train, i, &ex);
    if (rc != FM_OK) break;
    fm_examples_free(&ex);
    fm_client_data_cache_stats(train, &after);
    /* full: not inserted, or it pushed an older one out */
    if (after.entries <= before.entries || after.evictions != before.evictions) break;
  }
  if (cli_agree(ctx, "train", rc) != FM_OK) return FM_ERR_FORMAT;
  fm_cache_stats st; /* the cache was empty before: its entries are the preloaded clients */
  fm_client_data_cache_stats(train, &st);
  if (ctx->rank == 0) {
    if (st.entries < want)
      fprintf(stderr, "fedmpi train: warning: --preload: the client cache (--cache-mb %lld) holds %zu of %zu clients; "
                      "the rest are read every round\n",
              (long long)c->cache_mb, st.entries, want);
    if (!c->quiet)
      printf("preloaded %zu clients (%.1f MB per rank) into the client cache in %.2f s\n", st.entries,
             (double)st.bytes / 1048576.0, MPI_Wtime() - t0);
  }
  return FM_OK;
}

static const cli_command train_cmd = {
    "train", "fedmpi train [options]",
    "Federated averaging (tff.learning.algorithms.build_weighted_fed_avg): each round samples clients, trains\n"
    "them locally with SGD, averages their updates (weighted by examples) and applies the server optimizer.\n"
    "Rank 0 is the server; every rank, rank 0 included, trains its share of the sampled clients (by default\n"
    "balanced by examples x epochs; for scaffold, the clients of its shard: see --assignment) with --threads\n"
    "OpenMP threads. Writes config.ini, metrics.jsonl, metrics.csv, weights.h5 and checkpoints/ to --out.\n"
    "SIGTERM, SIGINT or SIGUSR1 stop the run at the next round boundary after writing a checkpoint; the exit\n"
    "status is then 75 and 'fedmpi train --resume OUT' continues it exactly.\n"
    "Rank 0 locks --out (flock on OUT/.fedmpi.lock) for the whole run: a second run or a resume on a directory\n"
    "that a live run holds is refused, naming the holder's host and pid, and changes nothing in it.",
    train_opts, sizeof train_opts / sizeof train_opts[0], 1};

static int generate_synth(const train_cfg *c, const char *train, const char *test) {
  fm_synth_options o;
  fm_synth_defaults(&o);
  o.alpha = c->synth_alpha;
  o.beta = c->synth_beta;
  o.iid = c->synth_iid;
  o.num_clients = (size_t)c->synth_clients;
  o.seed = (uint64_t)c->seed;
  return fm_synth_write(&o, train, test);
}

/* Where build_fed_eval's current-round metrics land in a training record. */
#define EVAL_CURRENT "evaluation/client_work/eval/current_round_metrics/"

static void print_round(const train_cfg *c, uint64_t round, const fm_metrics *m, double secs) {
  double loss = NAN, acc = NAN, ex = 0, nf = 0;
  fm_metrics_get(m, "client_work/train/loss", &loss);
  fm_metrics_get(m, "client_work/train/accuracy", &acc);
  fm_metrics_get(m, "client_work/train/num_examples", &ex);
  fm_metrics_get(m, "finalizer/update_non_finite", &nf);
  double eps;
  char priv[48] = "";
  if (fm_metrics_get(m, "privacy/epsilon", &eps) == FM_OK) snprintf(priv, sizeof priv, "  epsilon %.3f", eps);
  printf("round %*llu/%lld  loss %.4f  accuracy %.4f%s  examples/s %.0f  %.3f s%s", (int)snprintf(NULL, 0, "%lld", (long long)c->rounds),
         (unsigned long long)round, (long long)c->rounds, loss, acc, priv, secs > 0 ? ex / secs : 0.0, secs,
         nf > 0 ? "  (update non-finite: rejected)" : "");
  double el, ea;
  if (fm_metrics_get(m, EVAL_CURRENT "loss", &el) == FM_OK && fm_metrics_get(m, EVAL_CURRENT "accuracy", &ea) == FM_OK)
    printf("  | eval loss %.4f  accuracy %.4f", el, ea);
  putchar('\n');
  fflush(stdout);
}

/* Attach the --metrics list to the model; the created metrics go to list
 * (up to max) and must be destroyed after the model. */
static int add_metrics(const char *text, fm_model *model, fm_metric **list, size_t max, size_t *n) {
  char buf[CLI_STR_MAX], *save = NULL;
  snprintf(buf, sizeof buf, "%s", text);
  size_t classes = fm_model_input_spec(model)->num_classes;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    unsigned long k = 0;
    char tail;
    if (sscanf(tok, "top_k:%lu%c", &k, &tail) == 1) {
      if (k < 1 || k > classes)
        return fm_set_error(FM_ERR_CONFIG, "--metrics: top_k:%lu needs 1 <= k <= %zu classes", k, classes);
      if (*n >= max) return fm_set_error(FM_ERR_CONFIG, "--metrics: too many metrics");
      FM_CALL_CLI(fm_metric_create_top_k(k, &list[*n]));
      FM_CALL_CLI(fm_model_add_metric(model, list[(*n)++]));
    } else if (strcmp(tok, "recall") == 0) {
      for (size_t c = 0; c < classes; c++) {
        if (*n >= max) return fm_set_error(FM_ERR_CONFIG, "--metrics: too many metrics (recall of %zu classes)", classes);
        FM_CALL_CLI(fm_metric_create_recall(c, &list[*n]));
        FM_CALL_CLI(fm_model_add_metric(model, list[(*n)++]));
      }
    } else {
      return fm_set_error(FM_ERR_CONFIG, "--metrics: unknown metric '%s' (known: top_k:K, recall)", tok);
    }
  }
  return FM_OK;
}

/* An optimizer from its type, the dedicated flags and the K=V list. Keys the
 * type does not have are refused by the optimizer, naming them. */
static int make_optimizer(const char *who, const char *type, double lr, double momentum, const char *extra,
                          fm_optimizer **out) {
  fm_hparams h = {0};
  char opt[32];
  snprintf(opt, sizeof opt, "%s-opt", who);
  FM_CALL_CLI(fm_hparams_put(&h, "learning_rate", lr));
  if (strcmp(type, "sgdm") == 0 || strcmp(type, "sgd") == 0) FM_CALL_CLI(fm_hparams_put(&h, "momentum", momentum));
  else if (momentum != 0)
    return fm_set_error(FM_ERR_CONFIG, "--%s momentum applies to sgdm only, the %s optimizer is '%s'",
                        strcmp(who, "client") == 0 ? "client-momentum" : "momentum", who, type);
  FM_CALL_CLI(cli_parse_hparams(opt, extra, &h));
  int rc = fm_optimizer_create(type, &h, out);
  if (rc != FM_OK) return fm_set_error(rc, "%s optimizer: %s", who, fm_last_error());
  return FM_OK;
}

/* --algorithm's choices: every registered algorithm, "fedavg|fedprox|...". */
static void train_opts_init(void) {
  static char names[512];
  if (names[0]) return;
  size_t used = 0;
  for (size_t i = 0; i < fm_algorithm_count(); i++) {
    fm_algorithm_desc d;
    if (fm_algorithm_info(i, &d) != FM_OK) continue;
    int n = snprintf(names + used, sizeof names - used, "%s%s", used ? "|" : "", d.name);
    if (n < 0 || (size_t)n >= sizeof names - used) break;
    used += (size_t)n;
  }
  for (size_t i = 0; i < sizeof train_opts / sizeof train_opts[0]; i++)
    if (!strcmp(train_opts[i].name, "algorithm")) train_opts[i].choices = names;
}

/* The registry's entry for name (FM_OK), as the CLI validated it. */
static int algorithm_desc(const char *name, fm_algorithm_desc *out) {
  for (size_t i = 0; i < fm_algorithm_count(); i++)
    if (fm_algorithm_info(i, out) == FM_OK && !strcmp(out->name, name)) return FM_OK;
  return fm_set_error(FM_ERR_CONFIG, "unknown --algorithm '%s'", name);
}

/* The algorithms whose hyperparameter is hparam, "fedprox" or "a|b". */
static void algorithms_with(const char *hparam, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < fm_algorithm_count(); i++) {
    fm_algorithm_desc d;
    if (fm_algorithm_info(i, &d) != FM_OK || !d.hparam || strcmp(d.hparam, hparam) != 0) continue;
    int n = snprintf(buf + used, size - used, "%s%s", used ? "|" : "", d.name);
    if (n < 0 || (size_t)n >= size - used) break;
    used += (size_t)n;
  }
}

static int build_process(const train_cfg *c, const fm_model *model, fm_process **out) {
  fm_weighting wt = strcmp(c->weighting, "uniform") == 0 ? FM_WEIGHTING_UNIFORM : FM_WEIGHTING_NUM_EXAMPLES;
  fm_optimizer *copt = NULL, *sopt = NULL;
  fm_aggregator *agg = NULL;
  fm_algorithm_desc algo;
  fm_hparams hp = {0};
  char with[256];
  int rc = algorithm_desc(c->algorithm, &algo);
  if (rc == FM_OK && algo.needs_client_optimizer)
    rc = make_optimizer("client", c->client_optimizer, c->client_lr, c->client_momentum, c->client_opt, &copt);
  if (rc == FM_OK) rc = make_optimizer("server", c->server_optimizer, c->server_lr, c->momentum, c->server_opt, &sopt);
  if (rc == FM_OK && strcmp(c->aggregator, "auto") != 0) rc = fm_aggregator_create_from_spec(c->aggregator, &agg);
  if (rc == FM_OK && agg) rc = fm_aggregator_check_cohort_size(agg, (size_t)c->clients_per_round);
  if (rc == FM_OK && c->preload && c->cache_mb == 0)
    rc = fm_set_error(FM_ERR_CONFIG, "--preload needs the client cache: set --cache-mb (e.g. the data file's size)");
  if (rc == FM_OK && c->proximal_strength != 0 && !(algo.hparam && !strcmp(algo.hparam, "proximal_strength"))) {
    algorithms_with("proximal_strength", with, sizeof with);
    rc = fm_set_error(FM_ERR_CONFIG, "--proximal-strength is for --algorithm %s (got %s)", with, c->algorithm);
  }
  if (rc == FM_OK && algo.hparam && !strcmp(algo.hparam, "proximal_strength"))
    rc = fm_hparams_put(&hp, "proximal_strength", c->proximal_strength);
  if (rc != FM_OK) {
    fm_optimizer_destroy(&copt);
    fm_optimizer_destroy(&sopt);
    fm_aggregator_destroy(&agg);
    return rc;
  }
  rc = fm_process_create(model, c->algorithm, &hp, copt, sopt, wt, agg, out);
  if (rc == FM_OK && strcmp(c->metrics_aggregator, "sum_then_finalize") != 0) {
    rc = fm_process_set_metrics_aggregator(*out, c->metrics_aggregator);
    if (rc != FM_OK) fm_process_destroy(out);
  }
  return rc;
}

/* The learning rates of round r from the schedules, into the state's hparams
 * (a no-op for constant schedules, which keep whatever the state holds). */
static int set_round_lrs(const fm_process *proc, fm_state *state, uint64_t r, const fm_schedule *cs,
                         const fm_schedule *ss, const train_cfg *c) {
  fm_algorithm_desc algo;
  FM_CALL_CLI(algorithm_desc(c->algorithm, &algo));
  int client = strcmp(c->client_lr_schedule, "constant") != 0 && algo.needs_client_optimizer;
  int server = strcmp(c->server_lr_schedule, "constant") != 0;
  if (!client && !server) return FM_OK;
  fm_hparams ch = {0}, sh = {0};
  if (client) FM_CALL_CLI(fm_hparams_put(&ch, "learning_rate", fm_schedule_value(cs, r)));
  if (server) FM_CALL_CLI(fm_hparams_put(&sh, "learning_rate", fm_schedule_value(ss, r)));
  return fm_process_set_hparams(proc, state, client ? &ch : NULL, server ? &sh : NULL);
}

static void warn_rank0(void *vctx, const char *msg) {
  const cli_ctx *ctx = vctx;
  if (ctx->rank == 0) {
    fprintf(stderr, "fedmpi train: warning: %s\n", msg);
    fflush(stderr);
  }
}

/* The value of --resume from argv ("--resume DIR" or "--resume=DIR"), or NULL. */
static const char *find_resume(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (!strcmp(argv[i], "--resume")) return i + 1 < argc ? argv[i + 1] : NULL;
    if (!strncmp(argv[i], "--resume=", 9)) return argv[i] + 9;
  }
  return NULL;
}

/* Collective: per-client state is gathered to rank 0, which writes the file.
 * The outcome is agreed, so every rank returns the same status. */
static int save_checkpoint(cli_ctx *ctx, const train_cfg *c, const fm_process *proc, const fm_state *state,
                           const fm_eval_process *eval, const char *config) {
  uint64_t *ids = NULL;
  float *values = NULL;
  size_t n = 0;
  int rc = fm_state_gather_clients(proc, state, ctx->comm, &ids, &values, &n);
  if (rc == FM_OK && ctx->rank == 0) {
    char dir[CLI_STR_MAX + 16];
    snprintf(dir, sizeof dir, "%s/checkpoints", c->out);
    fm_state_view v;
    if (cli_mkdirs(dir) != 0)
      rc = fm_set_error(FM_ERR_IO, "cannot create checkpoint directory '%s': %s", dir, strerror(errno));
    if (rc == FM_OK) rc = fm_state_export(proc, state, &v);
    if (rc == FM_OK) {
      v.num_clients = n;
      v.client_ids = ids;
      v.client_values = values;
      if (eval) v.eval_sums = fm_eval_process_sums(eval, &v.eval_num_values);
      rc = fm_checkpoint_save(dir, &v, c->model, config, (int)c->keep_checkpoints);
    }
  }
  free(ids);
  free(values);
  return fm_comm_agree(ctx->comm, rc);
}

/* Install a checkpoint's state, keeping the per-client states this rank owns. */
static int restore_checkpoint(cli_ctx *ctx, const fm_checkpoint *ckpt, const fm_process *proc, fm_state *state,
                              fm_eval_process *eval, uint64_t population) {
  fm_state_view v;
  fm_checkpoint_view(ckpt, &v);
  size_t keep = 0;
  uint64_t *ids = malloc((v.num_clients ? v.num_clients : 1) * sizeof *ids);
  float *vals = malloc((v.num_clients ? v.num_clients : 1) * (v.client_floats ? v.client_floats : 1) * sizeof *vals);
  if (!ids || !vals) {
    free(ids);
    free(vals);
    return fm_set_error(FM_ERR_NOMEM, "out of memory restoring per-client state");
  }
  for (size_t i = 0; i < v.num_clients; i++) {
    if (v.client_ids[i] >= population)
      return free(ids), free(vals),
             fm_set_error(FM_ERR_STATE_MISMATCH, "%s: per-client state for client %llu, but the data has %llu clients",
                          ckpt->path, (unsigned long long)v.client_ids[i], (unsigned long long)population);
    if (fm_client_owner(v.client_ids[i], population, ctx->size) != ctx->rank) continue;
    ids[keep] = v.client_ids[i];
    memcpy(vals + keep * v.client_floats, v.client_values + i * v.client_floats, v.client_floats * sizeof *vals);
    keep++;
  }
  v.num_clients = keep;
  v.client_ids = ids;
  v.client_values = vals;
  int rc = fm_state_import(proc, state, &v);
  /* The evaluation totals continue only if the run evaluated the same way. */
  if (rc == FM_OK && eval && ctx->rank == 0 && v.eval_num_values) rc = fm_eval_process_set_sums(eval, v.eval_sums, v.eval_num_values);
  free(ids);
  free(vals);
  return rc;
}

/* ---- one run, phase by phase ---------------------------------------------------------
 * Each phase returns TRAIN_NEXT to go on, or the command's exit status. Every
 * rank runs every phase; a phase that fails has already agreed and printed. */

enum { TRAIN_NEXT = -1, MAX_METRICS = 1024 };

/* Everything one run holds, owned by it and released by train_run_free. */
typedef struct train_run {
  cli_ctx *ctx;
  train_cfg *c;                          /* the effective configuration */
  fm_checkpoint ckpt;                    /* --resume: the checkpoint being continued */
  int resuming;
  int nt;                                /* OpenMP threads per rank */
  fm_client_data *train, *test;          /* test: NULL without --test-data */
  fm_tokenizer *tok;                     /* text data: --vocab, --vocab-size, --seq-len; NULL otherwise */
  uint64_t population;                   /* clients in train */
  fm_model *model;
  fm_input_spec spec;                    /* of --data, when check_model could read it */
  int have_spec;
  fm_metric *extra_metrics[MAX_METRICS]; /* --metrics; destroyed after the model */
  size_t num_extra_metrics;
  fm_process *proc;
  fm_state *state;
  fm_eval_process *eval;                 /* NULL without test data */
  size_t numel;                          /* weights of the model */
  float *w;                              /* (numel) --init-weights, read by rank 0 */
  uint64_t *cohort;                      /* (clients_per_round) this round's sample */
  uint64_t *eval_cohort;                 /* (eval_clients) NULL: every test client */
  char *config_text;                     /* the effective configuration (INI), stored in checkpoints */
  fm_schedule client_sched, server_sched;
  fm_metrics_writer *writer;             /* rank 0 */
  fm_dir_lock *lock;                     /* rank 0: the lock on --out, held to the end of the run */
  int64_t round;                         /* the round running, named if it times out */
  int64_t last_round;                    /* --rounds, or the last within --dp-target-epsilon */
  int dp;                                /* the aggregator is DP: the accountant runs */
  dp_mech mech;                          /* its mechanism */
  double dp_q, dp_delta;                 /* the sampling probability (not for trees), delta */
  uint64_t start;                        /* the round this invocation continues from */
  fm_executor *exec;                     /* the threads' buffers, kept across rounds */
  fm_round_input in;
  fm_round_stats stats;
  fm_metrics m;                          /* this round's record */
  fm_metrics em;                         /* the latest evaluation */
} train_run;

static train_run *train_run_create(cli_ctx *ctx) {
  train_run *run = calloc(1, sizeof *run);
  if (!run) return NULL;
  run->c = calloc(1, sizeof *run->c);
  if (!run->c) {
    free(run);
    return NULL;
  }
  run->ctx = ctx;
  fm_metrics_init(&run->m);
  fm_metrics_init(&run->em);
  return run;
}

static void train_run_free(train_run *run) {
  fm_metrics_writer_close(&run->writer);
  fm_dir_lock_close(&run->lock); /* after the last write into the directory */
  fm_metrics_free(&run->m);
  fm_metrics_free(&run->em);
  fm_checkpoint_free(&run->ckpt);
  free(run->config_text);
  free(run->w);
  free(run->cohort);
  fm_state_destroy(&run->state);
  fm_executor_destroy(&run->exec);
  fm_eval_process_destroy(&run->eval);
  free(run->eval_cohort);
  fm_process_destroy(&run->proc);
  fm_model_destroy(&run->model);
  for (size_t i = 0; i < run->num_extra_metrics; i++) fm_metric_destroy(&run->extra_metrics[i]);
  fm_client_data_close(&run->train);
  fm_client_data_close(&run->test);
  fm_tokenizer_destroy(&run->tok); /* after the data that borrow it */
  free(run->c);
  free(run);
}

/* ---- resume: find the checkpoint, compare configurations, restore ------------------ */

/* Refuse a resume whose flags change the trajectory (naming the options) or
 * whose checkpoint is already past --rounds. The same text on every rank. */
static int train_check_resume(train_run *run, char **argv) {
  cli_ctx *ctx = run->ctx;
  const train_cfg *c = run->c;
  char *pos[1];
  int npos = 0, status = TRAIN_NEXT;
  train_cfg *saved = calloc(1, sizeof *saved);
  char err[1024] = "", diff[4096];
  if (!saved || cli_parse_base(&train_cmd, saved, run->ckpt.config, 1, argv, err, sizeof err, pos, 0, &npos) != 0) {
    cli_error(ctx, "train", err[0] ? err : "out of memory");
    status = CLI_EXIT_FAILURE;
  } else if (cli_diff(&train_cmd, saved, c, resume_safe, diff, sizeof diff) > 0) {
    char msg[sizeof diff + 512];
    snprintf(msg, sizeof msg,
             "cannot resume %s: the configuration differs from the checkpoint's (%s); only " RESUME_SAFE_TEXT
             " may change, and " RESUME_JOB_TEXT,
             run->ckpt.path, diff);
    cli_error(ctx, "train", msg);
    status = CLI_EXIT_USAGE;
  } else if (run->ckpt.info.round > (uint64_t)c->rounds) {
    char msg[CLI_STR_MAX + 256];
    snprintf(msg, sizeof msg, "the checkpoint %s is at round %llu, past --rounds %lld; raise --rounds to continue",
             run->ckpt.path, (unsigned long long)run->ckpt.info.round, (long long)c->rounds);
    cli_error(ctx, "train", msg);
    status = CLI_EXIT_USAGE;
  }
  free(saved);
  return status;
}

/* The configuration: with --resume DIR, the newest valid checkpoint's is the
 * base that flags may adjust (every rank reads the same file). */
static int train_parse(train_run *run, int argc, char **argv) {
  cli_ctx *ctx = run->ctx;
  const char *resume_dir = find_resume(argc, argv);
  if (resume_dir && *resume_dir) {
    char dir[CLI_STR_MAX + 16];
    snprintf(dir, sizeof dir, "%s/checkpoints", resume_dir);
    int rc = fm_checkpoint_load_latest(dir, &run->ckpt, warn_rank0, ctx);
    if (cli_agree(ctx, "train", rc) != FM_OK) return CLI_EXIT_FAILURE;
    run->resuming = 1;
  }
  char *pos[1];
  int npos = 0;
  int ex = cli_parse_or_exit_base(ctx, &train_cmd, run->c, run->resuming ? run->ckpt.config : NULL, argc, argv, pos,
                                  0, &npos);
  if (ex >= 0) return ex;
  return run->resuming ? train_check_resume(run, argv) : TRAIN_NEXT;
}

/* The starting state: the checkpoint's when resuming, else --init-weights
 * (read by rank 0, whose state is authoritative), else the initialisation. */
static int train_restore(train_run *run) {
  cli_ctx *ctx = run->ctx;
  const train_cfg *c = run->c;
  run->numel = fm_layout_numel(fm_model_layout(run->model));
  run->w = malloc(run->numel * sizeof *run->w);
  run->cohort = malloc((size_t)c->clients_per_round * sizeof *run->cohort);
  run->config_text = cli_ini_text(&train_cmd, c);
  int rc = (run->w && run->cohort && run->config_text) ? FM_OK : fm_set_error(FM_ERR_NOMEM, "out of memory");
  if (rc == FM_OK && run->resuming) {
    rc = restore_checkpoint(ctx, &run->ckpt, run->proc, run->state, run->eval, run->population);
  } else if (rc == FM_OK && c->init_weights[0] && ctx->rank == 0) {
    rc = fm_weights_load(c->init_weights, fm_model_layout(run->model), run->w);
    if (rc == FM_OK) rc = fm_process_set_model_weights(run->proc, run->state, run->w);
  }
  return cli_agree(ctx, "train", rc) == FM_OK ? TRAIN_NEXT : CLI_EXIT_FAILURE;
}

/* ---- setup: output directory, data, model, process, writers ------------------------ */

/* Rank 0: the lock on the output directory, taken before anything is written
 * into it, so a second run or a resume of a live run is refused (FM_ERR_IO,
 * naming the holder) with the directory untouched. Where the file system has
 * no flock, the run goes on unprotected after a warning: refusing would make
 * fedmpi unusable there, and the lock only guards against a mistake. */
static int lock_output(const char *out, fm_dir_lock **lock) {
  int rc = fm_dir_lock_open(out, lock);
  if (rc != FM_ERR_UNSUPPORTED) return rc;
  fprintf(stderr,
          "fedmpi train: warning: %s; continuing without the output-directory lock: nothing stops a second run "
          "from writing into '%s' (see docs/cluster.md, \"Output-directory lock\")\n",
          fm_last_error(), out);
  fflush(stderr);
  return FM_OK;
}

/* --round-timeout's handler, called inside a collective by the rank that saw
 * the deadline pass (rank 0, or rank 1 when rank 0 does not answer): one
 * message, then MPI_Abort, since the ranks are no longer in step and a
 * stopped rank cannot take part in an orderly exit. The checkpoints are
 * whole: each is written to a temporary file and renamed. */
static void on_round_timeout(void *vrun, const char *msg) {
  const train_run *run = vrun;
  const train_cfg *c = run->c;
  fflush(stdout);
  fprintf(stderr, "fedmpi train: error: round %lld did not complete within --round-timeout %g s: %s; ending the job",
          (long long)run->round, c->round_timeout, msg);
  if (c->checkpoint_every > 0)
    fprintf(stderr, " (the checkpoints in %s/checkpoints are intact: fedmpi train --resume %s)", c->out, c->out);
  fprintf(stderr, "\n");
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, CLI_EXIT_FAILURE);
}

/* Threads, the stop handlers, the output directory (rank 0 writes everything)
 * and, without --data, the embedded default: Synthetic(alpha, beta), generated by rank 0. */
/* The accountant's parameters for a population of n: q and delta by their
 * defaults unless given. */
static void dp_params(const train_cfg *c, uint64_t n, double *q, double *delta) {
  *q = c->dp_q > 0 ? c->dp_q : (double)c->clients_per_round / (double)n;
  *delta = c->dp_delta > 0 ? c->dp_delta : fmin(1e-5, 1.0 / (double)n);
}

/* How every data argument of the run is opened: the feature names and the
 * text tokenizer (tok: NULL unless the data is text). */
static fm_data_options data_options(const train_cfg *c, const fm_tokenizer *tok) {
  fm_data_options dopt = {.x_feature = c->x_feature[0] ? c->x_feature : NULL,
                          .y_feature = c->y_feature[0] ? c->y_feature : NULL,
                          .tokenizer = tok};
  return dopt;
}

/* The number of clients the run will train on, before anything is written. */
static int population_of(const train_cfg *c, const fm_tokenizer *tok, uint64_t *n) {
  if (!c->data[0]) {
    *n = (uint64_t)c->synth_clients;
    return FM_OK;
  }
  fm_data_options dopt = data_options(c, tok);
  fm_client_data *d = NULL;
  FM_CALL_CLI(fm_client_data_open_spec(c->data, &dopt, &d));
  *n = fm_client_data_num_clients(d);
  fm_client_data_close(&d);
  return FM_OK;
}

/* epsilon after r rounds of mechanism m (q: the subsampled Gaussian's). */
static int mech_epsilon(const train_cfg *c, const dp_mech *m, double q, uint64_t r, double delta, double *eps,
                        double *order) {
  if (m->tree)
    return fm_privacy_epsilon_tree(m->z, r, m->warmup, m->period,
                                   strcmp(c->dp_tree_participation, "once-per-tree") ? FM_TREE_EVERY_ROUND
                                                                                      : FM_TREE_ONCE_PER_TREE,
                                   delta, eps, order);
  return fm_privacy_epsilon(q, m->z, r, delta, eps, order);
}

/* The privacy options against the aggregator (z < 0: not DP): they need a DP
 * aggregator, and a target already exceeded by round 1 is refused. */
static int check_privacy(const train_cfg *c, const fm_tokenizer *tok, const dp_mech *m) {
  const int tree_part = strcmp(c->dp_tree_participation, "every-round") != 0;
  if (m->z < 0) {
    if (c->dp_target_epsilon > 0 || c->dp_delta > 0 || c->dp_q > 0 || tree_part)
      return fm_set_error(FM_ERR_CONFIG, "--dp-target-epsilon, --dp-delta, --dp-q and --dp-tree-participation need a "
                                         "DP aggregator (--aggregator dp_aggregator(...), gaussian_adaptive(...), "
                                         "gaussian_fixed(...), tree_aggregation(...) or tree_adaptive(...))");
    return FM_OK;
  }
  if (m->tree && c->dp_q > 0)
    return fm_set_error(FM_ERR_CONFIG, "--dp-q is for the subsampled Gaussian: tree aggregation's accounting "
                                       "(DP-FTRL) takes no amplification by sampling; see --dp-tree-participation");
  if (!m->tree && tree_part)
    return fm_set_error(FM_ERR_CONFIG, "--dp-tree-participation is for tree_aggregation / tree_adaptive, not %s",
                        c->aggregator);
  if (!(c->dp_target_epsilon > 0)) return FM_OK;
  uint64_t n = 0;
  FM_CALL_CLI(population_of(c, tok, &n));
  if (n == 0) return FM_OK; /* the data's own check reports it */
  double q, delta, eps, order;
  const double z = m->z;
  dp_params(c, n, &q, &delta);
  FM_CALL_CLI(mech_epsilon(c, m, fmin(q, 1.0), 1, delta, &eps, &order));
  if (eps > c->dp_target_epsilon)
    return fm_set_error(FM_ERR_HPARAM_VALUE,
                        "--dp-target-epsilon %g is already exceeded by round 1 (epsilon %.4g at delta %g, q %g, "
                        "noise_multiplier %g): raise the noise multiplier or the target",
                        c->dp_target_epsilon, eps, delta, q, z);
  return FM_OK;
}

/* --metrics-aggregator on a stand-in model with the built-in metrics, before
 * anything is written: its text and ranges (a range for one of --metrics'
 * extras is checked when the real model is built). */
static int check_metrics_aggregator(const train_cfg *c) {
  if (!strcmp(c->metrics_aggregator, "sum_then_finalize")) return FM_OK;
  fm_input_spec spec;
  size_t shape[1] = {1};
  fm_model *model = NULL;
  fm_process *p = NULL;
  int rc = fm_input_spec_set(&spec, 1, shape, 2);
  if (rc == FM_OK) rc = fm_model_create_softmax(&spec, &model);
  fm_optimizer *co = NULL, *so = NULL;
  if (rc == FM_OK) rc = fm_optimizer_create_sgdm(0.1, 0.0, &co);
  if (rc == FM_OK) rc = fm_optimizer_create_sgdm(1.0, 0.0, &so);
  if (rc == FM_OK) rc = fm_process_create(model, "fedavg", NULL, co, so, FM_WEIGHTING_NUM_EXAMPLES, NULL, &p);
  else fm_optimizer_destroy(&co);
  if (rc == FM_OK) rc = fm_process_set_metrics_aggregator(p, c->metrics_aggregator);
  if (rc == FM_ERR_HPARAM_UNKNOWN && c->metrics[0]) rc = FM_OK;
  fm_process_destroy(&p);
  fm_model_destroy(&model);
  return rc == FM_OK ? FM_OK : fm_set_error(rc, "--metrics-aggregator: %s", fm_last_error());
}

/* --aggregator's text, its values and its fit to --clients-per-round and
 * --weighting, and the privacy options, checked before anything is written.
 * *m gets the DP mechanism (z = -1: none). */
static int check_aggregator(const train_cfg *c, const fm_tokenizer *tok, dp_mech *m) {
  memset(m, 0, sizeof *m);
  m->z = -1;
  int mrc = check_metrics_aggregator(c);
  if (mrc != FM_OK) return mrc;
  if (!strcmp(c->aggregator, "auto")) return check_privacy(c, tok, m);
  fm_aggregator *agg = NULL;
  int rc = fm_aggregator_create_from_spec(c->aggregator, &agg);
  if (rc == FM_OK) rc = fm_aggregator_check_cohort_size(agg, (size_t)c->clients_per_round);
  if (rc == FM_OK && !fm_aggregator_is_weighted(agg) && strcmp(c->weighting, "uniform") != 0)
    rc = fm_set_error(FM_ERR_NOT_WEIGHTED,
                      "--aggregator %s is unweighted (every client counts 1) but --weighting is %s: "
                      "add --weighting uniform, as TFF's unweighted builders do",
                      fm_aggregator_name(agg), c->weighting);
  if (rc == FM_OK && !fm_aggregator_dp_params(agg, &m->z, NULL)) m->z = -1;
  if (rc == FM_OK && m->z >= 0) m->tree = fm_aggregator_dp_tree(agg, &m->warmup, &m->period);
  fm_aggregator_destroy(&agg);
  return rc == FM_OK ? check_privacy(c, tok, m) : rc;
}

/* --model, built on the data's input spec (the generated data's without
 * --data) and dropped, so that a bad model is refused before anything is
 * written, --out included. Data that cannot be opened is left to
 * train_setup_data to report. The spec of --data is kept in run (reading it
 * may scan every label), for train_setup_process. */
static int check_model(train_run *run) {
  const train_cfg *c = run->c;
  fm_input_spec spec;
  if (c->data[0]) {
    fm_data_options dopt = data_options(c, run->tok);
    fm_client_data *d = NULL;
    if (fm_client_data_open_spec(c->data, &dopt, &d) != FM_OK) return FM_OK;
    int rc = cli_input_spec(d, c->num_classes, &spec);
    if (rc != FM_OK) {
      fm_client_data_close(&d);
      return FM_OK;
    }
    run->spec = spec;
    run->have_spec = 1;
    fm_model *m = NULL;
    rc = fm_model_create_by_name(c->model, &spec, &m);
    if (rc == FM_ERR_SPEC_MISMATCH && fm_client_data_num_targets(d) > 1) { /* e.g. --model cnn on text */
      char why[1024];
      snprintf(why, sizeof why, "%s", fm_last_error());
      rc = fm_set_error(rc, "%s holds text ('%s' tokenised into rows of %zu ids), which model '%s' cannot take: %s",
                        fm_client_data_path(d), fm_client_data_x_feature(d), spec.num_features, c->model, why);
    }
    if (rc == FM_OK) rc = cli_check_targets(d, m); /* text to a classifier, images to an LSTM: before --out */
    fm_model_destroy(&m);
    fm_client_data_close(&d);
    return rc;
  } else {
    fm_synth_options o;
    fm_synth_defaults(&o);
    size_t shape[1] = {o.num_features};
    FM_CALL_CLI(fm_input_spec_set(&spec, 1, shape, c->num_classes > 0 ? (size_t)c->num_classes : o.num_classes));
  }
  fm_model *m = NULL;
  int rc = fm_model_create_by_name(c->model, &spec, &m);
  if (rc == FM_OK && fm_model_num_targets(m) > 1)
    rc = fm_set_error(FM_ERR_SPEC_MISMATCH,
                      "the generated Synthetic data (no --data) has one label per example, but model '%s' predicts a "
                      "label at each of %zu time steps: give it tokenised text with --data",
                      fm_model_type(m), fm_model_num_targets(m));
  fm_model_destroy(&m);
  return rc;
}

static int train_setup_output(train_run *run) {
  cli_ctx *ctx = run->ctx;
  train_cfg *c = run->c;
  const cli_text_opts text = {c->data, c->x_feature, c->vocab, c->vocab_size, c->seq_len};
  if (cli_agree(ctx, "train", cli_text_tokenizer(&text, &run->tok)) != FM_OK) return CLI_EXIT_USAGE;
  if (cli_agree(ctx, "train", check_aggregator(c, run->tok, &run->mech)) != FM_OK) return CLI_EXIT_USAGE;
  if (cli_agree(ctx, "train", check_model(run)) != FM_OK) return CLI_EXIT_USAGE;
  run->dp = run->mech.z >= 0;
  if (cli_threads(ctx, "train", c->threads, &run->nt) != FM_OK) return CLI_EXIT_FAILURE;
  cli_install_stop_handlers();
  int rc = fm_comm_mpi_set_timeout(ctx->comm, c->round_timeout, on_round_timeout, run);
  if (ctx->rank == 0 && rc == FM_OK && cli_mkdirs(c->out) != 0)
    rc = fm_set_error(FM_ERR_IO, "cannot create output directory '%s': %s", c->out, strerror(errno));
  if (ctx->rank == 0 && rc == FM_OK) rc = lock_output(c->out, &run->lock);
  if (cli_agree(ctx, "train", rc) != FM_OK) return CLI_EXIT_FAILURE;
  if (c->data[0]) return TRAIN_NEXT;
  if (snprintf(c->data, sizeof c->data, "%s/synthetic_train.h5", c->out) >= (int)sizeof c->data ||
      (!c->test_data[0] &&
       snprintf(c->test_data, sizeof c->test_data, "%s/synthetic_test.h5", c->out) >= (int)sizeof c->test_data))
    rc = fm_set_error(FM_ERR_CONFIG, "--out path is too long");
  if (ctx->rank == 0 && rc == FM_OK) {
    printf("generating Synthetic(%g, %g)%s with %lld clients into %s\n", c->synth_alpha, c->synth_beta,
           c->synth_iid ? " IID" : "", (long long)c->synth_clients, c->out);
    fflush(stdout);
    rc = generate_synth(c, c->data, c->test_data);
  }
  return cli_agree(ctx, "train", rc) == FM_OK ? TRAIN_NEXT : CLI_EXIT_FAILURE;
}

/* epsilon after r rounds of this run's DP aggregator. */
static int run_epsilon(const train_run *run, uint64_t r, double *eps, double *order) {
  return mech_epsilon(run->c, &run->mech, run->dp_q, r, run->dp_delta, eps, order);
}

/* The accountant's q and delta, and the last round: --rounds, or with
 * --dp-target-epsilon the last round whose epsilon stays within it
 * (epsilon grows with the rounds: a bisection). */
static int train_plan_rounds(train_run *run) {
  const train_cfg *c = run->c;
  run->last_round = c->rounds;
  if (!run->dp) return TRAIN_NEXT;
  dp_params(c, run->population, &run->dp_q, &run->dp_delta);
  if (!(c->dp_target_epsilon > 0)) return TRAIN_NEXT;
  double eps, order;
  int rc = run_epsilon(run, (uint64_t)c->rounds, &eps, &order);
  if (rc == FM_OK && eps > c->dp_target_epsilon) {
    int64_t lo = 1, hi = c->rounds; /* eps(lo) <= target < eps(hi), checked before anything was written */
    while (rc == FM_OK && hi - lo > 1) {
      int64_t mid = lo + (hi - lo) / 2;
      rc = run_epsilon(run, (uint64_t)mid, &eps, &order);
      if (eps > c->dp_target_epsilon) hi = mid;
      else lo = mid;
    }
    run->last_round = lo;
    if (rc == FM_OK && run->ctx->rank == 0 && !c->quiet) {
      run_epsilon(run, (uint64_t)lo, &eps, &order);
      printf("privacy: --dp-target-epsilon %g allows %lld of the %lld rounds (epsilon %.4f at delta %g); training "
             "stops after round %lld with a checkpoint\n",
             c->dp_target_epsilon, (long long)lo, (long long)c->rounds, eps, run->dp_delta, (long long)lo);
      fflush(stdout);
    }
  }
  return cli_agree(run->ctx, "train", rc) == FM_OK ? TRAIN_NEXT : CLI_EXIT_FAILURE;
}

static int train_setup_data(train_run *run) {
  cli_ctx *ctx = run->ctx;
  const train_cfg *c = run->c;
  fm_data_options dopt = data_options(c, run->tok);
  int rc = fm_client_data_open_spec(c->data, &dopt, &run->train);
  if (cli_agree(ctx, "train", rc) != FM_OK) return CLI_EXIT_FAILURE;
  rc = c->test_data[0] ? fm_client_data_open_spec(c->test_data, &dopt, &run->test) : FM_OK;
  if (cli_agree(ctx, "train", rc) != FM_OK) return CLI_EXIT_FAILURE;
  run->population = fm_client_data_num_clients(run->train);
  if ((uint64_t)c->clients_per_round > run->population) {
    char msg[CLI_STR_MAX + 256];
    snprintf(msg, sizeof msg, "--clients-per-round %lld is more than the %llu clients in %s",
             (long long)c->clients_per_round, (unsigned long long)run->population, c->data);
    cli_error(ctx, "train", msg);
    return CLI_EXIT_USAGE;
  }
  return train_plan_rounds(run);
}

/* The model with its --metrics, the learning process, its initial state, the
 * evaluation process and the evaluation sample's buffer. */
static int train_setup_process(train_run *run) {
  cli_ctx *ctx = run->ctx;
  const train_cfg *c = run->c;
  fm_input_spec spec = run->spec;
  int rc = run->have_spec ? FM_OK : cli_input_spec(run->train, c->num_classes, &spec);
  if (rc == FM_OK) rc = fm_model_create_by_name(c->model, &spec, &run->model);
  if (rc == FM_OK && c->metrics[0])
    rc = add_metrics(c->metrics, run->model, run->extra_metrics, MAX_METRICS, &run->num_extra_metrics);
  if (cli_agree(ctx, "train", rc) != FM_OK)
    return rc == FM_ERR_UNKNOWN_TYPE || rc == FM_ERR_INVALID_ARG || rc == FM_ERR_CONFIG ? CLI_EXIT_USAGE
                                                                                         : CLI_EXIT_FAILURE;
  rc = build_process(c, run->model, &run->proc);
  if (rc == FM_OK) rc = fm_process_initialize(run->proc, (uint64_t)c->seed, &run->state);
  if (rc == FM_OK) rc = fm_executor_create(&run->exec);
  if (rc == FM_OK && run->test) rc = fm_eval_process_create(run->model, &run->eval);
  if (rc == FM_OK && run->test && (uint64_t)c->eval_clients > fm_client_data_num_clients(run->test))
    rc = fm_set_error(FM_ERR_CONFIG, "--eval-clients %lld is more than the %llu clients in %s", (long long)c->eval_clients,
                      (unsigned long long)fm_client_data_num_clients(run->test), c->test_data);
  if (rc == FM_OK && c->eval_clients > 0) {
    run->eval_cohort = malloc((size_t)c->eval_clients * sizeof *run->eval_cohort);
    if (!run->eval_cohort) rc = fm_set_error(FM_ERR_NOMEM, "out of memory");
  }
  if (cli_agree(ctx, "train", rc) != FM_OK)
    return rc == FM_ERR_HPARAM_VALUE || rc == FM_ERR_HPARAM_UNKNOWN || rc == FM_ERR_UNKNOWN_TYPE ||
                   rc == FM_ERR_INVALID_ARG || rc == FM_ERR_NOT_WEIGHTED || rc == FM_ERR_CONFIG
               ? CLI_EXIT_USAGE
               : CLI_EXIT_FAILURE;
  return TRAIN_NEXT;
}

/* The learning-rate schedules, the client cache (and --preload), config.ini
 * and the metrics writers (rank 0), and the round-0 checkpoint of a new run. */
static int train_setup_writers(train_run *run) {
  cli_ctx *ctx = run->ctx;
  const train_cfg *c = run->c;
  int rc = fm_schedule_parse(c->client_lr_schedule, c->client_lr, &run->client_sched);
  if (rc == FM_OK) rc = fm_schedule_parse(c->server_lr_schedule, c->server_lr, &run->server_sched);
  if (rc != FM_OK) {
    cli_error(ctx, "train", fm_last_error()); /* same text on every rank: no agreement needed */
    return CLI_EXIT_USAGE;
  }
  if (c->cache_mb > 0) {
    fm_client_data_set_cache_bytes(run->train, (size_t)c->cache_mb << 20);
    if (run->test) fm_client_data_set_cache_bytes(run->test, (size_t)c->cache_mb << 20);
  }
  if (c->preload && preload_clients(ctx, c, run->train) != FM_OK) return CLI_EXIT_FAILURE;
  run->start = fm_state_round(run->state);
  if (ctx->rank == 0) {
    char path[CLI_STR_MAX + 64];
    snprintf(path, sizeof path, "%s/config.ini", c->out);
    rc = cli_write_ini(&train_cmd, c, path) == 0 ? FM_OK
                                                : fm_set_error(FM_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    if (rc == FM_OK)
      rc = run->resuming ? fm_metrics_writer_resume(c->out, (long)run->start, &run->writer)
                         : fm_metrics_writer_open(c->out, &run->writer);
  }
  if (cli_agree(ctx, "train", rc) != FM_OK) return CLI_EXIT_FAILURE;
  if (!run->resuming && c->checkpoint_every > 0 &&
      save_checkpoint(ctx, c, run->proc, run->state, run->eval, run->config_text) != FM_OK) {
    cli_error(ctx, "train", fm_last_error()); /* already agreed */
    return CLI_EXIT_FAILURE;
  }
  return TRAIN_NEXT;
}

/* Whether the algorithm keeps per-client state on the owning rank. */
static int needs_shard(const char *algorithm) {
  fm_algorithm_desc d;
  return algorithm_desc(algorithm, &d) == FM_OK && d.needs_shard_assignment;
}

/* Rank 0's header lines and the round input every round shares. */
static void train_begin(train_run *run) {
  cli_ctx *ctx = run->ctx;
  const train_cfg *c = run->c;
  cli_blas_warn(ctx);
  const char *kernel = fm_blas_corename(), *saved = run->ckpt.blas_kernel;
  if (ctx->rank == 0 && run->resuming && saved && strcasecmp(saved, kernel) != 0)
    fprintf(stderr,
            "fedmpi train: warning: %s was written with the BLAS kernel %s and this run uses %s: the rounds from "
            "here on will not be bit-identical to an uninterrupted run (set OPENBLAS_CORETYPE=%s to match it)\n",
            run->ckpt.path, saved, kernel, saved);
  if (ctx->rank == 0 && !c->quiet) {
    if (run->resuming) printf("resuming from %s (round %llu)\n", run->ckpt.path, (unsigned long long)run->start);
    printf("fedmpi %s: %s (server %s), model %s (%zu parameters), %llu clients (%llu examples) from %s\n",
           fm_version(), c->algorithm, c->server_optimizer, c->model, run->numel, (unsigned long long)run->population,
           (unsigned long long)fm_client_data_total_examples(run->train), c->data);
    printf("%lld rounds x %lld clients, %lld epoch(s), batch %lld, client lr %g, server lr %g; %d rank(s) x %d thread(s)\n",
           (long long)c->rounds, (long long)c->clients_per_round, (long long)c->epochs, (long long)c->batch_size,
           c->client_lr, c->server_lr, ctx->size, run->nt);
    printf("BLAS kernel %s\n", cli_blas_summary());
    printf("convolutions %s\n", fm_conv_backend());
    fflush(stdout);
  }
  run->in = (fm_round_input){.data = run->train,
                             .batching = {.epochs = (int)c->epochs,
                                          .batch_size = (size_t)c->batch_size,
                                          .shuffle = !c->no_shuffle,
                                          .max_examples = (uint64_t)c->max_examples_per_client,
                                          .shuffle_buffer = (size_t)c->shuffle_buffer},
                             .cohort = run->cohort,
                             .cohort_size = (size_t)c->clients_per_round,
                             .num_threads = run->nt,
                             .assignment = !strcmp(c->assignment, "balanced") ||
                                                   (!strcmp(c->assignment, "auto") && !needs_shard(c->algorithm))
                                               ? FM_ASSIGN_BALANCED
                                               : FM_ASSIGN_SHARD,
                             .stats = &run->stats,
                             .executor = run->exec};
}

static int train_setup(train_run *run) {
  int status = train_setup_output(run);
  if (status == TRAIN_NEXT) status = train_setup_data(run);
  if (status == TRAIN_NEXT) status = train_setup_process(run);
  if (status == TRAIN_NEXT) status = train_restore(run);
  if (status == TRAIN_NEXT) status = train_setup_writers(run);
  if (status == TRAIN_NEXT) train_begin(run);
  return status;
}

/* ---- one round ---------------------------------------------------------------------- */

/* build_fed_eval on the test data after round r, merged into rank 0's record. */
static int train_round_eval(train_run *run, int64_t r) {
  cli_ctx *ctx = run->ctx;
  const train_cfg *c = run->c;
  double e0 = MPI_Wtime();
  int rc = FM_OK;
  fm_metrics_clear(&run->em);
  /* The evaluation sample has its own stream: seed with the top bit flipped. */
  if (run->eval_cohort)
    rc = fm_sample_cohort((uint64_t)c->seed ^ (1ull << 63), (uint64_t)r, fm_client_data_num_clients(run->test),
                          (size_t)c->eval_clients, run->eval_cohort);
  if (rc == FM_OK)
    rc = fm_eval_process_next(run->eval, fm_state_weights(run->state), run->test, run->eval_cohort,
                              run->eval_cohort ? (size_t)c->eval_clients : 0, (size_t)c->eval_batch_size, run->nt,
                              ctx->comm, &run->em);
  if (rc != FM_OK) {
    cli_error(ctx, "train", fm_last_error());
    return CLI_EXIT_FAILURE;
  }
  if (ctx->rank == 0) {
    fm_metrics_merge(&run->m, "evaluation", &run->em);
    fm_metrics_put(&run->m, "evaluation_time_in_seconds", MPI_Wtime() - e0, FM_METRIC_FLOAT);
  }
  return TRAIN_NEXT;
}

/* Rank 0: the round's timings and peak memory into its record, the record to
 * the metrics files and the progress line. Agreed. */
static int train_round_record(train_run *run, int64_t r, double secs, double peak_rss_mb) {
  const train_cfg *c = run->c;
  fm_metrics *m = &run->m;
  int rc = FM_OK;
  if (run->ctx->rank == 0) {
    fm_metrics_put(m, "training_time_in_seconds", secs, FM_METRIC_FLOAT);
    /* where the round's time went (not deterministic, unlike everything above) */
    fm_metrics_put(m, "time/distribute", run->stats.distribute, FM_METRIC_FLOAT);
    fm_metrics_put(m, "time/client_map", run->stats.map_wall, FM_METRIC_FLOAT);
    fm_metrics_put(m, "time/reduce", run->stats.reduce, FM_METRIC_FLOAT);
    fm_metrics_put(m, "time/server", run->stats.server, FM_METRIC_FLOAT);
    fm_metrics_put(m, "time/idle_fraction", run->stats.idle_fraction, FM_METRIC_FLOAT);
    fm_metrics_put(m, "resources/peak_rss_mb", peak_rss_mb, FM_METRIC_FLOAT); /* max over ranks */
    if (run->dp) { /* the RDP accountant over the rounds so far (docs/privacy.md) */
      double eps = NAN, order = NAN;
      rc = run_epsilon(run, (uint64_t)r, &eps, &order);
      fm_metrics_put(m, "privacy/epsilon", eps, FM_METRIC_FLOAT);
      fm_metrics_put(m, "privacy/delta", run->dp_delta, FM_METRIC_FLOAT);
      fm_metrics_put(m, "privacy/order", order, FM_METRIC_FLOAT);
    }
    if (rc == FM_OK) rc = fm_metrics_writer_write(run->writer, (long)r, m);
    if (!c->quiet) print_round(c, (uint64_t)r, m, secs);
  }
  return cli_agree(run->ctx, "train", rc) == FM_OK ? TRAIN_NEXT : CLI_EXIT_FAILURE;
}

/* Round r: learning rates, the cohort, next(), the evaluation when due, the
 * record, a checkpoint when due, and the stop at a signal. */
static int train_round_body(train_run *run, int64_t r) {
  cli_ctx *ctx = run->ctx;
  const train_cfg *c = run->c;
  fm_metrics_clear(&run->m);
  double t0 = MPI_Wtime();
  /* learning-rate schedules: TFF's per-round client and server schedules */
  int rc = set_round_lrs(run->proc, run->state, fm_state_round(run->state), &run->client_sched, &run->server_sched, c);
  if (rc == FM_OK)
    rc = fm_sample_cohort((uint64_t)c->seed, fm_state_round(run->state), run->population, (size_t)c->clients_per_round,
                          run->cohort);
  if (rc == FM_OK) rc = fm_process_next(run->proc, run->state, &run->in, ctx->comm, &run->m);
  if (rc != FM_OK) {
    cli_error(ctx, "train", fm_last_error());
    return CLI_EXIT_FAILURE;
  }
  double secs = MPI_Wtime() - t0;
  int last = r == run->last_round;
  if (run->test && ((c->eval_every > 0 && r % c->eval_every == 0) || last) && train_round_eval(run, r) != TRAIN_NEXT)
    return CLI_EXIT_FAILURE;
  /* A stop request on any rank (SIGTERM from SLURM, Ctrl-C) ends the run
   * here, at a round boundary, after a checkpoint. The same reduction
   * brings the largest peak resident memory of any rank. */
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double agreed[2] = {cli_stop_requested(), (double)ru.ru_maxrss / 1024.0};
  rc = fm_comm_allreduce_max(ctx->comm, agreed, 2);
  double stop = agreed[0];
  if (rc != FM_OK) {
    cli_error(ctx, "train", fm_last_error());
    return CLI_EXIT_FAILURE;
  }
  if (train_round_record(run, r, secs, agreed[1]) != TRAIN_NEXT) return CLI_EXIT_FAILURE;
  if ((last || stop > 0 || (c->checkpoint_every > 0 && r % c->checkpoint_every == 0)) &&
      save_checkpoint(ctx, c, run->proc, run->state, run->eval, run->config_text) != FM_OK) {
    cli_error(ctx, "train", fm_last_error()); /* already agreed */
    return CLI_EXIT_FAILURE;
  }
  if (stop > 0 && !last) {
    if (ctx->rank == 0) {
      printf("stopped by a signal after round %lld; checkpoint written to %s/checkpoints\n"
             "continue with: fedmpi train --resume %s\n",
             (long long)r, c->out, c->out);
      fflush(stdout);
    }
    return CLI_EXIT_INTERRUPTED;
  }
  return TRAIN_NEXT;
}

/* One round under --round-timeout's deadline (if set): every rank arms it
 * before the round's first collective and disarms it after its last. */
static int train_round(train_run *run, int64_t r) {
  run->round = r;
  fm_comm_mpi_arm(run->ctx->comm);
  int status = train_round_body(run, r);
  fm_comm_mpi_disarm(run->ctx->comm);
  return status;
}

/* ---- finish ------------------------------------------------------------------------- */

/* Rank 0: the final weights, the last evaluation's summary and where the outputs are. */
static int train_finish(train_run *run) {
  const train_cfg *c = run->c;
  int rc = FM_OK;
  if (run->ctx->rank == 0) {
    char path[CLI_STR_MAX + 64];
    snprintf(path, sizeof path, "%s/weights.h5", c->out);
    rc = fm_weights_save(path, fm_model_layout(run->model), fm_state_weights(run->state), c->model);
    if (rc == FM_OK) {
      double ea, el, en;
      const char *cur = "client_work/eval/current_round_metrics/";
      char pa[128], pl[128], pn[128];
      snprintf(pa, sizeof pa, "%saccuracy", cur);
      snprintf(pl, sizeof pl, "%sloss", cur);
      snprintf(pn, sizeof pn, "%snum_examples", cur);
      if (run->test && fm_metrics_get(&run->em, pa, &ea) == FM_OK && fm_metrics_get(&run->em, pl, &el) == FM_OK &&
          fm_metrics_get(&run->em, pn, &en) == FM_OK)
        printf("final test accuracy %.4f  loss %.4f  (%.0f examples)\n", ea, el, en);
      printf("wrote %s/metrics.jsonl, %s/metrics.csv, %s\n", c->out, c->out, path);
      fflush(stdout);
    }
  }
  return cli_agree(run->ctx, "train", rc) == FM_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cmd_train(cli_ctx *ctx, int argc, char **argv) {
  train_opts_init();
  train_run *run = train_run_create(ctx);
  if (!run) return CLI_EXIT_FAILURE;
  int status = train_parse(run, argc, argv);
  if (status == TRAIN_NEXT) status = train_setup(run);
  for (int64_t r = (int64_t)run->start + 1; status == TRAIN_NEXT && r <= run->last_round; r++)
    status = train_round(run, r);
  if (status == TRAIN_NEXT) status = train_finish(run);
  train_run_free(run);
  return status;
}
