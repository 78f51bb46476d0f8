/* src/cli/options.c — parsing and printing of the option tables (see
 * options.h). Flags go through getopt_long, config files through inih; both
 * end in cli_set, which checks types and bounds and names the option in
 * every message. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#define FIELD(cfg, o) ((char *)(cfg) + (o)->offset)

static const cli_opt *find_opt(const cli_command *cmd, const char *name) {
  char norm[128];
  size_t i;
  for (i = 0; name[i] && i + 1 < sizeof norm; i++) norm[i] = name[i] == '_' ? '-' : name[i];
  norm[i] = '\0';
  for (size_t k = 0; k < cmd->num_opts; k++)
    if (strcmp(cmd->opts[k].name, norm) == 0) return &cmd->opts[k];
  return NULL;
}

int cli_set(const cli_command *cmd, void *cfg, const char *name, const char *value, char *err, size_t errlen) {
  const cli_opt *o = find_opt(cmd, name);
  if (!o) {
    snprintf(err, errlen, "unknown option '%s' for 'fedmpi %s' (see fedmpi %s --help)", name, cmd->name, cmd->name);
    return -1;
  }
  char *end = NULL;
  switch (o->type) {
    case CLI_STR:
      if (strlen(value) >= CLI_STR_MAX) {
        snprintf(err, errlen, "value of --%s is too long", o->name);
        return -1;
      }
      strcpy(FIELD(cfg, o), value);
      return 0;
    case CLI_CHOICE: {
      const char *c = o->choices;
      size_t n = strlen(value);
      while (c && *c) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, value, n) == 0) {
          strcpy(FIELD(cfg, o), value);
          return 0;
        }
        c = bar ? bar + 1 : NULL;
      }
      snprintf(err, errlen, "invalid value '%s' for --%s: expected one of %s", value, o->name, o->choices);
      return -1;
    }
    case CLI_FLAG:
      if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))
        *(int *)FIELD(cfg, o) = 1;
      else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))
        *(int *)FIELD(cfg, o) = 0;
      else {
        snprintf(err, errlen, "invalid value '%s' for %s: expected true or false", value, o->name);
        return -1;
      }
      return 0;
    case CLI_INT: {
      errno = 0;
      long long v = strtoll(value, &end, 10);
      if (!*value || *end || errno) {
        snprintf(err, errlen, "invalid value '%s' for --%s: not an integer", value, o->name);
        return -1;
      }
      if ((double)v < o->min || (double)v > o->max) {
        if (o->max >= 9e18)
          snprintf(err, errlen, "--%s must be >= %.0f, got %lld", o->name, o->min, v);
        else
          snprintf(err, errlen, "--%s must be in [%.0f, %.0f], got %lld", o->name, o->min, o->max, v);
        return -1;
      }
      *(int64_t *)FIELD(cfg, o) = v;
      return 0;
    }
    case CLI_DOUBLE: {
      errno = 0;
      double v = strtod(value, &end);
      if (!*value || *end || errno || !isfinite(v)) {
        snprintf(err, errlen, "invalid value '%s' for --%s: not a finite number", value, o->name);
        return -1;
      }
      if (v < o->min || v > o->max) {
        if (isinf(o->max) || o->max >= 1e300)
          snprintf(err, errlen, "--%s must be >= %g, got %g", o->name, o->min, v);
        else
          snprintf(err, errlen, "--%s must be in [%g, %g], got %g", o->name, o->min, o->max, v);
        return -1;
      }
      *(double *)FIELD(cfg, o) = v;
      return 0;
    }
  }
  return -1;
}

typedef struct ini_ctx {
  const cli_command *cmd;
  void *cfg;
  const char *path;
  char *err;
  size_t errlen;
  int failed;
} ini_ctx;

static int cli_ini_handler(void *user, const char *section, const char *name, const char *value) {
  ini_ctx *c = user;
  if (c->failed) return 0;
  if (section[0] && strcmp(section, c->cmd->name) != 0 && strcmp(section, "fedmpi") != 0) return 1;
  if (strcmp(name, "config") == 0) {
    snprintf(c->err, c->errlen, "%s: 'config' cannot be set inside a config file", c->path);
    c->failed = 1;
    return 0;
  }
  char msg[1024];
  if (cli_set(c->cmd, c->cfg, name, value, msg, sizeof msg) != 0) {
    snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
    c->failed = 1;
    return 0;
  }
  return 1;
}

static int load_config(const cli_command *cmd, void *cfg, const char *path, char *err, size_t errlen) {
  ini_ctx c = {cmd, cfg, path, err, errlen, 0};
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "cannot open config file '%s': %s", path, strerror(errno));
    return -1;
  }
  int line = ini_parse_file(f, cli_ini_handler, &c);
  fclose(f);
  if (c.failed) return -1;
  if (line != 0) {
    snprintf(err, errlen, "%s:%d: syntax error in config file", path, line);
    return -1;
  }
  return 0;
}

int cli_parse(const cli_command *cmd, void *cfg, int argc, char **argv, char *err, size_t errlen, char **pos,
              int max_pos, int *num_pos) {
  *num_pos = 0;
  for (size_t k = 0; k < cmd->num_opts; k++)
    if (cli_set(cmd, cfg, cmd->opts[k].name, cmd->opts[k].def, err, errlen) != 0) return -1;

  /* getopt_long table: every option takes an argument except flags. */
  size_t n = cmd->num_opts;
  struct option *lo = calloc(n + 3, sizeof *lo);
  if (!lo) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (size_t k = 0; k < n; k++) {
    lo[k].name = cmd->opts[k].name;
    lo[k].has_arg = cmd->opts[k].type == CLI_FLAG ? no_argument : required_argument;
    lo[k].val = 1000 + (int)k;
  }
  lo[n].name = "help";
  lo[n].has_arg = no_argument;
  lo[n].val = 'h';
  if (cmd->has_config) {
    lo[n + 1].name = "config";
    lo[n + 1].has_arg = required_argument;
    lo[n + 1].val = 'c';
  }

  /* Pass 1: --help and --config, so the file comes before the flags. */
  int rc = 0;
  opterr = 0;
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
    if (ch == 'h') {
      rc = 1;
      goto done;
    }
    if (ch == 'c' && load_config(cmd, cfg, optarg, err, errlen) != 0) {
      rc = -1;
      goto done;
    }
    if (ch == '?') {
      if (optopt >= 1000)
        snprintf(err, errlen, "option --%s needs a value", cmd->opts[optopt - 1000].name);
      else if (optopt == 'c')
        snprintf(err, errlen, "option --config needs a file name");
      else
        snprintf(err, errlen, "unknown option '%s' for 'fedmpi %s' (see fedmpi %s --help)", argv[optind - 1],
                 cmd->name, cmd->name);
      rc = -1;
      goto done;
    }
  }
  /* Pass 2: flags override the config file. */
  optind = 1;
  while ((ch = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
    if (ch >= 1000) {
      const cli_opt *o = &cmd->opts[ch - 1000];
      if (cli_set(cmd, cfg, o->name, o->type == CLI_FLAG ? "1" : optarg, err, errlen) != 0) {
        rc = -1;
        goto done;
      }
    }
  }
  for (int i = optind; i < argc; i++) {
    if (*num_pos >= max_pos) {
      snprintf(err, errlen, "unexpected argument '%s' for 'fedmpi %s'", argv[i], cmd->name);
      rc = -1;
      goto done;
    }
    pos[(*num_pos)++] = argv[i];
  }
done:
  free(lo);
  return rc;
}

void cli_print_help(const cli_command *cmd, FILE *f) {
  fprintf(f, "usage: %s\n\n%s\n\noptions:\n", cmd->usage, cmd->summary);
  for (size_t k = 0; k < cmd->num_opts; k++) {
    const cli_opt *o = &cmd->opts[k];
    char lhs[96];
    if (o->type == CLI_FLAG)
      snprintf(lhs, sizeof lhs, "--%s", o->name);
    else
      snprintf(lhs, sizeof lhs, "--%s %s", o->name, o->type == CLI_CHOICE ? o->choices : (o->meta ? o->meta : "X"));
    fprintf(f, "  %-34s %s", lhs, o->help);
    if (o->def && *o->def && o->type != CLI_FLAG) fprintf(f, " (default: %s)", o->def);
    fputc('\n', f);
  }
  if (cmd->has_config)
    fprintf(f, "  %-34s %s\n", "--config FILE",
            "read options from an INI file ([" "section named after the command] key = value; keys are the option "
            "names); flags override it");
  fprintf(f, "  %-34s %s\n", "--help", "show this help");
}

int cli_write_ini(const cli_command *cmd, const void *cfg, const char *path) {
  char tmp[CLI_STR_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fprintf(f, "; effective configuration of 'fedmpi %s' (read it back with --config)\n[%s]\n", cmd->name, cmd->name);
  for (size_t k = 0; k < cmd->num_opts; k++) {
    const cli_opt *o = &cmd->opts[k];
    const char *p = (const char *)cfg + o->offset;
    switch (o->type) {
      case CLI_STR:
      case CLI_CHOICE:
        fprintf(f, "%s = %s\n", o->name, p);
        break;
      case CLI_INT:
        fprintf(f, "%s = %lld\n", o->name, (long long)*(const int64_t *)p);
        break;
      case CLI_DOUBLE: {
        /* shortest text that reads back as the same double */
        double v = *(const double *)p;
        char num[64];
        for (int prec = 6; prec <= 17; prec++) {
          snprintf(num, sizeof num, "%.*g", prec, v);
          if (strtod(num, NULL) == v) break;
        }
        fprintf(f, "%s = %s\n", o->name, num);
        break;
      }
      case CLI_FLAG:
        fprintf(f, "%s = %s\n", o->name, *(const int *)p ? "true" : "false");
        break;
    }
  }
  int bad = fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) return -1;
  return 0;
}
