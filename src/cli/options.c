/* src/cli/options.c — parsing and printing of the option tables (see
 * options.h). Flags go through getopt_long, config files through inih; both
 * end in cli_set, which checks types and bounds and names the option in
 * every message. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "fedmpi/error.h"
#include "fedmpi/hparams.h"

#define FIELD(cfg, o) ((char *)(cfg) + (o)->offset)

int cli_is_transient(const char *name) { return strcmp(name, "resume") == 0; }

static const cli_opt *find_opt(const cli_command *cmd, const char *name) {
  char norm[128];
  size_t i;
  for (i = 0; name[i] && i + 1 < sizeof norm; i++) norm[i] = name[i] == '_' ? '-' : name[i];
  norm[i] = '\0';
  for (size_t k = 0; k < cmd->num_opts; k++)
    if (strcmp(cmd->opts[k].name, norm) == 0) return &cmd->opts[k];
  return NULL;
}

/* Why "name = value" would not read back as value through inih (NULL if it
 * would): inih strips surrounding whitespace, takes ';' at the start of a
 * value or after whitespace as a comment, ends a value at a line break, and
 * reads lines of at most INI_MAX_LINE - 1 bytes (the rest of a longer line
 * becomes a line of its own). cli_format_ini writes exactly "name = value". */
static const char *cli_ini_unsafe(const char *name, const char *value) {
  size_t n = strlen(value);
  if (strlen(name) + 3 + n + 1 > INI_MAX_LINE - 1) return "too long for one line of the file";
  if (n && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[n - 1])))
    return "leading or trailing white space";
  for (size_t i = 0; i < n; i++) {
    if (value[i] == '\n' || value[i] == '\r') return "a line break";
    if (value[i] == ';' && (i == 0 || isspace((unsigned char)value[i - 1]))) return "';' would start a comment";
  }
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
    case CLI_STR: {
      if (strlen(value) >= CLI_STR_MAX) {
        snprintf(err, errlen, "value of --%s is too long", o->name);
        return -1;
      }
      const char *why = cli_ini_unsafe(o->name, value);
      if (why) {
        snprintf(err, errlen, "value of --%s cannot be kept in config.ini (%s), which --resume reads back", o->name,
                 why);
        return -1;
      }
      strcpy(FIELD(cfg, o), value);
      return 0;
    }
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

int cli_load_config_text(const cli_command *cmd, void *cfg, const char *text, const char *origin, char *err,
                         size_t errlen) {
  ini_ctx c = {cmd, cfg, origin, err, errlen, 0};
  int line = ini_parse_string(text, cli_ini_handler, &c);
  if (c.failed) return -1;
  if (line != 0) {
    snprintf(err, errlen, "%s: syntax error at line %d", origin, line);
    return -1;
  }
  return 0;
}

int cli_parse_hparams(const char *opt, const char *text, fm_hparams *h) {
  char buf[CLI_STR_MAX], *save = NULL;
  snprintf(buf, sizeof buf, "%s", text);
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '='), *end = NULL;
    if (!eq || eq == tok) return fm_set_error(FM_ERR_CONFIG, "--%s: '%s' is not KEY=VALUE", opt, tok);
    *eq = '\0';
    double v = strtod(eq + 1, &end);
    if (!eq[1] || *end || !isfinite(v))
      return fm_set_error(FM_ERR_CONFIG, "--%s: value of '%s' is not a finite number: '%s'", opt, tok, eq + 1);
    int rc = fm_hparams_put(h, tok, v);
    if (rc != FM_OK) return rc;
  }
  return FM_OK;
}

int cli_parse(const cli_command *cmd, void *cfg, int argc, char **argv, char *err, size_t errlen, char **pos,
              int max_pos, int *num_pos) {
  return cli_parse_base(cmd, cfg, NULL, argc, argv, err, errlen, pos, max_pos, num_pos);
}

int cli_parse_base(const cli_command *cmd, void *cfg, const char *base_ini, int argc, char **argv, char *err,
                   size_t errlen, char **pos, int max_pos, int *num_pos) {
  *num_pos = 0;
  for (size_t k = 0; k < cmd->num_opts; k++)
    if (cli_set(cmd, cfg, cmd->opts[k].name, cmd->opts[k].def, err, errlen) != 0) return -1;
  if (base_ini && cli_load_config_text(cmd, cfg, base_ini, "checkpoint configuration", err, errlen) != 0) return -1;

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

/* The shortest decimal text that reads back as the same double. */
static void cli_shortest_double(double v, char *buf, size_t n) {
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) return;
  }
}

static void cli_format_ini(const cli_command *cmd, const void *cfg, FILE *f) {
  fprintf(f, "; effective configuration of 'fedmpi %s' (read it back with --config)\n[%s]\n", cmd->name, cmd->name);
  for (size_t k = 0; k < cmd->num_opts; k++) {
    const cli_opt *o = &cmd->opts[k];
    if (cli_is_transient(o->name)) continue;
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
        char num[64];
        cli_shortest_double(*(const double *)p, num, sizeof num);
        fprintf(f, "%s = %s\n", o->name, num);
        break;
      }
      case CLI_FLAG:
        fprintf(f, "%s = %s\n", o->name, *(const int *)p ? "true" : "false");
        break;
    }
  }
}

char *cli_ini_text(const cli_command *cmd, const void *cfg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  cli_format_ini(cmd, cfg, f);
  if (fclose(f) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* Through "<path>.tmp", fsync'ed and renamed, so path is the old file or
 * the whole new one; on failure the temporary file is removed and errno
 * says why (ENOSPC, EIO, EFBIG). */
int cli_write_ini(const cli_command *cmd, const void *cfg, const char *path) {
  char tmp[CLI_STR_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  errno = 0;
  cli_format_ini(cmd, cfg, f);
  int e = fflush(f) != 0 || ferror(f) ? (errno ? errno : EIO) : 0;
  if (!e && fsync(fileno(f)) != 0 && errno != EINVAL) e = errno;
  if (fclose(f) != 0 && !e) e = errno;
  if (!e && rename(tmp, path) != 0) e = errno;
  if (!e) return 0;
  remove(tmp);
  errno = e;
  return -1;
}

static void cli_value_text(const cli_opt *o, const void *cfg, char *buf, size_t n) {
  const char *p = (const char *)cfg + o->offset;
  switch (o->type) {
    case CLI_STR:
    case CLI_CHOICE:
      snprintf(buf, n, "'%s'", p);
      break;
    case CLI_INT:
      snprintf(buf, n, "%lld", (long long)*(const int64_t *)p);
      break;
    case CLI_DOUBLE:
      cli_shortest_double(*(const double *)p, buf, n);
      break;
    case CLI_FLAG:
      snprintf(buf, n, "%s", *(const int *)p ? "true" : "false");
      break;
  }
}

int cli_diff(const cli_command *cmd, const void *a, const void *b, const char *const *safe, char *out,
             size_t outlen) {
  int n = 0;
  size_t used = 0;
  if (outlen) out[0] = '\0';
  for (size_t k = 0; k < cmd->num_opts; k++) {
    const cli_opt *o = &cmd->opts[k];
    if (cli_is_transient(o->name)) continue;
    int skip = 0;
    for (const char *const *sp = safe; sp && *sp; sp++) skip |= strcmp(*sp, o->name) == 0;
    if (skip) continue;
    char va[CLI_STR_MAX + 8], vb[CLI_STR_MAX + 8];
    cli_value_text(o, a, va, sizeof va);
    cli_value_text(o, b, vb, sizeof vb);
    if (strcmp(va, vb) == 0) continue;
    n++;
    if (used < outlen) {
      int w = snprintf(out + used, outlen - used, "%s--%s %s -> %s", n > 1 ? "; " : "", o->name, va, vb);
      if (w > 0) used += (size_t)w;
    }
  }
  return n;
}
