/* tests/mpi/mpi_fedavg.c — FedAvg through the MPI runtime on Synthetic(1,1).
 *
 * usage: mpi_fedavg OUT.bin MODEL THREADS [ROUNDS [SERVER_OPTIMIZER [ASSIGNMENT [AGGREGATOR]]]]
 * (SERVER_OPTIMIZER sgdm, the default, with momentum 0.5, or adam for FedAdam;
 * ASSIGNMENT shard, the default, or balanced; AGGREGATOR mean, the default,
 * clip:NORM for clipping_factory(NORM, mean), which then also checks that
 * clients were clipped, or spec:SPEC for any chain by its text, e.g. a DP one). The process is built by name through
 * fm_process_create and the rounds share one fm_executor.
 * Rank 0 writes the data (deterministic, so every test directory makes the
 * same file), all ranks train ROUNDS rounds with THREADS OpenMP threads each,
 * and rank 0 writes the final weights as raw floats to OUT.bin, followed by
 * the raw doubles of the last round's train loss and the final evaluation
 * loss and accuracy, for the cross-layout comparison. The program itself checks that the evaluation
 * loss on the test clients fell, and exits non-zero otherwise. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedmpi/fedmpi.h"
#include "fedmpi/runtime.h"

#include "fm_mpi_check.h"

int main(int argc, char **argv) {
  int provided, rank = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (argc < 4) {
    if (rank == 0)
      fprintf(stderr, "usage: mpi_fedavg OUT.bin MODEL THREADS [ROUNDS [SERVER_OPTIMIZER [ASSIGNMENT [AGGREGATOR]]]]\n");
    MPI_Finalize();
    return 2;
  }
  int threads = atoi(argv[3]);
  int rounds = argc > 4 ? atoi(argv[4]) : 6;
  fm_comm *comm;
  CHECK(fm_comm_create_mpi(MPI_COMM_WORLD, &comm));
  int nt = fm_runtime_setup_threads(threads);

  if (rank == 0) {
    fm_synth_options o;
    fm_synth_defaults(&o);
    o.num_clients = 23; /* not a multiple of any rank count: uneven shards */
    o.max_examples = 300;
    o.seed = 17;
    CHECK(fm_synth_write(&o, "train.h5", "test.h5"));
  }
  MPI_Barrier(MPI_COMM_WORLD);

  fm_client_data *train, *test;
  CHECK(fm_client_data_open("train.h5", NULL, &train));
  CHECK(fm_client_data_open("test.h5", NULL, &test));
  fm_input_spec spec;
  size_t shape[1] = {60};
  CHECK(fm_input_spec_set(&spec, 1, shape, 10));
  fm_model *model;
  CHECK(fm_model_create_by_name(argv[2], &spec, &model));
  fm_optimizer *copt, *sopt;
  CHECK(fm_optimizer_create_sgdm(0.05, 0.0, &copt));
  if (argc > 5 && strcmp(argv[5], "adam") == 0) {
    fm_hparams hp = {0};
    fm_hparams_put(&hp, "learning_rate", 0.02);
    CHECK(fm_optimizer_create("adam", &hp, &sopt)); /* FedAdam */
  } else {
    CHECK(fm_optimizer_create_sgdm(1.0, 0.5, &sopt));
  }
  fm_assignment assignment = argc > 6 && strcmp(argv[6], "balanced") == 0 ? FM_ASSIGN_BALANCED : FM_ASSIGN_SHARD;
  fm_aggregator *agg = NULL;
  double clip = 0;
  if (argc > 7 && strncmp(argv[7], "clip:", 5) == 0) {
    clip = atof(argv[7] + 5);
    fm_aggregator *mean;
    CHECK(fm_aggregator_create_mean(&mean));
    CHECK(fm_aggregator_create_clipping(clip, mean, &agg));
  } else if (argc > 7 && strncmp(argv[7], "spec:", 5) == 0) {
    CHECK(fm_aggregator_create_from_spec(argv[7] + 5, &agg)); /* e.g. DP noise on rank 0 */
  }
  fm_weighting weighting = !agg || fm_aggregator_is_weighted(agg) ? FM_WEIGHTING_NUM_EXAMPLES : FM_WEIGHTING_UNIFORM;
  fm_process *p;
  CHECK(fm_process_create(model, "fedavg", NULL, copt, sopt, weighting, agg, &p));
  /* argv[8] "metrics:SPEC": the metrics aggregator, e.g. secure_sum_then_finalize(...) */
  if (argc > 8 && strncmp(argv[8], "metrics:", 8) == 0) CHECK(fm_process_set_metrics_aggregator(p, argv[8] + 8));
  fm_executor *exec;
  CHECK(fm_executor_create(&exec));
  fm_state *s;
  CHECK(fm_process_initialize(p, 5, &s));

  fm_metrics m;
  fm_metrics_init(&m);
  double loss0 = 0, loss1 = 0, acc1 = 0, train_loss = 0;
  CHECK(fm_evaluate(model, fm_state_weights(s), test, NULL, 0, 64, nt, comm, &m));
  if (rank == 0) CHECK(fm_metrics_get(&m, "loss", &loss0));

  uint64_t cohort[7];
  fm_round_input in = {.data = train, .batching = {.epochs = 2, .batch_size = 10, .shuffle = 1}, .cohort = cohort, .cohort_size = 7, .num_threads = nt,
                     .assignment = assignment, .executor = exec};
  double clipped = 0;
  for (int r = 0; r < rounds; r++) {
    CHECK(fm_sample_cohort(5, fm_state_round(s), fm_client_data_num_clients(train), 7, cohort));
    fm_metrics_clear(&m);
    CHECK(fm_process_next(p, s, &in, comm, &m));
    if (rank == 0) {
      double l, n;
      CHECK(fm_metrics_get(&m, "client_work/train/loss", &l));
      CHECK(fm_metrics_get(&m, "client_work/train/num_examples", &n));
      printf("round %d train loss %.6f examples %.0f\n", r + 1, l, n);
      if (strcmp(fm_process_metrics_aggregator(p), "secure_sum_then_finalize") == 0) {
        double up; /* the secure sum's measurements, by TFF's names */
        CHECK(fm_metrics_get(&m,
                             "client_work/train/secure_sum_measurements/0/1048575/int64/secure_upper_clipped_count",
                             &up));
      }
      train_loss = l;
      if (clip > 0) {
        double c, norm;
        CHECK(fm_metrics_get(&m, "aggregator/clipped_count", &c));
        CHECK(fm_metrics_get(&m, "aggregator/clipping_norm", &norm));
        if (norm != clip) {
          fprintf(stderr, "aggregator/clipping_norm is %g, expected %g\n", norm, clip);
          return 1;
        }
        clipped += c;
      }
    }
  }
  fm_metrics_clear(&m);
  CHECK(fm_evaluate(model, fm_state_weights(s), test, NULL, 0, 64, nt, comm, &m));
  int status = 0;
  if (rank == 0) {
    CHECK(fm_metrics_get(&m, "loss", &loss1));
    CHECK(fm_metrics_get(&m, "accuracy", &acc1));
    printf("eval loss %.6f -> %.6f\n", loss0, loss1);
    if (clip > 0 && !(clipped > 0)) {
      fprintf(stderr, "clipping to %g clipped no client in %d rounds\n", clip, rounds);
      status = 1;
    }
    if (!(loss1 < loss0)) {
      fprintf(stderr, "evaluation loss did not fall: %.6f -> %.6f\n", loss0, loss1);
      status = 1;
    }
    FILE *f = fopen(argv[1], "wb");
    size_t n = fm_layout_numel(fm_model_layout(model));
    double tail[3] = {train_loss, loss1, acc1};
    if (!f || fwrite(fm_state_weights(s), sizeof(float), n, f) != n || fwrite(tail, sizeof(double), 3, f) != 3 ||
        fclose(f) != 0) {
      fprintf(stderr, "cannot write %s\n", argv[1]);
      status = 1;
    }
  }
  fm_metrics_free(&m);
  fm_state_destroy(&s);
  fm_executor_destroy(&exec);
  fm_process_destroy(&p);
  fm_model_destroy(&model);
  fm_client_data_close(&train);
  fm_client_data_close(&test);
  fm_comm_destroy(&comm);
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return status;
}
