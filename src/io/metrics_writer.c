/* src/io/metrics_writer.c — per-round metrics files: JSON lines with TFF's
 * nesting (built with json-c) and a flat CSV whose columns are slash paths.
 * Each record is flushed as soon as it is written, so `tail -f` follows a
 * long run and a killed run keeps every completed round. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "fedmpi/io.h"
#include "internal.h"

struct fm_metrics_writer {
  FILE *jsonl;
  FILE *csv;
  char *csv_path;
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

int fm_metrics_writer_open(const char *dir, fm_metrics_writer **out) {
  FM_CHECK(dir && out, FM_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  fm_metrics_writer *w = fm__calloc(1, sizeof *w);
  if (!w) return FM_ERR_NOMEM;
  char path[4096];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  w->jsonl = fopen(path, "w");
  snprintf(path, sizeof path, "%s/metrics.csv", dir);
  if (w->jsonl) w->csv = fopen(path, "w");
  w->csv_path = fm__strdup(path);
  if (!w->jsonl || !w->csv || !w->csv_path) {
    int rc = FM_ERR(FM_ERR_IO, "cannot create '%s'", path);
    fm_metrics_writer_close(&w);
    return rc;
  }
  *out = w;
  return FM_OK;
}

/* Rewrite path keeping the lines keep() accepts (the first line of a CSV is
 * its header and is always kept); atomic through a temporary file. */
static int fm__filter_file(const char *path, int csv, long round, char ***header_cols, size_t *num_cols) {
  FILE *in = fopen(path, "r");
  if (!in) return FM_OK; /* nothing written yet */
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *out = fopen(tmp, "w");
  if (!out) {
    fclose(in);
    return FM_ERR(FM_ERR_IO, "cannot write '%s'", tmp);
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long lineno = 0;
  int rc = FM_OK;
  while ((len = getline(&line, &cap, in)) > 0) {
    lineno++;
    if (line[len - 1] != '\n') break; /* a torn last line from a killed run */
    int keep = 0;
    if (csv && lineno == 1) {
      keep = 1;
      /* the header fixes the columns of the appended rows */
      char *save = NULL, *copy = fm__strdup(line);
      if (!copy) {
        rc = FM_ERR_NOMEM;
        break;
      }
      copy[len - 1] = '\0';
      size_t n = 0;
      for (char *p = copy; *p; p++) n += *p == ',';
      *header_cols = fm__calloc(n + 1, sizeof **header_cols);
      char *tok = strtok_r(copy, ",", &save); /* "round" */
      while (*header_cols && (tok = strtok_r(NULL, ",", &save))) (*header_cols)[(*num_cols)++] = fm__strdup(tok);
      fm__free(copy);
    } else if (csv) {
      keep = strtol(line, NULL, 10) <= round;
    } else {
      json_object *o = json_tokener_parse(line), *r = NULL;
      keep = o && json_object_object_get_ex(o, "round", &r) && json_object_get_int64(r) <= round;
      if (o) json_object_put(o);
    }
    if (keep && fputs(line, out) == EOF) rc = FM_ERR(FM_ERR_IO, "cannot write '%s'", tmp);
  }
  free(line);
  fclose(in);
  if (fclose(out) != 0 && rc == FM_OK) rc = FM_ERR(FM_ERR_IO, "cannot write '%s'", tmp);
  if (rc == FM_OK && rename(tmp, path) != 0) rc = FM_ERR(FM_ERR_IO, "cannot replace '%s'", path);
  if (rc != FM_OK) remove(tmp);
  return rc;
}

int fm_metrics_writer_resume(const char *dir, long round, fm_metrics_writer **out) {
  FM_CHECK(dir && out, FM_ERR_INVALID_ARG, "NULL argument");
  *out = NULL;
  fm_metrics_writer *w = fm__calloc(1, sizeof *w);
  if (!w) return FM_ERR_NOMEM;
  char jpath[4096], cpath[4096];
  snprintf(jpath, sizeof jpath, "%s/metrics.jsonl", dir);
  snprintf(cpath, sizeof cpath, "%s/metrics.csv", dir);
  int rc = fm__filter_file(jpath, 0, round, NULL, NULL);
  if (rc == FM_OK) rc = fm__filter_file(cpath, 1, round, &w->columns, &w->num_columns);
  w->cap_columns = w->num_columns;
  w->csv_path = fm__strdup(cpath);
  if (rc == FM_OK && !w->csv_path) rc = FM_ERR_NOMEM;
  if (rc == FM_OK) {
    w->jsonl = fopen(jpath, "a");
    w->csv = w->jsonl ? fopen(cpath, "a") : NULL;
    if (!w->jsonl || !w->csv) rc = FM_ERR(FM_ERR_IO, "cannot append to the metrics files in '%s'", dir);
  }
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

/* Make every non-group path of m a CSV column. A fresh file gets its header;
 * columns that appear later (evaluation every K rounds, a metric added on
 * resume) extend the header and pad the earlier rows with empty fields, by
 * rewriting the file through a temporary one. */
static int fm__csv_columns(fm_metrics_writer *w, const fm_metrics *m) {
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
  fflush(w->csv);
  if (fstat(fileno(w->csv), &st) != 0 || st.st_size == 0) { /* nothing written yet: just the header */
    fputs("round", w->csv);
    for (size_t c = 0; c < w->num_columns; c++) fprintf(w->csv, ",%s", w->columns[c]);
    fputc('\n', w->csv);
    return FM_OK;
  }
  /* Rewrite: the new header, then every row padded with the new empty columns. */
  fclose(w->csv);
  w->csv = NULL;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", w->csv_path);
  FILE *in = fopen(w->csv_path, "r"), *out = fopen(tmp, "w");
  int rc = in && out ? FM_OK : FM_ERR(FM_ERR_IO, "cannot rewrite '%s' for new columns", w->csv_path);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  if (rc == FM_OK) {
    fputs("round", out);
    for (size_t c = 0; c < w->num_columns; c++) fprintf(out, ",%s", w->columns[c]);
    fputc('\n', out);
    int header = 1;
    while ((len = getline(&line, &cap, in)) > 0) {
      if (header) { /* the old header is replaced */
        header = 0;
        continue;
      }
      if (line[len - 1] == '\n') line[--len] = '\0';
      fputs(line, out);
      for (size_t c = before; c < w->num_columns; c++) fputc(',', out);
      fputc('\n', out);
    }
  }
  free(line);
  if (in) fclose(in);
  if (out && fclose(out) != 0 && rc == FM_OK) rc = FM_ERR(FM_ERR_IO, "cannot write '%s'", tmp);
  if (rc == FM_OK && rename(tmp, w->csv_path) != 0) rc = FM_ERR(FM_ERR_IO, "cannot replace '%s'", w->csv_path);
  if (rc != FM_OK) remove(tmp);
  w->csv = fopen(w->csv_path, "a");
  if (!w->csv && rc == FM_OK) rc = FM_ERR(FM_ERR_IO, "cannot reopen '%s'", w->csv_path);
  return rc;
}

int fm_metrics_writer_write(fm_metrics_writer *w, long round, const fm_metrics *m) {
  FM_CHECK(w && m, FM_ERR_INVALID_ARG, "NULL argument");
  char *json = fm_metrics_to_json(m, round);
  FM_CHECK(json, FM_ERR_NOMEM, "out of memory writing metrics");
  int bad = fprintf(w->jsonl, "%s\n", json) < 0;
  fm__free(json);
  FM_CALL(fm__csv_columns(w, m));
  fprintf(w->csv, "%ld", round);
  for (size_t c = 0; c < w->num_columns; c++) {
    double v;
    fputc(',', w->csv);
    size_t i;
    for (i = 0; i < m->n; i++)
      if (strcmp(m->entry[i].path, w->columns[c]) == 0) break;
    if (i == m->n) continue;
    v = m->entry[i].value;
    if (m->entry[i].kind == FM_METRIC_INT)
      fprintf(w->csv, "%lld", (long long)v);
    else
      fprintf(w->csv, "%.9g", v);
  }
  bad |= fputc('\n', w->csv) == EOF;
  bad |= fflush(w->jsonl) != 0;
  bad |= fflush(w->csv) != 0;
  FM_CHECK(!bad, FM_ERR_IO, "writing the metrics files failed (disk full?)");
  return FM_OK;
}

void fm_metrics_writer_close(fm_metrics_writer **w) {
  if (!w || !*w) return;
  if ((*w)->jsonl) fclose((*w)->jsonl);
  if ((*w)->csv) fclose((*w)->csv);
  fm__free((*w)->csv_path);
  for (size_t i = 0; i < (*w)->num_columns; i++) fm__free((*w)->columns[i]);
  fm__free((*w)->columns);
  fm__free(*w);
  *w = NULL;
}
