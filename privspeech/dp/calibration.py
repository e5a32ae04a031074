"""Noise calibration on the integer lattice, and the zCDP to (epsilon, delta) conversion.

- Discrete Laplace with scale ``t`` on a query of L1 sensitivity ``D1`` (in lattice steps) is
  ``(D1 / t)``-DP, so ``t = D1 / epsilon``.
- Discrete Gaussian with ``sigma**2`` on a query of L2 sensitivity ``D2`` is ``rho``-zCDP with
  ``rho = D2**2 / (2 sigma**2)`` (Canonne, Kamath, Steinke 2020, Thm 14), so ``sigma**2 = D2**2 / (2 rho)``.
- ``rho``-zCDP implies ``(epsilon, delta)``-DP for the epsilon of :func:`zcdp_epsilon`: the tight
  conversion of CKS 2020 (Corollary 13), the one OpenDP's ``make_zCDP_to_approxDP`` uses; it is never
  larger than the textbook ``rho + 2 sqrt(rho log(1/delta))``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ..errors import UsageError


def check_positive(value: float, what: str) -> float:
    """A finite number > 0, or a USAGE error naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)) or not math.isfinite(value) \
            or value <= 0:
        raise UsageError(f"{what} must be a finite number greater than 0, not {value!r}")
    return value


def check_delta(delta: float) -> float:
    """A delta in (0, 1)."""
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 < delta < 1:
        raise UsageError(f"delta must be between 0 and 1 (exclusive), not {delta!r}",
                         hint="a common choice is below 1/(number of people in the data), e.g. 1e-6")
    return float(delta)


def laplace_scale(sensitivity: int | Fraction, epsilon: float) -> Fraction:
    """The discrete Laplace scale ``D1 / epsilon`` (exact) for L1 sensitivity `sensitivity` in lattice steps."""
    check_positive(epsilon, "epsilon")
    check_positive(sensitivity, "sensitivity")
    return Fraction(sensitivity) / Fraction(epsilon)


def gaussian_sigma2(l2_squared: int | Fraction, rho: float) -> Fraction:
    """The discrete Gaussian ``sigma**2 = D2**2 / (2 rho)`` (exact) for squared L2 sensitivity `l2_squared`."""
    check_positive(rho, "rho")
    check_positive(l2_squared, "squared sensitivity")
    return Fraction(l2_squared) / (2 * Fraction(rho))


def zcdp_epsilon(rho: float, delta: float) -> float:
    """The smallest epsilon such that rho-zCDP implies (epsilon, delta)-DP by CKS 2020, Corollary 13.

    ``epsilon = min over alpha > 1 of alpha*rho + (log(1/delta) + (alpha-1) log(alpha-1) - alpha log(alpha))
    / (alpha-1)``; the objective is unimodal in ``alpha`` and minimised by golden-section search. The result is
    rounded up by a relative 1e-9 so that the search's tolerance never understates epsilon.
    """
    check_delta(delta)
    if isinstance(rho, bool) or not math.isfinite(rho) or rho < 0:
        raise UsageError(f"rho must be a finite number >= 0, not {rho!r}")
    if rho == 0:
        return 0.0
    log_inv = math.log(1 / delta)

    def eps(alpha: float) -> float:
        return alpha * rho + (log_inv + (alpha - 1) * math.log(alpha - 1) - alpha * math.log(alpha)) / (alpha - 1)

    lo, hi = 1.0 + 1e-12, 2.0 + 2 * math.sqrt(log_inv / rho) + 1 / rho  # past the minimiser of the textbook bound
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = eps(a), eps(b)
    for _ in range(200):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = eps(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = eps(b)
    best = min(fa, fb, rho + 2 * math.sqrt(rho * log_inv))
    return max(best, 0.0) * (1 + 1e-9)


def zcdp_rho(epsilon: float, delta: float) -> float:
    """The largest rho whose :func:`zcdp_epsilon` at `delta` is at most `epsilon` (bisection, rounded down)."""
    check_positive(epsilon, "epsilon")
    check_delta(delta)
    lo, hi = 0.0, max(1.0, float(epsilon))
    while zcdp_epsilon(hi, delta) <= epsilon:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if zcdp_epsilon(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo
