/* src/io/checkpoint.c — checkpoint files (layout in fedmpi/io.h): the complete
 * state of a run at a round boundary, written atomically with checksummed
 * datasets, pruned to the first plus the newest K, and found again on resume
 * by trying the newest first and falling back past corrupted ones.
 *
 * Deliberately does not: decide when to checkpoint or compare configurations
 * (the CLI does), or take an MPI communicator (rank 0 saves; every rank may
 * load the same file). All HDF5 calls hold the library's HDF5 lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../data/h5lock.h"
#include "fedmpi/blas.h"
#include "fedmpi/io.h"
#include "fedmpi/model.h"
#include "fedmpi/process.h"
#include "internal.h"

void fm_config_hash(const char *text, char *buf) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ull;
  }
  snprintf(buf, 17, "%016" PRIx64, h);
}

/* ---- small HDF5 helpers ------------------------------------------------------- */

/* Chunked, Fletcher-32 checksummed float dataset of rank 1 or 2. */
static int fm__ckpt_write_floats(hid_t loc, const char *name, int rank, const hsize_t *dims, const float *data,
                                 const char *path) {
  hsize_t total = 1, chunk[2];
  for (int i = 0; i < rank; i++) total *= dims[i];
  if (rank == 1) {
    chunk[0] = dims[0] < 65536 ? dims[0] : 65536;
  } else {
    chunk[0] = 1;
    chunk[1] = dims[1] < 65536 ? dims[1] : 65536;
  }
  int rc = FM_OK;
  hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
  if (sp < 0 || dcpl < 0 || (total > 0 && (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0)))
    rc = FM_ERR(FM_ERR_IO, "%s: cannot set up dataset '%s'", path, name);
  if (rc == FM_OK) {
    d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, total > 0 ? dcpl : H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || (total > 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
      rc = FM_ERR(FM_ERR_IO, "%s: cannot write dataset '%s' (disk full?)", path, name);
  }
  if (d >= 0) H5Dclose(d);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

/* Read a float dataset of exactly `count` values (checksums verified by HDF5). */
static int fm__ckpt_read_floats(hid_t loc, const char *name, size_t count, float *out, const char *path) {
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return FM_ERR(FM_ERR_FORMAT, "%s: dataset '%s' is missing", path, name);
  int rc = FM_OK;
  hid_t sp = H5Dget_space(d);
  hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  if (n < 0 || (size_t)n != count)
    rc = FM_ERR(FM_ERR_FORMAT, "%s: dataset '%s' has %lld values, expected %zu", path, name, (long long)n, count);
  else if (count > 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    rc = FM_ERR(FM_ERR_FORMAT, "%s: dataset '%s' cannot be read (checksum mismatch or truncated file)", path, name);
  if (sp >= 0) H5Sclose(sp);
  H5Dclose(d);
  return rc;
}

static int fm__ckpt_write_agg_state(hid_t agg, const fm_state_view *v, const char *path) {
  hsize_t dims[1] = {v->agg_state_n};
  int rc = FM_OK;
  hid_t sp = H5Screate_simple(1, dims, NULL);
  hid_t d = sp >= 0 ? H5Dcreate2(agg, "state", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  if (d < 0 || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->agg_state) < 0)
    rc = FM_ERR(FM_ERR_IO, "%s: cannot write the aggregator state", path);
  if (d >= 0) H5Dclose(d);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

static int fm__ckpt_write_u64(hid_t obj, const char *name, uint64_t v, const char *path) {
  return fm__h5_write_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v, path);
}

static int fm__ckpt_read_u64(hid_t obj, const char *name, const char *path, uint64_t *out) {
  if (H5Aexists(obj, name) <= 0) return FM_ERR(FM_ERR_FORMAT, "%s: attribute '%s' is missing", path, name);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  int rc = (a >= 0 && H5Aread(a, H5T_NATIVE_UINT64, out) >= 0)
               ? FM_OK
               : FM_ERR(FM_ERR_FORMAT, "%s: attribute '%s' cannot be read", path, name);
  if (a >= 0) H5Aclose(a);
  return rc;
}

static int fm__ckpt_write_hparams(hid_t g, const fm_hparams *h, const char *path) {
  for (size_t i = 0; i < h->n; i++)
    FM_CALL(fm__h5_write_attr(g, h->item[i].name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &h->item[i].value, path));
  return FM_OK;
}

typedef struct fm__hp_iter {
  fm_hparams *h;
  int failed;
} fm__hp_iter;

static herr_t fm__ckpt_hp_cb(hid_t obj, const char *name, const H5A_info_t *info, void *vctx) {
  (void)info;
  fm__hp_iter *it = vctx;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return -1;
  hid_t t = H5Aget_type(a);
  int is_float = t >= 0 && H5Tget_class(t) == H5T_FLOAT;
  double v = 0;
  if (is_float && H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0 && fm_hparams_put(it->h, name, v) != FM_OK) it->failed = 1;
  if (t >= 0) H5Tclose(t);
  H5Aclose(a);
  return it->failed ? -1 : 0;
}

/* Float attributes of g are hyperparameters (integers are bookkeeping). */
static int fm__ckpt_read_hparams(hid_t g, fm_hparams *h, const char *path, const char *group) {
  fm_hparams_clear(h);
  fm__hp_iter it = {h, 0};
  hsize_t idx = 0;
  if (H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, fm__ckpt_hp_cb, &it) < 0)
    return FM_ERR(FM_ERR_FORMAT, "%s: cannot read the hyperparameters of '%s'", path, group);
  return FM_OK;
}

/* ---- save ------------------------------------------------------------------------ */

static int fm__ckpt_write(hid_t f, const fm_state_view *v, const char *model_name, const char *config_text,
                          const char *path) {
  int version = FM_CHECKPOINT_FORMAT_VERSION;
  char hash[17];
  fm_config_hash(config_text ? config_text : "", hash);
  FM_CALL(fm__h5_write_string_attr(f, "fedmpi_format", FM_CHECKPOINT_FORMAT, path));
  FM_CALL(fm__h5_write_attr(f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, path));
  FM_CALL(fm__ckpt_write_u64(f, "round", v->round, path));
  FM_CALL(fm__ckpt_write_u64(f, "seed", v->seed, path));
  FM_CALL(fm__h5_write_string_attr(f, "model", model_name ? model_name : "", path));
  FM_CALL(fm__h5_write_string_attr(f, "config", config_text ? config_text : "", path));
  FM_CALL(fm__h5_write_string_attr(f, "config_hash", hash, path));
  FM_CALL(fm__h5_write_string_attr(f, "fedmpi_version", FEDMPI_VERSION, path));
  /* results are bit-identical only under one BLAS kernel: say which wrote it */
  FM_CALL(fm__h5_write_string_attr(f, "blas_kernel", fm_blas_corename(), path));

  int rc = FM_OK;
  hid_t st = -1, cw = -1, fin = -1, agg = -1;
  st = H5Gcreate2(f, "state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (st >= 0) cw = H5Gcreate2(st, "client_work", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (st >= 0) fin = H5Gcreate2(st, "finalizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (st >= 0) agg = H5Gcreate2(st, "aggregator", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (st < 0 || cw < 0 || fin < 0 || agg < 0) {
    rc = FM_ERR(FM_ERR_IO, "%s: cannot create the state groups", path);
    goto done;
  }
  hsize_t dims[2] = {v->numel, 0};
  FM_CALL_GOTO(rc, fm__ckpt_write_floats(st, "weights", 1, dims, v->weights, path), done);
  FM_CALL_GOTO(rc, fm__ckpt_write_hparams(cw, &v->client_hparams, path), done);
  FM_CALL_GOTO(rc, fm__ckpt_write_hparams(fin, &v->server_hparams, path), done);
  int64_t step = v->opt_step, ns = (int64_t)v->opt_num_slots, n = (int64_t)v->opt_n;
  FM_CALL_GOTO(rc, fm__h5_write_attr(fin, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &step, path), done);
  FM_CALL_GOTO(rc, fm__h5_write_attr(fin, "num_slots", H5T_STD_I64LE, H5T_NATIVE_INT64, &ns, path), done);
  FM_CALL_GOTO(rc, fm__h5_write_attr(fin, "n", H5T_STD_I64LE, H5T_NATIVE_INT64, &n, path), done);
  if (v->opt_num_slots) {
    hsize_t sd[2] = {v->opt_num_slots, v->opt_n};
    FM_CALL_GOTO(rc, fm__ckpt_write_floats(fin, "slots", 2, sd, v->opt_slots, path), done);
  }
  FM_CALL_GOTO(rc, fm__h5_write_string_attr(agg, "kind", v->agg_state_n ? "stateful" : "stateless", path), done);
  if (v->agg_state_n) FM_CALL_GOTO(rc, fm__ckpt_write_agg_state(agg, v, path), done);
  if (v->agg_server_n) {
    hsize_t sd[1] = {v->agg_server_n};
    FM_CALL_GOTO(rc, fm__ckpt_write_floats(agg, "server_state", 1, sd, v->agg_server, path), done);
  }
  if (v->base_num_slots) {
    int64_t bs = v->base_step, bn = (int64_t)v->base_num_slots;
    hsize_t bd[2] = {v->base_num_slots, v->opt_n};
    FM_CALL_GOTO(rc, fm__ckpt_write_floats(cw, "base_slots", 2, bd, v->base_slots, path), done);
    FM_CALL_GOTO(rc, fm__h5_write_attr(cw, "base_step", H5T_STD_I64LE, H5T_NATIVE_INT64, &bs, path), done);
    FM_CALL_GOTO(rc, fm__h5_write_attr(cw, "base_num_slots", H5T_STD_I64LE, H5T_NATIVE_INT64, &bn, path), done);
  }
  if (v->control) {
    hsize_t cd[1] = {v->opt_n};
    FM_CALL_GOTO(rc, fm__ckpt_write_floats(st, "control", 1, cd, v->control, path), done);
  }
  if (v->eval_num_values) { /* build_fed_eval's total_rounds accumulators, 128-bit integers as [n, 2] uint64 */
    hsize_t ed[2] = {v->eval_num_values, 2};
    hid_t sp = H5Screate_simple(2, ed, NULL);
    hid_t d = sp >= 0 ? H5Dcreate2(st, "evaluation_sums", H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->eval_sums) < 0)
      rc = FM_ERR(FM_ERR_IO, "%s: cannot write the evaluation accumulators", path);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (rc != FM_OK) goto done;
  }
  if (v->num_clients) {
    hid_t cg = H5Gcreate2(st, "clients", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n1[1] = {v->num_clients}, n2[2] = {v->num_clients, v->client_floats};
    hid_t sp = cg >= 0 ? H5Screate_simple(1, n1, NULL) : -1;
    hid_t d = sp >= 0 ? H5Dcreate2(cg, "ids", H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->client_ids) < 0)
      rc = FM_ERR(FM_ERR_IO, "%s: cannot write the per-client state ids", path);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (rc == FM_OK) rc = fm__ckpt_write_floats(cg, "values", 2, n2, v->client_values, path);
    if (cg >= 0) H5Gclose(cg);
    if (rc != FM_OK) goto done;
  }
done:
  if (agg >= 0) H5Gclose(agg);
  if (fin >= 0) H5Gclose(fin);
  if (cw >= 0) H5Gclose(cw);
  if (st >= 0) H5Gclose(st);
  return rc;
}

/* /state/aggregator/state: the aggregators' doubles (adaptive norms). */
static int fm__ckpt_read_agg_state(hid_t st, const char *path, fm_checkpoint *c) {
  if (H5Lexists(st, "aggregator", H5P_DEFAULT) <= 0) return FM_OK;
  hid_t agg = H5Gopen2(st, "aggregator", H5P_DEFAULT);
  if (agg < 0) return FM_ERR(FM_ERR_FORMAT, "%s: /state/aggregator cannot be opened", path);
  int rc = FM_OK;
  if (H5Lexists(agg, "state", H5P_DEFAULT) > 0) {
    hid_t d = H5Dopen2(agg, "state", H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (n <= 0 || n > (1 << 20)) rc = FM_ERR(FM_ERR_FORMAT, "%s: /state/aggregator/state is malformed", path);
    if (rc == FM_OK && !(c->agg_state = fm__malloc((size_t)n * sizeof(double)))) rc = FM_ERR_NOMEM;
    if (rc == FM_OK && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->agg_state) < 0)
      rc = FM_ERR(FM_ERR_FORMAT, "%s: /state/aggregator/state cannot be read", path);
    if (rc == FM_OK) c->info.agg_state_n = (size_t)n;
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
  }
  /* /state/aggregator/server_state: floats kept on rank 0 only (tree aggregation's noise) */
  if (rc == FM_OK && H5Lexists(agg, "server_state", H5P_DEFAULT) > 0) {
    hid_t d = H5Dopen2(agg, "server_state", H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (n <= 0) rc = FM_ERR(FM_ERR_FORMAT, "%s: /state/aggregator/server_state is malformed", path);
    if (rc == FM_OK && !(c->agg_server = fm__malloc((size_t)n * sizeof(float))))
      rc = FM_ERR(FM_ERR_NOMEM, "%s: out of memory for %lld floats of aggregator server state", path, (long long)n);
    if (rc == FM_OK) rc = fm__ckpt_read_floats(agg, "server_state", (size_t)n, c->agg_server, path);
    if (rc == FM_OK) c->info.agg_server_n = (size_t)n;
  }
  H5Gclose(agg);
  return rc;
}

/* Rounds of the checkpoints in dir, ascending; *n entries in *out (fm__malloc'd). */
static int fm__ckpt_list(const char *dir, uint64_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return FM_ERR(FM_ERR_IO, "cannot open checkpoint directory '%s': %s (was the run started with --checkpoint-every > 0?)",
                  dir, strerror(errno));
  size_t cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    unsigned long long r;
    char tail[8] = "";
    if (sscanf(e->d_name, "ckpt_%llu.h%7s", &r, tail) != 2 || strcmp(tail, "5") != 0) continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      uint64_t *p = fm__realloc(*out, cap * sizeof *p);
      if (!p) {
        closedir(d);
        fm__free(*out);
        *out = NULL;
        return FM_ERR_NOMEM;
      }
      *out = p;
    }
    (*out)[(*n)++] = r;
  }
  closedir(d);
  for (size_t i = 1; i < *n; i++) /* insertion sort: few files */
    for (size_t j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
      uint64_t t = (*out)[j];
      (*out)[j] = (*out)[j - 1];
      (*out)[j - 1] = t;
    }
  return FM_OK;
}

static void fm__ckpt_name(char *buf, size_t size, const char *dir, uint64_t round) {
  snprintf(buf, size, "%s/ckpt_%08" PRIu64 ".h5", dir, round);
}

static void fm__fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

static void fm__remove_stale_tmp(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[4096];
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, "ckpt_", 5) == 0 && len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      remove(p);
    }
  }
  closedir(d);
}

int fm_checkpoint_save(const char *dir, const fm_state_view *v, const char *model_name, const char *config_text,
                       int keep_last) {
  FM_CHECK(dir && v && v->weights, FM_ERR_INVALID_ARG, "NULL argument");
  FM_CHECK(keep_last >= 1, FM_ERR_INVALID_ARG, "keep_last must be >= 1, got %d", keep_last);
  fm__h5_init();
  fm__remove_stale_tmp(dir);
  char path[4096];
  fm__ckpt_name(path, sizeof path, dir, v->round);
  char *tmp = fm__h5_tmp_name(path);
  if (!tmp) return FM_ERR_NOMEM;
  fm__h5_lock();
  int rc = FM_OK;
  /* built in memory and written out by fedmpi: a full disk is an error
   * naming the file, never a failed H5Fclose (see h5lock.h) */
  hid_t f = fm__h5_create_mem_file(tmp);
  if (f < 0) {
    rc = FM_ERR(FM_ERR_IO, "cannot create checkpoint '%s': %s", tmp, strerror(errno));
  } else {
    rc = fm__ckpt_write(f, v, model_name, config_text, tmp);
    rc = fm__h5_close_to_disk(f, rc, tmp, path);
  }
  fm__h5_unlock();
  /* Test hook: widen the window in which the temporary file exists, so the
   * kill tests can hit a checkpoint mid-write. */
  const char *pause = getenv("FEDMPI_DEBUG_CHECKPOINT_PAUSE_MS");
  if (rc == FM_OK && pause && atoi(pause) > 0) {
    struct timespec ts = {atoi(pause) / 1000, (long)(atoi(pause) % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  if (rc == FM_OK) rc = fm__h5_commit_tmp(tmp, path);
  fm__free(tmp);
  if (rc != FM_OK) return rc;
  fm__fsync_dir(dir);

  /* Keep the first and the newest keep_last (TFF's FileProgramStateManager). */
  uint64_t *rounds;
  size_t n;
  FM_CALL(fm__ckpt_list(dir, &rounds, &n));
  for (size_t i = 1; i + (size_t)keep_last < n; i++) {
    fm__ckpt_name(path, sizeof path, dir, rounds[i]);
    remove(path);
  }
  fm__free(rounds);
  fm__fsync_dir(dir);
  return FM_OK;
}

/* ---- load -------------------------------------------------------------------------- */

void fm_checkpoint_free(fm_checkpoint *c) {
  if (!c) return;
  fm__free(c->path);
  fm__free(c->config);
  fm__free(c->model);
  fm__free(c->fedmpi_version);
  fm__free(c->blas_kernel);
  fm__free(c->weights);
  fm__free(c->slots);
  fm__free(c->base_slots);
  fm__free(c->control);
  fm__free(c->client_ids);
  fm__free(c->client_values);
  fm__free(c->eval_sums);
  fm__free(c->agg_state);
  fm__free(c->agg_server);
  memset(c, 0, sizeof *c);
}

/* The root attributes: format and version, round, seed, the configuration
 * (checked against its hash), the model and the writing fedmpi's version. */
static int fm__ckpt_read_header(hid_t f, const char *path, fm_checkpoint *c) {
  char *format = NULL;
  long long version = 0;
  int r = fm__h5_read_string_attr(f, "fedmpi_format", path, &format);
  if (r < 0) return r;
  int ok = r == 1 && strcmp(format, FM_CHECKPOINT_FORMAT) == 0;
  fm__free(format);
  FM_CHECK(ok, FM_ERR_FORMAT, "%s is not a fedmpi checkpoint", path);
  r = fm__h5_read_int_attr(f, "format_version", path, &version);
  if (r < 0) return r;
  FM_CHECK(r == 1 && version == FM_CHECKPOINT_FORMAT_VERSION, FM_ERR_FORMAT,
           "%s: checkpoint format version %lld, this fedmpi reads version %d", path, version,
           FM_CHECKPOINT_FORMAT_VERSION);
  FM_CALL(fm__ckpt_read_u64(f, "round", path, &c->info.round));
  FM_CALL(fm__ckpt_read_u64(f, "seed", path, &c->info.seed));
  const char *names[3] = {"config", "model", "fedmpi_version"};
  char **dst[3] = {&c->config, &c->model, &c->fedmpi_version};
  for (int k = 0; k < 3; k++) {
    r = fm__h5_read_string_attr(f, names[k], path, dst[k]);
    if (r < 0) return r; /* out of memory or unreadable: its own code, not "missing" */
    FM_CHECK(r == 1, FM_ERR_FORMAT, "%s: the %s attribute is missing", path, names[k]);
  }
  r = fm__h5_read_string_attr(f, "blas_kernel", path, &c->blas_kernel); /* optional: absent before it existed */
  if (r < 0) return r;
  char hash[17], *saved = NULL;
  fm_config_hash(c->config, hash);
  r = fm__h5_read_string_attr(f, "config_hash", path, &saved);
  if (r < 0) return r;
  ok = r == 1 && strcmp(saved, hash) == 0;
  fm__free(saved);
  FM_CHECK(ok, FM_ERR_FORMAT, "%s: the stored configuration does not match its hash (corrupted)", path);
  return FM_OK;
}

/* /state/weights, whose length is the model's numel. */
static int fm__ckpt_read_weights(hid_t st, const char *path, fm_checkpoint *c) {
  hid_t d = H5Dopen2(st, "weights", H5P_DEFAULT);
  hssize_t numel = -1;
  if (d >= 0) {
    hid_t sp = H5Dget_space(d);
    numel = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
  }
  if (numel <= 0) return FM_ERR(FM_ERR_FORMAT, "%s: /state/weights is missing or empty", path);
  c->info.numel = (size_t)numel;
  c->weights = fm__malloc(c->info.numel * sizeof(float));
  if (!c->weights) return FM_ERR_NOMEM;
  return fm__ckpt_read_floats(st, "weights", c->info.numel, c->weights, path);
}

/* /state/finalizer: the server optimizer's step, its slots and their length
 * n (the trainable size every per-parameter buffer below has). */
static int fm__ckpt_read_optimizer(hid_t fin, const char *path, fm_checkpoint *c) {
  long long step = 0, ns = 0, n = 0;
  if (fm__h5_read_int_attr(fin, "step", path, &step) != 1 || fm__h5_read_int_attr(fin, "num_slots", path, &ns) != 1 ||
      fm__h5_read_int_attr(fin, "n", path, &n) != 1 || ns < 0 || n < 0)
    return FM_ERR(FM_ERR_FORMAT, "%s: the server optimizer's bookkeeping attributes are missing", path);
  c->info.opt_step = step;
  c->info.opt_num_slots = (size_t)ns;
  c->info.opt_n = (size_t)n;
  if (ns == 0) return FM_OK;
  c->slots = fm__malloc((size_t)ns * (size_t)n * sizeof(float) + sizeof(float));
  if (!c->slots) return FM_ERR_NOMEM;
  return fm__ckpt_read_floats(fin, "slots", (size_t)ns * (size_t)n, c->slots, path);
}

/* /state/client_work: Mime Lite's base-optimizer state, when present. */
static int fm__ckpt_read_base(hid_t cw, const char *path, fm_checkpoint *c) {
  const size_t n = c->info.opt_n;
  long long bn = 0, bs = 0;
  if (fm__h5_read_int_attr(cw, "base_num_slots", path, &bn) != 1 || bn <= 0) return FM_OK;
  if (fm__h5_read_int_attr(cw, "base_step", path, &bs) != 1)
    return FM_ERR(FM_ERR_FORMAT, "%s: base_step is missing", path);
  c->info.base_num_slots = (size_t)bn;
  c->info.base_step = bs;
  c->base_slots = fm__malloc((size_t)bn * n * sizeof(float) + sizeof(float));
  if (!c->base_slots) return FM_ERR_NOMEM;
  return fm__ckpt_read_floats(cw, "base_slots", (size_t)bn * n, c->base_slots, path);
}

/* /state/control: SCAFFOLD's server control variate, when present. */
static int fm__ckpt_read_control(hid_t st, const char *path, fm_checkpoint *c) {
  const size_t n = c->info.opt_n;
  if (H5Lexists(st, "control", H5P_DEFAULT) <= 0) return FM_OK;
  c->control = fm__malloc(n * sizeof(float) + sizeof(float));
  if (!c->control) return FM_ERR_NOMEM;
  return fm__ckpt_read_floats(st, "control", n, c->control, path);
}

/* /state/evaluation_sums: build_fed_eval's total_rounds accumulators, when present. */
static int fm__ckpt_read_eval(hid_t st, const char *path, fm_checkpoint *c) {
  if (H5Lexists(st, "evaluation_sums", H5P_DEFAULT) <= 0) return FM_OK;
  int rc = FM_OK;
  hid_t de = H5Dopen2(st, "evaluation_sums", H5P_DEFAULT);
  hid_t sp = de >= 0 ? H5Dget_space(de) : -1;
  hssize_t k = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  if (k > 0 && k % 2 == 0) {
    c->info.eval_num_values = (size_t)k / 2;
    c->eval_sums = fm__malloc((size_t)k * sizeof(uint64_t));
    if (!c->eval_sums) rc = FM_ERR_NOMEM;
    else if (H5Dread(de, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->eval_sums) < 0)
      rc = FM_ERR(FM_ERR_FORMAT, "%s: the evaluation accumulators cannot be read", path);
  } else {
    rc = FM_ERR(FM_ERR_FORMAT, "%s: /state/evaluation_sums has a wrong shape", path);
  }
  if (sp >= 0) H5Sclose(sp);
  if (de >= 0) H5Dclose(de);
  return rc;
}

/* /state/clients: the per-client state (SCAFFOLD's c_i), ids and values, when present. */
static int fm__ckpt_read_clients(hid_t st, const char *path, fm_checkpoint *c) {
  const size_t n = c->info.opt_n;
  if (H5Lexists(st, "clients", H5P_DEFAULT) <= 0) return FM_OK;
  int rc = FM_OK;
  hid_t cg = H5Gopen2(st, "clients", H5P_DEFAULT);
  hid_t di = cg >= 0 ? H5Dopen2(cg, "ids", H5P_DEFAULT) : -1;
  hid_t sp = di >= 0 ? H5Dget_space(di) : -1;
  hssize_t k = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  if (k > 0) {
    c->info.num_clients = (size_t)k;
    c->info.client_floats = n;
    c->client_ids = fm__malloc((size_t)k * sizeof(uint64_t));
    c->client_values = fm__malloc((size_t)k * n * sizeof(float) + sizeof(float));
    if (!c->client_ids || !c->client_values)
      rc = FM_ERR_NOMEM;
    else if (H5Dread(di, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->client_ids) < 0)
      rc = FM_ERR(FM_ERR_FORMAT, "%s: the per-client state ids cannot be read", path);
    else
      rc = fm__ckpt_read_floats(cg, "values", (size_t)k * n, c->client_values, path);
  } else {
    rc = FM_ERR(FM_ERR_FORMAT, "%s: /state/clients/ids is missing or empty", path);
  }
  if (sp >= 0) H5Sclose(sp);
  if (di >= 0) H5Dclose(di);
  if (cg >= 0) H5Gclose(cg);
  return rc;
}

/* /state, part by part, in the order fm__ckpt_write wrote it. */
static int fm__ckpt_read_state(hid_t f, const char *path, fm_checkpoint *c) {
  int rc = FM_OK;
  hid_t st = H5Gopen2(f, "state", H5P_DEFAULT);
  hid_t cw = st >= 0 ? H5Gopen2(st, "client_work", H5P_DEFAULT) : -1;
  hid_t fin = st >= 0 ? H5Gopen2(st, "finalizer", H5P_DEFAULT) : -1;
  if (st < 0 || cw < 0 || fin < 0) {
    rc = FM_ERR(FM_ERR_FORMAT, "%s: the /state groups are missing", path);
    goto done;
  }
  FM_CALL_GOTO(rc, fm__ckpt_read_weights(st, path, c), done);
  FM_CALL_GOTO(rc, fm__ckpt_read_hparams(cw, &c->info.client_hparams, path, "client_work"), done);
  FM_CALL_GOTO(rc, fm__ckpt_read_hparams(fin, &c->info.server_hparams, path, "finalizer"), done);
  FM_CALL_GOTO(rc, fm__ckpt_read_optimizer(fin, path, c), done);
  FM_CALL_GOTO(rc, fm__ckpt_read_base(cw, path, c), done);
  FM_CALL_GOTO(rc, fm__ckpt_read_control(st, path, c), done);
  FM_CALL_GOTO(rc, fm__ckpt_read_eval(st, path, c), done);
  FM_CALL_GOTO(rc, fm__ckpt_read_clients(st, path, c), done);
  FM_CALL_GOTO(rc, fm__ckpt_read_agg_state(st, path, c), done);
done:
  if (fin >= 0) H5Gclose(fin);
  if (cw >= 0) H5Gclose(cw);
  if (st >= 0) H5Gclose(st);
  return rc;
}

static int fm__ckpt_read(hid_t f, const char *path, fm_checkpoint *c) {
  FM_CALL(fm__ckpt_read_header(f, path, c));
  return fm__ckpt_read_state(f, path, c);
}

int fm_checkpoint_load(const char *path, fm_checkpoint *out) {
  FM_CHECK(path && out, FM_ERR_INVALID_ARG, "NULL argument");
  memset(out, 0, sizeof *out);
  FM_CALL(fm__h5_check_readable(path));
  fm__h5_init();
  fm__h5_lock();
  hid_t f;
  int rc = fm__h5_open_read(path, &f);
  if (rc == FM_OK) {
    rc = fm__ckpt_read(f, path, out);
    H5Fclose(f);
  }
  fm__h5_unlock();
  if (rc == FM_OK) {
    out->path = fm__strdup(path);
    if (!out->path) rc = FM_ERR_NOMEM;
  }
  if (rc != FM_OK) fm_checkpoint_free(out);
  return rc;
}

void fm_checkpoint_view(const fm_checkpoint *c, fm_state_view *v) {
  memset(v, 0, sizeof *v);
  v->round = c->info.round;
  v->seed = c->info.seed;
  v->numel = c->info.numel;
  v->weights = c->weights;
  v->client_hparams = c->info.client_hparams;
  v->server_hparams = c->info.server_hparams;
  v->opt_num_slots = c->info.opt_num_slots;
  v->opt_n = c->info.opt_n;
  v->opt_slots = c->slots;
  v->opt_step = c->info.opt_step;
  v->base_num_slots = c->info.base_num_slots;
  v->base_slots = c->base_slots;
  v->base_step = c->info.base_step;
  v->control = c->control;
  v->num_clients = c->info.num_clients;
  v->client_floats = c->info.client_floats;
  v->client_ids = c->client_ids;
  v->client_values = c->client_values;
  v->eval_num_values = c->info.eval_num_values;
  v->eval_sums = c->eval_sums;
  v->agg_state_n = c->info.agg_state_n;
  v->agg_state = c->agg_state;
  v->agg_server_n = c->info.agg_server_n;
  v->agg_server = c->agg_server;
}

int fm_checkpoint_load_latest(const char *dir, fm_checkpoint *out, fm_warn_fn warn, void *ctx) {
  FM_CHECK(dir && out, FM_ERR_INVALID_ARG, "NULL argument");
  uint64_t *rounds;
  size_t n;
  FM_CALL(fm__ckpt_list(dir, &rounds, &n));
  char path[4096], msg[6144];
  for (size_t i = n; i-- > 0;) {
    fm__ckpt_name(path, sizeof path, dir, rounds[i]);
    int rc = fm_checkpoint_load(path, out);
    if (rc == FM_OK || rc == FM_ERR_NOMEM) { /* out of memory says nothing about the file: no fallback */
      fm__free(rounds);
      return rc;
    }
    if (warn) {
      snprintf(msg, sizeof msg, "skipping checkpoint %s: %s", path, fm_last_error());
      warn(ctx, msg);
    }
  }
  fm__free(rounds);
  return FM_ERR(FM_ERR_IO, "no valid checkpoint in '%s'%s", dir, n ? " (all were corrupted)" : "");
}
