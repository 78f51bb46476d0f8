/* src/bench/cmd.c — `fedmpi bench`: how fast rounds run, and what fraction of
 * this machine's SGEMM speed local training reaches.
 *
 * What it does: for each model (--models) and cohort size (--cohorts) it
 * builds FedAvg (client sgdm, server sgdm, weighted by examples) exactly as
 * `fedmpi train` does, runs --warmup rounds and then up to --rounds measured
 * rounds, and reports per configuration: the median seconds per round,
 * examples/s, the GFLOP/s of local training (fm_model_flops_per_example: GEMM
 * flops only, see docs/performance.md), the same run's single-threaded
 * cblas_sgemm GFLOP/s on representative shapes and the ratio, where the
 * round's time went (fm_round_stats: distribute, client map, reduce, server,
 * idle fraction), the time a rank takes to read its share of a round's
 * clients, one evaluation pass, the accuracy reached (a sanity check) and the
 * peak resident memory of every rank. A table goes to stdout on rank 0 and
 * every number to --csv. Without --data it imports the installed
 * Fashion-MNIST (IID, 100 clients) once into --work-dir and uses its test set.
 *
 * This file holds the options and the driver: cmd_bench runs the phases
 * below (lists, data, model check, machine reference, each model, report);
 * the parts they call are in bench.h. Every rank runs them in lockstep, as
 * train.c; rank 0 alone prints, decides when a configuration's time budget
 * is spent (broadcast) and writes the CSV. Timings are wall-clock (MPI_Wtime)
 * and medians over rounds.
 *
 * What it deliberately does not do: compare with other frameworks
 * (scripts/compare-pytorch does), write checkpoints or metrics files, or
 * change any numerics: a bench round is a train round. Peak RSS is reset per
 * configuration through /proc/self/clear_refs where Linux allows it; elsewhere
 * the column is the process's peak so far (ru_maxrss). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define OFF(f) offsetof(bench_cfg, f)
#define BIG 9.2e18
static const cli_opt bench_opts[] = {
    {"data", CLI_STR, OFF(data), "", 0, 0, NULL, "FILE",
     "training ClientData (TFF HDF5 layout); empty: the installed Fashion-MNIST, imported once (IID, 100 clients of "
     "600 images 28x28) into --work-dir"},
    {"test-data", CLI_STR, OFF(test_data), "", 0, 0, NULL, "FILE",
     "ClientData for the evaluation pass (empty: Fashion-MNIST's test set when --data is empty, else none)"},
    {"work-dir", CLI_STR, OFF(work_dir), "fedmpi-bench", 0, 0, NULL, "DIR",
     "where the imported Fashion-MNIST files go (reused when present)"},
    {"dataset-dir", CLI_STR, OFF(dataset_dir), "/usr/share/datasets/fashion-mnist", 0, 0, NULL, "DIR",
     "the installed Fashion-MNIST IDX files (Debian package dataset-fashion-mnist)"},
    {"models", CLI_STR, OFF(models), "softmax,2nn,cnn", 0, 0, NULL, "LIST",
     "models to run, comma separated (any --model name of fedmpi train, arguments included: "
     "softmax,mlp:200,200,cnn:32,64,512), or separated by ';' when a layer stack is among them: "
     "'2nn;stack:flatten,dense(64),relu,dense'"},
    {"cohorts", CLI_STR, OFF(cohorts), "10,50", 0, 0, NULL, "LIST", "clients per round, comma separated"},
    {"warmup", CLI_INT, OFF(warmup), "1", 0, 1e6, NULL, "N", "unmeasured rounds before the measured ones"},
    {"rounds", CLI_INT, OFF(rounds), "5", 1, 1e6, NULL, "R", "measured rounds per configuration (at most)"},
    {"budget", CLI_DOUBLE, OFF(budget), "20", 0, INFINITY, NULL, "S",
     "seconds per configuration: measuring stops when the next round would pass S (at least one measured round), "
     "and a configuration whose warm-up and first round are estimated to take more than S (from the same model at "
     "a smaller cohort) is skipped; 0: no limit"},
    {"epochs", CLI_INT, OFF(epochs), "1", 1, 1e6, NULL, "E", "local epochs per client"},
    {"batch-size", CLI_INT, OFF(batch_size), "32", 1, 1e7, NULL, "B", "local batch size"},
    {"client-lr", CLI_DOUBLE, OFF(client_lr), "0.05", 0, INFINITY, NULL, "LR", "client sgdm learning_rate"},
    {"client-momentum", CLI_DOUBLE, OFF(client_momentum), "0", 0, 1, NULL, "M", "client sgdm momentum"},
    {"server-lr", CLI_DOUBLE, OFF(server_lr), "1", 0, INFINITY, NULL, "LR", "server sgdm learning_rate"},
    {"assignment", CLI_CHOICE, OFF(assignment), "balanced", 0, 0, "shard|balanced", NULL,
     "which rank trains a sampled client (as fedmpi train, whose default auto is balanced except for SCAFFOLD; the results are the same)"},
    {"threads", CLI_INT, OFF(threads), "0", 0, 4096, NULL, "T",
     "OpenMP threads per rank (0: OMP_NUM_THREADS if set, else the rank's share of the CPUs it may run on)"},
    {"cache-mb", CLI_INT, OFF(cache_mb), "0", 0, 1e7, NULL, "MB",
     "client cache per rank (as fedmpi train; 0: every round reads its clients from the file)"},
    {"eval-clients", CLI_INT, OFF(eval_clients), "0", 0, BIG, NULL, "K",
     "test clients in the evaluation pass after each configuration (0: all)"},
    {"eval-batch-size", CLI_INT, OFF(eval_batch_size), "256", 1, 1e7, NULL, "B", "evaluation batch size"},
    {"no-eval", CLI_FLAG, OFF(no_eval), "0", 0, 0, NULL, NULL, "skip the evaluation pass"},
    {"sgemm-trials", CLI_INT, OFF(sgemm_trials), "5", 1, 1000, NULL, "N", "SGEMM timings per shape (the median is kept)"},
    {"sgemm-seconds", CLI_DOUBLE, OFF(sgemm_seconds), "0.1", 0, 60, NULL, "S", "minimum length of one SGEMM timing"},
    {"no-sgemm", CLI_FLAG, OFF(no_sgemm), "0", 0, 0, NULL, NULL, "do not measure SGEMM (no ratio column)"},
    {"step-seconds", CLI_DOUBLE, OFF(step_seconds), "0.5", 0, 600, NULL, "S",
     "time each model's training step alone for S seconds: one thread on rank 0, one batch kept in cache (0: skip)"},
    {"seed", CLI_INT, OFF(seed), "0", 0, BIG, NULL, "S", "seed of sampling, shuffling and initialisation"},
    {"csv", CLI_STR, OFF(csv), "", 0, 0, NULL, "FILE", "also write every number, one row per configuration"},
    {"wait-idle", CLI_DOUBLE, OFF(wait_idle), "0", 0, 86400, NULL, "S",
     "before the SGEMM timings, each step timing and each configuration, wait up to S seconds for a second in which other "
     "processes keep less than 0.15 cores busy (shared machines; 0: do not wait)"},
    {"quiet", CLI_FLAG, OFF(quiet), "0", 0, 0, NULL, NULL, "no progress lines, only the tables"},
};
#undef OFF
static const cli_command bench_cmd = {
    "bench", "fedmpi bench [options]",
    "Benchmark FedAvg rounds (client sgdm, batch --batch-size, --epochs) of each --models at each --cohorts size:\n"
    "seconds per round (median), examples/s, GFLOP/s of local training against this machine's single-threaded\n"
    "cblas_sgemm, the time split of a round, an evaluation pass and peak memory per rank. Runs under mpirun like\n"
    "fedmpi train; rank 0 prints. The default takes about a minute on 2 cores (see docs/performance.md).",
    bench_opts, sizeof bench_opts / sizeof bench_opts[0], 0};

/* ---- the plan: models and cohort sizes ------------------------------------------- */

/* A phase's outcome: BENCH_NEXT to go on, else the exit status of the command. */
enum { BENCH_NEXT = -1 };

typedef struct bench_plan {
  char models[BENCH_MAX_LIST][BENCH_NAME_MAX];
  size_t nmodels;
  int64_t cohorts[BENCH_MAX_LIST]; /* ascending */
  size_t ncohorts;
  fm_input_spec spec; /* of the training data */
} bench_plan;

static int cmp_int64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* "a,b,c" -> items (copied into store, at most BENCH_MAX_LIST). With
 * join_numbers, an all-digit item continues the previous one, so that model
 * names keep their arguments: "softmax,mlp:200,200,cnn:32,64,512" is three
 * models (no model name is all digits); and a text with a ';' is split at
 * its ';' only, so that layer stacks keep their commas:
 * "2nn;stack:flatten,dense(64),relu,dense". -1 on a bad list. */
static int split_list(const char *text, int join_numbers, char store[BENCH_MAX_LIST][BENCH_NAME_MAX], size_t *n) {
  char buf[CLI_STR_MAX], *save = NULL;
  snprintf(buf, sizeof buf, "%s", text);
  *n = 0;
  const char *sep = join_numbers && strchr(buf, ';') ? ";" : ",";
  if (*sep == ';') join_numbers = 0;
  for (char *tok = strtok_r(buf, sep, &save); tok; tok = strtok_r(NULL, sep, &save)) {
    if (join_numbers && *n > 0 && strspn(tok, "0123456789") == strlen(tok)) {
      size_t len = strlen(store[*n - 1]);
      if (len + 1 + strlen(tok) >= BENCH_NAME_MAX) return -1;
      snprintf(store[*n - 1] + len, BENCH_NAME_MAX - len, ",%s", tok);
      continue;
    }
    if (*n >= BENCH_MAX_LIST || strlen(tok) >= BENCH_NAME_MAX) return -1;
    snprintf(store[(*n)++], BENCH_NAME_MAX, "%s", tok);
  }
  return *n ? 0 : -1;
}

/* --models and --cohorts: the same text on every rank, so no agreement is needed. */
static int parse_lists(cli_ctx *ctx, const bench_cfg *c, bench_plan *p) {
  char cohort_text[BENCH_MAX_LIST][BENCH_NAME_MAX];
  char err[512] = "";
  if (split_list(c->models, 1, p->models, &p->nmodels) != 0)
    snprintf(err, sizeof err, "--models: expected 1 to %d model names, separated by ',' (or by ';' around layer stacks)",
             BENCH_MAX_LIST);
  if (!err[0] && split_list(c->cohorts, 0, cohort_text, &p->ncohorts) != 0)
    snprintf(err, sizeof err, "--cohorts: expected 1 to %d comma-separated sizes", BENCH_MAX_LIST);
  for (size_t i = 0; !err[0] && i < p->ncohorts; i++) {
    char *end = NULL;
    long long v = strtoll(cohort_text[i], &end, 10);
    /* %.63s: a size is short; the precision keeps the message within err */
    if (*end || v < 1) snprintf(err, sizeof err, "--cohorts: '%.63s' is not a positive integer", cohort_text[i]);
    p->cohorts[i] = v;
  }
  if (err[0]) {
    cli_error(ctx, "bench", err);
    return CLI_EXIT_USAGE;
  }
  qsort(p->cohorts, p->ncohorts, sizeof *p->cohorts, cmp_int64);
  return BENCH_NEXT;
}

/* ---- the data ---------------------------------------------------------------------- */

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

/* Without --data: Fashion-MNIST imported into --work-dir by rank 0 (once). Agreed. */
static int prepare_default_data(cli_ctx *ctx, bench_cfg *c) {
  char train[CLI_STR_MAX + 64], test[CLI_STR_MAX + 64];
  snprintf(train, sizeof train, "%s/fashion_mnist_train.h5", c->work_dir);
  snprintf(test, sizeof test, "%s/fashion_mnist_test.h5", c->work_dir);
  int rc = strlen(train) < CLI_STR_MAX && strlen(test) < CLI_STR_MAX
               ? FM_OK
               : fm_set_error(FM_ERR_CONFIG, "--work-dir path is too long");
  if (rc == FM_OK && ctx->rank == 0) {
    static const char *const names[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    const char *outs[2] = {train, test};
    for (int j = 0; j < 2 && rc == FM_OK; j++) {
      if (file_exists(outs[j])) continue;
      char img[CLI_STR_MAX + 64], lab[CLI_STR_MAX + 64];
      snprintf(img, sizeof img, "%s/%s", c->dataset_dir, names[2 * j]);
      snprintf(lab, sizeof lab, "%s/%s", c->dataset_dir, names[2 * j + 1]);
      if (!file_exists(img) || !file_exists(lab)) {
        rc = fm_set_error(FM_ERR_IO, "no --data given and Fashion-MNIST is not in '%s' (install dataset-fashion-mnist, "
                                     "or pass --data FILE)", c->dataset_dir);
        break;
      }
      if (cli_mkdirs(c->work_dir) != 0) {
        rc = fm_set_error(FM_ERR_IO, "cannot create --work-dir '%s'", c->work_dir);
        break;
      }
      if (!c->quiet) {
        printf("importing %s into %s (IID, 100 clients)\n", img, outs[j]);
        fflush(stdout);
      }
      fm_idx_import_options o;
      fm_idx_import_defaults(&o);
      o.images_path = img;
      o.labels_path = lab;
      o.partition.method = FM_PARTITION_IID;
      o.partition.num_clients = 100;
      o.partition.seed = 0;
      rc = fm_idx_import(&o, outs[j], NULL);
    }
  }
  FM_CALL_CLI(cli_agree(ctx, "bench", rc));
  snprintf(c->data, sizeof c->data, "%s", train);
  if (!c->test_data[0]) snprintf(c->test_data, sizeof c->test_data, "%s", test);
  return FM_OK;
}

/* The training data (and the test data, unless --no-eval), its client cache,
 * and the input spec every model is built for. */
static int open_data(bench_env *e, bench_cfg *c, bench_plan *p) {
  cli_ctx *ctx = e->ctx;
  if (!c->data[0] && prepare_default_data(ctx, c) != FM_OK) return CLI_EXIT_FAILURE;
  fm_data_options dopt = {.x_feature = NULL};
  int rc = fm_client_data_open(c->data, &dopt, &e->train);
  if (rc == FM_OK && c->test_data[0] && !c->no_eval) rc = fm_client_data_open(c->test_data, &dopt, &e->test);
  if (cli_agree(ctx, "bench", rc) != FM_OK) return CLI_EXIT_FAILURE;
  if (c->cache_mb > 0) {
    fm_client_data_set_cache_bytes(e->train, (size_t)c->cache_mb << 20);
    if (e->test) fm_client_data_set_cache_bytes(e->test, (size_t)c->cache_mb << 20);
  }
  if (e->test && (uint64_t)c->eval_clients > fm_client_data_num_clients(e->test)) {
    char msg[CLI_STR_MAX + 128];
    snprintf(msg, sizeof msg, "--eval-clients %lld is more than the %zu clients in %s", (long long)c->eval_clients,
             fm_client_data_num_clients(e->test), c->test_data);
    cli_error(ctx, "bench", msg);
    return CLI_EXIT_USAGE;
  }
  rc = cli_input_spec(e->train, 0, &p->spec);
  return cli_agree(ctx, "bench", rc) == FM_OK ? BENCH_NEXT : CLI_EXIT_FAILURE;
}

/* Every model name is checked before anything runs; one that does not fit
 * the data is not an error here (its rows say why it was skipped). */
static int check_models(cli_ctx *ctx, const bench_plan *p) {
  for (size_t i = 0; i < p->nmodels; i++) {
    fm_model *model = NULL;
    int rc = fm_model_create_by_name(p->models[i], &p->spec, &model);
    fm_model_flops fl;
    if (rc == FM_OK) rc = fm_model_flops_per_example(model, &fl);
    fm_model_destroy(&model);
    if (rc == FM_ERR_SPEC_MISMATCH) rc = FM_OK; /* reported as a skipped row */
    if (rc != FM_OK) {
      char msg[1024];
      snprintf(msg, sizeof msg, "--models: %s", fm_last_error());
      cli_error(ctx, "bench", msg); /* same on every rank */
      return rc == FM_ERR_UNKNOWN_TYPE || rc == FM_ERR_INVALID_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
  }
  return BENCH_NEXT;
}

/* ---- the machine ------------------------------------------------------------------- */

/* Rank 0: what is measured, on what. */
static void print_header(const bench_env *e, const bench_plan *p) {
  const bench_cfg *c = e->c;
  cli_blas_warn(e->ctx);
  printf("fedmpi %s bench: %d rank(s) x %d thread(s); OpenBLAS kernels %s\n", fm_version(), e->ctx->size, e->nt,
         cli_blas_summary());
  printf("convolutions %s\n", fm_conv_backend());
  printf("data %s: %llu clients, %llu examples, input", c->data,
         (unsigned long long)fm_client_data_num_clients(e->train),
         (unsigned long long)fm_client_data_total_examples(e->train));
  for (int d = 0; d < p->spec.ndim; d++) printf("%s%zu", d ? "x" : " ", p->spec.shape[d]);
  printf(", %zu classes%s%s\n", p->spec.num_classes, e->test ? "; evaluation on " : "", e->test ? c->test_data : "");
  printf("FedAvg: client sgdm lr %g momentum %g, server sgdm lr %g; %lld epoch(s), batch %lld; warm-up %lld + up to "
         "%lld measured rounds, budget %g s per configuration\n",
         c->client_lr, c->client_momentum, c->server_lr, (long long)c->epochs, (long long)c->batch_size,
         (long long)c->warmup, (long long)c->rounds, c->budget);
  fflush(stdout);
}

/* The peak-RSS window, the header, and the SGEMM reference (unless --no-sgemm). */
static int measure_machine(bench_env *e, const bench_plan *p, sgemm_result *sg) {
  cli_ctx *ctx = e->ctx;
  const bench_cfg *c = e->c;
  e->rss_window = fm__bench_rss_reset();
  if (ctx->rank == 0) print_header(e, p);
  if (c->no_sgemm) return BENCH_NEXT;
  if (ctx->rank == 0 && !c->quiet) {
    printf("measuring SGEMM ...\n");
    fflush(stdout);
  }
  int rc = fm__bench_wait_idle(ctx, c);
  if (rc == FM_OK) rc = fm__bench_measure_sgemm(ctx, c, e->nt, sg);
  if (rc != FM_OK) {
    cli_error(ctx, "bench", fm_last_error());
    return CLI_EXIT_FAILURE;
  }
  e->sgemm_ref = sg->alone[0];
  return BENCH_NEXT;
}

/* ---- each model, each cohort ------------------------------------------------------ */

/* The previous cohort of the same model: the time estimate of the next. */
typedef struct bench_prev {
  int64_t cohort;
  double sec;
} bench_prev;

/* A fresh row of (model, cohort), with the model's step timing if there is one. */
static void row_init(bench_row *row, const char *model, int64_t cohort, const step_result *step, double sgemm_ref) {
  snprintf(row->model, sizeof row->model, "%s", model);
  row->cohort = cohort;
  row->ratio = NAN;
  row->step_fwd = row->step_bwd = row->step_opt = row->step_ms = row->step_gflops = row->step_ratio = NAN;
  if (step) {
    row->step_fwd = step->fwd;
    row->step_bwd = step->bwd;
    row->step_opt = step->opt;
    row->step_ms = step->total;
    row->step_gflops = step->gflops;
    row->step_ratio = sgemm_ref > 0 ? step->gflops / sgemm_ref : NAN;
  }
}

/* Collective: one cohort size of a model, or the reason to skip it in the row. */
static int bench_cohort(const bench_env *e, const fm_model *model, bench_prev *prev, bench_row *row) {
  cli_ctx *ctx = e->ctx;
  const bench_cfg *c = e->c;
  const uint64_t population = fm_client_data_num_clients(e->train);
  snprintf(row->type, sizeof row->type, "%s", fm_model_type(model));
  fm_model_flops_per_example(model, &row->flops);
  double est = prev->cohort ? prev->sec * (double)row->cohort / (double)prev->cohort : 0;
  if ((uint64_t)row->cohort > population) {
    snprintf(row->status, sizeof row->status, "more clients than the %llu in the data", (unsigned long long)population);
    return BENCH_NEXT;
  }
  if (c->budget > 0 && est * (double)(c->warmup + 1) > c->budget) {
    snprintf(row->status, sizeof row->status,
             "estimated %.1f s per round, %lld warm-up + 1 rounds exceed --budget %g (raise it to run)", est,
             (long long)c->warmup, c->budget);
    return BENCH_NEXT;
  }
  if (fm__bench_wait_idle(ctx, c) != FM_OK) {
    cli_error(ctx, "bench", fm_last_error());
    return CLI_EXIT_FAILURE;
  }
  if (e->rss_window) fm__bench_rss_reset();
  if (fm__bench_run_config(e, model, row->cohort, row) != FM_OK) return CLI_EXIT_FAILURE;
  /* rank 0 holds the row; everyone needs the time for the next estimate */
  double sec = row->sec_median;
  if (fm_comm_bcast(ctx->comm, &sec, sizeof sec) != FM_OK) {
    cli_error(ctx, "bench", fm_last_error());
    return CLI_EXIT_FAILURE;
  }
  prev->cohort = row->cohort;
  prev->sec = sec;
  if (ctx->rank == 0 && !c->quiet) {
    printf("%-8s %4lld clients: %d rounds, %.4f s/round (min %.4f, max %.4f), %.0f examples/s, %.1f GFLOP/s per "
           "core, train accuracy %.4f\n",
           row->model, (long long)row->cohort, row->rounds, row->sec_median, row->sec_min, row->sec_max,
           row->examples_per_s, row->gflops_core, row->train_accuracy);
    fflush(stdout);
  }
  return BENCH_NEXT;
}

/* Collective: model i of the plan, its step alone and then every cohort
 * size, smallest first; its rows are appended to rows (*nrows). */
static int bench_model(const bench_env *e, const bench_plan *p, size_t i, bench_row *rows, size_t *nrows) {
  cli_ctx *ctx = e->ctx;
  const bench_cfg *c = e->c;
  fm_model *model = NULL;
  int rc = fm_model_create_by_name(p->models[i], &p->spec, &model), status = BENCH_NEXT;
  step_result step;
  int stepped = 0;
  if (rc == FM_OK && c->step_seconds > 0) {
    fm_model_flops fl;
    int src = fm_model_flops_per_example(model, &fl);
    if (src == FM_OK) src = fm__bench_wait_idle(ctx, c);
    if (src == FM_OK && ctx->rank == 0) src = fm__bench_measure_step(c, model, &fl, e->train, &step);
    if (cli_agree(ctx, "bench", src) != FM_OK) status = CLI_EXIT_FAILURE;
    stepped = 1;
  }
  bench_prev prev = {0, 0};
  for (size_t j = 0; status == BENCH_NEXT && j < p->ncohorts; j++) {
    bench_row *row = &rows[(*nrows)++];
    row_init(row, p->models[i], p->cohorts[j], stepped ? &step : NULL, e->sgemm_ref);
    if (rc != FM_OK) /* a model that does not fit the data */
      snprintf(row->status, sizeof row->status, "%s", fm_last_error());
    else
      status = bench_cohort(e, model, &prev, row);
  }
  fm_model_destroy(&model);
  return status;
}

/* ---- the report --------------------------------------------------------------------- */

/* Rank 0: the tables, the CSV, and a failure when nothing ran. Agreed. */
static int report(const bench_env *e, const bench_row *rows, size_t nrows, const sgemm_result *sg) {
  const bench_cfg *c = e->c;
  int rc = FM_OK;
  if (e->ctx->rank == 0) {
    fm__bench_print_tables(e, rows, nrows, sg);
    if (c->csv[0]) {
      rc = fm__bench_write_csv(e, rows, nrows, sg);
      if (rc == FM_OK) printf("wrote %s\n", c->csv);
    }
    fflush(stdout);
    size_t ran = 0;
    for (size_t i = 0; i < nrows; i++) ran += rows[i].ran != 0;
    if (rc == FM_OK && ran == 0)
      rc = fm_set_error(FM_ERR_CONFIG, "nothing was measured: every --models x --cohorts configuration was skipped "
                                       "(the table says why)");
  }
  return cli_agree(e->ctx, "bench", rc) == FM_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cmd_bench(cli_ctx *ctx, int argc, char **argv) {
  bench_cfg *c = calloc(1, sizeof *c);
  if (!c) return CLI_EXIT_FAILURE;
  bench_plan plan;
  memset(&plan, 0, sizeof plan);
  bench_env e = {.ctx = ctx, .c = c};
  sgemm_result sg;
  memset(&sg, 0, sizeof sg);
  bench_row *rows = NULL;
  size_t nrows = 0;
  char *pos[1];
  int npos = 0;

  int status = cli_parse_or_exit(ctx, &bench_cmd, c, argc, argv, pos, 0, &npos);
  if (status < 0) status = parse_lists(ctx, c, &plan);
  if (status == BENCH_NEXT) {
    status = cli_threads(ctx, "bench", c->threads, &e.nt) == FM_OK ? BENCH_NEXT : CLI_EXIT_FAILURE;
    if (status == BENCH_NEXT) status = open_data(&e, c, &plan);
  }
  if (status == BENCH_NEXT) status = check_models(ctx, &plan);
  if (status == BENCH_NEXT) status = measure_machine(&e, &plan, &sg);
  if (status == BENCH_NEXT && !(rows = calloc(plan.nmodels * plan.ncohorts, sizeof *rows))) {
    cli_error(ctx, "bench", "out of memory");
    status = CLI_EXIT_FAILURE;
  }
  for (size_t i = 0; status == BENCH_NEXT && i < plan.nmodels; i++) status = bench_model(&e, &plan, i, rows, &nrows);
  if (status == BENCH_NEXT) status = report(&e, rows, nrows, &sg);

  fm_client_data_close(&e.train);
  fm_client_data_close(&e.test);
  free(rows);
  free(c);
  return status;
}
