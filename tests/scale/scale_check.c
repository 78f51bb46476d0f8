/* tests/scale/scale_check.c — compare scale_population's results at several
 * population sizes: memory and per-round overhead must not grow with N.
 *
 * usage: scale_check [--report-only] RESULT.txt...   (the smallest N first)
 *
 * Against the first file (the smallest population), every other file must
 * have, robust to a noisy machine:
 *   peak RSS of each rank     <= first + 5 MiB (a per-client array of 8
 *                                bytes is 8 MB at 10^6 clients)
 *   sample + assign time      <= 2 x first + 1 ms (medians over rounds of the
 *                                fastest of 3 repetitions: pure CPU, O(cohort))
 *   overhead outside training <= 3 x first + 5 ms (sample + assign +
 *                                distribute + reduction + server; the
 *                                minimum over rounds: a cost that grows
 *                                with N is in every round, while a
 *                                descheduled rank on a busy machine adds
 *                                tens of ms to some rounds' medians)
 * and the same cohort and layout. --report-only prints the table and the
 * verdicts but exits 0 (sanitizer builds, where RSS and time mean little).
 * Prints one table row per file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_FILES = 16, MAX_RANKS = 64 };

typedef struct result {
  const char *path;
  double population, cohort, ranks;
  double rss[MAX_RANKS];
  double sample, assign, distribute, reduce, server, outside, overhead, overhead_min, client_map, round_s, idle;
} result;

static int read_result(const char *path, result *r) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "scale_check: cannot read %s\n", path);
    return 0;
  }
  memset(r, 0, sizeof *r);
  for (int i = 0; i < MAX_RANKS; i++) r->rss[i] = -1;
  r->path = path;
  r->overhead = -1;
  char key[64];
  double v;
  while (fscanf(f, "%63s %lf", key, &v) == 2) {
    int rk;
    if (!strcmp(key, "population")) r->population = v;
    else if (!strcmp(key, "cohort")) r->cohort = v;
    else if (!strcmp(key, "ranks")) r->ranks = v;
    else if (sscanf(key, "rss_kib_rank%d", &rk) == 1 && rk >= 0 && rk < MAX_RANKS) r->rss[rk] = v;
    else if (!strcmp(key, "sample_s")) r->sample = v;
    else if (!strcmp(key, "assign_s")) r->assign = v;
    else if (!strcmp(key, "distribute_s")) r->distribute = v;
    else if (!strcmp(key, "reduce_s")) r->reduce = v;
    else if (!strcmp(key, "server_s")) r->server = v;
    else if (!strcmp(key, "outside_s")) r->outside = v;
    else if (!strcmp(key, "overhead_s")) r->overhead = v;
    else if (!strcmp(key, "overhead_min_s")) r->overhead_min = v;
    else if (!strcmp(key, "client_map_s")) r->client_map = v;
    else if (!strcmp(key, "round_s")) r->round_s = v;
    else if (!strcmp(key, "idle_fraction")) r->idle = v;
  }
  fclose(f);
  if (r->population <= 0 || r->ranks < 1 || r->ranks > MAX_RANKS || r->overhead < 0 || r->overhead_min <= 0) {
    fprintf(stderr, "scale_check: %s is not a complete scale_population result\n", path);
    return 0;
  }
  for (int i = 0; i < (int)r->ranks; i++)
    if (r->rss[i] < 0) {
      fprintf(stderr, "scale_check: %s has no rss_kib_rank%d\n", path, i);
      return 0;
    }
  return 1;
}

int main(int argc, char **argv) {
  int report_only = 0, n = 0;
  result res[MAX_FILES];
  for (int a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "--report-only")) {
      report_only = 1;
      continue;
    }
    if (n == MAX_FILES || !read_result(argv[a], &res[n])) return 2;
    n++;
  }
  if (n < 2) {
    fprintf(stderr, "usage: scale_check [--report-only] RESULT.txt RESULT.txt...\n");
    return 2;
  }
  const double rss_tol_kib = 5 * 1024.0;
  printf("%12s %8s %14s %10s %10s %11s %11s %9s %10s %14s %10s %7s\n", "population", "cohort", "max RSS (MiB)",
         "sample ms", "assign ms", "outside ms", "overhead ms", "(min) ms", "reduce* ms", "client map ms", "round ms",
         "idle");
  for (int i = 0; i < n; i++) {
    const result *r = &res[i];
    double mx = 0;
    for (int k = 0; k < (int)r->ranks; k++) mx = fmax(mx, r->rss[k]);
    printf("%12.0f %8.0f %14.1f %10.3f %10.3f %11.3f %11.3f %9.3f %10.3f %14.1f %10.1f %7.3f\n", r->population,
           r->cohort, mx / 1024.0, 1e3 * r->sample, 1e3 * r->assign, 1e3 * r->outside, 1e3 * r->overhead,
           1e3 * r->overhead_min, 1e3 * r->reduce, 1e3 * r->client_map, 1e3 * r->round_s, r->idle);
  }
  printf("(outside = round - client map: distribute + reduction + server; overhead = sample + assign + outside;\n"
         " reduce* includes waiting for the slowest rank; all medians over rounds)\n");
  int failed = 0;
  const result *b = &res[0];
  for (int i = 1; i < n; i++) {
    const result *r = &res[i];
    if (r->cohort != b->cohort || r->ranks != b->ranks) {
      printf("FAIL %s: cohort/ranks %.0f/%.0f differ from %s's %.0f/%.0f\n", r->path, r->cohort, r->ranks, b->path,
             b->cohort, b->ranks);
      failed = 1;
      continue;
    }
    for (int k = 0; k < (int)r->ranks; k++) {
      double d = r->rss[k] - b->rss[k];
      int ok = d <= rss_tol_kib;
      printf("%s N %.0f rank %d: peak RSS %+.1f MiB vs N %.0f (limit +%.0f MiB)\n", ok ? "ok  " : "FAIL", r->population,
             k, d / 1024.0, b->population, rss_tol_kib / 1024.0);
      failed |= !ok;
    }
    double sa = r->sample + r->assign, sb = b->sample + b->assign;
    int ok = sa <= 2.0 * sb + 1e-3;
    printf("%s N %.0f: sample + assign %.3f ms vs %.3f ms at N %.0f (limit 2x + 1 ms)\n", ok ? "ok  " : "FAIL",
           r->population, 1e3 * sa, 1e3 * sb, b->population);
    failed |= !ok;
    ok = r->overhead_min <= 3.0 * b->overhead_min + 5e-3;
    printf("%s N %.0f: overhead (minimum over rounds) %.3f ms vs %.3f ms at N %.0f (limit 3x + 5 ms)\n",
           ok ? "ok  " : "FAIL", r->population, 1e3 * r->overhead_min, 1e3 * b->overhead_min, b->population);
    failed |= !ok;
  }
  if (failed && report_only) printf("(--report-only: not failing)\n");
  return failed && !report_only ? 1 : 0;
}
