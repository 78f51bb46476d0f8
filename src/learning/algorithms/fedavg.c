/* src/learning/algorithms/fedavg.c — federated averaging
 * (tff.learning.algorithms.build_weighted_fed_avg / build_unweighted_fed_avg):
 * the client work and server every other algorithm starts from, so every
 * hook is the default. FedOpt is this with a server optimizer other than sgdm. */
#include "internal.h"
#include "learning_impl.h"

const fm__algorithm_ops fm__algorithm_fedavg = {
    .name = "fedavg",
    .tff_name = "build_weighted_fed_avg",
    .help = "federated averaging: local SGD, the weighted mean of the updates applied by the server optimizer "
            "(FedOpt with a --server-optimizer other than sgdm)",
};
