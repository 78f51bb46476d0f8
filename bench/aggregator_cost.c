/* bench/aggregator_cost.c — what each aggregator adds to a round.
 *
 * Runs one round of each aggregator chain over K clients' values of P floats
 * through fm_aggregation_process (the same per-client and server steps as a
 * learning round, on one thread) and prints the median time per round, per
 * client, and its ratio to the plain mean. The per-client part (norms,
 * clipping, quantisation, masks) runs on the training threads in a real
 * round and the server part (noise, dequantisation) on rank 0.
 *
 * usage: fm_bench_aggregators [P [K [REPS [CHAIN...]]]]
 *   default P = 1663370 (the CNN), K = 100, REPS = 3, and the chains below */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fedmpi/fedmpi.h"
#include "timing.h"

int main(int argc, char **argv) {
  size_t p = argc > 1 ? (size_t)atol(argv[1]) : 1663370, k = argc > 2 ? (size_t)atol(argv[2]) : 100;
  int reps = argc > 3 ? atoi(argv[3]) : 3;
  char kdef[4][160];
  snprintf(kdef[0], sizeof kdef[0], "gaussian_fixed(noise_multiplier=1, clients_per_round=%zu, clip=0.1)", k);
  snprintf(kdef[1], sizeof kdef[1], "dp_aggregator(noise_multiplier=1, clients_per_round=%zu)", k);
  const char *defaults[] = {"mean", "clipping(mean, clipping_norm=0.1)", "robust_aggregator()", kdef[0], kdef[1]};
  const char **chains = argc > 4 ? (const char **)(argv + 4) : defaults;
  int nchains = argc > 4 ? argc - 4 : (int)(sizeof defaults / sizeof *defaults);
  /* 8 distinct client values, cycled: norms around 0.1 to 0.5 */
  enum { DISTINCT = 8 };
  float *vals = malloc(DISTINCT * p * sizeof *vals);
  const float **ptrs = malloc(k * sizeof *ptrs);
  double *out = malloc(p * sizeof *out), *t = malloc((size_t)reps * sizeof *t), base = 0;
  if (!vals || !ptrs || !out || !t) return 1;
  fm_rng r;
  fm_rng_init(&r, 1, 0, 0, FM_RNG_USER);
  for (size_t i = 0; i < DISTINCT * p; i++) vals[i] = (float)(2e-4 * fm_rng_normal(&r));
  for (size_t i = 0; i < k; i++) ptrs[i] = vals + (i % DISTINCT) * p;
  printf("P = %zu floats, K = %zu clients per round, median of %d rounds\n", p, k, reps);
  printf("%-72s %10s %12s %8s\n", "aggregator", "ms/round", "ms/client", "x mean");
  for (int c = 0; c < nchains; c++) {
    fm_aggregator *agg;
    fm_aggregation_process *ap;
    if (fm_aggregator_create_from_spec(chains[c], &agg) != FM_OK ||
        fm_aggregation_process_create(agg, p, 1, &ap) != FM_OK) {
      fprintf(stderr, "%s: %s\n", chains[c], fm_last_error());
      return 1;
    }
    for (int i = 0; i < reps; i++) {
      double t0 = bench_now();
      if (fm_aggregation_process_next(ap, ptrs, NULL, k, out, NULL) != FM_OK) {
        fprintf(stderr, "%s: %s\n", chains[c], fm_last_error());
        return 1;
      }
      t[i] = bench_now() - t0;
    }
    double med = bench_median(t, reps);
    if (c == 0) base = med;
    printf("%-72s %10.1f %12.3f %8.2f\n", chains[c], 1e3 * med, 1e3 * med / (double)k, med / base);
    fm_aggregation_process_destroy(&ap);
    fm_aggregator_destroy(&agg);
  }
  free(vals);
  free(ptrs);
  free(out);
  free(t);
  return 0;
}
