/* src/cli/bench.c — `fedmpi bench`: how fast rounds run, and what fraction of
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
 * Every rank runs this function in lockstep, as train.c; rank 0 alone prints,
 * decides when a configuration's time budget is spent (broadcast) and writes
 * the CSV. Timings are wall-clock (MPI_Wtime) and medians over rounds.
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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"

typedef struct bench_cfg {
  char data[CLI_STR_MAX], test_data[CLI_STR_MAX], work_dir[CLI_STR_MAX], dataset_dir[CLI_STR_MAX];
  char models[CLI_STR_MAX], cohorts[CLI_STR_MAX], csv[CLI_STR_MAX], assignment[CLI_STR_MAX];
  int64_t warmup, rounds, epochs, batch_size, threads, seed, eval_clients, eval_batch_size, cache_mb;
  int64_t sgemm_trials;
  double budget, client_lr, client_momentum, server_lr, sgemm_seconds, step_seconds, wait_idle;
  int no_eval, no_sgemm, quiet;
} bench_cfg;

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
     "softmax,mlp:200,200,cnn:32,64,512)"},
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
     "OpenMP threads per rank (0: OMP_NUM_THREADS or all cores the rank may use)"},
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

/* ---- small helpers -------------------------------------------------------------- */

enum { MAX_LIST = 32 };

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int cmp_int64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Median of v (n), which gets sorted; NaN for n = 0. */
static double median(double *v, size_t n) {
  if (n == 0) return NAN;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* "a,b,c" -> items (copied into store, at most MAX_LIST). With join_numbers,
 * an all-digit item continues the previous one, so that model names keep
 * their arguments: "softmax,mlp:200,200,cnn:32,64,512" is three models
 * (no model name is all digits). -1 on a bad list. */
static int split_list(const char *text, int join_numbers, char store[MAX_LIST][64], size_t *n) {
  char buf[CLI_STR_MAX], *save = NULL;
  snprintf(buf, sizeof buf, "%s", text);
  *n = 0;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (join_numbers && *n > 0 && strspn(tok, "0123456789") == strlen(tok)) {
      size_t len = strlen(store[*n - 1]);
      if (len + 1 + strlen(tok) >= 64) return -1;
      snprintf(store[*n - 1] + len, 64 - len, ",%s", tok);
      continue;
    }
    if (*n >= MAX_LIST || strlen(tok) >= 64) return -1;
    snprintf(store[(*n)++], 64, "%s", tok);
  }
  return *n ? 0 : -1;
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

/* Start a new peak-RSS window (Linux: "5" > /proc/self/clear_refs). 1 if it worked. */
static int rss_reset(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return 0;
  int ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

/* Peak resident set in MB: VmHWM (since the last reset), else ru_maxrss. */
static double rss_peak_mb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  double kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %lf", &kb) == 1) break;
  if (f) fclose(f);
  if (kb < 0) {
    struct rusage ru;
    kb = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss : 0;
  }
  return kb / 1024.0;
}

/* CPU time in seconds: busy time of the whole node (all CPUs, /proc/stat,
 * steal included) and this process's own (every thread). */
typedef struct cpu_sample {
  char host[64];
  double node_busy, self;
} cpu_sample;

static void cpu_sample_take(cpu_sample *c) {
  memset(c, 0, sizeof *c);
  if (gethostname(c->host, sizeof c->host - 1) != 0) snprintf(c->host, sizeof c->host, "?");
  FILE *f = fopen("/proc/stat", "r");
  unsigned long long v[8] = {0};
  if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                  &v[7]) == 8) {
    long hz = sysconf(_SC_CLK_TCK);
    /* user nice system [idle iowait] irq softirq steal */
    c->node_busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)(hz > 0 ? hz : 100);
  } else {
    c->node_busy = NAN;
  }
  if (f) fclose(f);
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    c->self = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
              1e-6 * (double)ru.ru_stime.tv_usec;
}

/* Collective: the cores other processes kept busy between a and b (this
 * rank's samples) during wall seconds, the largest over the nodes: node busy
 * time minus the CPU time of the ranks on that node. On rank 0. */
static int other_load(cli_ctx *ctx, const cpu_sample *a, const cpu_sample *b, double wall, double *out) {
  cpu_sample d = *b;
  d.node_busy = b->node_busy - a->node_busy;
  d.self = b->self - a->self;
  void *all = NULL;
  size_t bytes = 0;
  FM_CALL_CLI(fm_comm_gather(ctx->comm, &d, sizeof d, &all, &bytes));
  *out = NAN;
  if (ctx->rank == 0 && wall > 0) {
    const cpu_sample *v = all;
    size_t n = bytes / sizeof *v;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
      double busy = v[i].node_busy, self = 0;
      for (size_t j = 0; j < n; j++)
        if (strcmp(v[i].host, v[j].host) == 0) {
          self += v[j].self;
          if (v[j].node_busy > busy) busy = v[j].node_busy;
        }
      double o = (busy - self) / wall;
      if (isnan(o) || o > worst) worst = o;
    }
    *out = worst < 0 ? 0 : worst;
  }
  free(all);
  return FM_OK;
}

/* Collective: wait (at most c->wait_idle seconds) for one second in which
 * other processes keep fewer than 0.15 cores of any node busy. */
static int wait_idle(cli_ctx *ctx, const bench_cfg *c) {
  if (c->wait_idle <= 0) return FM_OK;
  double deadline = MPI_Wtime() + c->wait_idle;
  for (;;) {
    cpu_sample a, b;
    cpu_sample_take(&a);
    double t0 = MPI_Wtime();
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    cpu_sample_take(&b);
    double load = 0, go = 0;
    FM_CALL_CLI(other_load(ctx, &a, &b, MPI_Wtime() - t0, &load));
    if (ctx->rank == 0) go = !(load >= 0.15) || MPI_Wtime() >= deadline; /* NaN: cannot tell, go */
    FM_CALL_CLI(fm_comm_bcast(ctx->comm, &go, sizeof go));
    if (go > 0) return FM_OK;
  }
}

/* ---- SGEMM reference ------------------------------------------------------------- */

typedef struct sgemm_shape {
  const char *label;
  size_t m, n, k;
  int ta, tb;
} sgemm_shape;

/* The first is the reference of the ratio column ("the machine's SGEMM"). */
static const sgemm_shape sgemm_shapes[] = {
    {"1024x1024x1024 (square)", 1024, 1024, 1024, 0, 0},
    {"32x200x784 (2nn dense_0 forward, batch 32)", 32, 200, 784, 0, 0},
    {"784x200x32 A^T (2nn dense_0 weight gradient)", 784, 200, 32, 1, 0},
    {"196x64x800 (cnn conv2d_1 forward, one example)", 196, 64, 800, 0, 0},
};
enum { NUM_SHAPES = sizeof sgemm_shapes / sizeof sgemm_shapes[0] };

typedef struct sgemm_result {
  double alone[NUM_SHAPES];    /* one core, every other rank and thread idle (rank 0) */
  double per_core[NUM_SHAPES]; /* median over every thread of every rank, all running at once */
  double total[NUM_SHAPES];    /* sum over them */
  double other;                /* cores other processes used meanwhile */
} sgemm_result;

/* Collective. Rank 0 alone first, then all ranks x nt threads at once. */
static int measure_sgemm(cli_ctx *ctx, const bench_cfg *c, int nt, sgemm_result *out) {
  memset(out, 0, sizeof *out);
  int rc = FM_OK;
  cpu_sample cpu0, cpu1;
  cpu_sample_take(&cpu0);
  double t0 = MPI_Wtime();
  for (int s = 0; s < NUM_SHAPES; s++) {
    const sgemm_shape *sh = &sgemm_shapes[s];
    FM_CALL_CLI(fm_comm_agree(ctx->comm, FM_OK)); /* a barrier */
    if (ctx->rank == 0)
      rc = fm_sgemm_gflops(sh->m, sh->n, sh->k, sh->ta, sh->tb, (int)c->sgemm_trials, c->sgemm_seconds, &out->alone[s]);
    FM_CALL_CLI(fm_comm_agree(ctx->comm, rc));
    double mine[64] = {0};
    int threads = nt < 64 ? nt : 64, err = FM_OK;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int t = 0; t < threads; t++) {
      int trc = fm_sgemm_gflops(sh->m, sh->n, sh->k, sh->ta, sh->tb, (int)c->sgemm_trials, c->sgemm_seconds, &mine[t]);
      if (trc != FM_OK) {
#pragma omp atomic write
        err = trc;
      }
    }
    FM_CALL_CLI(fm_comm_agree(ctx->comm, err));
    void *all = NULL;
    size_t bytes = 0;
    double packed[65] = {(double)threads};
    memcpy(packed + 1, mine, (size_t)threads * sizeof *mine);
    /* every rank sends the same number of values: pad to 65 */
    FM_CALL_CLI(fm_comm_gather(ctx->comm, packed, sizeof packed, &all, &bytes));
    if (ctx->rank == 0) {
      const double *v = all;
      double rates[64 * 64];
      size_t n = 0;
      for (size_t r = 0; r < bytes / sizeof packed; r++)
        for (int t = 0; t < (int)v[r * 65] && n < sizeof rates / sizeof *rates; t++) {
          rates[n++] = v[r * 65 + 1 + t];
          out->total[s] += v[r * 65 + 1 + t];
        }
      out->per_core[s] = median(rates, n);
    }
    free(all);
  }
  cpu_sample_take(&cpu1);
  return other_load(ctx, &cpu0, &cpu1, MPI_Wtime() - t0, &out->other);
}

/* ---- data -------------------------------------------------------------------------- */

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

/* ---- the training step alone ------------------------------------------------------ */

typedef struct step_result {
  double fwd, bwd, opt, total; /* ms per step: forward, backward, zeroing the gradient + sgdm step, all */
  double gflops;               /* train flops of the batch / total */
} step_result;

/* Rank 0 only, one thread: forward, backward, gradient zeroing and the sgdm
 * step on the first batch of client 0, repeated for `seconds` (at least 5
 * steps, after 2 untimed ones), so the batch and the weights stay in cache.
 * What the model reaches without the round around it (loading, batching,
 * metrics, aggregation). */
static int measure_step(const bench_cfg *c, const fm_model *model, const fm_model_flops *fl,
                        const fm_client_data *data, step_result *out) {
  const fm_layout *l = fm_model_layout(model);
  size_t P = fm_layout_numel(l), T = fm_layout_trainable_numel(l);
  size_t D = fm_model_input_spec(model)->num_features, C = fm_model_input_spec(model)->num_classes;
  fm_examples ex = {0};
  fm_optimizer *opt = NULL;
  fm_optim_state st = {0};
  int have_state = 0;
  float *w = NULL, *g = NULL, *probs = NULL;
  void *ws = NULL;
  memset(out, 0, sizeof *out);
  int rc = fm_client_data_load(data, 0, &ex);
  size_t n = rc == FM_OK ? ((size_t)c->batch_size < ex.n ? (size_t)c->batch_size : ex.n) : 0;
  if (rc == FM_OK && n == 0) rc = fm_set_error(FM_ERR_INVALID_ARG, "client 0 of %s is empty", c->data);
  if (rc == FM_OK && ex.num_features != D) rc = fm_set_error(FM_ERR_SPEC_MISMATCH, "features differ from the model");
  if (rc == FM_OK) {
    w = malloc(P * sizeof *w);
    g = malloc((T ? T : 1) * sizeof *g);
    probs = malloc(n * C * sizeof *probs);
    ws = malloc(fm_model_workspace_size(model, n));
    if (!w || !g || !probs || !ws) rc = fm_set_error(FM_ERR_NOMEM, "out of memory");
  }
  if (rc == FM_OK) rc = fm_model_init_weights(model, w, (uint64_t)c->seed);
  if (rc == FM_OK) rc = fm_optimizer_create_sgdm(c->client_lr, c->client_momentum, &opt);
  if (rc == FM_OK && (rc = fm_optim_state_init(opt, T, &st)) == FM_OK) have_state = 1;
  if (rc == FM_OK) memset(g, 0, T * sizeof *g);
  double t_fwd = 0, t_bwd = 0, t_opt = 0, start = MPI_Wtime();
  long steps = 0;
  for (long i = -2; rc == FM_OK; i++) {
    float loss;
    double t0 = MPI_Wtime();
    rc = fm_model_forward(model, ws, w, ex.x, ex.y, n, 1, &loss, probs);
    double t1 = MPI_Wtime();
    if (rc == FM_OK) rc = fm_model_backward(model, ws, w, ex.x, ex.y, n, g);
    double t2 = MPI_Wtime();
    if (rc == FM_OK) rc = fm_optimizer_step(opt, &st, w, g, T);
    memset(g, 0, T * sizeof *g); /* for the next backward, as a round does before each one */
    double t3 = MPI_Wtime();
    if (i < 0) {
      start = t3;
      continue;
    }
    t_fwd += t1 - t0;
    t_bwd += t2 - t1;
    t_opt += t3 - t2;
    steps++;
    if (steps >= 5 && t3 - start >= c->step_seconds) break;
  }
  if (rc == FM_OK) {
    out->fwd = 1e3 * t_fwd / (double)steps;
    out->bwd = 1e3 * t_bwd / (double)steps;
    out->opt = 1e3 * t_opt / (double)steps;
    out->total = out->fwd + out->bwd + out->opt;
    out->gflops = out->total > 0 ? fl->train * (double)n / (out->total * 1e-3) * 1e-9 : NAN;
  }
  if (have_state) fm_optim_state_free(&st);
  fm_optimizer_destroy(&opt);
  free(w), free(g), free(probs), free(ws);
  fm_examples_free(&ex);
  return rc;
}

/* ---- one configuration -------------------------------------------------------------- */

typedef struct bench_row {
  char model[64], type[128], status[256];
  int64_t cohort;
  int ran;                      /* 0: skipped (status says why) */
  int rounds;                   /* measured */
  double sec_median, sec_min, sec_max;
  double examples, examples_per_s;
  fm_model_flops flops;         /* per example */
  double gflops_round;          /* train flops of a round / its wall time: all cores */
  double gflops_core;           /* train flops / summed busy thread time: per core */
  double ratio;                 /* gflops_core / SGEMM 1024^3 alone (NaN without SGEMM) */
  double distribute, map, busy, reduce, server, idle;
  double load;                  /* slowest rank's time to read its share of a round's clients */
  double eval_sec, eval_examples, eval_accuracy;
  double train_accuracy, train_loss;
  double other;                 /* cores other processes used during the measured rounds */
  double step_fwd, step_bwd, step_opt, step_ms, step_gflops, step_ratio; /* the step alone (NaN: not timed) */
  double rss_max;               /* MB, max over ranks */
  char rss_ranks[256];          /* MB per rank, space separated */
} bench_row;

static int make_process(const bench_cfg *c, const fm_model *model, fm_process **out) {
  fm_optimizer *copt = NULL, *sopt = NULL;
  int rc = fm_optimizer_create_sgdm(c->client_lr, c->client_momentum, &copt);
  if (rc == FM_OK) rc = fm_optimizer_create_sgdm(c->server_lr, 0.0, &sopt);
  if (rc != FM_OK) {
    fm_optimizer_destroy(&copt);
    fm_optimizer_destroy(&sopt);
    return rc;
  }
  return fm_build_weighted_fed_avg(model, copt, sopt, FM_WEIGHTING_NUM_EXAMPLES, NULL, out);
}

/* Slowest rank's seconds to read the clients it trained in the round just
 * run (same assignment; one after another, as the HDF5 lock serialises them). Collective. */
static int time_loads(cli_ctx *ctx, const fm_client_data *data, const uint64_t *cohort, size_t k, int epochs,
                      fm_assignment policy, double *out) {
  int *ranks = malloc(k * sizeof *ranks);
  uint64_t *work = malloc(k * sizeof *work);
  int rc = ranks && work ? FM_OK : fm_set_error(FM_ERR_NOMEM, "out of memory");
  for (size_t i = 0; rc == FM_OK && i < k; i++)
    work[i] = (uint64_t)fm_client_data_num_examples(data, (size_t)cohort[i]) * (uint64_t)epochs;
  if (rc == FM_OK)
    rc = fm_assign_clients(policy, cohort, work, k, fm_client_data_num_clients(data), ctx->size, ranks);
  double t0 = MPI_Wtime();
  for (size_t i = 0; rc == FM_OK && i < k; i++) {
    if (ranks[i] != ctx->rank) continue;
    fm_examples ex = {0};
    rc = fm_client_data_load(data, (size_t)cohort[i], &ex);
    fm_examples_free(&ex);
  }
  double t = MPI_Wtime() - t0;
  free(ranks);
  free(work);
  FM_CALL_CLI(fm_comm_agree(ctx->comm, rc));
  FM_CALL_CLI(fm_comm_allreduce_max(ctx->comm, &t, 1));
  *out = t;
  return FM_OK;
}

typedef struct bench_env {
  cli_ctx *ctx;
  const bench_cfg *c;
  fm_client_data *train, *test;
  int nt;
  int rss_window; /* 1: peak RSS is per configuration */
  double sgemm_ref; /* SGEMM 1024^3 alone, GFLOP/s (0: not measured) */
} bench_env;

/* Collective: run one (model, cohort) configuration into row (filled on rank 0). */
static int run_config(const bench_env *e, const fm_model *model, int64_t cohort, bench_row *row) {
  cli_ctx *ctx = e->ctx;
  const bench_cfg *c = e->c;
  const int total = (int)(c->warmup + c->rounds);
  fm_process *proc = NULL;
  fm_state *state = NULL;
  uint64_t *clients = malloc((size_t)cohort * sizeof *clients), *eval_clients = NULL;
  double *sec = calloc((size_t)total, sizeof *sec), *ex = calloc((size_t)total, sizeof *ex);
  double *t_dist = calloc((size_t)total, sizeof(double)), *t_map = calloc((size_t)total, sizeof(double));
  double *t_busy = calloc((size_t)total, sizeof(double)), *t_red = calloc((size_t)total, sizeof(double));
  double *t_srv = calloc((size_t)total, sizeof(double)), *t_idle = calloc((size_t)total, sizeof(double));
  double *eps = calloc((size_t)total, sizeof(double));
  int reported = 0;
  fm_metrics m, em;
  fm_metrics_init(&m);
  fm_metrics_init(&em);
  int rc = clients && sec && ex && t_dist && t_map && t_busy && t_red && t_srv && t_idle && eps
               ? FM_OK
               : fm_set_error(FM_ERR_NOMEM, "out of memory");
  if (rc == FM_OK) rc = make_process(c, model, &proc);
  if (rc == FM_OK) rc = fm_process_initialize(proc, (uint64_t)c->seed, &state);
  rc = cli_agree(ctx, "bench", rc); /* prints the agreed message */
  reported = rc != FM_OK;
  if (rc != FM_OK) goto done;

  const uint64_t population = fm_client_data_num_clients(e->train);
  fm_round_stats stats;
  fm_round_input in = {.data = e->train,
                       .batching = {.epochs = (int)c->epochs, .batch_size = (size_t)c->batch_size, .shuffle = 1},
                       .cohort = clients,
                       .cohort_size = (size_t)cohort,
                       .num_threads = e->nt,
                       .assignment = strcmp(c->assignment, "balanced") == 0 ? FM_ASSIGN_BALANCED : FM_ASSIGN_SHARD,
                       .stats = &stats};
  int measured = 0;
  double start = MPI_Wtime(), t_measure = start;
  cpu_sample cpu0, cpu1;
  cpu_sample_take(&cpu0);
  for (int r = 0; r < total; r++) {
    if (r == c->warmup) {
      t_measure = MPI_Wtime();
      cpu_sample_take(&cpu0);
    }
    fm_metrics_clear(&m);
    double t0 = MPI_Wtime();
    rc = fm_sample_cohort((uint64_t)c->seed, fm_state_round(state), population, (size_t)cohort, clients);
    if (rc == FM_OK) rc = fm_process_next(proc, state, &in, ctx->comm, &m);
    if (rc != FM_OK) goto done; /* next() agrees on errors */
    double secs = MPI_Wtime() - t0;
    double stop = 0;
    if (ctx->rank == 0 && r >= c->warmup) {
      int i = measured++;
      sec[i] = secs;
      fm_metrics_get(&m, "client_work/train/num_examples", &ex[i]);
      eps[i] = secs > 0 ? ex[i] / secs : 0;
      t_dist[i] = stats.distribute;
      t_map[i] = stats.map_wall;
      t_busy[i] = stats.busy_sum;
      t_red[i] = stats.reduce;
      t_srv[i] = stats.server;
      t_idle[i] = stats.idle_fraction;
      row->train_accuracy = row->train_loss = NAN;
      fm_metrics_get(&m, "client_work/train/accuracy", &row->train_accuracy);
      fm_metrics_get(&m, "client_work/train/loss", &row->train_loss);
      /* stop when the next round (about as long as this one) would pass the budget */
      if (c->budget > 0 && MPI_Wtime() - start + secs > c->budget) stop = 1;
    }
    if ((rc = fm_comm_bcast(ctx->comm, &stop, sizeof stop)) != FM_OK) goto done;
    if (stop > 0) break;
  }
  cpu_sample_take(&cpu1);
  if ((rc = other_load(ctx, &cpu0, &cpu1, MPI_Wtime() - t_measure, &row->other)) != FM_OK) goto done;
  rc = time_loads(ctx, e->train, clients, (size_t)cohort, (int)c->epochs, in.assignment, &row->load);
  if (rc != FM_OK) goto done;

  /* one evaluation pass of the trained weights */
  row->eval_sec = row->eval_examples = row->eval_accuracy = NAN;
  if (e->test) {
    size_t ne = 0;
    if (c->eval_clients > 0) {
      ne = (size_t)c->eval_clients;
      eval_clients = malloc(ne * sizeof *eval_clients);
      rc = eval_clients ? fm_sample_cohort((uint64_t)c->seed ^ (1ull << 63), fm_state_round(state),
                                           fm_client_data_num_clients(e->test), ne, eval_clients)
                        : fm_set_error(FM_ERR_NOMEM, "out of memory");
    }
    double t0 = MPI_Wtime();
    if (rc == FM_OK)
      rc = fm_evaluate(model, fm_state_weights(state), e->test, eval_clients, ne, (size_t)c->eval_batch_size, e->nt,
                       ctx->comm, &em);
    double t = MPI_Wtime() - t0;
    if (rc != FM_OK) goto done; /* agreed inside */
    if (ctx->rank == 0) {
      row->eval_sec = t;
      fm_metrics_get(&em, "num_examples", &row->eval_examples);
      fm_metrics_get(&em, "accuracy", &row->eval_accuracy);
    }
  }

  /* peak memory of every rank */
  double mb = rss_peak_mb();
  void *all = NULL;
  size_t bytes = 0;
  if ((rc = fm_comm_gather(ctx->comm, &mb, sizeof mb, &all, &bytes)) != FM_OK) goto done;
  if (ctx->rank == 0) {
    const double *v = all;
    size_t len = 0;
    row->rss_max = 0;
    row->rss_ranks[0] = '\0';
    for (size_t i = 0; i < bytes / sizeof *v; i++) {
      if (v[i] > row->rss_max) row->rss_max = v[i];
      if (len < sizeof row->rss_ranks)
        len += (size_t)snprintf(row->rss_ranks + len, sizeof row->rss_ranks - len, "%s%.0f", i ? " " : "", v[i]);
    }
  }
  free(all);

  if (ctx->rank == 0) {
    row->ran = 1;
    row->rounds = measured;
    snprintf(row->status, sizeof row->status, "ok");
    double busy_med = median(t_busy, (size_t)measured);
    double ex_med = median(ex, (size_t)measured);
    row->examples = ex_med;
    row->examples_per_s = median(eps, (size_t)measured);
    qsort(sec, (size_t)measured, sizeof *sec, cmp_double);
    row->sec_min = sec[0];
    row->sec_max = sec[measured - 1];
    row->sec_median = median(sec, (size_t)measured);
    row->distribute = median(t_dist, (size_t)measured);
    row->map = median(t_map, (size_t)measured);
    row->busy = busy_med;
    row->reduce = median(t_red, (size_t)measured);
    row->server = median(t_srv, (size_t)measured);
    row->idle = median(t_idle, (size_t)measured);
    double flops = row->flops.train * ex_med;
    row->gflops_round = row->sec_median > 0 ? flops / row->sec_median * 1e-9 : NAN;
    row->gflops_core = busy_med > 0 ? flops / busy_med * 1e-9 : NAN;
    row->ratio = e->sgemm_ref > 0 ? row->gflops_core / e->sgemm_ref : NAN;
  }
  rc = FM_OK;

done:
  /* every failure here is agreed, so every rank takes this path with the same message */
  if (rc != FM_OK && !reported) cli_error(ctx, "bench", fm_last_error());
  fm_metrics_free(&m);
  fm_metrics_free(&em);
  fm_state_destroy(&state);
  fm_process_destroy(&proc);
  free(clients);
  free(eval_clients);
  free(sec), free(ex), free(eps);
  free(t_dist), free(t_map), free(t_busy), free(t_red), free(t_srv), free(t_idle);
  return rc;
}

/* ---- output ---------------------------------------------------------------------------- */

static void print_tables(const bench_env *e, const bench_row *rows, size_t n, const sgemm_result *sg) {
  const bench_cfg *c = e->c;
  if (!c->no_sgemm) {
    printf("\nSGEMM, single-threaded cblas_sgemm, median of %lld timings of >= %g s (GFLOP/s):\n",
           (long long)c->sgemm_trials, c->sgemm_seconds);
    printf("  %-48s %10s %18s %12s\n", "shape M x N x K", "1 core", "all cores: median", "sum");
    for (int s = 0; s < NUM_SHAPES; s++)
      printf("  %-48s %10.1f %18.1f %12.1f\n", sgemm_shapes[s].label, sg->alone[s], sg->per_core[s], sg->total[s]);
    printf("  (other processes kept %.2f cores busy meanwhile)\n", sg->other);
  }
  if (c->step_seconds > 0) {
    printf("\nThe training step alone (rank 0, one thread, batch %lld of client 0 kept in cache, %g s per model):\n",
           (long long)c->batch_size, c->step_seconds);
    printf("%-9s %11s %11s %13s %9s %9s %7s\n", "model", "forward ms", "backward ms", "zero+sgdm ms", "step ms",
           "GF/s", "%SGEMM");
    for (size_t i = 0; i < n; i++) {
      const bench_row *r = &rows[i];
      if (isnan(r->step_ms) || (i > 0 && strcmp(rows[i - 1].model, r->model) == 0)) continue;
      printf("%-9s %11.4f %11.4f %13.4f %9.4f %9.1f %6.0f%%\n", r->model, r->step_fwd, r->step_bwd, r->step_opt,
             r->step_ms, r->step_gflops, 100 * r->step_ratio);
    }
  }
  printf("\nThroughput (median over measured rounds; GF = GFLOP of local training, docs/performance.md):\n");
  printf("%-9s %7s %6s %9s %11s %9s %9s %9s %7s %9s %9s %8s\n", "model", "clients", "rounds", "s/round", "examples/s",
         "MFLOP/ex", "GF/s all", "GF/s core", "%SGEMM", "train acc", "eval acc", "RSS MB");
  for (size_t i = 0; i < n; i++) {
    const bench_row *r = &rows[i];
    if (!r->ran) {
      printf("%-9s %7lld  skipped: %s\n", r->model, (long long)r->cohort, r->status);
      continue;
    }
    printf("%-9s %7lld %6d %9.4f %11.0f %9.3f %9.1f %9.1f %6.0f%% %9.4f %9.4f %8.0f\n", r->model, (long long)r->cohort,
           r->rounds, r->sec_median, r->examples_per_s, r->flops.train * 1e-6, r->gflops_round, r->gflops_core,
           100 * r->ratio, r->train_accuracy, r->eval_accuracy, r->rss_max);
  }
  printf("\nTime split per round (median seconds; load = slowest rank reading its clients, part of the client map):\n");
  printf("%-9s %7s %9s %10s %10s %8s %8s %8s %7s %9s %10s %7s\n", "model", "clients", "s/round", "distribute",
         "client map", "(load)", "reduce", "server", "idle %", "eval s", "eval ex", "other");
  for (size_t i = 0; i < n; i++) {
    const bench_row *r = &rows[i];
    if (!r->ran) continue;
    printf("%-9s %7lld %9.4f %10.4f %10.4f %8.4f %8.4f %8.4f %6.1f%% %9.3f %10.0f %7.2f\n", r->model,
           (long long)r->cohort, r->sec_median, r->distribute, r->map, r->load, r->reduce, r->server, 100 * r->idle,
           r->eval_sec, r->eval_examples, r->other);
  }
  printf("(other: cores kept busy by other processes on the node during the measured rounds; above ~0.2 the numbers "
         "are pessimistic)\n");
  if (!e->rss_window) printf("(RSS: the process's peak so far; /proc/self/clear_refs was not writable)\n");
  fflush(stdout);
}

/* A CSV field: s in double quotes, inner double quotes doubled (RFC 4180). */
static const char *csv_field(const char *s, char *buf, size_t len) {
  size_t k = 0;
  if (len < 3) return "";
  buf[k++] = '"';
  for (; *s && k + 3 < len; s++) {
    if (*s == '"') buf[k++] = '"';
    buf[k++] = *s;
  }
  buf[k++] = '"';
  buf[k] = '\0';
  return buf;
}

static int write_csv(const bench_env *e, const bench_row *rows, size_t n, const sgemm_result *sg) {
  const bench_cfg *c = e->c;
  FILE *f = fopen(c->csv, "w");
  if (!f) return fm_set_error(FM_ERR_IO, "cannot write --csv '%s'", c->csv);
  const char *coretype = getenv("OPENBLAS_CORETYPE");
  fprintf(f, "model,type,clients,status,ranks,threads,warmup,rounds,epochs,batch_size,sec_per_round,sec_min,sec_max,"
             "examples_per_round,examples_per_sec,flops_forward_per_example,flops_train_per_example,gflops_round,"
             "gflops_per_core,sgemm_1024_1core,sgemm_1024_per_core_all,sgemm_32x200x784_1core,ratio_to_sgemm,"
             "distribute,client_map,busy_sum,load,reduce,server,idle_fraction,eval_sec,eval_examples,eval_accuracy,"
             "train_accuracy,train_loss,rss_max_mb,rss_mb_per_rank,other_cores,sgemm_other_cores,step_forward_ms,"
             "step_backward_ms,step_zero_sgdm_ms,step_ms,step_gflops,step_ratio_to_sgemm,openblas_core,"
             "openblas_coretype_env\n");
  for (size_t i = 0; i < n; i++) {
    const bench_row *r = &rows[i];
    char q[4][600];
    fprintf(f, "%s,%s,%lld,%s,%d,%d,%lld,%d,%lld,%lld,", csv_field(r->model, q[0], sizeof q[0]),
            csv_field(r->type, q[1], sizeof q[1]), (long long)r->cohort, csv_field(r->status, q[2], sizeof q[2]),
            e->ctx->size, e->nt, (long long)c->warmup, r->rounds, (long long)c->epochs, (long long)c->batch_size);
    fprintf(f, "%.6f,%.6f,%.6f,%.0f,%.1f,%.0f,%.0f,%.3f,%.3f,%.3f,%.3f,%.3f,%.4f,", r->sec_median, r->sec_min,
            r->sec_max, r->examples, r->examples_per_s, r->flops.forward, r->flops.train, r->gflops_round,
            r->gflops_core, sg->alone[0], sg->per_core[0], sg->alone[1], r->ratio);
    fprintf(f, "%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,%.4f,%.0f,%.4f,%.4f,%.4f,%.1f,%s,%.3f,%.3f,", r->distribute,
            r->map, r->busy, r->load, r->reduce, r->server, r->idle, r->eval_sec, r->eval_examples, r->eval_accuracy,
            r->train_accuracy, r->train_loss, r->rss_max, csv_field(r->rss_ranks, q[3], sizeof q[3]), r->other,
            sg->other);
    fprintf(f, "%.4f,%.4f,%.4f,%.4f,%.3f,%.4f,%s,%s\n", r->step_fwd, r->step_bwd, r->step_opt, r->step_ms,
            r->step_gflops, r->step_ratio, fm_blas_corename(), coretype ? coretype : "");
  }
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) return fm_set_error(FM_ERR_IO, "error writing --csv '%s'", c->csv);
  return FM_OK;
}

/* ---- the command ---------------------------------------------------------------------- */

int cmd_bench(cli_ctx *ctx, int argc, char **argv) {
  bench_cfg *c = calloc(1, sizeof *c);
  if (!c) return CLI_EXIT_FAILURE;
  char *pos[1];
  int npos = 0, status = CLI_EXIT_FAILURE, rc = FM_OK;
  char models[MAX_LIST][64], cohort_text[MAX_LIST][64];
  int64_t cohorts[MAX_LIST];
  size_t nmodels = 0, ncohorts = 0, nrows = 0;
  bench_row *rows = NULL;
  fm_model *model = NULL;
  bench_env e = {.ctx = ctx, .c = c};
  sgemm_result sg;
  memset(&sg, 0, sizeof sg);

  int ex = cli_parse_or_exit(ctx, &bench_cmd, c, argc, argv, pos, 0, &npos);
  if (ex >= 0) {
    status = ex;
    goto done;
  }
  /* the lists: the same text on every rank, so no agreement is needed */
  char err[512] = "";
  if (split_list(c->models, 1, models, &nmodels) != 0)
    snprintf(err, sizeof err, "--models: expected 1 to %d comma-separated model names", MAX_LIST);
  if (!err[0] && split_list(c->cohorts, 0, cohort_text, &ncohorts) != 0)
    snprintf(err, sizeof err, "--cohorts: expected 1 to %d comma-separated sizes", MAX_LIST);
  for (size_t i = 0; !err[0] && i < ncohorts; i++) {
    char *end = NULL;
    long long v = strtoll(cohort_text[i], &end, 10);
    if (*end || v < 1) snprintf(err, sizeof err, "--cohorts: '%s' is not a positive integer", cohort_text[i]);
    cohorts[i] = v;
  }
  if (err[0]) {
    cli_error(ctx, "bench", err);
    status = CLI_EXIT_USAGE;
    goto done;
  }
  qsort(cohorts, ncohorts, sizeof *cohorts, cmp_int64);
  e.nt = fm_runtime_setup_threads((int)c->threads);

  if (!c->data[0] && prepare_default_data(ctx, c) != FM_OK) goto done;
  fm_data_options dopt = {NULL, NULL};
  rc = fm_client_data_open(c->data, &dopt, &e.train);
  if (rc == FM_OK && c->test_data[0] && !c->no_eval) rc = fm_client_data_open(c->test_data, &dopt, &e.test);
  if (cli_agree(ctx, "bench", rc) != FM_OK) goto done;
  if (c->cache_mb > 0) {
    fm_client_data_set_cache_bytes(e.train, (size_t)c->cache_mb << 20);
    if (e.test) fm_client_data_set_cache_bytes(e.test, (size_t)c->cache_mb << 20);
  }
  if (e.test && (uint64_t)c->eval_clients > fm_client_data_num_clients(e.test)) {
    char msg[CLI_STR_MAX + 128];
    snprintf(msg, sizeof msg, "--eval-clients %lld is more than the %zu clients in %s", (long long)c->eval_clients,
             fm_client_data_num_clients(e.test), c->test_data);
    cli_error(ctx, "bench", msg);
    status = CLI_EXIT_USAGE;
    goto done;
  }
  fm_input_spec spec;
  rc = cli_input_spec(e.train, 0, &spec);
  if (cli_agree(ctx, "bench", rc) != FM_OK) goto done;
  /* every model name is checked before anything runs */
  for (size_t i = 0; i < nmodels; i++) {
    rc = fm_model_create_by_name(models[i], &spec, &model);
    fm_model_flops fl;
    if (rc == FM_OK) rc = fm_model_flops_per_example(model, &fl);
    fm_model_destroy(&model);
    if (rc == FM_ERR_SPEC_MISMATCH) rc = FM_OK; /* reported as a skipped row */
    if (rc != FM_OK) {
      char msg[1024];
      snprintf(msg, sizeof msg, "--models: %s", fm_last_error());
      cli_error(ctx, "bench", msg); /* same on every rank */
      status = rc == FM_ERR_UNKNOWN_TYPE || rc == FM_ERR_INVALID_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
      goto done;
    }
  }

  e.rss_window = rss_reset();
  const char *coretype = getenv("OPENBLAS_CORETYPE");
  const uint64_t population = fm_client_data_num_clients(e.train);
  if (ctx->rank == 0) {
    printf("fedmpi %s bench: %d rank(s) x %d thread(s); OpenBLAS kernels %s (OPENBLAS_CORETYPE%s%s)\n", fm_version(),
           ctx->size, e.nt, fm_blas_corename(), coretype ? "=" : " unset", coretype ? coretype : "");
    printf("data %s: %llu clients, %llu examples, input", c->data, (unsigned long long)population,
           (unsigned long long)fm_client_data_total_examples(e.train));
    for (int d = 0; d < spec.ndim; d++) printf("%s%zu", d ? "x" : " ", spec.shape[d]);
    printf(", %zu classes%s%s\n", spec.num_classes, e.test ? "; evaluation on " : "", e.test ? c->test_data : "");
    printf("FedAvg: client sgdm lr %g momentum %g, server sgdm lr %g; %lld epoch(s), batch %lld; warm-up %lld + up to "
           "%lld measured rounds, budget %g s per configuration\n",
           c->client_lr, c->client_momentum, c->server_lr, (long long)c->epochs, (long long)c->batch_size,
           (long long)c->warmup, (long long)c->rounds, c->budget);
    fflush(stdout);
  }
  if (!c->no_sgemm) {
    if (ctx->rank == 0 && !c->quiet) {
      printf("measuring SGEMM ...\n");
      fflush(stdout);
    }
    rc = wait_idle(ctx, c);
    if (rc == FM_OK) rc = measure_sgemm(ctx, c, e.nt, &sg);
    if (rc != FM_OK) {
      cli_error(ctx, "bench", fm_last_error());
      goto done;
    }
    e.sgemm_ref = sg.alone[0];
  }

  rows = calloc(nmodels * ncohorts, sizeof *rows);
  if (!rows) {
    cli_error(ctx, "bench", "out of memory");
    goto done;
  }
  for (size_t i = 0; i < nmodels; i++) {
    rc = fm_model_create_by_name(models[i], &spec, &model);
    step_result step;
    int stepped = 0;
    if (rc == FM_OK && c->step_seconds > 0) {
      fm_model_flops fl;
      int src = fm_model_flops_per_example(model, &fl);
      if (src == FM_OK) src = wait_idle(ctx, c);
      if (src == FM_OK && ctx->rank == 0) src = measure_step(c, model, &fl, e.train, &step);
      if (cli_agree(ctx, "bench", src) != FM_OK) goto done;
      stepped = 1;
    }
    int64_t prev_cohort = 0;
    double prev_sec = 0;
    for (size_t j = 0; j < ncohorts; j++) {
      bench_row *row = &rows[nrows++];
      snprintf(row->model, sizeof row->model, "%s", models[i]);
      row->cohort = cohorts[j];
      row->ratio = NAN;
      row->step_fwd = row->step_bwd = row->step_opt = row->step_ms = row->step_gflops = row->step_ratio = NAN;
      if (stepped) {
        row->step_fwd = step.fwd;
        row->step_bwd = step.bwd;
        row->step_opt = step.opt;
        row->step_ms = step.total;
        row->step_gflops = step.gflops;
        row->step_ratio = e.sgemm_ref > 0 ? step.gflops / e.sgemm_ref : NAN;
      }
      if (rc != FM_OK) { /* a model that does not fit the data */
        snprintf(row->status, sizeof row->status, "%s", fm_last_error());
        continue;
      }
      snprintf(row->type, sizeof row->type, "%s", fm_model_type(model));
      fm_model_flops_per_example(model, &row->flops);
      double est = prev_cohort ? prev_sec * (double)cohorts[j] / (double)prev_cohort : 0;
      if ((uint64_t)cohorts[j] > population) {
        snprintf(row->status, sizeof row->status, "more clients than the %llu in the data",
                 (unsigned long long)population);
        continue;
      }
      if (c->budget > 0 && est * (double)(c->warmup + 1) > c->budget) {
        snprintf(row->status, sizeof row->status,
                 "estimated %.1f s per round, %lld warm-up + 1 rounds exceed --budget %g (raise it to run)", est,
                 (long long)c->warmup, c->budget);
        continue;
      }
      if (wait_idle(ctx, c) != FM_OK) {
        cli_error(ctx, "bench", fm_last_error());
        goto done;
      }
      if (e.rss_window) rss_reset();
      if (run_config(&e, model, cohorts[j], row) != FM_OK) goto done;
      /* rank 0 holds the row; everyone needs the time for the next estimate */
      double sec = row->sec_median;
      if (fm_comm_bcast(ctx->comm, &sec, sizeof sec) != FM_OK) {
        cli_error(ctx, "bench", fm_last_error());
        goto done;
      }
      prev_cohort = cohorts[j];
      prev_sec = sec;
      if (ctx->rank == 0 && !c->quiet) {
        printf("%-8s %4lld clients: %d rounds, %.4f s/round (min %.4f, max %.4f), %.0f examples/s, %.1f GFLOP/s per "
               "core, train accuracy %.4f\n",
               row->model, (long long)row->cohort, row->rounds, row->sec_median, row->sec_min, row->sec_max,
               row->examples_per_s, row->gflops_core, row->train_accuracy);
        fflush(stdout);
      }
    }
    fm_model_destroy(&model);
  }

  rc = FM_OK;
  if (ctx->rank == 0) {
    print_tables(&e, rows, nrows, &sg);
    if (c->csv[0]) {
      rc = write_csv(&e, rows, nrows, &sg);
      if (rc == FM_OK) printf("wrote %s\n", c->csv);
    }
    fflush(stdout);
    size_t ran = 0;
    for (size_t i = 0; i < nrows; i++) ran += rows[i].ran != 0;
    if (rc == FM_OK && ran == 0)
      rc = fm_set_error(FM_ERR_CONFIG, "nothing was measured: every --models x --cohorts configuration was skipped "
                                       "(the table says why)");
  }
  if (cli_agree(ctx, "bench", rc) != FM_OK) goto done;
  status = CLI_EXIT_OK;

done:
  fm_model_destroy(&model);
  fm_client_data_close(&e.train);
  fm_client_data_close(&e.test);
  free(rows);
  free(c);
  return status;
}
