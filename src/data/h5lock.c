/* src/data/h5lock.c — the process-wide HDF5 lock and the HDF5 helpers shared
 * by the client-data reader, the synthetic writer and the weights file:
 * opening a file read-only with a clear error, scalar attributes, and the
 * atomic "<path>.tmp" + rename commit.
 *
 * Deliberately does not know about any file layout (ClientData, weights):
 * those live in source_h5.c, synth.c, writer.c and src/io/weights.c. */
#include "h5lock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static pthread_once_t fm__h5_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t fm__h5_mutex;

static void fm__h5_init_once(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&fm__h5_mutex, &a);
  pthread_mutexattr_destroy(&a);
  H5open();
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void fm__h5_init(void) { pthread_once(&fm__h5_once, fm__h5_init_once); }

void fm__h5_lock(void) {
  fm__h5_init();
  pthread_mutex_lock(&fm__h5_mutex);
  /* Thread-safe HDF5 builds keep the error-printing setting per thread. */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void fm__h5_unlock(void) { pthread_mutex_unlock(&fm__h5_mutex); }

int fm__h5_check_readable(const char *path) {
  struct stat st;
  char buf[256];
  if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
    int e = errno;
    if (strerror_r(e, buf, sizeof buf) != 0) snprintf(buf, sizeof buf, "error %d", e);
    return FM_ERR(FM_ERR_IO, "cannot open '%s': %s", path, buf);
  }
  if (S_ISDIR(st.st_mode)) return FM_ERR(FM_ERR_IO, "cannot open '%s': is a directory", path);
  return FM_OK;
}

/* File access list: keep HDF5's file locking but ignore it where the file
 * system does not support it (Lustre, some NFS mounts). */
static hid_t fm__h5_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
  if (fapl >= 0) H5Pset_file_locking(fapl, 1, 1);
#endif
  return fapl;
}

int fm__h5_open_read(const char *path, hid_t *file) {
  FM_CALL(fm__h5_check_readable(path));
  hid_t fapl = fm__h5_fapl();
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
  if (fapl >= 0) H5Pclose(fapl);
  if (f < 0) return FM_ERR(FM_ERR_FORMAT, "cannot open '%s' as HDF5 (not an HDF5 file or corrupted)", path);
  *file = f;
  return FM_OK;
}

int fm__h5_read_string_attr(hid_t obj, const char *name, const char *path, char **out) {
  htri_t ex = H5Aexists(obj, name);
  if (ex < 0) return FM_ERR(FM_ERR_FORMAT, "%s: cannot query attribute '%s'", path, name);
  if (ex == 0) return 0;
  int rc = FM_OK;
  hid_t a = -1, ft = -1, mt = -1, sp = -1;
  char *s = NULL;
  a = H5Aopen(obj, name, H5P_DEFAULT);
  FM_CHECK_GOTO(rc, a >= 0, done, FM_ERR_FORMAT, "%s: cannot open attribute '%s'", path, name);
  ft = H5Aget_type(a);
  sp = H5Aget_space(a);
  FM_CHECK_GOTO(rc, ft >= 0 && sp >= 0, done, FM_ERR_FORMAT, "%s: cannot read attribute '%s'", path, name);
  FM_CHECK_GOTO(rc, H5Tget_class(ft) == H5T_STRING && H5Sget_simple_extent_npoints(sp) == 1, done,
                FM_ERR_FORMAT, "%s: attribute '%s' is not a scalar string", path, name);
  htri_t vl = H5Tis_variable_str(ft);
  FM_CHECK_GOTO(rc, vl >= 0, done, FM_ERR_FORMAT, "%s: attribute '%s' has a bad string type", path, name);
  mt = H5Tcopy(H5T_C_S1);
  FM_CHECK_GOTO(rc, mt >= 0, done, FM_ERR_FORMAT, "%s: cannot read attribute '%s'", path, name);
  if (vl) {
    char *v = NULL;
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    FM_CHECK_GOTO(rc, H5Aread(a, mt, &v) >= 0, done, FM_ERR_FORMAT, "%s: cannot read attribute '%s'", path, name);
    s = fm__strdup(v ? v : "");
    H5free_memory(v);
    FM_CHECK_GOTO(rc, s != NULL, done, FM_ERR_NOMEM, "out of memory reading attribute '%s' of %s", name, path);
  } else {
    size_t n = H5Tget_size(ft);
    H5Tset_size(mt, n + 1);
    H5Tset_strpad(mt, H5T_STR_NULLTERM);
    s = fm__calloc(n + 2, 1);
    FM_CHECK_GOTO(rc, s != NULL, done, FM_ERR_NOMEM, "out of memory reading attribute '%s' of %s", name, path);
    FM_CHECK_GOTO(rc, H5Aread(a, mt, s) >= 0, done, FM_ERR_FORMAT, "%s: cannot read attribute '%s'", path, name);
  }
  *out = s;
  s = NULL;
  rc = 1;
done:
  fm__free(s);
  if (mt >= 0) H5Tclose(mt);
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  if (a >= 0) H5Aclose(a);
  return rc;
}

int fm__h5_read_int_attr(hid_t obj, const char *name, const char *path, long long *out) {
  htri_t ex = H5Aexists(obj, name);
  if (ex < 0) return FM_ERR(FM_ERR_FORMAT, "%s: cannot query attribute '%s'", path, name);
  if (ex == 0) return 0;
  int rc = FM_OK;
  hid_t a = -1, ft = -1, sp = -1;
  long long v = 0;
  a = H5Aopen(obj, name, H5P_DEFAULT);
  FM_CHECK_GOTO(rc, a >= 0, done, FM_ERR_FORMAT, "%s: cannot open attribute '%s'", path, name);
  ft = H5Aget_type(a);
  sp = H5Aget_space(a);
  FM_CHECK_GOTO(rc, ft >= 0 && sp >= 0, done, FM_ERR_FORMAT, "%s: cannot read attribute '%s'", path, name);
  FM_CHECK_GOTO(rc, H5Tget_class(ft) == H5T_INTEGER && H5Sget_simple_extent_npoints(sp) == 1, done,
                FM_ERR_FORMAT, "%s: attribute '%s' is not a scalar integer", path, name);
  FM_CHECK_GOTO(rc, H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0, done, FM_ERR_FORMAT, "%s: cannot read attribute '%s'",
                path, name);
  *out = v;
  rc = 1;
done:
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  if (a >= 0) H5Aclose(a);
  return rc;
}

int fm__h5_write_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *value,
                      const char *path) {
  int rc = FM_OK;
  hid_t sp = H5Screate(H5S_SCALAR), a = -1;
  FM_CHECK_GOTO(rc, sp >= 0, done, FM_ERR_IO, "%s: cannot write attribute '%s'", path, name);
  a = H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
  FM_CHECK_GOTO(rc, a >= 0 && H5Awrite(a, mem_type, value) >= 0, done, FM_ERR_IO,
                "%s: cannot write attribute '%s'", path, name);
done:
  if (a >= 0) H5Aclose(a);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

int fm__h5_write_string_attr(hid_t obj, const char *name, const char *value, const char *path) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return FM_ERR(FM_ERR_IO, "%s: cannot write attribute '%s'", path, name);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  int rc = fm__h5_write_attr(obj, name, t, t, &value, path);
  H5Tclose(t);
  return rc;
}

char *fm__h5_tmp_name(const char *path) {
  size_t n = strlen(path);
  char *t = fm__malloc(n + 5);
  if (t) {
    memcpy(t, path, n);
    memcpy(t + n, ".tmp", 5);
  }
  return t;
}

int fm__h5_commit_tmp(const char *tmp_path, const char *path) {
  char buf[256];
  int fd = open(tmp_path, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd); /* best effort: some file systems refuse fsync on read-only descriptors */
    close(fd);
  }
  if (rename(tmp_path, path) != 0) {
    int e = errno;
    if (strerror_r(e, buf, sizeof buf) != 0) snprintf(buf, sizeof buf, "error %d", e);
    remove(tmp_path);
    return FM_ERR(FM_ERR_IO, "cannot rename '%s' to '%s': %s", tmp_path, path, buf);
  }
  return FM_OK;
}

hid_t fm__h5_create_file(const char *path) {
  hid_t fapl = fm__h5_fapl();
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl >= 0 ? fapl : H5P_DEFAULT);
  if (fapl >= 0) H5Pclose(fapl);
  return f;
}
