/* src/bench/bench.h — private to `fedmpi bench`: its configuration, the
 * result row of one (model, cohort) configuration, and the parts that
 * cmd.c composes into the command:
 *
 *   machine.c  the machine: CPU load of other processes, waiting for quiet, peak RSS, medians
 *   sgemm.c    the reference: this machine's single-threaded cblas_sgemm GFLOP/s
 *   step.c     the step profiler: one model's training step alone, on one thread
 *   runner.c   the workload: FedAvg rounds of one configuration, timed, then evaluated
 *   report.c   the output: the tables on stdout and the CSV
 *   cmd.c      the options and the command driver
 *
 * Functions marked Collective are called by every rank in lockstep. */
#ifndef FEDMPI_BENCH_H
#define FEDMPI_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "../cli/cli.h"

enum { BENCH_MAX_LIST = 32 }; /* models or cohort sizes per run */
enum { BENCH_NAME_MAX = 256 }; /* a model name, a layer stack's included */

typedef struct bench_cfg {
  char data[CLI_STR_MAX], test_data[CLI_STR_MAX], work_dir[CLI_STR_MAX], dataset_dir[CLI_STR_MAX];
  char models[CLI_STR_MAX], cohorts[CLI_STR_MAX], csv[CLI_STR_MAX], assignment[CLI_STR_MAX];
  int64_t warmup, rounds, epochs, batch_size, threads, seed, eval_clients, eval_batch_size, cache_mb;
  int64_t sgemm_trials;
  double budget, client_lr, client_momentum, server_lr, sgemm_seconds, step_seconds, wait_idle;
  int no_eval, no_sgemm, quiet;
} bench_cfg;

/* ---- machine.c ------------------------------------------------------------------- */

/* CPU time in seconds: busy time of the whole node (all CPUs, /proc/stat,
 * steal included) and this process's own (every thread). */
typedef struct cpu_sample {
  char host[64];
  double node_busy, self;
} cpu_sample;

/* qsort comparison of doubles, ascending. */
int fm__bench_cmp_double(const void *a, const void *b);
/* Median of v (n), which gets sorted; NaN for n = 0. */
double fm__bench_median(double *v, size_t n);
/* Start a new peak-RSS window (Linux: "5" > /proc/self/clear_refs). 1 if it worked. */
int fm__bench_rss_reset(void);
/* Peak resident set in MB: VmHWM (since the last reset), else ru_maxrss. */
double fm__bench_rss_peak_mb(void);
void fm__bench_cpu_sample_take(cpu_sample *c);
/* Collective: the cores other processes kept busy between a and b (this
 * rank's samples) during wall seconds, the largest over the nodes: node busy
 * time minus the CPU time of the ranks on that node. On rank 0. */
int fm__bench_other_load(cli_ctx *ctx, const cpu_sample *a, const cpu_sample *b, double wall, double *out);
/* Collective: wait (at most c->wait_idle seconds) for one second in which
 * other processes keep fewer than 0.15 cores of any node busy. */
int fm__bench_wait_idle(cli_ctx *ctx, const bench_cfg *c);

/* ---- sgemm.c --------------------------------------------------------------------- */

typedef struct sgemm_shape {
  const char *label;
  size_t m, n, k;
  int ta, tb;
} sgemm_shape;

enum { BENCH_NUM_SHAPES = 4 };
/* The first is the reference of the ratio column ("the machine's SGEMM"). */
extern const sgemm_shape fm__bench_sgemm_shapes[BENCH_NUM_SHAPES];

typedef struct sgemm_result {
  double alone[BENCH_NUM_SHAPES];    /* one core, every other rank and thread idle (rank 0) */
  double per_core[BENCH_NUM_SHAPES]; /* median over every thread of every rank, all running at once */
  double total[BENCH_NUM_SHAPES];    /* sum over them */
  double other;                      /* cores other processes used meanwhile */
} sgemm_result;

/* Collective. Rank 0 alone first, then all ranks x nt threads at once. */
int fm__bench_measure_sgemm(cli_ctx *ctx, const bench_cfg *c, int nt, sgemm_result *out);

/* ---- step.c ---------------------------------------------------------------------- */

typedef struct step_result {
  double fwd, bwd, opt, total; /* ms per step: forward, backward, zeroing the gradient + sgdm step, all */
  double gflops;               /* train flops of the batch / total */
} step_result;

/* Rank 0 only, one thread: the training step of model alone (see step.c). */
int fm__bench_measure_step(const bench_cfg *c, const fm_model *model, const fm_model_flops *fl,
                           const fm_client_data *data, step_result *out);

/* ---- runner.c -------------------------------------------------------------------- */

typedef struct bench_row {
  char model[BENCH_NAME_MAX], type[BENCH_NAME_MAX], status[256];
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

/* What every configuration of one invocation shares. */
typedef struct bench_env {
  cli_ctx *ctx;
  const bench_cfg *c;
  fm_client_data *train, *test;
  int nt;
  int rss_window; /* 1: peak RSS is per configuration */
  double sgemm_ref; /* SGEMM 1024^3 alone, GFLOP/s (0: not measured) */
} bench_env;

/* Collective: run one (model, cohort) configuration into row (filled on
 * rank 0). On failure the agreed message is already printed. */
int fm__bench_run_config(const bench_env *e, const fm_model *model, int64_t cohort, bench_row *row);

/* ---- report.c -------------------------------------------------------------------- */

/* Rank 0: the SGEMM, step, throughput and time-split tables on stdout. */
void fm__bench_print_tables(const bench_env *e, const bench_row *rows, size_t n, const sgemm_result *sg);
/* Rank 0: every number of every row into --csv. */
int fm__bench_write_csv(const bench_env *e, const bench_row *rows, size_t n, const sgemm_result *sg);

#endif
