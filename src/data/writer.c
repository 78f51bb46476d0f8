/* src/data/writer.c — writing a TFF HDF5 ClientData file: "<path>.tmp" with
 * /examples/<client_id>/<feature> datasets and root attributes, renamed into
 * place only when everything was written (h5lock.c's atomic commit), so a
 * reader never sees a half-written file. Datasets and groups carry no
 * timestamps: the same input gives the same bytes.
 *
 * Deliberately does not: choose ids, layouts or preprocessing (idx.c does),
 * compress or chunk (TFF's files are contiguous), or append to an existing
 * file.
 *
 * Also the in-memory HDF5 file every fedmpi writer uses (h5lock.h): the file
 * is built with the core driver and written out by fm__h5_close_to_disk with
 * plain write() and fsync(), so a full disk, an I/O error or a file-size
 * limit is an error naming the file and never a failed H5Fclose (which
 * HDF5 1.10 turns into a crash at exit). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data_impl.h"
#include "internal.h"

static hid_t fm__notimes_gcpl(void) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  if (gcpl >= 0) H5Pset_obj_track_times(gcpl, 0);
  return gcpl;
}

int fm__cd_writer_open(fm__cd_writer *w, const char *path) {
  memset(w, 0, sizeof *w);
  w->file = w->examples = -1;
  w->path = path;
  w->tmp = fm__h5_tmp_name(path);
  FM_CHECK(w->tmp != NULL, FM_ERR_NOMEM, "out of memory");
  int rc = FM_OK;
  fm__h5_lock();
  w->file = fm__h5_create_mem_file(w->tmp);
  if (w->file < 0) {
    rc = FM_ERR(FM_ERR_IO, "cannot create '%s': %s", w->tmp, strerror(errno));
  } else {
    hid_t gcpl = fm__notimes_gcpl();
    w->examples = H5Gcreate2(w->file, "examples", H5P_DEFAULT, gcpl >= 0 ? gcpl : H5P_DEFAULT, H5P_DEFAULT);
    if (gcpl >= 0) H5Pclose(gcpl);
    if (w->examples < 0) rc = FM_ERR(FM_ERR_IO, "%s: cannot create group '/examples'", w->tmp);
  }
  fm__h5_unlock();
  if (rc != FM_OK) fm__cd_writer_finish(w, rc); /* the caller only finishes what opened */
  return rc;
}

int fm__cd_writer_attr_str(fm__cd_writer *w, const char *name, const char *value) {
  fm__h5_lock();
  int rc = fm__h5_write_string_attr(w->file, name, value, w->tmp);
  fm__h5_unlock();
  return rc;
}

int fm__cd_writer_attr_i64(fm__cd_writer *w, const char *name, long long value) {
  fm__h5_lock();
  int rc = fm__h5_write_attr(w->file, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &value, w->tmp);
  fm__h5_unlock();
  return rc;
}

int fm__cd_writer_attr_u64(fm__cd_writer *w, const char *name, uint64_t value) {
  fm__h5_lock();
  int rc = fm__h5_write_attr(w->file, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value, w->tmp);
  fm__h5_unlock();
  return rc;
}

int fm__cd_writer_attr_f64(fm__cd_writer *w, const char *name, double value) {
  fm__h5_lock();
  int rc = fm__h5_write_attr(w->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, w->tmp);
  fm__h5_unlock();
  return rc;
}

/* One dataset (lock held). */
static int fm__write_feature(fm__cd_writer *w, hid_t g, const char *id, const fm__wfeat *f) {
  int rc = FM_OK;
  hsize_t dims[5];
  for (int j = 0; j < f->rank && j < 5; j++) dims[j] = (hsize_t)f->dims[j];
  const hid_t ftype = f->type == FM__W_FLOAT32 ? H5T_IEEE_F32LE : f->type == FM__W_UINT8 ? H5T_STD_U8LE : H5T_STD_I32LE;
  const hid_t mtype = f->type == FM__W_FLOAT32 ? H5T_NATIVE_FLOAT
                      : f->type == FM__W_UINT8 ? H5T_NATIVE_UINT8
                                               : H5T_NATIVE_INT32;
  hid_t s = H5Screate_simple(f->rank, dims, NULL), d = -1, dcpl = H5Pcreate(H5P_DATASET_CREATE);
  FM_CHECK_GOTO(rc, s >= 0 && dcpl >= 0, done, FM_ERR_IO, "%s: client '%s': cannot create feature '%s'", w->tmp, id,
                f->name);
  H5Pset_obj_track_times(dcpl, 0);
  d = H5Dcreate2(g, f->name, ftype, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  FM_CHECK_GOTO(rc, d >= 0, done, FM_ERR_IO, "%s: client '%s': cannot create feature '%s'", w->tmp, id, f->name);
  if (H5Sget_simple_extent_npoints(s) > 0)
    FM_CHECK_GOTO(rc, H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->buf) >= 0, done, FM_ERR_IO,
                  "%s: client '%s': cannot write feature '%s' (disk full?)", w->tmp, id, f->name);
done:
  if (d >= 0) H5Dclose(d);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (s >= 0) H5Sclose(s);
  return rc;
}

int fm__cd_writer_client(fm__cd_writer *w, const char *id, size_t nf, const fm__wfeat *f) {
  int rc = FM_OK;
  fm__h5_lock();
  hid_t gcpl = fm__notimes_gcpl();
  hid_t g = H5Gcreate2(w->examples, id, H5P_DEFAULT, gcpl >= 0 ? gcpl : H5P_DEFAULT, H5P_DEFAULT);
  if (gcpl >= 0) H5Pclose(gcpl);
  if (g < 0) rc = FM_ERR(FM_ERR_IO, "%s: cannot create group '/examples/%s'", w->tmp, id);
  for (size_t j = 0; j < nf && rc == FM_OK; j++) rc = fm__write_feature(w, g, id, &f[j]);
  if (g >= 0) H5Gclose(g);
  fm__h5_unlock();
  return rc;
}

int fm__cd_writer_finish(fm__cd_writer *w, int rc) {
  fm__h5_lock();
  if (w->examples >= 0) H5Gclose(w->examples);
  w->examples = -1;
  if (w->file >= 0) rc = fm__h5_close_to_disk(w->file, rc, w->tmp, w->path);
  w->file = -1;
  fm__h5_unlock();
  if (w->tmp) {
    if (rc == FM_OK)
      rc = fm__h5_commit_tmp(w->tmp, w->path);
    else
      remove(w->tmp);
  }
  fm__free(w->tmp);
  w->tmp = NULL;
  return rc;
}

void fm__client_id(char *buf, size_t size, size_t k, size_t K) {
  int width = 5;
  for (size_t m = K ? K - 1 : 0; m >= 100000; m /= 10) width++;
  if (snprintf(buf, size, "f_%0*zu", width, k) >= (int)size && size) buf[size - 1] = '\0';
}

/* ---- in-memory HDF5 files, written out in one step (h5lock.h) ------------ */

/* Growth step of the in-memory image: large enough that a big ClientData
 * file is not reallocated thousands of times, small enough for a weights file. */
#define FM__H5_MEM_INCREMENT ((size_t)4 << 20)

hid_t fm__h5_create_mem_file(const char *tmp_path) {
  int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return -1;
  close(fd);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  hid_t f = -1;
  if (fapl >= 0 && H5Pset_fapl_core(fapl, FM__H5_MEM_INCREMENT, 0) >= 0)
    f = H5Fcreate(tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (fapl >= 0) H5Pclose(fapl);
  if (f < 0) {
    remove(tmp_path);
    errno = ENOMEM; /* the core driver only fails to allocate */
  }
  return f;
}

/* Write all of buf to tmp_path and fsync it; FM_ERR_IO naming path. */
static int fm__write_image(const char *tmp_path, const char *path, const unsigned char *buf, size_t n) {
  int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  const char *what = "cannot create";
  int e = fd < 0 ? errno : 0;
  for (size_t done = 0; !e && done < n;) {
    ssize_t w = write(fd, buf + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      e = w < 0 ? errno : EIO;
      what = "cannot write";
    } else {
      done += (size_t)w;
    }
  }
  if (!e && fsync(fd) != 0 && errno != EINVAL) { /* EINVAL: a file system without fsync */
    e = errno;
    what = "cannot write";
  }
  if (fd >= 0 && close(fd) != 0 && !e) { /* NFS reports write-back errors here */
    e = errno;
    what = "cannot write";
  }
  if (!e) return FM_OK;
  char reason[256];
  if (strerror_r(e, reason, sizeof reason) != 0) snprintf(reason, sizeof reason, "error %d", e);
  return FM_ERR(FM_ERR_IO, "%s '%s': %s", what, path, reason);
}

int fm__h5_close_to_disk(hid_t file, int rc, const char *tmp_path, const char *path) {
  unsigned char *img = NULL;
  ssize_t n = -1;
  if (rc == FM_OK) {
    /* every dataset, group and attribute must be closed first, or the image
     * would miss them (and the file would stay open after H5Fclose) */
    ssize_t open_objects = H5Fget_obj_count(file, H5F_OBJ_ALL);
    if (open_objects != 1)
      rc = FM_ERR(FM_ERR_IO, "%s: %zd HDF5 objects are still open (internal error)", path, open_objects - 1);
  }
  if (rc == FM_OK && H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0) n = H5Fget_file_image(file, NULL, 0);
  if (rc == FM_OK && n > 0) img = fm__malloc((size_t)n);
  if (rc == FM_OK && n > 0 && !img)
    rc = FM_ERR(FM_ERR_NOMEM, "%s: out of memory for the file's image (%zd bytes)", path, n);
  else if (rc == FM_OK && (n <= 0 || H5Fget_file_image(file, img, (size_t)n) != n))
    rc = FM_ERR(FM_ERR_IO, "%s: cannot serialise the HDF5 file", path);
  if (H5Fclose(file) < 0 && rc == FM_OK) rc = FM_ERR(FM_ERR_IO, "%s: cannot close the in-memory HDF5 file", path);
  if (rc == FM_OK) rc = fm__write_image(tmp_path, path, img, (size_t)n);
  fm__free(img);
  if (rc != FM_OK) remove(tmp_path);
  return rc;
}
