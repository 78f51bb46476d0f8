/* src/cli/options.h — table-driven options shared by every subcommand: one
 * table per command gives each option's type, default, bounds and help; the
 * same setter serves command-line flags (getopt_long) and config-file keys
 * (inih), so every config key is also a flag and vice versa. */
#ifndef FEDMPI_CLI_OPTIONS_H
#define FEDMPI_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fedmpi/hparams.h"

#define CLI_STR_MAX 4096

typedef enum cli_type { CLI_STR, CLI_INT, CLI_DOUBLE, CLI_FLAG, CLI_CHOICE } cli_type;

typedef struct cli_opt {
  const char *name;    /* flag without dashes and config key: "client-lr" */
  cli_type type;
  size_t offset;       /* CLI_STR/CLI_CHOICE: char[CLI_STR_MAX]; CLI_INT: int64_t; CLI_DOUBLE: double; CLI_FLAG: int */
  const char *def;     /* default, parsed like a user value ("" for an empty string) */
  double min, max;     /* bounds for numbers (inclusive) */
  const char *choices; /* CLI_CHOICE: "a|b|c" */
  const char *meta;    /* placeholder in help, e.g. "N" */
  const char *help;
} cli_opt;

/* Options that belong to one invocation, never to a configuration: they are
 * not written to config files and not compared on resume. */
int cli_is_transient(const char *name);

typedef struct cli_command {
  const char *name;    /* "train" */
  const char *usage;   /* "fedmpi train [options]" */
  const char *summary; /* one paragraph */
  const cli_opt *opts;
  size_t num_opts;
  int has_config;      /* accepts --config FILE */
} cli_command;

/* Apply defaults, then --config FILE (if the command accepts it), then flags.
 * Returns 0 on success, 1 if --help was asked (help printed by the caller),
 * -1 on error with the message in err. Positional arguments are returned in
 * pos (pointers into argv), at most max_pos. */
int cli_parse(const cli_command *cmd, void *cfg, int argc, char **argv, char *err, size_t errlen, char **pos,
              int max_pos, int *num_pos);
/* cli_parse with a base configuration (INI text, may be NULL) applied after
 * the defaults and before --config and the flags: how --resume restores a
 * checkpoint's configuration. */
int cli_parse_base(const cli_command *cmd, void *cfg, const char *base_ini, int argc, char **argv, char *err,
                   size_t errlen, char **pos, int max_pos, int *num_pos);
/* Apply a configuration given as INI text (keys of the [<command>] or
 * [fedmpi] section, other sections ignored) on top of cfg: what --config and
 * --resume's checkpoint configuration go through. Returns 0, or -1 with
 * "<origin>: ..." in err. Never prints or exits. */
int cli_load_config_text(const cli_command *cmd, void *cfg, const char *text, const char *origin, char *err,
                         size_t errlen);
/* "k=v,k=v" (an option's K=V list, e.g. --client-opt) into h: FM_OK, or
 * FM_ERR_CONFIG naming the option and the bad text (fm_last_error), or
 * fm_hparams_put's error. */
int cli_parse_hparams(const char *opt, const char *text, fm_hparams *h);
/* The effective configuration as INI text (malloc'd), as cli_write_ini writes it. */
char *cli_ini_text(const cli_command *cmd, const void *cfg);
/* Names and values of the options that differ between a and b, skipping
 * transient options and those listed in safe (NULL-terminated); written to
 * out as "name: a -> b; ...". Returns the number of differences. */
int cli_diff(const cli_command *cmd, const void *a, const void *b, const char *const *safe, char *out, size_t outlen);
/* Set one option by name from text (flag or config value). */
int cli_set(const cli_command *cmd, void *cfg, const char *name, const char *value, char *err, size_t errlen);
void cli_print_help(const cli_command *cmd, FILE *f);
/* The effective configuration as an INI file that --config reads back. */
int cli_write_ini(const cli_command *cmd, const void *cfg, const char *path);

#endif
