/* src/cli/cli.h — the subcommands and what they share: the communicator,
 * rank-0 printing and the agreed error path (every rank takes the same exit,
 * only rank 0 prints, nobody hangs). */
#ifndef FEDMPI_CLI_H
#define FEDMPI_CLI_H

#include "fedmpi/fedmpi.h"
#include "fedmpi/runtime.h"
#include "options.h"

/* Exit statuses. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1 /* the run failed (bad data, I/O, numerical error) */
#define CLI_EXIT_USAGE 2   /* bad command line or configuration */
#define CLI_EXIT_INTERRUPTED 75 /* stopped by SIGTERM/SIGINT/SIGUSR1 after a checkpoint (EX_TEMPFAIL): resume it */

/* Propagate an fm error code from a CLI helper returning int. */
#define FM_CALL_CLI(expr)          \
  do {                             \
    int fm_cli_rc_ = (expr);       \
    if (fm_cli_rc_ != FM_OK) return fm_cli_rc_; \
  } while (0)

typedef struct cli_ctx {
  fm_comm *comm;
  int rank, size;
} cli_ctx;

int cmd_train(cli_ctx *ctx, int argc, char **argv);
int cmd_eval(cli_ctx *ctx, int argc, char **argv);
int cmd_data(cli_ctx *ctx, int argc, char **argv);
int cmd_bench(cli_ctx *ctx, int argc, char **argv);
int cmd_privacy(cli_ctx *ctx, int argc, char **argv);

/* Print "fedmpi <cmd>: error: <msg>" once (rank 0). */
void cli_error(const cli_ctx *ctx, const char *cmd, const char *msg);
/* Agree on status across ranks; on failure print the agreed message once. */
int cli_agree(cli_ctx *ctx, const char *cmd, int status);
/* Parse a command's options on every rank; prints help or the error on rank 0.
 * Returns -1 to continue, else the exit status to return. */
int cli_parse_or_exit(cli_ctx *ctx, const cli_command *cmd, void *cfg, int argc, char **argv, char **pos,
                      int max_pos, int *num_pos);
/* As cli_parse_or_exit, with a base configuration (see cli_parse_base). */
int cli_parse_or_exit_base(cli_ctx *ctx, const cli_command *cmd, void *cfg, const char *base_ini, int argc, char **argv,
                           char **pos, int max_pos, int *num_pos);
/* SIGTERM, SIGINT and SIGUSR1 set a flag instead of killing the process. */
void cli_install_stop_handlers(void);
/* 1 once such a signal arrived. */
int cli_stop_requested(void);
/* mkdir -p */
int cli_mkdirs(const char *path);
/* The BLAS kernel check (blas_cli.c): first thing in main, before MPI_Init;
 * may restart the process with OPENBLAS_CORETYPE set. */
void cli_blas_startup(char **argv);
/* "SkylakeX (corrected: OpenBLAS chose Prescott ...)": the kernel in use and why. */
const char *cli_blas_summary(void);
/* Rank 0: the one warning about a weaker kernel, if any. */
void cli_blas_warn(const cli_ctx *ctx);
/* Collective: the threads per rank (requested > 0, else OMP_NUM_THREADS, else
 * the rank's share of its node's CPUs: fm_runtime_plan_threads) into *nt, with
 * one warning on rank 0 when a node runs more threads than it has CPUs. An
 * error is agreed and printed. */
int cli_threads(cli_ctx *ctx, const char *cmd, int64_t requested, int *nt);
/* The labels per example of cd against what model m trains on
 * (fm_model_num_targets): a label per time step (tokenised text) needs a
 * sequence model and a sequence model needs it; a model without labels (the
 * autoencoder) takes data with one label per example (which it does not
 * read). FM_ERR_SPEC_MISMATCH naming the file and the model. */
int cli_check_targets(const fm_client_data *cd, const fm_model *m);
/* The text options of train and eval (--vocab, --vocab-size, --seq-len) and
 * the data they apply to. */
typedef struct cli_text_opts {
  const char *data;      /* --data (a synthetic spec or "" gets no tokenizer) */
  const char *x_feature; /* --x-feature, or "" */
  const char *vocab;     /* --vocab, or "" */
  int64_t vocab_size;    /* --vocab-size */
  int64_t seq_len;       /* --seq-len, 0: the tokenizer's */
} cli_text_opts;
/* At most one tokenizer for a run, before anything is written: --vocab's
 * word count file; else, when data (opened FM_DATA_ANY) has no usable
 * numeric input and a string feature 'tokens' (or the named --x-feature),
 * the --vocab-size most frequent words of data; else, with --seq-len and a
 * string feature 'snippets', Shakespeare's characters with that length.
 * *out NULL when none applies (a snippets file then gets the library's
 * default, L = 80). Errors name the file (missing or empty vocabulary). */
int cli_text_tokenizer(const cli_text_opts *o, fm_tokenizer **out);
/* Spec for a model from data: feature shape of the file and the number of classes. */
int cli_input_spec(const fm_client_data *cd, int64_t num_classes_opt, fm_input_spec *spec);

#endif
