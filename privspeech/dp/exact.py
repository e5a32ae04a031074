"""Exact comparisons of a uniform random number with irrational thresholds, and exact inverse-CDF tables.

A uniform U in [0, 1) is an infinite string of random bits; the samplers read its first 64 bits as an
integer and read more only when those bits cannot decide a comparison. Thresholds (values of
``exp(-r)`` for rational ``r > 0``, and rational functions of such values) are transcendental
(Lindemann-Weierstrass), so no finite bit string equals one and every comparison ends after finitely
many words; in practice after the first word with probability ``1 - 2**-64`` per threshold.

Thresholds are evaluated with the standard library's ``decimal`` at a working precision ``GUARD``
digits beyond the precision claimed; ``exp`` and the four operations are correctly rounded there, and
the at most ~20 roundings and cancellations by at most 1e-12 (scales are bounded, see
:func:`check_scale`) cost far fewer than ``GUARD`` digits.
"""

from __future__ import annotations

import decimal
from fractions import Fraction
from typing import Callable

import numpy as np

from ..errors import UsageError
from .rng import SecureRandom

GUARD = 30  # decimal digits computed beyond the precision claimed
GUIDE_BITS = 16  # a 65536-bucket guide table indexes each inverse-CDF table by the top bits of U

Threshold = Callable[[], decimal.Decimal]  # evaluates in the current decimal context


def dec(value: Fraction) -> decimal.Decimal:
    """A rational as a Decimal in the current context (one correctly rounded division)."""
    return decimal.Decimal(value.numerator) / decimal.Decimal(value.denominator)


def exp_neg(r: Fraction) -> Threshold:
    """The threshold ``exp(-r)``."""
    return lambda: (-dec(r)).exp()


def _scaled(value: Threshold, bits: int, extra: int = 0) -> tuple[decimal.Decimal, decimal.Decimal]:
    """``value * 2**bits`` and a bound on its error."""
    digits = int(bits * 0.30103) + 20 + extra
    with decimal.localcontext() as ctx:
        ctx.prec = digits + GUARD
        ctx.Emin, ctx.Emax = -10**9, 10**9
        scaled = value() * (decimal.Decimal(2) ** bits)
        err = decimal.Decimal(2) ** bits * decimal.Decimal(10) ** -digits
    return scaled, err


def floor_scaled(value: Threshold, bits: int) -> int:
    """``floor(value * 2**bits)`` exactly, for an irrational `value` in (0, 1)."""
    extra = 0
    while True:
        scaled, err = _scaled(value, bits, extra)
        whole = int(scaled.to_integral_value(rounding=decimal.ROUND_FLOOR))
        if scaled - err >= whole and scaled + err < whole + 1:
            return whole
        extra += 20


def uniform_below(value: Threshold, prefix: int, bits: int, rng: SecureRandom) -> bool:
    """Decide ``U < value`` exactly, where U's first `bits` bits are `prefix`; later bits come from `rng`."""
    while True:
        scaled, err = _scaled(value, bits)
        if prefix + 1 <= scaled - err:
            return True
        if prefix >= scaled + err:
            return False
        prefix, bits = (prefix << 64) | rng.word(), bits + 64


def check_scale(value: int | float | Fraction, what: str, low: Fraction, high: Fraction) -> Fraction:
    """A finite positive number within [low, high] as an exact Fraction (floats convert exactly)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise UsageError(f"{what} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not np.isfinite(value):
        raise UsageError(f"{what} must be finite, not {value}")
    exact = Fraction(value)
    if not low <= exact <= high:
        raise UsageError(f"{what} must be between {float(low):g} and {float(high):g}, not {float(exact):g}")
    return exact


class InverseCDF:
    """Exact draws of ``V = #{k : U < c_k}`` for strictly decreasing thresholds ``c_1 > c_2 > ...`` in (0, 1).

    ``P(V >= k) = c_k``. Each threshold is stored as ``C_k = floor(c_k * 2**bits)``; for a draw whose first
    `bits` bits are ``u``, ``U < c_k`` holds exactly when ``u < C_k``, fails when ``u > C_k``, and only when
    ``u == C_k`` (probability ``2**-bits``) is it decided by :func:`uniform_below` with more bits.
    The count ``#{k : C_k > u}`` is read from a guide table indexed by the top bits of ``u`` (one
    candidate threshold per bucket), or by binary search in the few buckets holding several thresholds.

    Parameters
    ----------
    thresholds : list of callables
        The ``c_k``, each evaluating to a Decimal in the current context.
    bits : int
        Bits of U read per draw (64; tests use fewer to exercise the exact path often).
    """

    def __init__(self, thresholds: list[Threshold], *, bits: int = 64):
        self.thresholds = thresholds
        self.bits = bits
        floors = [floor_scaled(c, bits) for c in thresholds]
        if not floors or any(a <= b for a, b in zip(floors, floors[1:])):
            raise AssertionError("inverse-CDF thresholds must be distinct and decreasing at this word size")
        self.size = len(floors)
        self._descending = np.array(floors + [0], dtype=np.uint64)  # pad: a draw past the last threshold
        self._ascending = np.array(floors[::-1], dtype=np.uint64)
        guide = min(GUIDE_BITS, bits)
        self._shift = np.uint64(bits - guide)
        buckets = np.array([c >> (bits - guide) for c in floors], dtype=np.int64)
        per_bucket = np.bincount(buckets, minlength=1 << guide)
        self._base = (self.size - np.cumsum(per_bucket)).astype(np.int64)  # thresholds in higher buckets
        self._candidate = np.arange(1 << guide, dtype=np.uint64) << self._shift  # bucket floor: never above u
        for c in floors:
            self._candidate[c >> (bits - guide)] = c
        crowded = np.flatnonzero(per_bucket > 1)
        self._crowded_below = int(crowded.max()) + 1 if crowded.size else 0  # buckets < this use search

    def draw(self, u: np.ndarray, rng: SecureRandom) -> np.ndarray:
        """Values of V for the uniforms whose first `bits` bits are `u` (uint64, shape (n,)) -> int64 (n,)."""
        top = (u >> self._shift).view(np.int64)  # < 2**16: a valid index without a cast
        candidate = np.take(self._candidate, top)
        out = np.take(self._base, top)
        np.add(out, u < candidate, out=out, casting="unsafe")
        ties = np.flatnonzero(u == candidate)  # a tie is with the bucket's one threshold, or its floor (no tie)
        if self._crowded_below:
            slow = np.flatnonzero(top < self._crowded_below)
            if slow.size:
                out[slow] = self.size - np.searchsorted(self._ascending, u[slow], side="right")
                ties = np.union1d(ties, slow[self._descending[out[slow]] == u[slow]])
        for i in ties:  # u equals a threshold's first bits: read more bits
            k = int(out[i])
            if k < self.size and self._descending[k] == u[i] \
                    and uniform_below(self.thresholds[k], int(u[i]), self.bits, rng):
                out[i] += 1
        return out
