/* src/bench/runner.c — the workload of `fedmpi bench`: one (model, cohort)
 * configuration. It builds FedAvg (client sgdm, server sgdm, weighted by
 * examples) exactly as `fedmpi train` does, runs --warmup rounds and then up
 * to --rounds measured rounds within --budget, times a rank's reading of its
 * share of the clients, runs one evaluation pass, and reduces the per-round
 * samples to the row's medians (rank 0).
 *
 * Deliberately does not: change any numerics (a bench round is a train
 * round), write checkpoints or metrics files, or print (bar the agreed error). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int make_process(const bench_cfg *c, const fm_model *model, fm_process **out) {
  fm_optimizer *copt = NULL, *sopt = NULL;
  int rc = fm_optimizer_create_sgdm(c->client_lr, c->client_momentum, &copt);
  if (rc == FM_OK) rc = fm_optimizer_create_sgdm(c->server_lr, 0.0, &sopt);
  if (rc != FM_OK) {
    fm_optimizer_destroy(&copt);
    fm_optimizer_destroy(&sopt);
    return rc;
  }
  return fm_process_create_weighted_fed_avg(model, copt, sopt, FM_WEIGHTING_NUM_EXAMPLES, NULL, out);
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

/* What rank 0 records of each measured round, (rounds) values each. */
typedef struct round_samples {
  double *sec, *ex, *eps;                         /* wall seconds, examples, examples/s */
  double *dist, *map, *busy, *red, *srv, *idle;   /* fm_round_stats */
} round_samples;

/* 1 if every buffer was allocated. */
static int samples_alloc(round_samples *s, int total) {
  double **all[] = {&s->sec, &s->ex, &s->eps, &s->dist, &s->map, &s->busy, &s->red, &s->srv, &s->idle};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) *all[i] = calloc((size_t)total, sizeof(double));
  return s->sec && s->ex && s->dist && s->map && s->busy && s->red && s->srv && s->idle && s->eps;
}

static void samples_free(round_samples *s) {
  free(s->sec), free(s->ex), free(s->eps);
  free(s->dist), free(s->map), free(s->busy), free(s->red), free(s->srv), free(s->idle);
}

/* Collective: the warm-up and measured rounds, each on a cohort sampled into
 * clients (in->cohort). Rank 0 records each measured one and decides when the
 * budget is spent (broadcast); *measured counts the recorded rounds. Also the
 * cores other processes used while measuring. */
static int measure_rounds(const bench_env *e, const fm_process *proc, fm_state *state, const fm_round_input *in,
                          uint64_t *clients, round_samples *s, bench_row *row, int *measured) {
  cli_ctx *ctx = e->ctx;
  const bench_cfg *c = e->c;
  const int total = (int)(c->warmup + c->rounds);
  const uint64_t population = fm_client_data_num_clients(e->train);
  fm_metrics m;
  fm_metrics_init(&m);
  int rc = FM_OK;
  double start = MPI_Wtime(), t_measure = start;
  cpu_sample cpu0, cpu1;
  fm__bench_cpu_sample_take(&cpu0);
  for (int r = 0; r < total; r++) {
    if (r == c->warmup) {
      t_measure = MPI_Wtime();
      fm__bench_cpu_sample_take(&cpu0);
    }
    fm_metrics_clear(&m);
    double t0 = MPI_Wtime();
    rc = fm_sample_cohort((uint64_t)c->seed, fm_state_round(state), population, in->cohort_size, clients);
    if (rc == FM_OK) rc = fm_process_next(proc, state, in, ctx->comm, &m);
    if (rc != FM_OK) break; /* next() agrees on errors */
    double secs = MPI_Wtime() - t0;
    double stop = 0;
    if (ctx->rank == 0 && r >= c->warmup) {
      int i = (*measured)++;
      s->sec[i] = secs;
      fm_metrics_get(&m, "client_work/train/num_examples", &s->ex[i]);
      s->eps[i] = secs > 0 ? s->ex[i] / secs : 0;
      s->dist[i] = in->stats->distribute;
      s->map[i] = in->stats->map_wall;
      s->busy[i] = in->stats->busy_sum;
      s->red[i] = in->stats->reduce;
      s->srv[i] = in->stats->server;
      s->idle[i] = in->stats->idle_fraction;
      row->train_accuracy = row->train_loss = NAN;
      fm_metrics_get(&m, "client_work/train/accuracy", &row->train_accuracy);
      fm_metrics_get(&m, "client_work/train/loss", &row->train_loss);
      /* stop when the next round (about as long as this one) would pass the budget */
      if (c->budget > 0 && MPI_Wtime() - start + secs > c->budget) stop = 1;
    }
    if ((rc = fm_comm_bcast(ctx->comm, &stop, sizeof stop)) != FM_OK) break;
    if (stop > 0) break;
  }
  fm_metrics_free(&m);
  if (rc != FM_OK) return rc;
  fm__bench_cpu_sample_take(&cpu1);
  return fm__bench_other_load(ctx, &cpu0, &cpu1, MPI_Wtime() - t_measure, &row->other);
}

/* Collective: one evaluation pass of the trained weights (NaN without test data). */
static int eval_pass(const bench_env *e, const fm_model *model, const fm_state *state, bench_row *row) {
  cli_ctx *ctx = e->ctx;
  const bench_cfg *c = e->c;
  row->eval_sec = row->eval_examples = row->eval_accuracy = NAN;
  if (!e->test) return FM_OK;
  uint64_t *eval_clients = NULL;
  size_t ne = 0;
  int rc = FM_OK;
  if (c->eval_clients > 0) {
    ne = (size_t)c->eval_clients;
    eval_clients = malloc(ne * sizeof *eval_clients);
    rc = eval_clients ? fm_sample_cohort((uint64_t)c->seed ^ (1ull << 63), fm_state_round(state),
                                         fm_client_data_num_clients(e->test), ne, eval_clients)
                      : fm_set_error(FM_ERR_NOMEM, "out of memory");
  }
  fm_metrics em;
  fm_metrics_init(&em);
  double t0 = MPI_Wtime();
  if (rc == FM_OK)
    rc = fm_evaluate(model, fm_state_weights(state), e->test, eval_clients, ne, (size_t)c->eval_batch_size, e->nt,
                     ctx->comm, &em);
  double t = MPI_Wtime() - t0;
  if (rc == FM_OK && ctx->rank == 0) { /* failures are agreed inside */
    row->eval_sec = t;
    fm_metrics_get(&em, "num_examples", &row->eval_examples);
    fm_metrics_get(&em, "accuracy", &row->eval_accuracy);
  }
  fm_metrics_free(&em);
  free(eval_clients);
  return rc;
}

/* Collective: the peak memory of every rank, into rank 0's row. */
static int gather_rss(cli_ctx *ctx, bench_row *row) {
  double mb = fm__bench_rss_peak_mb();
  void *all = NULL;
  size_t bytes = 0;
  FM_CALL_CLI(fm_comm_gather(ctx->comm, &mb, sizeof mb, &all, &bytes));
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
  return FM_OK;
}

/* Rank 0: the measured rounds' medians (and extremes) into the row. */
static void summarize(const bench_env *e, round_samples *s, int measured, bench_row *row) {
  row->ran = 1;
  row->rounds = measured;
  snprintf(row->status, sizeof row->status, "ok");
  double busy_med = fm__bench_median(s->busy, (size_t)measured);
  double ex_med = fm__bench_median(s->ex, (size_t)measured);
  row->examples = ex_med;
  row->examples_per_s = fm__bench_median(s->eps, (size_t)measured);
  qsort(s->sec, (size_t)measured, sizeof *s->sec, fm__bench_cmp_double);
  row->sec_min = s->sec[0];
  row->sec_max = s->sec[measured - 1];
  row->sec_median = fm__bench_median(s->sec, (size_t)measured);
  row->distribute = fm__bench_median(s->dist, (size_t)measured);
  row->map = fm__bench_median(s->map, (size_t)measured);
  row->busy = busy_med;
  row->reduce = fm__bench_median(s->red, (size_t)measured);
  row->server = fm__bench_median(s->srv, (size_t)measured);
  row->idle = fm__bench_median(s->idle, (size_t)measured);
  double flops = row->flops.train * ex_med;
  row->gflops_round = row->sec_median > 0 ? flops / row->sec_median * 1e-9 : NAN;
  row->gflops_core = busy_med > 0 ? flops / busy_med * 1e-9 : NAN;
  row->ratio = e->sgemm_ref > 0 ? row->gflops_core / e->sgemm_ref : NAN;
}

int fm__bench_run_config(const bench_env *e, const fm_model *model, int64_t cohort, bench_row *row) {
  cli_ctx *ctx = e->ctx;
  const bench_cfg *c = e->c;
  fm_process *proc = NULL;
  fm_state *state = NULL;
  uint64_t *clients = malloc((size_t)cohort * sizeof *clients);
  round_samples s;
  int have_samples = samples_alloc(&s, (int)(c->warmup + c->rounds));
  int rc = clients && have_samples ? FM_OK : fm_set_error(FM_ERR_NOMEM, "out of memory");
  if (rc == FM_OK) rc = make_process(c, model, &proc);
  if (rc == FM_OK) rc = fm_process_initialize(proc, (uint64_t)c->seed, &state);
  rc = cli_agree(ctx, "bench", rc); /* prints the agreed message */
  int reported = rc != FM_OK, measured = 0;

  fm_executor *exec = NULL;
  if (rc == FM_OK) rc = cli_agree(ctx, "bench", fm_executor_create(&exec));
  reported = rc != FM_OK;
  fm_round_stats stats;
  fm_round_input in = {.data = e->train,
                       .batching = {.epochs = (int)c->epochs, .batch_size = (size_t)c->batch_size, .shuffle = 1},
                       .cohort = clients,
                       .cohort_size = (size_t)cohort,
                       .num_threads = e->nt,
                       .assignment = strcmp(c->assignment, "balanced") == 0 ? FM_ASSIGN_BALANCED : FM_ASSIGN_SHARD,
                       .stats = &stats,
                       .executor = exec};
  if (rc == FM_OK) rc = measure_rounds(e, proc, state, &in, clients, &s, row, &measured);
  if (rc == FM_OK) rc = time_loads(ctx, e->train, clients, (size_t)cohort, (int)c->epochs, in.assignment, &row->load);
  if (rc == FM_OK) rc = eval_pass(e, model, state, row);
  if (rc == FM_OK) rc = gather_rss(ctx, row);
  if (rc == FM_OK && ctx->rank == 0) summarize(e, &s, measured, row);

  /* every failure here is agreed, so every rank takes this path with the same message */
  if (rc != FM_OK && !reported) cli_error(ctx, "bench", fm_last_error());
  fm_state_destroy(&state);
  fm_executor_destroy(&exec);
  fm_process_destroy(&proc);
  free(clients);
  samples_free(&s);
  return rc;
}
