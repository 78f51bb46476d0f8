/* src/cli/main.c — the `fedmpi` command: MPI start-up, dispatch to the
 * subcommands, and the shared error path. The CLI is the only code that
 * prints usage or chooses an exit status; the library only returns codes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

void cli_error(const cli_ctx *ctx, const char *cmd, const char *msg) {
  if (ctx->rank != 0) return;
  fprintf(stderr, "fedmpi%s%s: error: %s\n", cmd ? " " : "", cmd ? cmd : "", msg);
  fflush(stderr);
}

int cli_agree(cli_ctx *ctx, const char *cmd, int status) {
  int rc = fm_comm_agree(ctx->comm, status);
  if (rc != FM_OK) cli_error(ctx, cmd, fm_last_error());
  return rc;
}

int cli_parse_or_exit(cli_ctx *ctx, const cli_command *cmd, void *cfg, int argc, char **argv, char **pos,
                      int max_pos, int *num_pos) {
  return cli_parse_or_exit_base(ctx, cmd, cfg, NULL, argc, argv, pos, max_pos, num_pos);
}

int cli_parse_or_exit_base(cli_ctx *ctx, const cli_command *cmd, void *cfg, const char *base_ini, int argc, char **argv,
                           char **pos, int max_pos, int *num_pos) {
  char err[2048] = "";
  int rc = cli_parse_base(cmd, cfg, base_ini, argc, argv, err, sizeof err, pos, max_pos, num_pos);
  if (rc == 1) {
    if (ctx->rank == 0) cli_print_help(cmd, stdout);
    return CLI_EXIT_OK;
  }
  if (rc < 0) {
    cli_error(ctx, cmd->name, err);
    return CLI_EXIT_USAGE;
  }
  return -1;
}

static volatile sig_atomic_t cli_stop_flag = 0;

static void cli_on_stop_signal(int sig) {
  (void)sig;
  cli_stop_flag = 1;
}

void cli_install_stop_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = cli_on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
}

int cli_stop_requested(void) { return cli_stop_flag != 0; }

int cli_mkdirs(const char *path) {
  char buf[CLI_STR_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
  struct stat st;
  if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

int cli_check_targets(const fm_client_data *cd, const fm_model *m) {
  const size_t T = fm_client_data_num_targets(cd), mt = fm_model_num_targets(m);
  if (mt == (T ? T : 1) || (mt == 0 && T <= 1)) return FM_OK;
  if (mt == 0)
    return fm_set_error(FM_ERR_SPEC_MISMATCH,
                        "%s: text data has %zu labels per example, but model '%s' reconstructs its input (mean "
                        "squared error): give it data with one label per example, such as images",
                        fm_client_data_path(cd), T, fm_model_type(m));
  if (T > 1)
    return fm_set_error(FM_ERR_SPEC_MISMATCH,
                        "%s: text data has %zu labels per example (the next token at each step of '%s'), but model "
                        "'%s' is a classifier with one label per example: text needs a sequence model such as "
                        "shakespeare_lstm or stackoverflow_nwp, or a stack ending in 'lstm(U,sequences),dense'",
                        fm_client_data_path(cd), T, fm_client_data_x_feature(cd), fm_model_type(m));
  return fm_set_error(FM_ERR_SPEC_MISMATCH,
                      "%s: the data has %zu label(s) per example, but model '%s' predicts a label at each of %zu time "
                      "steps: it needs tokenised text (Shakespeare's 'snippets', Stack Overflow's 'tokens')",
                      fm_client_data_path(cd), T ? T : 1, fm_model_type(m), mt);
}

/* The reference client of cd (opened FM_DATA_ANY) has a string feature (n,) name. */
static int cli_has_strings(const fm_client_data *cd, const char *name) {
  for (size_t j = 0; j < fm_client_data_num_feature_infos(cd); j++) {
    const fm_feature_info *f = fm_client_data_feature_info(cd, j);
    if (!strcmp(f->name, name)) return f->dtype == FM_DTYPE_STRING && f->ndim == 0;
  }
  return 0;
}

int cli_text_tokenizer(const cli_text_opts *o, fm_tokenizer **out) {
  *out = NULL;
  const size_t V = (size_t)o->vocab_size, L = (size_t)o->seq_len;
  if (o->vocab && o->vocab[0]) return fm_tokenizer_create_words_file(o->vocab, V, L, out);
  if (!o->data || !o->data[0] || fm_synth_spec_is_synthetic(o->data)) return FM_OK;
  fm_client_data *cd = NULL;
  if (fm_client_data_open_kind(o->data, NULL, FM_DATA_ANY, &cd) != FM_OK) {
    fm_clear_error(); /* not text, or not readable: opening it for training says which */
    return FM_OK;
  }
  const char *named = o->x_feature && o->x_feature[0] ? o->x_feature : NULL;
  const int numeric_x = !named && fm_client_data_x_feature(cd) != NULL;
  const char *words = named ? named : "tokens";
  int rc = FM_OK;
  if (!numeric_x && cli_has_strings(cd, words) && strcmp(words, "snippets") != 0)
    rc = fm_tokenizer_create_words_data(cd, words, V, L, out);
  else if (!numeric_x && L > 0 && cli_has_strings(cd, "snippets"))
    rc = fm_tokenizer_create_shakespeare(L, out);
  fm_client_data_close(&cd);
  return rc;
}

int cli_input_spec(const fm_client_data *cd, int64_t num_classes_opt, fm_input_spec *spec) {
  int ndim;
  size_t shape[FM_MAX_DIMS];
  fm_client_data_feature_shape(cd, &ndim, shape);
  size_t c = num_classes_opt > 0 ? (size_t)num_classes_opt : fm_client_data_num_classes(cd);
  if (c == 0) {
    int rc = fm_client_data_scan_num_classes(cd, &c);
    if (rc != FM_OK) return rc;
  }
  if (c < 2)
    return fm_set_error(FM_ERR_SPEC_MISMATCH, "%s: found %zu class(es); a classifier needs at least 2 (set --num-classes)",
                        fm_client_data_path(cd), c);
  return fm_input_spec_set(spec, ndim, shape, c);
}

int cli_threads(cli_ctx *ctx, const char *cmd, int64_t requested, int *nt) {
  fm_thread_plan plan;
  int rc = fm_runtime_plan_threads(MPI_COMM_WORLD, requested > 0 ? (int)requested : 0, &plan);
  if (cli_agree(ctx, cmd, rc) != FM_OK) return rc;
  *nt = plan.threads;
  if (ctx->rank == 0 && plan.oversubscribed) {
    fprintf(stderr,
            "fedmpi %s: warning: a node runs %d threads on %d CPUs (ranks x threads per rank); the client map will "
            "share cores: lower --threads or start fewer ranks per node\n",
            cmd, plan.worst_node_threads, plan.worst_node_cpus);
    fflush(stderr);
  }
  return FM_OK;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: fedmpi <command> [options]\n\n"
          "Federated learning simulator with TensorFlow Federated's semantics on MPI + OpenMP.\n"
          "Run under mpirun for several ranks; one process runs the same code.\n\n"
          "commands:\n"
          "  train          run federated training (FedAvg) and write metrics and weights\n"
          "  eval           evaluate a weights file on a ClientData file\n"
          "  data synth     write Synthetic(alpha, beta) client data (TFF HDF5 layout)\n"
          "  data import-idx  convert MNIST-format IDX files to TFF layout with a partitioner\n"
          "  data fashion-mnist  import the installed Fashion-MNIST, partitioned (iid, dirichlet, ...)\n"
          "  data info      describe a ClientData file (features, sizes, label skew)\n"
          "  bench          benchmark rounds of each model against this machine's SGEMM speed\n"
          "  privacy        epsilon of DP training (RDP accountant), or the noise multiplier for a target epsilon\n"
          "  version        print the version\n\n"
          "Run 'fedmpi <command> --help' for a command's options.\n");
}

int main(int argc, char **argv) {
  cli_blas_startup(argv); /* may restart fedmpi with a better BLAS kernel */
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "fedmpi: error: MPI_Init_thread failed\n");
    return CLI_EXIT_FAILURE;
  }
  cli_ctx ctx = {0};
  int status;
  if (fm_comm_create_mpi(MPI_COMM_WORLD, &ctx.comm) != FM_OK) {
    fprintf(stderr, "fedmpi: error: %s\n", fm_last_error());
    MPI_Finalize();
    return CLI_EXIT_FAILURE;
  }
  ctx.rank = ctx.comm->rank;
  ctx.size = ctx.comm->size;

  const char *cmd = argc > 1 ? argv[1] : NULL;
  if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    if (ctx.rank == 0) usage(cmd ? stdout : stderr);
    status = cmd ? CLI_EXIT_OK : CLI_EXIT_USAGE;
  } else if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    if (ctx.rank == 0) printf("fedmpi %s\n", fm_version());
    status = CLI_EXIT_OK;
  } else if (!strcmp(cmd, "train")) {
    status = cmd_train(&ctx, argc - 1, argv + 1);
  } else if (!strcmp(cmd, "eval")) {
    status = cmd_eval(&ctx, argc - 1, argv + 1);
  } else if (!strcmp(cmd, "data")) {
    status = cmd_data(&ctx, argc - 1, argv + 1);
  } else if (!strcmp(cmd, "bench")) {
    status = cmd_bench(&ctx, argc - 1, argv + 1);
  } else if (!strcmp(cmd, "privacy")) {
    status = cmd_privacy(&ctx, argc - 1, argv + 1);
  } else {
    char msg[512];
    snprintf(msg, sizeof msg, "unknown command '%s' (commands: train, eval, data, bench, privacy, version; see fedmpi --help)", cmd);
    cli_error(&ctx, NULL, msg);
    status = CLI_EXIT_USAGE;
  }
  fflush(stdout);
  fm_comm_destroy(&ctx.comm);
  MPI_Finalize();
  return status;
}
