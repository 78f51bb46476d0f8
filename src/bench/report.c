/* src/bench/report.c — the output of `fedmpi bench`: the tables rank 0
 * prints (SGEMM, the step alone, throughput, the time split of a round) and
 * the CSV with every number of every configuration, one row each.
 *
 * Deliberately does not: measure or compute anything (the rows arrive
 * complete), or print on any rank but the caller's (rank 0). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void fm__bench_print_tables(const bench_env *e, const bench_row *rows, size_t n, const sgemm_result *sg) {
  const bench_cfg *c = e->c;
  if (!c->no_sgemm) {
    printf("\nSGEMM, single-threaded cblas_sgemm, median of %lld timings of >= %g s (GFLOP/s):\n",
           (long long)c->sgemm_trials, c->sgemm_seconds);
    printf("  %-48s %10s %18s %12s\n", "shape M x N x K", "1 core", "all cores: median", "sum");
    for (int s = 0; s < BENCH_NUM_SHAPES; s++)
      printf("  %-48s %10.1f %18.1f %12.1f\n", fm__bench_sgemm_shapes[s].label, sg->alone[s], sg->per_core[s], sg->total[s]);
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

int fm__bench_write_csv(const bench_env *e, const bench_row *rows, size_t n, const sgemm_result *sg) {
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
