/* fedmpi/alloc.h — a replaceable allocator (libuv's uv_replace_allocator).
 *
 * Every allocation the library makes goes through these four functions; by
 * default they are the C library's malloc, realloc, calloc and free. Memory
 * allocated on the library's behalf by HDF5, OpenBLAS, json-c, Open MPI and
 * the C library (getline) is outside them: those libraries allocate on their
 * own. */
#ifndef FEDMPI_ALLOC_H
#define FEDMPI_ALLOC_H

#include <stddef.h>

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void *(*fm_malloc_fn)(size_t size);
typedef void *(*fm_realloc_fn)(void *ptr, size_t size);
typedef void *(*fm_calloc_fn)(size_t count, size_t size);
typedef void (*fm_free_fn)(void *ptr);

/* Replace the library's allocator. Returns FM_ERR_INVALID_ARG (and changes
 * nothing) if any function is NULL, else FM_OK.
 *
 * Call it before any other fedmpi call: memory is released with the free
 * function current at release time, so memory allocated by the old functions
 * must not be live when they are replaced (unless the new functions share the
 * same heap, e.g. wrappers around malloc). Not thread-safe: no other thread may
 * be inside fedmpi meanwhile. The functions themselves are called from OpenMP
 * worker threads and must be thread-safe. Sizes passed are never 0, and a
 * failing function returns NULL: the library then returns FM_ERR_NOMEM.
 * Not collective. */
FM_EXTERN int fm_set_allocator(fm_malloc_fn malloc_fn, fm_realloc_fn realloc_fn, fm_calloc_fn calloc_fn,
                               fm_free_fn free_fn);

/* Release memory the library returned to the caller to free (fm_metrics_to_json's
 * text, fm_state_gather_clients' arrays, a gather's buffer) with the current
 * free function. NULL accepted. With the default allocator, free() is the
 * same. Not collective. */
FM_EXTERN void fm_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
