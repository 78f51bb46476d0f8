/* tests/scale/scale_population.c — FedAvg (softmax) on a procedural
 * Synthetic(1, 1) population of N small clients, K clients per round, under
 * MPI: peak memory per rank and the per-round cost outside local training.
 *
 * usage: scale_population N K ROUNDS OUT.txt [shard|balanced]
 *
 * The data is fm_client_data_open_spec("synthetic:clients=N,max-examples=20,
 * seed=1"): every client has 18 train examples, nothing is stored per
 * client. Each round samples K clients (fm_sample_cohort), assigns them
 * (fm_assign_clients, balanced by default, with each client's examples as
 * its work, exactly what the round does internally) and runs
 * fm_process_next with fm_round_stats. Sampling and assignment are timed
 * here: the fastest of 3 repetitions on each rank (robust to preemption on
 * a busy machine), then the slowest rank. The rest comes from
 * fm_round_stats on rank 0: distribute, client map (slowest rank), reduce
 * and server. `reduce` includes waiting for the slowest rank to finish its
 * clients, i.e. load imbalance and machine noise, so the overhead uses
 *   outside  = wall - client map = distribute + server + the reduction
 *              itself (rank 0's round minus the slowest rank's local training)
 *   overhead = sample + assign + outside
 * the part of a round that is not local training. Medians (and, for the
 * overhead, the minimum: what every round costs at least, which a busy
 * machine cannot inflate) are over the rounds after the first. Peak RSS is
 * getrusage's ru_maxrss of each rank at the end.
 *
 * Rank 0 prints a summary and writes OUT.txt as "key value" lines
 * (scale_check compares the files of several N). Exits non-zero if a round
 * did not train exactly K x 18 examples. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fedmpi/fedmpi.h"
#include "fedmpi/runtime.h"

#include "fm_mpi_check.h"

enum { TRAIN_EXAMPLES = 18 }; /* max-examples=20 minus round(0.1 x 20) test examples */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of v[from..n) (v is reordered). */
static double median(double *v, int from, int n) {
  int m = n - from;
  if (m <= 0) return NAN;
  qsort(v + from, (size_t)m, sizeof *v, cmp_double);
  return m % 2 ? v[from + m / 2] : 0.5 * (v[from + m / 2 - 1] + v[from + m / 2]);
}

int main(int argc, char **argv) {
  int provided, rank = 0, size = 1;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 5) {
    if (rank == 0) fprintf(stderr, "usage: scale_population N K ROUNDS OUT.txt [shard|balanced]\n");
    MPI_Finalize();
    return 2;
  }
  const unsigned long long N = strtoull(argv[1], NULL, 10);
  const size_t K = (size_t)strtoull(argv[2], NULL, 10);
  const int rounds = atoi(argv[3]);
  const fm_assignment policy = argc > 5 && !strcmp(argv[5], "shard") ? FM_ASSIGN_SHARD : FM_ASSIGN_BALANCED;
  if (N == 0 || K == 0 || K > N || rounds < 2) {
    if (rank == 0) fprintf(stderr, "scale_population: need 1 <= K <= N and ROUNDS >= 2\n");
    MPI_Finalize();
    return 2;
  }
  fm_comm *comm;
  CHECK(fm_comm_create_mpi(MPI_COMM_WORLD, &comm));
  const int nt = fm_runtime_setup_threads(1);

  char spec[128];
  snprintf(spec, sizeof spec, "synthetic:clients=%llu,max-examples=20,seed=1", N);
  fm_client_data *data;
  CHECK(fm_client_data_open_spec(spec, NULL, &data));
  fm_input_spec ispec;
  size_t shape[1] = {60};
  CHECK(fm_input_spec_set(&ispec, 1, shape, 10));
  fm_model *model;
  CHECK(fm_model_create_by_name("softmax", &ispec, &model));
  fm_optimizer *copt, *sopt;
  CHECK(fm_optimizer_create_sgdm(0.05, 0.0, &copt));
  CHECK(fm_optimizer_create_sgdm(1.0, 0.0, &sopt));
  fm_process *p;
  CHECK(fm_process_create_weighted_fed_avg(model, copt, sopt, FM_WEIGHTING_NUM_EXAMPLES, NULL, &p));
  fm_state *s;
  CHECK(fm_process_initialize(p, 1, &s));

  uint64_t *cohort = malloc(K * sizeof *cohort), *work = malloc(K * sizeof *work);
  int *owner = malloc(K * sizeof *owner);
  double *t_sample = calloc((size_t)rounds, sizeof(double)), *t_assign = calloc((size_t)rounds, sizeof(double));
  double *t_dist = calloc((size_t)rounds, sizeof(double)), *t_reduce = calloc((size_t)rounds, sizeof(double));
  double *t_server = calloc((size_t)rounds, sizeof(double)), *t_map = calloc((size_t)rounds, sizeof(double));
  double *t_over = calloc((size_t)rounds, sizeof(double)), *idle = calloc((size_t)rounds, sizeof(double));
  double *t_wall = calloc((size_t)rounds, sizeof(double)), *t_out = calloc((size_t)rounds, sizeof(double));
  if (!cohort || !work || !owner || !t_sample || !t_assign || !t_dist || !t_reduce || !t_server || !t_map ||
      !t_over || !idle || !t_wall || !t_out) {
    fprintf(stderr, "rank %d: out of memory\n", rank);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  fm_metrics m;
  fm_metrics_init(&m);
  fm_round_stats st;
  fm_round_input in = {.data = data, .batching = {.epochs = 1, .batch_size = 20, .shuffle = 1}, .cohort = cohort,
                       .cohort_size = K, .num_threads = nt, .assignment = policy, .stats = &st};
  int bad = 0;
  for (int r = 0; r < rounds; r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    t_sample[r] = t_assign[r] = INFINITY;
    for (int rep = 0; rep < 3; rep++) {
      double t0 = MPI_Wtime();
      CHECK(fm_sample_cohort(1, fm_state_round(s), N, K, cohort));
      double t1 = MPI_Wtime();
      for (size_t i = 0; i < K; i++) work[i] = fm_client_data_num_examples(data, (size_t)cohort[i]);
      CHECK(fm_assign_clients(policy, cohort, work, K, N, size, owner));
      double t2 = MPI_Wtime();
      t_sample[r] = fmin(t_sample[r], t1 - t0);
      t_assign[r] = fmin(t_assign[r], t2 - t1);
    }
    fm_metrics_clear(&m);
    CHECK(fm_process_next(p, s, &in, comm, &m));
    if (rank == 0) {
      double ex = 0;
      fm_metrics_get(&m, "client_work/train/num_examples", &ex);
      if (ex != (double)K * TRAIN_EXAMPLES) {
        fprintf(stderr, "round %d trained %.0f examples, expected %zu\n", r + 1, ex, K * TRAIN_EXAMPLES);
        bad = 1;
      }
      t_dist[r] = st.distribute;
      t_map[r] = st.map_wall;
      t_reduce[r] = st.reduce;
      t_server[r] = st.server;
      t_wall[r] = st.wall;
      t_out[r] = st.wall - st.map_wall;
      idle[r] = st.idle_fraction;
    }
  }
  /* the slowest rank's sampling and assignment */
  MPI_Allreduce(MPI_IN_PLACE, t_sample, rounds, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, t_assign, rounds, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long rss = ru.ru_maxrss; /* KiB on Linux */
  long *all = rank == 0 ? calloc((size_t)size, sizeof *all) : NULL;
  MPI_Gather(&rss, 1, MPI_LONG, all, 1, MPI_LONG, 0, MPI_COMM_WORLD);

  if (rank == 0) {
    for (int r = 0; r < rounds; r++) t_over[r] = t_sample[r] + t_assign[r] + t_out[r];
    double med_sample = median(t_sample, 1, rounds), med_assign = median(t_assign, 1, rounds);
    double med_dist = median(t_dist, 1, rounds), med_reduce = median(t_reduce, 1, rounds);
    double med_server = median(t_server, 1, rounds), med_over = median(t_over, 1, rounds);
    double med_map = median(t_map, 1, rounds), med_idle = median(idle, 1, rounds);
    double med_wall = median(t_wall, 1, rounds), med_out = median(t_out, 1, rounds);
    double min_over = t_over[1]; /* sorted by median() above */
    long rss_max = 0;
    for (int i = 0; i < size; i++) rss_max = all[i] > rss_max ? all[i] : rss_max;
    printf("scale_population: N %llu, %zu clients/round, %d rounds, %d ranks x %d thread(s), %s assignment\n", N, K,
           rounds, size, nt, policy == FM_ASSIGN_SHARD ? "shard" : "balanced");
    printf("  peak RSS per rank (MiB):");
    for (int i = 0; i < size; i++) printf(" %.1f", (double)all[i] / 1024.0);
    printf("\n  median per round (ms): sample %.3f  assign %.3f  distribute %.3f  reduce (with waiting) %.3f"
           "  server %.3f  round - client map %.3f\n  => overhead %.3f (min %.3f);  client map %.1f  round %.1f  idle %.3f\n",
           1e3 * med_sample, 1e3 * med_assign, 1e3 * med_dist, 1e3 * med_reduce, 1e3 * med_server, 1e3 * med_out,
           1e3 * med_over, 1e3 * min_over, 1e3 * med_map, 1e3 * med_wall, med_idle);
    FILE *f = fopen(argv[4], "w");
    if (!f) {
      fprintf(stderr, "cannot write %s\n", argv[4]);
      bad = 1;
    } else {
      fprintf(f, "population %llu\ncohort %zu\nrounds %d\nranks %d\nthreads %d\n", N, K, rounds, size, nt);
      for (int i = 0; i < size; i++) fprintf(f, "rss_kib_rank%d %ld\n", i, all[i]);
      fprintf(f, "rss_kib_max %ld\n", rss_max);
      fprintf(f, "sample_s %.9f\nassign_s %.9f\ndistribute_s %.9f\nreduce_s %.9f\nserver_s %.9f\n", med_sample,
              med_assign, med_dist, med_reduce, med_server);
      fprintf(f, "overhead_min_s %.9f\n", min_over);
      fprintf(f, "outside_s %.9f\noverhead_s %.9f\nclient_map_s %.9f\nround_s %.9f\nidle_fraction %.6f\n", med_out, med_over, med_map, med_wall,
              med_idle);
      if (fclose(f) != 0) bad = 1;
    }
  }
  MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);

  free(all);
  fm_metrics_free(&m);
  free(cohort);
  free(work);
  free(owner);
  free(t_sample);
  free(t_assign);
  free(t_dist);
  free(t_reduce);
  free(t_server);
  free(t_map);
  free(t_over);
  free(idle);
  free(t_wall);
  free(t_out);
  fm_state_destroy(&s);
  fm_process_destroy(&p);
  fm_model_destroy(&model);
  fm_client_data_close(&data);
  fm_comm_destroy(&comm);
  MPI_Finalize();
  return bad;
}
