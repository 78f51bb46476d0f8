# tests/data/rdp_reference.py — independent reference values for tests/unit/test_privacy.c: the
# subsampled Gaussian RDP from its definition by numerical integration (fractional orders), and
# the closed integer-order sum with exact binomials. Run with /usr/bin/python3 (numpy).
import sys
import numpy as np
from math import comb, log, exp
def rdp_quad(q, s, a, points=4_000_001):
    # A_a = E_{x~N(0,s^2)} [((1-q) + q exp((2x-1)/(2 s^2)))^a], log-space trapezoid on a wide fine grid
    x = np.linspace(-40*s - 10, 40*s + a + 10, points)
    logpdf = -x*x/(2*s*s) - 0.5*np.log(2*np.pi*s*s)
    t = (2*x - 1)/(2*s*s)
    logratio = np.logaddexp(np.log1p(-q), np.log(q) + t)
    f = logpdf + a*logratio
    m = f.max()
    dx = x[1]-x[0]
    la = m + np.log(np.trapz(np.exp(f - m), dx=dx))
    return la/(a-1)
def rdp_int(q, s, a):
    from fractions import Fraction
    terms = [log(comb(a,k)) + k*log(q) + (a-k)*log(1-q) + (k*k-k)/(2*s*s) for k in range(a+1)]
    m = max(terms)
    return (m + log(sum(exp(t-m) for t in terms)))/(a-1)
if __name__ == "__main__" and len(sys.argv) == 1:
  for (q,s,a) in [(0.01,1.0,2.5),(0.01,1.0,7.8),(0.05,2.0,3.3),(0.1,0.8,1.5),(256/60000,1.1,8.8),(0.3,3.0,20.5)]:
      print("frac", q, s, a, repr(rdp_quad(q,s,a)))
  for (q,s,a) in [(0.01,1.0,5),(0.2,1.5,12),(0.05,2.0,3)]:
      print("int", q, s, a, repr(rdp_int(q,s,a)), repr(rdp_quad(q,s,a)))

# epsilon q z T delta: dp_accounting's conversion over its default orders, with every order's RDP
# from the quadrature (a coarser grid: 200,001 points), printed for tests/cli's privacy scenarios.
def epsilon(q, s, T, delta):
    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]
    best = (float("inf"), None)
    for a in orders:
        if a == int(a):
            r = T * rdp_int(q, s, int(a))
        else:
            r = T * rdp_quad(q, s, a, 200_001)
        if delta ** 2 + np.expm1(-r) > 0:
            e = 0.0
        elif a > 1.01:
            e = r + np.log1p(-1 / a) - np.log(delta * a) / (a - 1)
        else:
            e = float("inf")
        best = min(best, (e, a))
    return max(0.0, best[0]), best[1]

if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "epsilon":
    e, a = epsilon(float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    print(repr(e), a)

# tree z T warmup frequency participation delta: DP-FTRL's epsilon with the trees simulated call
# by call (the restarts of PeriodicRoundRestartIndicator, every node each new leaf completes) and
# the client's squared sensitivity counted over the completed nodes: a client in every round adds
# (leaves of the node)^2 per node; once per tree, the most nodes any one leaf lies in.
def tree_sensitivity2(T, warmup, freq, part):
    trees, m = [], 0
    for c in range(1, T + 1):
        m += 1
        if freq and c % freq == warmup:
            trees.append(m)
            m = 0
    if m:
        trees.append(m)
    total = 0
    for m in trees:
        nodes = []  # (first leaf, leaves) of every completed node
        for leaf in range(m):
            size = 1
            while True:
                nodes.append((leaf + 1 - size, size))
                if (leaf + 1) % (2 * size):
                    break
                size *= 2
        if part == "every-round":
            total += sum(s * s for _, s in nodes)
        else:
            total += max(sum(1 for f, s in nodes if f <= x < f + s) for x in range(m))
    return total

def tree_epsilon(z, T, warmup, freq, part, delta):
    orders = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]
    S = tree_sensitivity2(T, warmup, freq, part)
    best = (float("inf"), None)
    for a in orders:
        r = a * S / (2 * z * z)
        if delta ** 2 + np.expm1(-r) > 0:
            e = 0.0
        elif a > 1.01:
            e = r + np.log1p(-1 / a) - np.log(delta * a) / (a - 1)
        else:
            e = float("inf")
        best = min(best, (e, a))
    return max(0.0, best[0]), best[1]

if __name__ == "__main__" and len(sys.argv) == 8 and sys.argv[1] == "tree":
    e, a = tree_epsilon(float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6],
                        float(sys.argv[7]))
    print(repr(e), a)
