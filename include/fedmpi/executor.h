/* fedmpi/executor.h — where a rank's client map runs: its OpenMP threads and
 * the per-thread buffers they keep from one round to the next.
 *
 * A round (fm_process_next) maps its clients over the threads of an executor.
 * Making the threads' buffers again every round costs a page fault per 4 KiB
 * of the exact accumulators, and in a multi-threaded rank each fault also
 * interrupts the other cores (docs/performance.md); an executor kept across
 * rounds pays that once. It holds no learning state: any process, model or
 * evaluation may use it, and it remakes its buffers when their shape changes.
 * Not thread-safe: one executor per rank, used by one call at a time. */
#ifndef FEDMPI_EXECUTOR_H
#define FEDMPI_EXECUTOR_H

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_executor fm_executor;

/* FM_ERR_NOMEM. */
FM_EXTERN int fm_executor_create(fm_executor **out);
/* NULL and *e == NULL are fine. */
FM_EXTERN void fm_executor_destroy(fm_executor **e);

#ifdef __cplusplus
}
#endif
#endif
