/* fedmpi/fedmpi.h — umbrella header: everything but the MPI runtime
 * (include fedmpi/runtime.h for that). */
#ifndef FEDMPI_FEDMPI_H
#define FEDMPI_FEDMPI_H

#include "fedmpi/alloc.h"
#include "fedmpi/blas.h"
#include "fedmpi/comm.h"
#include "fedmpi/data.h"
#include "fedmpi/error.h"
#include "fedmpi/exact.h"
#include "fedmpi/executor.h"
#include "fedmpi/hparams.h"
#include "fedmpi/io.h"
#include "fedmpi/metrics.h"
#include "fedmpi/model.h"
#include "fedmpi/optim.h"
#include "fedmpi/privacy.h"
#include "fedmpi/process.h"
#include "fedmpi/rng.h"
#include "fedmpi/schedule.h"
#include "fedmpi/text.h"

#endif
