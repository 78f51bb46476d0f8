/* src/bench/sgemm.c — the reference `fedmpi bench` compares local training
 * with: this machine's single-threaded cblas_sgemm GFLOP/s on a square shape
 * and on shapes the 2NN and the CNN run, first on one core with every other
 * rank and thread idle, then on every thread of every rank at once.
 *
 * Deliberately does not: time fedmpi's kernels (step.c does) or pick the
 * shapes from the models being run (the table is fixed, so runs compare). */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

const sgemm_shape fm__bench_sgemm_shapes[BENCH_NUM_SHAPES] = {
    {"1024x1024x1024 (square)", 1024, 1024, 1024, 0, 0},
    {"32x200x784 (2nn dense_0 forward, batch 32)", 32, 200, 784, 0, 0},
    {"784x200x32 A^T (2nn dense_0 weight gradient)", 784, 200, 32, 1, 0},
    {"196x64x800 (cnn conv2d_1 forward, one example)", 196, 64, 800, 0, 0},
};

/* Collective: shape s on every thread of every rank at once; rank 0 gets the
 * median per thread and the sum. */
static int sgemm_all_cores(cli_ctx *ctx, const bench_cfg *c, int nt, int s, sgemm_result *out) {
  const sgemm_shape *sh = &fm__bench_sgemm_shapes[s];
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
    out->per_core[s] = fm__bench_median(rates, n);
  }
  free(all);
  return FM_OK;
}

int fm__bench_measure_sgemm(cli_ctx *ctx, const bench_cfg *c, int nt, sgemm_result *out) {
  memset(out, 0, sizeof *out);
  int rc = FM_OK;
  cpu_sample cpu0, cpu1;
  fm__bench_cpu_sample_take(&cpu0);
  double t0 = MPI_Wtime();
  for (int s = 0; s < BENCH_NUM_SHAPES; s++) {
    const sgemm_shape *sh = &fm__bench_sgemm_shapes[s];
    FM_CALL_CLI(fm_comm_agree(ctx->comm, FM_OK)); /* a barrier */
    if (ctx->rank == 0)
      rc = fm_sgemm_gflops(sh->m, sh->n, sh->k, sh->ta, sh->tb, (int)c->sgemm_trials, c->sgemm_seconds, &out->alone[s]);
    FM_CALL_CLI(fm_comm_agree(ctx->comm, rc));
    FM_CALL_CLI(sgemm_all_cores(ctx, c, nt, s, out));
  }
  fm__bench_cpu_sample_take(&cpu1);
  return fm__bench_other_load(ctx, &cpu0, &cpu1, MPI_Wtime() - t0, &out->other);
}
