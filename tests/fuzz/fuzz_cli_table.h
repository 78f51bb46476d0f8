/* tests/fuzz/fuzz_cli_table.h — an option table for the CLI fuzz targets.
 * The parsing code under test is src/cli/options.c (inih, cli_set, the INI
 * writer); the tables of the subcommands are static to their files, so this
 * one has the same kinds of option with the bounds `fedmpi train` uses:
 * strings (CLI_STR_MAX), int64 with BIG and small bounds, doubles with
 * infinite and [0, 1] bounds, choices and flags. */
#ifndef FEDMPI_FUZZ_CLI_TABLE_H
#define FEDMPI_FUZZ_CLI_TABLE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"

typedef struct fuzz_cfg {
  char data[CLI_STR_MAX], model[CLI_STR_MAX], client_opt[CLI_STR_MAX], schedule[CLI_STR_MAX];
  int64_t rounds, epochs, seed, threads;
  double client_lr, momentum;
  char algorithm[CLI_STR_MAX], weighting[CLI_STR_MAX];
  int quiet;
  char resume[CLI_STR_MAX];
} fuzz_cfg;

#define FUZZ_OFF(f) offsetof(fuzz_cfg, f)
#define FUZZ_BIG 9.2e18 /* train.c: BIG */
static const cli_opt fuzz_opts[] = {
    {"data", CLI_STR, FUZZ_OFF(data), "", 0, 0, NULL, "FILE|SPEC", "data"},
    {"model", CLI_STR, FUZZ_OFF(model), "softmax", 0, 0, NULL, "NAME", "model"},
    {"client-opt", CLI_STR, FUZZ_OFF(client_opt), "", 0, 0, NULL, "K=V,...", "hparams"},
    {"client-lr-schedule", CLI_STR, FUZZ_OFF(schedule), "constant", 0, 0, NULL, "SPEC", "schedule"},
    {"rounds", CLI_INT, FUZZ_OFF(rounds), "20", 1, FUZZ_BIG, NULL, "N", "rounds"},
    {"epochs", CLI_INT, FUZZ_OFF(epochs), "1", 1, 1e6, NULL, "E", "epochs"},
    {"seed", CLI_INT, FUZZ_OFF(seed), "0", 0, FUZZ_BIG, NULL, "S", "seed"},
    {"threads", CLI_INT, FUZZ_OFF(threads), "0", 0, 4096, NULL, "T", "threads"},
    {"client-lr", CLI_DOUBLE, FUZZ_OFF(client_lr), "0.05", 0, INFINITY, NULL, "LR", "lr"},
    {"momentum", CLI_DOUBLE, FUZZ_OFF(momentum), "0", 0, 1, NULL, "M", "momentum"},
    {"algorithm", CLI_CHOICE, FUZZ_OFF(algorithm), "fedavg", 0, 0,
     "fedavg|fedprox|fedsgd|mime_lite|scaffold|fednova", NULL, "algorithm"},
    {"weighting", CLI_CHOICE, FUZZ_OFF(weighting), "num_examples", 0, 0, "num_examples|uniform", NULL, "weighting"},
    {"quiet", CLI_FLAG, FUZZ_OFF(quiet), "0", 0, 0, NULL, NULL, "quiet"},
    {"resume", CLI_STR, FUZZ_OFF(resume), "", 0, 0, NULL, "DIR", "transient"},
};
static const cli_command fuzz_cmd = {"train", "fuzz", "fuzz", fuzz_opts, sizeof fuzz_opts / sizeof fuzz_opts[0], 1};

/* The defaults, as cli_parse applies them (abort if they do not parse). */
static inline void fuzz_cfg_defaults(fuzz_cfg *c) {
  char err[256];
  memset(c, 0, sizeof *c);
  for (size_t k = 0; k < fuzz_cmd.num_opts; k++)
    if (cli_set(&fuzz_cmd, c, fuzz_opts[k].name, fuzz_opts[k].def, err, sizeof err) != 0) abort();
}

#endif
