/* src/core/metrics_report.c — fm_metrics: a flat, ordered list of slash-path
 * entries that writers turn into TFF-style nested records. */
#include <stdio.h>
#include <string.h>

#include "fedmpi/metrics.h"
#include "internal.h"

void fm_metrics_init(fm_metrics *m) {
  m->n = m->cap = 0;
  m->entry = NULL;
}

void fm_metrics_clear(fm_metrics *m) { m->n = 0; }

void fm_metrics_free(fm_metrics *m) {
  fm__free(m->entry);
  fm_metrics_init(m);
}

int fm_metrics_put(fm_metrics *m, const char *path, double value, fm_metric_kind kind) {
  FM_CHECK(path && strlen(path) < FM_METRIC_PATH_MAX, FM_ERR_INVALID_ARG, "metric path empty or too long");
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->entry[i].path, path) == 0) {
      m->entry[i].value = value;
      m->entry[i].kind = kind;
      return FM_OK;
    }
  if (m->n == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 32;
    fm_metric_entry *e = fm__realloc(m->entry, cap * sizeof *e);
    if (!e) return FM_ERR_NOMEM;
    m->entry = e;
    m->cap = cap;
  }
  fm_metric_entry *e = &m->entry[m->n++];
  snprintf(e->path, sizeof e->path, "%s", path);
  e->value = value;
  e->kind = kind;
  return FM_OK;
}

int fm_metrics_get(const fm_metrics *m, const char *path, double *value) {
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->entry[i].path, path) == 0 && m->entry[i].kind != FM_METRIC_GROUP) {
      *value = m->entry[i].value;
      return FM_OK;
    }
  return FM_ERR(FM_ERR_INVALID_ARG, "no metric '%s'", path);
}

int fm_metrics_merge(fm_metrics *dst, const char *prefix, const fm_metrics *src) {
  char path[FM_METRIC_PATH_MAX];
  for (size_t i = 0; i < src->n; i++) {
    int w = (prefix && *prefix) ? snprintf(path, sizeof path, "%s/%s", prefix, src->entry[i].path)
                                : snprintf(path, sizeof path, "%s", src->entry[i].path);
    FM_CHECK(w > 0 && (size_t)w < sizeof path, FM_ERR_INVALID_ARG, "metric path too long under '%s'", prefix);
    FM_CALL(fm_metrics_put(dst, path, src->entry[i].value, src->entry[i].kind));
  }
  return FM_OK;
}
