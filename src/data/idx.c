/* src/data/idx.c — reading IDX files (the MNIST / Fashion-MNIST format),
 * gzipped or not, and importing an images + labels pair as a partitioned TFF
 * ClientData file.
 *
 * IDX: 4 magic bytes 0x00 0x00 <type> <ndims> (type 0x08 = unsigned byte),
 * ndims big-endian uint32 dimensions, then prod(dims) bytes. zlib's gzread
 * reads both plain and gzip files, so ".gz" needs no special case; the
 * reader insists the file ends exactly where the header says, which also
 * makes zlib verify the gzip trailer's CRC.
 *
 * Import: images 0x00000803 (N, R, C) and labels 0x00000801 (N) must agree
 * on N. Pixels become float32 b / 255 (or (255 - b) / 255 with invert, 1.0 =
 * background as EMNIST), or stay uint8 (no_scale; 255 - b with invert), in
 * shape (n, R, C) or flattened (n, R * C), as feature "pixels"; labels int32
 * as "label" (TFF's EMNIST names). Clients come from fm_partition_labels;
 * each client's examples keep their order in the source. Root attributes
 * record the sources, the preprocessing and the partition (docs/data.md).
 *
 * Deliberately does not: read IDX types other than unsigned bytes, download
 * anything, hold more than the two decoded files and one client in memory,
 * or split train from test (the IDX pair already is one split). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "data_impl.h"
#include "internal.h"

#define FM__IDX_IMAGES 0x00000803u
#define FM__IDX_LABELS 0x00000801u
#define FM__IDX_MAX_BYTES ((size_t)1 << 40)

static const char *fm__idx_kind(uint32_t magic) {
  switch (magic) {
    case FM__IDX_IMAGES: return "IDX images: unsigned bytes, 3 dimensions";
    case FM__IDX_LABELS: return "IDX labels: unsigned bytes, 1 dimension";
    default: return "an IDX file of unsigned bytes";
  }
}

/* Read up to len bytes: the count read, or -1 with *err set. */
static long long fm__gz_read(gzFile f, void *buf, size_t len, int *err) {
  size_t got = 0;
  *err = Z_OK;
  while (got < len) {
    unsigned chunk = len - got > (1u << 30) ? (1u << 30) : (unsigned)(len - got);
    int r = gzread(f, (char *)buf + got, chunk);
    if (r < 0) {
      gzerror(f, err);
      /* a truncated gzip stream still returns what it decoded */
      return *err == Z_BUF_ERROR ? (long long)got : -1;
    }
    if (r == 0) {
      gzerror(f, err);
      break;
    }
    got += (size_t)r;
  }
  return (long long)got;
}

static int fm__gz_fail(const char *path, gzFile f) {
  int e = Z_OK;
  const char *m = gzerror(f, &e);
  if (e == Z_ERRNO) return FM_ERR(FM_ERR_IO, "%s: read error: %s", path, strerror(errno));
  return FM_ERR(FM_ERR_FORMAT, "%s: corrupted gzip data (%s)", path, m ? m : "unknown zlib error");
}

int fm_idx_read(const char *path, uint32_t expect_magic, fm_idx *out) {
  FM_CHECK(path && out, FM_ERR_INVALID_ARG, "fm_idx_read: path and out must not be NULL");
  memset(out, 0, sizeof *out);
  FM_CALL(fm__h5_check_readable(path));
  gzFile f = gzopen(path, "rb");
  if (!f) return FM_ERR(FM_ERR_IO, "cannot open '%s': %s", path, errno ? strerror(errno) : "out of memory");
  gzbuffer(f, 1u << 17);
  int rc = FM_OK, zerr;
  unsigned char hdr[16];
  long long got = fm__gz_read(f, hdr, 4, &zerr);
  if (got < 0) {
    rc = fm__gz_fail(path, f);
    goto done;
  }
  FM_CHECK_GOTO(rc, got == 4, done, FM_ERR_FORMAT, "%s: truncated: %lld of the 4 magic bytes", path, got);
  out->magic = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
  const int nd = hdr[3];
  const int ok_magic = hdr[0] == 0 && hdr[1] == 0 && hdr[2] == 0x08 && nd >= 1 && nd <= 4;
  if (expect_magic)
    FM_CHECK_GOTO(rc, out->magic == expect_magic, done, FM_ERR_FORMAT,
                  "%s: wrong magic 0x%08x (expected 0x%08x, %s)", path, out->magic, expect_magic,
                  fm__idx_kind(expect_magic));
  else
    FM_CHECK_GOTO(rc, ok_magic, done, FM_ERR_FORMAT, "%s: wrong magic 0x%08x (not %s)", path, out->magic,
                  fm__idx_kind(0));
  got = fm__gz_read(f, hdr, 4 * (size_t)nd, &zerr);
  if (got < 0) {
    rc = fm__gz_fail(path, f);
    goto done;
  }
  FM_CHECK_GOTO(rc, got == 4 * nd, done, FM_ERR_FORMAT, "%s: truncated: %lld of the %d dimension bytes", path, got,
                4 * nd);
  out->ndims = nd;
  out->count = 1;
  char shape[96] = "";
  size_t used = 0;
  for (int j = 0; j < nd; j++) {
    const unsigned char *b = hdr + 4 * j;
    uint32_t d = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    FM_CHECK_GOTO(rc, d > 0, done, FM_ERR_FORMAT, "%s: dimension %d is 0", path, j);
    out->dims[j] = d;
    FM_CHECK_GOTO(rc, out->count <= FM__IDX_MAX_BYTES / d, done, FM_ERR_FORMAT,
                  "%s: the header describes more than 2^40 bytes (corrupted header?)", path);
    out->count *= d;
    int w = snprintf(shape + used, sizeof shape - used, "%s%u", j ? " x " : "", (unsigned)d);
    if (w > 0 && (size_t)w < sizeof shape - used) used += (size_t)w;
  }
  out->data = fm__malloc(out->count);
  FM_CHECK_GOTO(rc, out->data != NULL, done, FM_ERR_NOMEM, "%s: out of memory for %zu bytes", path, out->count);
  got = fm__gz_read(f, out->data, out->count, &zerr);
  if (got < 0) {
    rc = fm__gz_fail(path, f);
    goto done;
  }
  FM_CHECK_GOTO(rc, (size_t)got == out->count, done, FM_ERR_FORMAT,
                "%s: truncated: the header promises %s = %zu bytes of data, the file holds %lld", path, shape,
                out->count, got);
  /* Nothing may follow; reading past the end also checks the gzip CRC. */
  unsigned char extra[256];
  got = fm__gz_read(f, extra, sizeof extra, &zerr);
  if (got < 0 || (got == 0 && zerr != Z_OK && zerr != Z_STREAM_END && zerr != Z_BUF_ERROR)) {
    rc = fm__gz_fail(path, f);
    goto done;
  }
  FM_CHECK_GOTO(rc, got == 0, done, FM_ERR_FORMAT,
                "%s: more bytes than the header describes (%s = %zu); wrong file, or a corrupted header", path, shape,
                out->count);
done:
  gzclose(f);
  if (rc != FM_OK) fm_idx_free(out);
  return rc;
}

void fm_idx_free(fm_idx *x) {
  if (!x) return;
  fm__free(x->data);
  memset(x, 0, sizeof *x);
}

void fm_idx_import_defaults(fm_idx_import_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  fm_partition_defaults(&o->partition);
}

/* Root attributes: sources, preprocessing, partition. */
static int fm__import_attrs(fm__cd_writer *w, const fm_idx_import_options *o, size_t num_classes, size_t rows,
                            size_t cols, const fm_partition_result *res) {
  const fm_partition_options *p = &o->partition;
  const fm_partition_method m = p->method;
  FM_CALL(fm__cd_writer_attr_i64(w, "num_classes", (long long)num_classes));
  FM_CALL(fm__cd_writer_attr_i64(w, "num_clients", (long long)p->num_clients));
  FM_CALL(fm__cd_writer_attr_str(w, "generator", "idx-import"));
  FM_CALL(fm__cd_writer_attr_str(w, "source_images", o->images_path));
  FM_CALL(fm__cd_writer_attr_str(w, "source_labels", o->labels_path));
  FM_CALL(fm__cd_writer_attr_str(w, "scale", o->no_scale ? "none" : "x/255"));
  FM_CALL(fm__cd_writer_attr_i64(w, "invert", o->invert ? 1 : 0));
  FM_CALL(fm__cd_writer_attr_i64(w, "flatten", o->flatten ? 1 : 0));
  FM_CALL(fm__cd_writer_attr_i64(w, "image_rows", (long long)rows));
  FM_CALL(fm__cd_writer_attr_i64(w, "image_cols", (long long)cols));
  FM_CALL(fm__cd_writer_attr_str(w, "partition", fm_partition_method_name(m)));
  FM_CALL(fm__cd_writer_attr_u64(w, "seed", p->seed));
  if (m == FM_PARTITION_DIRICHLET || m == FM_PARTITION_HETERO_DIR) FM_CALL(fm__cd_writer_attr_f64(w, "alpha", p->alpha));
  if (m == FM_PARTITION_SHARDS)
    FM_CALL(fm__cd_writer_attr_i64(w, "classes_per_client", (long long)p->classes_per_client));
  if (m == FM_PARTITION_QUANTITY) FM_CALL(fm__cd_writer_attr_f64(w, "sigma", p->sigma));
  if (m == FM_PARTITION_HETERO_DIR || m == FM_PARTITION_QUANTITY)
    FM_CALL(fm__cd_writer_attr_i64(w, "min_size", (long long)p->min_size));
  if (m == FM_PARTITION_HETERO_DIR) {
    FM_CALL(fm__cd_writer_attr_i64(w, "max_attempts", (long long)p->max_attempts));
    FM_CALL(fm__cd_writer_attr_i64(w, "partition_attempts", (long long)res->attempts));
    FM_CALL(fm__cd_writer_attr_i64(w, "partition_moved", (long long)res->moved));
  }
  return FM_OK;
}

int fm_idx_import(const fm_idx_import_options *o, const char *out_path, fm_partition_result *res) {
  FM_CHECK(o && o->images_path && o->labels_path && out_path, FM_ERR_INVALID_ARG,
           "fm_idx_import: images, labels and output paths must be given");
  fm_partition_result dummy;
  if (!res) res = &dummy;
  fm_idx im, lb;
  FM_CALL(fm_idx_read(o->images_path, FM__IDX_IMAGES, &im));
  int rc = fm_idx_read(o->labels_path, FM__IDX_LABELS, &lb);
  if (rc != FM_OK) {
    fm_idx_free(&im);
    return rc;
  }
  int32_t *y = NULL, *cy = NULL;
  uint32_t *client_of = NULL, *order = NULL;
  size_t *start = NULL;
  void *cx = NULL;
  fm__cd_writer w = {NULL, NULL, -1, -1};
  int writing = 0;
  const size_t n = im.dims[0], R = im.dims[1], Cc = im.dims[2], D = R * Cc, K = o->partition.num_clients;
  FM_CHECK_GOTO(rc, lb.dims[0] == n, done, FM_ERR_FORMAT, "'%s' has %zu images but '%s' has %zu labels",
                o->images_path, n, o->labels_path, lb.dims[0]);
  y = fm__malloc(n * sizeof *y);
  client_of = fm__malloc(n * sizeof *client_of);
  order = fm__malloc(n * sizeof *order);
  FM_CHECK_GOTO(rc, y && client_of && order, done, FM_ERR_NOMEM, "out of memory importing %zu examples", n);
  size_t num_classes = 0;
  for (size_t i = 0; i < n; i++) {
    y[i] = lb.data[i];
    if ((size_t)y[i] + 1 > num_classes) num_classes = (size_t)y[i] + 1;
  }
  FM_CALL_GOTO(rc, fm_partition_labels(&o->partition, y, n, num_classes, client_of, res), done);

  /* Group by client, keeping source order within a client. */
  start = fm__calloc(K + 1, sizeof *start);
  FM_CHECK_GOTO(rc, start != NULL, done, FM_ERR_NOMEM, "out of memory for %zu clients", K);
  for (size_t i = 0; i < n; i++) start[client_of[i] + 1]++;
  size_t largest = 0;
  for (size_t k = 0; k < K; k++) {
    largest = start[k + 1] > largest ? start[k + 1] : largest;
    start[k + 1] += start[k];
  }
  {
    size_t *pos = fm__malloc((K ? K : 1) * sizeof *pos);
    FM_CHECK_GOTO(rc, pos != NULL, done, FM_ERR_NOMEM, "out of memory for %zu clients", K);
    memcpy(pos, start, K * sizeof *pos);
    for (size_t i = 0; i < n; i++) order[pos[client_of[i]]++] = (uint32_t)i;
    fm__free(pos);
  }
  const size_t esz = o->no_scale ? 1 : sizeof(float);
  cx = fm__malloc((largest ? largest : 1) * D * esz);
  cy = fm__malloc((largest ? largest : 1) * sizeof *cy);
  FM_CHECK_GOTO(rc, cx && cy, done, FM_ERR_NOMEM, "out of memory for a client of %zu examples", largest);

  FM_CALL_GOTO(rc, fm__cd_writer_open(&w, out_path), done);
  writing = 1;
  FM_CALL_GOTO(rc, fm__import_attrs(&w, o, num_classes, R, Cc, res), done);
  for (size_t k = 0; k < K; k++) {
    const size_t m = start[k + 1] - start[k];
    for (size_t j = 0; j < m; j++) {
      const size_t i = order[start[k] + j];
      const uint8_t *src = im.data + i * D;
      if (o->no_scale) {
        uint8_t *dst = (uint8_t *)cx + j * D;
        for (size_t p = 0; p < D; p++) dst[p] = o->invert ? (uint8_t)(255 - src[p]) : src[p];
      } else {
        float *dst = (float *)cx + j * D;
        for (size_t p = 0; p < D; p++) dst[p] = (float)(o->invert ? 255 - src[p] : src[p]) / 255.0f;
      }
      cy[j] = y[i];
    }
    char id[32];
    fm__client_id(id, sizeof id, k, K);
    fm__wfeat f[2] = {
        {"label", FM__W_INT32, 1, {m, 0, 0, 0, 0}, cy},
        {"pixels", o->no_scale ? FM__W_UINT8 : FM__W_FLOAT32, o->flatten ? 2 : 3, {m, o->flatten ? D : R, Cc, 0, 0},
         cx},
    };
    FM_CALL_GOTO(rc, fm__cd_writer_client(&w, id, 2, f), done);
  }
done:
  if (writing) rc = fm__cd_writer_finish(&w, rc);
  fm_idx_free(&im);
  fm_idx_free(&lb);
  fm__free(y);
  fm__free(cy);
  fm__free(cx);
  fm__free(client_of);
  fm__free(order);
  fm__free(start);
  return rc;
}
