/* tests/fuzz/fuzz_common.h — what every fuzz target shares: the libFuzzer
 * entry point's prototype, a capped allocator (a fuzzed header may ask for
 * terabytes; a real machine says no, and the library must then return
 * FM_ERR_NOMEM, not crash) and a per-process temporary file for the readers
 * that take a path. The same sources are built as libFuzzer targets (clang,
 * FEDMPI_FUZZ=ON) and, with replay.c's main(), as plain replay drivers (gcc,
 * the default suite). */
#ifndef FEDMPI_FUZZ_COMMON_H
#define FEDMPI_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fedmpi/fedmpi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Refuse single allocations over 256 MB: an input that makes the library ask
 * for more is answered like an out-of-memory machine would answer it. */
#define FUZZ_ALLOC_CAP ((size_t)256 << 20)
static void *fuzz_malloc(size_t n) { return n > FUZZ_ALLOC_CAP ? NULL : malloc(n); }
static void *fuzz_realloc(void *p, size_t n) { return n > FUZZ_ALLOC_CAP ? NULL : realloc(p, n); }
static void *fuzz_calloc(size_t c, size_t s) { return s && c > FUZZ_ALLOC_CAP / s ? NULL : calloc(c, s); }

/* Once per process, before any other fedmpi call. */
static inline void fuzz_init(void) {
  static int done;
  if (done) return;
  done = 1;
  if (fm_set_allocator(fuzz_malloc, fuzz_realloc, fuzz_calloc, free) != FM_OK) abort();
}

/* Write data to this process's temporary file (suffix e.g. ".h5") and return
 * its path (static buffer), or NULL. */
static inline const char *fuzz_write_temp(const uint8_t *data, size_t size, const char *suffix) {
  static char path[256];
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(path, sizeof path, "%s/fedmpi-fuzz-%ld%s", dir, (long)getpid(), suffix);
  FILE *f = fopen(path, "wb");
  if (!f) return NULL;
  size_t w = size ? fwrite(data, 1, size, f) : 0;
  if (fclose(f) != 0 || w != size) return NULL;
  return path;
}

/* The input as a NUL-terminated string (caller frees), or NULL if it holds a
 * NUL byte (text interfaces take C strings) or is longer than max. */
static inline char *fuzz_string(const uint8_t *data, size_t size, size_t max) {
  if (size > max || memchr(data, 0, size)) return NULL;
  char *s = malloc(size + 1);
  if (!s) return NULL;
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* An error code must be FM_OK or a known FM_ERR_* with a message. */
static inline void fuzz_check_rc(int rc) {
  if (rc == FM_OK) return;
  if (rc > 0 || rc <= FM_ERR__END || !strcmp(fm_err_name(rc), "FM_ERR_UNKNOWN")) {
    fprintf(stderr, "bad error code %d\n", rc);
    abort();
  }
  if (!fm_last_error()[0]) {
    fprintf(stderr, "error %s without a message\n", fm_err_name(rc));
    abort();
  }
}

#endif
