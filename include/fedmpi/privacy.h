/* fedmpi/privacy.h — Rényi-DP accounting for the Poisson-subsampled Gaussian
 * mechanism (Mironov, Talwar, Zhang 2019), with the semantics of Google's
 * dp_accounting RdpAccountant: per-step RDP at a set of orders, composition
 * over T steps by adding RDP, and conversion to (epsilon, delta).
 *
 * q is the sampling probability (clients_per_round / population), z the noise
 * multiplier (noise stddev / L2 sensitivity), T the number of rounds. fedmpi
 * samples a fixed-size cohort without replacement; these functions assume
 * Poisson sampling with q = K/N, the standard approximation (docs/privacy.md).
 * Pure functions: not collective, thread-safe. */
#ifndef FEDMPI_PRIVACY_H
#define FEDMPI_PRIVACY_H

#include <stddef.h>
#include <stdint.h>

#include "fedmpi/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dp_accounting's default orders: 1.1, 1.2, ..., 10.9, 11, 12, ..., 63, 128,
 * 256, 512, 1024 (156 orders). Borrowed static array. */
FM_EXTERN void fm_rdp_default_orders(const double **orders, size_t *n);

/* RDP of one step at each order (> 1) into rdp[n]. q = 0 gives 0, z = 0 gives
 * +inf, q = 1 gives alpha / (2 z^2); integer orders use the closed binomial
 * sum, fractional orders the two-sided erfc series, both in log space. An
 * order whose series does not converge gets +inf (excluded, as dp_accounting).
 * FM_ERR_INVALID_ARG for q outside [0, 1], z negative or not finite, an order
 * <= 1 or not finite, NULL pointers. */
FM_EXTERN int fm_rdp_subsampled_gaussian(double q, double noise_multiplier, const double *orders, size_t n,
                                         double *rdp);

/* (epsilon, delta) from total RDP (already multiplied by T) with the
 * conversion of Canonne, Kamath, Steinke 2020 Prop. 12 (dp_accounting's
 * compute_epsilon): eps = min over orders > 1.01 of
 * rdp + log1p(-1/a) - log(delta * a) / (a - 1), and 0 where
 * delta^2 > 1 - exp(-rdp). best_order may be NULL. delta in (0, 1). */
FM_EXTERN int fm_rdp_to_epsilon(const double *orders, const double *rdp, size_t n, double delta, double *eps,
                                double *best_order);
/* The classic conversion (Mironov 2017 Prop. 3): eps = min rdp - log(delta)/(a - 1). */
FM_EXTERN int fm_rdp_to_epsilon_classic(const double *orders, const double *rdp, size_t n, double delta,
                                        double *eps, double *best_order);

/* epsilon after `steps` rounds at sampling rate q and noise multiplier z, at
 * delta: default orders, improved conversion. order (may be NULL) gets the
 * optimal order. */
FM_EXTERN int fm_privacy_epsilon(double q, double z, uint64_t steps, double delta, double *eps, double *order);

/* The smallest noise multiplier z with fm_privacy_epsilon(q, z, steps, delta)
 * <= target_eps, by bisection to 1e-7 relative (the result always reaches the
 * target). FM_ERR_INVALID_ARG when target_eps <= 0 or not finite,
 * FM_ERR_UNSUPPORTED when even z = 1e6 does not reach it. q = 0 gives z = 0. */
FM_EXTERN int fm_privacy_noise_for_epsilon(double q, uint64_t steps, double delta, double target_eps, double *z);

#ifdef __cplusplus
}
#endif
#endif
