/* bench/exact_sum.c — what exact, order-independent summation costs.
 *
 * Times adding one client's weighted update of P floats into the
 * accumulator three ways: a float axpy (cblas_saxpy, what a naive simulator
 * does), a double accumulator, and fedmpi's 128-bit fixed point
 * (fm_exact_add_scaled); and the conversion of the summed result back
 * (fm_exact_to_double one by one, and fm_exact_to_double_n, the aggregators'
 * loop) and the merge of two accumulators (fm_exact_accumulate, the threads'
 * and the MPI reduction's operation). Prints ns per element (median of
 * repetitions) and the cost per client relative to one local-training step of
 * the 2NN.
 *
 * usage: fm_bench_exact [P] [REPS]   (default P = 199210, the 2NN) */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fedmpi/exact.h"
#include "fedmpi/rng.h"
#include "timing.h"

int main(int argc, char **argv) {
  size_t p = argc > 1 ? (size_t)atol(argv[1]) : 199210;
  int reps = argc > 2 ? atoi(argv[2]) : 21;
  float *x = malloc(p * sizeof *x), *accf = calloc(p, sizeof *accf);
  double *accd = calloc(p, sizeof *accd);
  fm_exact *acce = calloc(p, sizeof *acce);
  fm_exact *acc2 = calloc(p, sizeof *acc2);
  double *out = malloc(p * sizeof *out);
  double *t = malloc((size_t)reps * sizeof *t), tf, td, te, tc, tn, ta;
  fm_rng r;
  fm_rng_init(&r, 1, 0, 0, FM_RNG_USER);
  for (size_t i = 0; i < p; i++) x[i] = (float)(1e-3 * fm_rng_normal(&r));
  openblas_set_num_threads(1);
  const float w = 600.0f;
  double lim = fm_exact_limit(10001), sink = 0;

  for (int k = 0; k < reps; k++) {
    double t0 = bench_now();
    cblas_saxpy((int)p, w, x, 1, accf, 1);
    t[k] = bench_now() - t0;
  }
  tf = bench_median(t, reps);
  for (int k = 0; k < reps; k++) {
    double t0 = bench_now();
    for (size_t i = 0; i < p; i++) accd[i] += (double)w * (double)x[i];
    t[k] = bench_now() - t0;
  }
  td = bench_median(t, reps);
  for (int k = 0; k < reps; k++) {
    double t0 = bench_now();
    fm_exact_add_scaled(acce, x, w, p, lim);
    t[k] = bench_now() - t0;
  }
  te = bench_median(t, reps);
  for (int k = 0; k < reps; k++) {
    double t0 = bench_now();
    for (size_t i = 0; i < p; i++) sink += fm_exact_to_double(&acce[i]);
    t[k] = bench_now() - t0;
  }
  tc = bench_median(t, reps);
  for (int k = 0; k < reps; k++) {
    double t0 = bench_now();
    fm_exact_to_double_n(out, acce, p);
    t[k] = bench_now() - t0;
    sink += out[k % p];
  }
  tn = bench_median(t, reps);
  for (int k = 0; k < reps; k++) {
    double t0 = bench_now();
    fm_exact_accumulate(acc2, acce, p);
    t[k] = bench_now() - t0;
  }
  ta = bench_median(t, reps);

  /* one 2NN training step on a batch of 32 is about 32 x 1.2 MFLOP; at the
   * ~50 GFLOP/s this machine's single-core SGEMM gives, about 0.8 ms */
  double step = 32 * 1.19e6 / 50e9;
  printf("P = %zu floats, median of %d\n", p, reps);
  printf("%-38s %8.3f ns/element  %8.3f ms/client\n", "float axpy (cblas_saxpy)", 1e9 * tf / (double)p, 1e3 * tf);
  printf("%-38s %8.3f ns/element  %8.3f ms/client\n", "double accumulate", 1e9 * td / (double)p, 1e3 * td);
  printf("%-38s %8.3f ns/element  %8.3f ms/client\n", "exact 128-bit (fm_exact_add_scaled)", 1e9 * te / (double)p,
         1e3 * te);
  printf("%-38s %8.3f ns/element  %8.3f ms/round\n", "exact -> double (fm_exact_to_double)", 1e9 * tc / (double)p,
         1e3 * tc);
  printf("%-38s %8.3f ns/element  %8.3f ms/round\n", "exact -> double (fm_exact_to_double_n)", 1e9 * tn / (double)p,
         1e3 * tn);
  printf("%-38s %8.3f ns/element  %8.3f ms/merge\n", "exact + exact (fm_exact_accumulate)", 1e9 * ta / (double)p,
         1e3 * ta);
  printf(
      "exact vs float axpy: %.1fx; per client that is %.2f 2NN training "
      "steps of batch 32\n",
      te / tf, te / step);
  printf("reduction message: %zu bytes exact vs %zu bytes float (4x)\n", p * sizeof(fm_exact), p * sizeof(float));
  if (sink == 12345.678) puts("");
  free(x), free(accf), free(accd), free(acce), free(acc2), free(out), free(t);
  return 0;
}
