/* src/core/internal.h — private helpers shared by every module: error
 * raising/propagation macros (PETSc style) and checked allocation. Not
 * installed. */
#ifndef FEDMPI_INTERNAL_H
#define FEDMPI_INTERNAL_H

#include <stddef.h>

#include "fedmpi/error.h"

/* Record code with a formatted message and where it was raised; returns code. */
int fm__error(int code, const char *file, int line, const char *func, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#define FM_ERR(code, ...) fm__error((code), __FILE__, __LINE__, __func__, __VA_ARGS__)
/* Return an error naming the problem unless cond holds. */
#define FM_CHECK(cond, code, ...)                                                                                \
  do {                                                                                                         \
    if (!(cond)) return FM_ERR((code), __VA_ARGS__);                                                           \
  } while (0)
/* Propagate a failure (the callee already recorded its message). */
#define FM_CALL(expr)                                                                                          \
  do {                                                                                                         \
    int fm_rc_ = (expr);                                                                                       \
    if (fm_rc_ != FM_OK) return fm_rc_;                                                                        \
  } while (0)
/* In functions with a single cleanup label: rc = expr, jump on failure. */
#define FM_CALL_GOTO(rc, expr, label)                                                                          \
  do {                                                                                                         \
    (rc) = (expr);                                                                                             \
    if ((rc) != FM_OK) goto label;                                                                             \
  } while (0)
#define FM_CHECK_GOTO(rc, cond, label, code, ...)                                                              \
  do {                                                                                                         \
    if (!(cond)) {                                                                                             \
      (rc) = FM_ERR((code), __VA_ARGS__);                                                                      \
      goto label;                                                                                              \
    }                                                                                                          \
  } while (0)

/* Allocation through one place: the allocator set with fm_set_allocator
 * (malloc's alignment). They record FM_ERR_NOMEM as last error when returning
 * NULL. fm__free accepts NULL. */
void *fm__malloc(size_t bytes);
void *fm__calloc(size_t count, size_t size);
void *fm__realloc(void *p, size_t bytes);
void fm__free(void *p);
char *fm__strdup(const char *s);
/* The same allocator without recording an error, for best-effort memory
 * (a cache that cannot allocate does not cache); free with fm__free. */
void *fm__try_malloc(size_t bytes);
void *fm__try_calloc(size_t count, size_t size);

#endif
