/* src/learning/algorithms/registry.c — every algorithm fedmpi knows, by
 * name. Adding one is a file in this folder with its fm__algorithm_ops and
 * one line here (docs/architecture.md, "Add an algorithm"). */
#include <string.h>

#include "fedmpi/process.h"
#include "internal.h"
#include "learning_impl.h"

extern const fm__algorithm_ops fm__algorithm_fedavg, fm__algorithm_fedprox, fm__algorithm_fedsgd,
    fm__algorithm_mime_lite, fm__algorithm_scaffold, fm__algorithm_fednova;

static const fm__algorithm_ops *const fm__algorithms[] = {
    &fm__algorithm_fedavg,    &fm__algorithm_fedprox,  &fm__algorithm_fedsgd,
    &fm__algorithm_mime_lite, &fm__algorithm_scaffold, &fm__algorithm_fednova,
};
#define FM__NUM_ALGORITHMS (sizeof fm__algorithms / sizeof fm__algorithms[0])

const fm__algorithm_ops *fm__algorithm_find(const char *name) {
  for (size_t i = 0; name && i < FM__NUM_ALGORITHMS; i++)
    if (strcmp(fm__algorithms[i]->name, name) == 0) return fm__algorithms[i];
  return NULL;
}

size_t fm_algorithm_count(void) { return FM__NUM_ALGORITHMS; }

int fm_algorithm_info(size_t i, fm_algorithm_desc *out) {
  FM_CHECK(i < FM__NUM_ALGORITHMS && out, FM_ERR_INVALID_ARG, "no algorithm %zu (there are %zu)", i, (size_t)FM__NUM_ALGORITHMS);
  const fm__algorithm_ops *a = fm__algorithms[i];
  *out = (fm_algorithm_desc){.name = a->name,
                             .tff_name = a->tff_name,
                             .help = a->help,
                             .hparam = a->hparam,
                             .needs_client_optimizer = !(a->flags & FM__ALGO_NO_CLIENT_OPT),
                             .needs_shard_assignment = (a->flags & FM__ALGO_SHARD_ONLY) != 0};
  return FM_OK;
}
