# tests/data/rdp_reference.py — independent reference values for tests/unit/test_privacy.c: the
# subsampled Gaussian RDP from its definition by numerical integration (fractional orders), and
# the closed integer-order sum with exact binomials. Run with /usr/bin/python3 (numpy).
import numpy as np
from math import comb, log, exp
def rdp_quad(q, s, a):
    # A_a = E_{x~N(0,s^2)} [((1-q) + q exp((2x-1)/(2 s^2)))^a], log-space trapezoid on a wide fine grid
    x = np.linspace(-40*s - 10, 40*s + a + 10, 4_000_001)
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
for (q,s,a) in [(0.01,1.0,2.5),(0.01,1.0,7.8),(0.05,2.0,3.3),(0.1,0.8,1.5),(256/60000,1.1,8.8),(0.3,3.0,20.5)]:
    print("frac", q, s, a, repr(rdp_quad(q,s,a)))
for (q,s,a) in [(0.01,1.0,5),(0.2,1.5,12),(0.05,2.0,3)]:
    print("int", q, s, a, repr(rdp_int(q,s,a)), repr(rdp_quad(q,s,a)))
