/* src/io/metrics_writer.c — per-round metrics files: JSON lines with TFF's
 * nesting (built with json-c) and a flat CSV whose columns are slash paths.
 *
 * Each record is built whole in memory and written with one write() per
 * file as soon as the round ends, so `tail -f` follows a long run and a
 * killed run keeps every completed round (at worst a torn last line, which
 * a resume drops). A write that fails (ENOSPC, EIO, EFBIG) truncates both
 * files back to the end of the last complete record, so they never hold a
 * half record, and the error names the file. On resume the files keep each
 * round up to the checkpoint's exactly once, in order. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fedmpi/io.h"
#include "internal.h"

struct fm_metrics_writer {
  int jsonl, csv; /* descriptors, opened O_APPEND; -1 when closed */
  char *jsonl_path, *csv_path;
  char **columns; /* CSV header: every non-group path seen so far, in order of appearance */
  size_t num_columns, cap_columns;
};

static json_object *fm__json_value(const fm_metric_entry *e) {
  if (e->kind == FM_METRIC_INT) return json_object_new_int64((int64_t)e->value);
  if (!isfinite(e->value)) return NULL; /* JSON has no NaN/Inf: null */
  return json_object_new_double(e->value);
}

/* Place e under root following its slash path, creating groups. */
static int fm__json_put(json_object *root, const fm_metric_entry *e) {
  char path[FM_METRIC_PATH_MAX];
  snprintf(path, sizeof path, "%s", e->path);
  json_object *node = root;
  char *save = NULL;
  char *tok = strtok_r(path, "/", &save);
  while (tok) {
    char *next = strtok_r(NULL, "/", &save);
    if (!next && e->kind != FM_METRIC_GROUP) {
      json_object_object_add(node, tok, fm__json_value(e));
      return FM_OK;
    }
    json_object *child = NULL;
    if (!json_object_object_get_ex(node, tok, &child) || !json_object_is_type(child, json_type_object)) {
      child = json_object_new_object();
      if (!child) return FM_ERR(FM_ERR_NOMEM, "out of memory building metrics JSON");
      json_object_object_add(node, tok, child);
    }
    node = child;
    tok = next;
  }
  return FM_OK;
}

char *fm_metrics_to_json(const fm_metrics *m, long round) {
  json_object *root = json_object_new_object();
  if (!root) return NULL;
  json_object_object_add(root, "round", json_object_new_int64(round));
  for (size_t i = 0; i < m->n; i++)
    if (fm__json_put(root, &m->entry[i]) != FM_OK) {
      json_object_put(root);
      return NULL;
    }
  const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
  char *copy = s ? fm__strdup(s) : NULL;
  json_object_put(root);
  return copy;
}

/* ---- writing whole records ---------------------------------------------------- */

/* A growing text buffer: one record, written with one write(). */
typedef struct fm__text {
  char *p;
  size_t n, cap;
  int oom;
} fm__text;

static void fm__text_printf(fm__text *t, const char *fmt, ...) {
  if (t->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? t->cap - t->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      t->oom = 1;
      return;
    }
    if (t->p && t->n + (size_t)k < t->cap) {
      t->n += (size_t)k;
      return;
    }
    size_t cap = t->cap ? 2 * t->cap : 1024;
    while (cap <= t->n + (size_t)k) cap *= 2;
    char *q = fm__realloc(t->p, cap);
    if (!q) {
      t->oom = 1;
      return;
    }
    t->p = q;
    t->cap = cap;
  }
}

/* The system's reason for errno e. */
static const char *fm__reason(int e, char *buf, size_t size) {
  if (strerror_r(e, buf, size) != 0) snprintf(buf, size, "error %d", e);
  return buf;
}

/* Write all n bytes; 0 or the errno. */
static int fm__write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int fm__open_append(const char *path, int truncate) {
  return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0666);
}

static int fm__writer_new(const char *dir, fm_metrics_writer **out) {
  fm_metrics_writer *w = fm__calloc(1, sizeof *w);
  if (!w) return FM_ERR_NOMEM;
  w->jsonl = w->csv = -1;
  size_t n = strlen(dir) + 16;
  w->jsonl_path = fm__malloc(n);
  w->csv_path = fm__malloc(n);
  if (!w->jsonl_path || !w->csv_path) {
    fm_metrics_writer_close(&w);
    return FM_ERR_NOMEM;
  }
  snprintf(w->jsonl_path, n, "%s/metrics.jsonl", dir);
  snprintf(w->csv_path, n, "%s/metrics.csv", dir);
  *out = w;
  return FM_OK;
}

static int fm__writer_open_files(fm_metrics_writer *w, int truncate) {
  char reason[128];
  w->jsonl = fm__open_append(w->jsonl_path, truncate);
  if (w->jsonl < 0) return FM_ERR(FM_ERR_IO, "cannot create '%s': %s", w->jsonl_path, fm__reason(errno, reason, sizeof reason));
  w->csv = fm__open_append(w->csv_path, truncate);
  if (w->csv < 0) return FM_ERR(FM_ERR_IO, "cannot create '%s': %s", w->csv_path, fm__reason(errno, reason, sizeof reason));
  return FM_OK;
}

int fm_metrics_writer_open(const char *dir, fm_metrics_writer **out) {
  FM_CHECK(dir && out, FM_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  fm_metrics_writer *w;
  FM_CALL(fm__writer_new(dir, &w));
  int rc = fm__writer_open_files(w, 1);
  if (rc != FM_OK) {
    fm_metrics_writer_close(&w);
    return rc;
  }
  *out = w;
  return FM_OK;
}

/* Write text to tmp, fsync it and rename it over path; on any failure tmp is
 * removed, path is untouched and the error names path. */
static int fm__replace_file(const char *path, const char *text, size_t n) {
  char tmp[4200], reason[128];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  int e = fd < 0 ? errno : fm__write_all(fd, text, n);
  if (!e && fsync(fd) != 0 && errno != EINVAL) e = errno;
  if (fd >= 0 && close(fd) != 0 && !e) e = errno;
  if (!e && rename(tmp, path) != 0) e = errno;
  if (!e) return FM_OK;
  remove(tmp);
  return FM_ERR(FM_ERR_IO, "cannot rewrite '%s': %s", path, fm__reason(e, reason, sizeof reason));
}

/* ---- resume: keep each round up to the checkpoint's exactly once ---------------- */

/* The round of a CSV row if it has exactly `fields` fields and a whole
 * integer first field, else -1. */
static long fm__csv_row_round(const char *line, size_t fields) {
  char *end;
  long r = strtol(line, &end, 10);
  if (end == line || (*end != ',' && *end != '\n')) return -1;
  size_t n = 1;
  for (const char *p = line; *p; p++) n += *p == ',';
  return n == fields ? r : -1;
}

/* The round of a JSON line if the whole line is one object with an integer
 * "round", else -1. */
static long fm__json_line_round(const char *line, size_t len) {
  json_tokener *tok = json_tokener_new();
  if (!tok) return -1;
  json_object *o = json_tokener_parse_ex(tok, line, (int)len), *r = NULL;
  int whole = o && json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) + 1 >= len;
  json_tokener_free(tok);
  long round = -1;
  if (whole && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "round", &r) &&
      json_object_is_type(r, json_type_int))
    round = (long)json_object_get_int64(r);
  if (o) json_object_put(o);
  return round;
}

/* The header of a CSV (its first line, without the newline) as columns. */
static int fm__csv_header_columns(char *line, char ***cols, size_t *num) {
  size_t n = 0;
  for (char *p = line; *p; p++) n += *p == ',';
  *cols = fm__calloc(n + 1, sizeof **cols);
  if (!*cols) return FM_ERR_NOMEM;
  char *save = NULL, *tok = strtok_r(line, ",", &save); /* "round" */
  while ((tok = strtok_r(NULL, ",", &save))) {
    (*cols)[*num] = fm__strdup(tok);
    if (!(*cols)[(*num)++]) return FM_ERR_NOMEM;
  }
  return FM_OK;
}

/* Rewrite path (atomically) keeping only whole lines that are whole records
 * of rounds 1..round, each round once and in increasing order: a torn last
 * line (a run killed mid-write), records of rounds after the checkpoint
 * (about to be redone) and any repeated or unparsable line are dropped. A
 * CSV keeps its header, which fixes the columns of the appended rows. */
static int fm__filter_file(const char *path, int csv, long round, char ***header_cols, size_t *num_cols) {
  FILE *in = fopen(path, "r");
  if (!in) return FM_OK; /* nothing written yet */
  fm__text keep = {0};
  char *line = NULL;
  size_t cap = 0, fields = 0;
  ssize_t len;
  long lineno = 0, last = 0;
  int rc = FM_OK;
  while (rc == FM_OK && (len = getline(&line, &cap, in)) > 0) {
    if (line[len - 1] != '\n') break; /* a torn last line from a killed run */
    if (csv && ++lineno == 1) {
      fm__text_printf(&keep, "%s", line);
      for (ssize_t i = 0; i < len; i++) fields += line[i] == ',';
      fields++;
      line[len - 1] = '\0';
      rc = fm__csv_header_columns(line, header_cols, num_cols);
      continue;
    }
    long r = csv ? fm__csv_row_round(line, fields) : fm__json_line_round(line, (size_t)len);
    if (r > last && r <= round) {
      fm__text_printf(&keep, "%s", line);
      last = r;
    }
  }
  int read_error = ferror(in);
  free(line);
  fclose(in);
  if (rc == FM_OK && read_error) rc = FM_ERR(FM_ERR_IO, "cannot read '%s'", path);
  if (rc == FM_OK && keep.oom) rc = FM_ERR(FM_ERR_NOMEM, "out of memory reading '%s'", path);
  if (rc == FM_OK) rc = fm__replace_file(path, keep.p ? keep.p : "", keep.n);
  fm__free(keep.p);
  return rc;
}

int fm_metrics_writer_resume(const char *dir, long round, fm_metrics_writer **out) {
  FM_CHECK(dir && out, FM_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  fm_metrics_writer *w;
  FM_CALL(fm__writer_new(dir, &w));
  int rc = fm__filter_file(w->jsonl_path, 0, round, NULL, NULL);
  if (rc == FM_OK) rc = fm__filter_file(w->csv_path, 1, round, &w->columns, &w->num_columns);
  w->cap_columns = w->num_columns;
  if (rc == FM_OK) rc = fm__writer_open_files(w, 0);
  if (rc != FM_OK) {
    fm_metrics_writer_close(&w);
    return rc;
  }
  *out = w;
  return FM_OK;
}

static long fm__find_column(const fm_metrics_writer *w, const char *path) {
  for (size_t c = 0; c < w->num_columns; c++)
    if (strcmp(w->columns[c], path) == 0) return (long)c;
  return -1;
}

static void fm__csv_header(const fm_metrics_writer *w, fm__text *t) {
  fm__text_printf(t, "round");
  for (size_t c = 0; c < w->num_columns; c++) fm__text_printf(t, ",%s", w->columns[c]);
  fm__text_printf(t, "\n");
}

/* Rewrite the CSV with the new header, every row padded with empty fields
 * for the columns from `before` on; atomic, so a failure leaves it as it was. */
static int fm__csv_rewrite(fm_metrics_writer *w, size_t before) {
  FILE *in = fopen(w->csv_path, "r");
  if (!in) return FM_ERR(FM_ERR_IO, "cannot rewrite '%s' for new columns: %s", w->csv_path, strerror(errno));
  fm__text t = {0};
  fm__csv_header(w, &t);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int header = 1;
  while ((len = getline(&line, &cap, in)) > 0) {
    if (header) { /* the old header is replaced */
      header = 0;
      continue;
    }
    if (line[len - 1] == '\n') line[--len] = '\0';
    fm__text_printf(&t, "%s", line);
    for (size_t c = before; c < w->num_columns; c++) fm__text_printf(&t, ",");
    fm__text_printf(&t, "\n");
  }
  free(line);
  fclose(in);
  int rc = t.oom ? FM_ERR(FM_ERR_NOMEM, "out of memory rewriting '%s'", w->csv_path) : FM_OK;
  if (rc == FM_OK) rc = fm__replace_file(w->csv_path, t.p, t.n);
  fm__free(t.p);
  if (rc != FM_OK) return rc;
  close(w->csv);
  w->csv = fm__open_append(w->csv_path, 0);
  if (w->csv < 0) return FM_ERR(FM_ERR_IO, "cannot reopen '%s': %s", w->csv_path, strerror(errno));
  return FM_OK;
}

/* Make every non-group path of m a CSV column. A fresh file gets its header
 * in front of the first row (into rec); columns that appear later
 * (evaluation every K rounds, a metric added on resume) extend the header
 * and pad the earlier rows with empty fields. If that fails the columns are
 * as before. */
static int fm__csv_columns(fm_metrics_writer *w, const fm_metrics *m, fm__text *rec) {
  size_t before = w->num_columns;
  int fresh = w->columns == NULL;
  for (size_t i = 0; i < m->n; i++) {
    if (m->entry[i].kind == FM_METRIC_GROUP || fm__find_column(w, m->entry[i].path) >= 0) continue;
    if (w->num_columns == w->cap_columns) {
      size_t cap = w->cap_columns ? 2 * w->cap_columns : 32;
      char **cols = fm__realloc(w->columns, cap * sizeof *cols);
      if (!cols) return FM_ERR_NOMEM;
      w->columns = cols;
      w->cap_columns = cap;
    }
    w->columns[w->num_columns] = fm__strdup(m->entry[i].path);
    if (!w->columns[w->num_columns]) return FM_ERR_NOMEM;
    w->num_columns++;
  }
  if (w->num_columns == before && !fresh) return FM_OK;
  struct stat st;
  if (fstat(w->csv, &st) == 0 && st.st_size == 0) { /* nothing written yet: the header goes with the row */
    fm__csv_header(w, rec);
    return FM_OK;
  }
  int rc = fm__csv_rewrite(w, before);
  if (rc != FM_OK) {
    while (w->num_columns > before) fm__free(w->columns[--w->num_columns]);
  }
  return rc;
}

/* One CSV row of m under the current columns. */
static void fm__csv_row(const fm_metrics_writer *w, long round, const fm_metrics *m, fm__text *rec) {
  fm__text_printf(rec, "%ld", round);
  for (size_t c = 0; c < w->num_columns; c++) {
    fm__text_printf(rec, ",");
    size_t i;
    for (i = 0; i < m->n; i++)
      if (strcmp(m->entry[i].path, w->columns[c]) == 0) break;
    if (i == m->n) continue;
    double v = m->entry[i].value;
    if (m->entry[i].kind == FM_METRIC_INT)
      fm__text_printf(rec, "%lld", (long long)v);
    else
      fm__text_printf(rec, "%.9g", v);
  }
  fm__text_printf(rec, "\n");
}

/* Append both records; if either write fails, cut both files back to their
 * sizes before, so each holds whole records only. */
static int fm__append_records(fm_metrics_writer *w, const fm__text *jrec, const fm__text *crec) {
  struct stat js, cs;
  char reason[128];
  if (fstat(w->jsonl, &js) != 0 || fstat(w->csv, &cs) != 0)
    return FM_ERR(FM_ERR_IO, "cannot stat the metrics files '%s', '%s': %s", w->jsonl_path, w->csv_path,
                  fm__reason(errno, reason, sizeof reason));
  const char *failed = w->jsonl_path;
  int e = fm__write_all(w->jsonl, jrec->p, jrec->n);
  if (!e) {
    failed = w->csv_path;
    e = fm__write_all(w->csv, crec->p, crec->n);
  }
  if (!e) return FM_OK;
  /* Best effort (truncating frees space, so it works on a full disk); if
   * it failed too, a resume still drops the half record as a torn line. */
  int cut_j = ftruncate(w->jsonl, js.st_size), cut_c = ftruncate(w->csv, cs.st_size);
  (void)cut_j;
  (void)cut_c;
  return FM_ERR(FM_ERR_IO, "cannot write '%s': %s", failed, fm__reason(e, reason, sizeof reason));
}

int fm_metrics_writer_write(fm_metrics_writer *w, long round, const fm_metrics *m) {
  FM_CHECK(w && m, FM_ERR_INVALID_ARG, "NULL argument");
  FM_CHECK(w->jsonl >= 0 && w->csv >= 0, FM_ERR_INVALID_ARG, "the metrics writer is closed");
  char *json = fm_metrics_to_json(m, round);
  FM_CHECK(json, FM_ERR_NOMEM, "out of memory writing metrics");
  fm__text jrec = {0}, crec = {0};
  fm__text_printf(&jrec, "%s\n", json);
  fm__free(json);
  int rc = fm__csv_columns(w, m, &crec);
  if (rc == FM_OK) {
    fm__csv_row(w, round, m, &crec);
    rc = jrec.oom || crec.oom ? FM_ERR(FM_ERR_NOMEM, "out of memory writing metrics") : fm__append_records(w, &jrec, &crec);
  }
  fm__free(jrec.p);
  fm__free(crec.p);
  return rc;
}

void fm_metrics_writer_close(fm_metrics_writer **w) {
  if (!w || !*w) return;
  if ((*w)->jsonl >= 0) close((*w)->jsonl);
  if ((*w)->csv >= 0) close((*w)->csv);
  fm__free((*w)->jsonl_path);
  fm__free((*w)->csv_path);
  for (size_t i = 0; i < (*w)->num_columns; i++) fm__free((*w)->columns[i]);
  fm__free((*w)->columns);
  fm__free(*w);
  *w = NULL;
}
