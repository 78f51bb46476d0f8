/* src/cli/bench.c — `fedmpi bench` (being written: see docs/performance.md). */
#include "cli.h"

int cmd_bench(cli_ctx *ctx, int argc, char **argv) {
  (void)argc, (void)argv;
  cli_error(ctx, "bench", "not available in this build yet");
  return CLI_EXIT_USAGE;
}
