/* fedmpi/privacy.h — Rényi-DP accounting for the subsampled Gaussian
 * mechanism, as Google's dp_accounting computes it (RdpAccountant with a
 * PoissonSampledDpEvent of a GaussianDpEvent, composed over the rounds).
 *
 *   RDP(α) per round: Mironov, Talwar, Zhang 2019, "Rényi Differential
 *     Privacy of the Sampled Gaussian Mechanism": integer α by the closed
 *     binomial sum, fractional α by the two-sided erfc series, in log space.
 *   T rounds compose by adding RDP.
 *   (ε, δ): the conversion of Canonne, Kamath, Steinke 2020 that
 *     dp_accounting uses, minimised over the orders; the classic
 *     ε = T·RDP(α) − log δ / (α − 1) is there for comparison.
 *
 * q is the probability that a client takes part in a round. fedmpi draws a
 * fixed-size cohort without replacement; docs/privacy.md says why q = K/N
 * with the Poisson analysis is the accounting TFF's research code uses. */
#ifndef FEDMPI_PRIVACY_H
#define FEDMPI_PRIVACY_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dp_accounting's default orders: 1.1, 1.2, ..., 10.9, 11, 12, ..., 63, 128, 256, 512, 1024. */
FM_EXTERN void fm_rdp_default_orders(const double **orders, size_t *n);

/* RDP of one round at each order (rdp: n values). q in [0, 1], z >= 0
 * (z = 0 gives +inf unless q = 0), orders > 1. */
FM_EXTERN int fm_rdp_subsampled_gaussian(double q, double noise_multiplier, const double *orders, size_t n,
                                         double *rdp);

/* The smallest ε over the orders for total RDP rdp[] (already composed) and
 * delta in (0, 1); *order gets the order that attains it (may be NULL). */
FM_EXTERN int fm_rdp_to_epsilon(const double *orders, const double *rdp, size_t n, double delta, double *eps,
                                double *order);
FM_EXTERN int fm_rdp_to_epsilon_classic(const double *orders, const double *rdp, size_t n, double delta, double *eps,
                                        double *order);

/* ε after `rounds` rounds of the subsampled Gaussian with the default orders
 * and dp_accounting's conversion. FM_ERR_HPARAM_VALUE naming the argument. */
FM_EXTERN int fm_privacy_epsilon(double q, double noise_multiplier, uint64_t rounds, double delta, double *eps,
                                 double *order);
/* The smallest noise multiplier whose ε after `rounds` rounds is <= target
 * (bisection to a relative 1e-6). */
FM_EXTERN int fm_privacy_noise_for_epsilon(double q, uint64_t rounds, double delta, double target_epsilon,
                                           double *noise_multiplier);

/* DP-FTRL (tree aggregation: tree_aggregation, tree_adaptive), as TF
 * Privacy's tree_aggregation_accountant: the trees' nodes are Gaussian
 * mechanisms with noise multiplier z, so RDP(α) = α S / (2 z²), S the sum
 * over the trees (restarts after restart_warmup rounds, then every
 * restart_frequency; 0: one tree) of a client's squared sensitivity to the
 * tree's nodes. No amplification by sampling. Which clients' sensitivity:
 *   FM_TREE_EVERY_ROUND     a client may take part in every round (the worst
 *                           case, and what uniform cohort sampling allows):
 *                           sum over levels l of floor(m / 2^l) 4^l per tree of m leaves;
 *   FM_TREE_ONCE_PER_TREE   at most once per tree (the DP-FTRL paper's
 *                           epochs; compute_rdp_tree_restart): floor(log2 m) + 1. */
typedef enum fm_tree_participation { FM_TREE_EVERY_ROUND = 0, FM_TREE_ONCE_PER_TREE = 1 } fm_tree_participation;
FM_EXTERN int fm_rdp_tree(double noise_multiplier, uint64_t rounds, uint64_t restart_warmup, uint64_t restart_frequency,
                          fm_tree_participation participation, const double *orders, size_t n, double *rdp);
FM_EXTERN int fm_privacy_epsilon_tree(double noise_multiplier, uint64_t rounds, uint64_t restart_warmup,
                                      uint64_t restart_frequency, fm_tree_participation participation, double delta,
                                      double *eps, double *order);

#ifdef __cplusplus
}
#endif
#endif
