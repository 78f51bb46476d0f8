/* fedmpi/io.h — model weights files and metrics files.
 *
 * Weights file (HDF5, format "fedmpi-weights", version 1):
 *   root attributes: fedmpi_format = "fedmpi-weights" (string),
 *                    format_version = 1 (int), model = "<model name>" (string)
 *   /weights/<tensor name>: float32 dataset of the tensor's shape; tensor names
 *                    with '/' become nested groups ("dense_0/kernel");
 *                    attributes trainable (int) and index (int, position in the layout).
 * The file is written to "<path>.tmp", flushed and renamed, so an existing
 * file is never left half-written.
 *
 * Metrics files: one JSON object per round (metrics.jsonl) with TFF's nesting,
 * and a CSV (metrics.csv) whose columns are the slash paths. */
#ifndef FEDMPI_IO_H
#define FEDMPI_IO_H

#include <stdio.h>

#include "fedmpi/export.h"
#include "fedmpi/metrics.h"
#include "fedmpi/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FM_WEIGHTS_FORMAT "fedmpi-weights"
#define FM_WEIGHTS_FORMAT_VERSION 1

/* Save all P floats of w under layout l. Not collective (call on one rank). */
FM_EXTERN int fm_weights_save(const char *path, const fm_layout *l, const float *w, const char *model_name);
/* Load into w (P floats) every tensor of l from path. Errors name the file and
 * tensor: FM_ERR_IO, FM_ERR_FORMAT (not a weights file, wrong version),
 * FM_ERR_LAYOUT_MISMATCH (a tensor missing, a shape differs, extra tensors). */
FM_EXTERN int fm_weights_load(const char *path, const fm_layout *l, float *w);

/* Metrics writer: appends one record per round to dir/metrics.jsonl and
 * dir/metrics.csv. The CSV header is fixed by the first record; later keys
 * not in the header are kept in the JSON lines only. */
typedef struct fm_metrics_writer fm_metrics_writer;
FM_EXTERN int fm_metrics_writer_open(const char *dir, fm_metrics_writer **out);
FM_EXTERN int fm_metrics_writer_write(fm_metrics_writer *w, long round, const fm_metrics *m);
FM_EXTERN void fm_metrics_writer_close(fm_metrics_writer **w);
/* Nested JSON text of a report (caller frees with free()). */
FM_EXTERN char *fm_metrics_to_json(const fm_metrics *m, long round);

#ifdef __cplusplus
}
#endif
#endif
