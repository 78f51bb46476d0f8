/* src/bench/machine.c — what `fedmpi bench` measures about the machine
 * around its timings: how busy other processes keep each node (so a run can
 * wait for quiet, and the tables can say how disturbed a number was), the
 * peak resident memory, and the medians the tables report.
 *
 * Deliberately does not: time anything of fedmpi's own (runner.c, step.c,
 * sgemm.c do). Linux /proc is used where present; elsewhere the load is NaN
 * ("cannot tell") and the peak RSS is the process's peak so far. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

int fm__bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double fm__bench_median(double *v, size_t n) {
  if (n == 0) return NAN;
  qsort(v, n, sizeof *v, fm__bench_cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int fm__bench_rss_reset(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return 0;
  int ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

double fm__bench_rss_peak_mb(void) {
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

void fm__bench_cpu_sample_take(cpu_sample *c) {
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

int fm__bench_other_load(cli_ctx *ctx, const cpu_sample *a, const cpu_sample *b, double wall, double *out) {
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

int fm__bench_wait_idle(cli_ctx *ctx, const bench_cfg *c) {
  if (c->wait_idle <= 0) return FM_OK;
  double deadline = MPI_Wtime() + c->wait_idle;
  for (;;) {
    cpu_sample a, b;
    fm__bench_cpu_sample_take(&a);
    double t0 = MPI_Wtime();
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    fm__bench_cpu_sample_take(&b);
    double load = 0, go = 0;
    FM_CALL_CLI(fm__bench_other_load(ctx, &a, &b, MPI_Wtime() - t0, &load));
    if (ctx->rank == 0) go = !(load >= 0.15) || MPI_Wtime() >= deadline; /* NaN: cannot tell, go */
    FM_CALL_CLI(fm_comm_bcast(ctx->comm, &go, sizeof go));
    if (go > 0) return FM_OK;
  }
}
