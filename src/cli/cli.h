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

typedef struct cli_ctx {
  fm_comm *comm;
  int rank, size;
} cli_ctx;

int cmd_train(cli_ctx *ctx, int argc, char **argv);
int cmd_eval(cli_ctx *ctx, int argc, char **argv);
int cmd_data(cli_ctx *ctx, int argc, char **argv);

/* Print "fedmpi <cmd>: error: <msg>" once (rank 0). */
void cli_error(const cli_ctx *ctx, const char *cmd, const char *msg);
/* Agree on status across ranks; on failure print the agreed message once. */
int cli_agree(cli_ctx *ctx, const char *cmd, int status);
/* Parse a command's options on every rank; prints help or the error on rank 0.
 * Returns -1 to continue, else the exit status to return. */
int cli_parse_or_exit(cli_ctx *ctx, const cli_command *cmd, void *cfg, int argc, char **argv, char **pos,
                      int max_pos, int *num_pos);
/* mkdir -p */
int cli_mkdirs(const char *path);
/* Spec for a model from data: feature shape of the file and the number of classes. */
int cli_input_spec(const fm_client_data *cd, int64_t num_classes_opt, fm_input_spec *spec);

#endif
