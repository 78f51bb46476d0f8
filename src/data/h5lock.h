/* src/data/h5lock.h — the one lock around every HDF5 call in fedmpi, and the
 * small HDF5 helpers the data module and the weights file share. Private (not
 * installed).
 *
 * The Debian/Ubuntu "serial" HDF5 is not guaranteed thread-safe, and loads
 * run concurrently from OpenMP threads, so every HDF5 call in the library
 * happens between fm__h5_lock() and fm__h5_unlock(). The mutex is recursive,
 * so a helper that locks may be called with the lock already held.
 * fm__h5_lock() also silences HDF5's own error-stack printing (per thread in
 * thread-safe builds), so only fedmpi's error message reaches the user. */
#ifndef FEDMPI_H5LOCK_H
#define FEDMPI_H5LOCK_H

#include <hdf5.h>

/* Initialise the lock and silence HDF5's error printing (idempotent). */
void fm__h5_init(void);
void fm__h5_lock(void);
void fm__h5_unlock(void);

/* FM_OK if path names a readable regular file, else FM_ERR_IO naming it
 * ("cannot open '<path>': No such file or directory"). No lock needed. */
int fm__h5_check_readable(const char *path);

/* Open path read-only (lock held by the caller). FM_ERR_IO/FM_ERR_FORMAT
 * naming the file if it is missing, not HDF5 or corrupted. */
int fm__h5_open_read(const char *path, hid_t *file);

/* Create (truncate) path for writing with the same access properties as
 * fm__h5_open_read (lock held). Returns the file id or a negative id; the
 * caller records the error. */
hid_t fm__h5_create_file(const char *path);

/* Read a scalar string attribute (fixed or variable length) of obj into a
 * new fm__malloc'd string. Returns 1 and sets *out if present, 0 if absent,
 * <0 on error (FM_ERR_FORMAT naming path and attribute). Lock held. */
int fm__h5_read_string_attr(hid_t obj, const char *name, const char *path, char **out);
/* Read a scalar integer attribute: same return convention. Lock held. */
int fm__h5_read_int_attr(hid_t obj, const char *name, const char *path, long long *out);

/* Write scalar attributes (lock held): FM_ERR_IO naming path on failure.
 * Strings are variable-length UTF-8, readable as str from h5py. */
int fm__h5_write_string_attr(hid_t obj, const char *name, const char *value, const char *path);
int fm__h5_write_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *value,
                      const char *path);

/* Files that are written (checkpoints, weights, ClientData) are built in
 * memory and reach the disk in one step that fedmpi performs itself, because
 * HDF5 1.10 cannot survive a failed H5Fclose: it frees the file but keeps its
 * id, and the exit handler (H5_term_library) then crashes on it. In memory,
 * closing never does I/O; ENOSPC, EIO and EFBIG come back from write() or
 * fsync() instead, as FM_ERR_IO naming the file. Implemented in writer.c.
 *
 * fm__h5_create_mem_file: a new in-memory file (core driver, no backing
 * store); it also creates an empty tmp_path, so that a missing or read-only
 * directory fails now. Returns the id, or a negative id with errno set.
 * fm__h5_close_to_disk: flush file, take its image and close it (the id is
 * invalid afterwards, whatever happens); if rc is FM_OK, write the image to
 * tmp_path and fsync it. Returns rc if it was an error, else the first error
 * of its own (FM_ERR_IO naming path and the system's reason). tmp_path is
 * removed on any error. Lock held for both. */
hid_t fm__h5_create_mem_file(const char *tmp_path);
int fm__h5_close_to_disk(hid_t file, int rc, const char *tmp_path, const char *path);
/* Atomic replace: fsync "<path>.tmp" and rename it to path. FM_ERR_IO. */
int fm__h5_commit_tmp(const char *tmp_path, const char *path);
/* "<path>.tmp" (fm__malloc'd) or NULL (FM_ERR_NOMEM recorded). */
char *fm__h5_tmp_name(const char *path);

#endif
