"""Exact, vectorised samplers on the integer lattice: discrete Laplace and discrete Gaussian.

Floating-point samplers (numpy's ``laplace``/``normal``) leave input-dependent gaps in their output
that give the input away (Mironov, CCS 2012); these samplers draw integers whose distribution is the
stated one exactly, from a :class:`~privspeech.dp.rng.SecureRandom`, in chunks of bounded memory.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Iterator

import numpy as np

from .exact import InverseCDF, check_scale, dec, exp_neg, uniform_below
from .rng import SecureRandom, resolve

RADIX = 256  # values per digit table
TAIL = 2.0 ** -40  # geometric tables stop at thresholds below this; draws past the end continue in a loop
CHUNK = 1 << 16  # samples per vectorised step: memory stays O(CHUNK) whatever the size asked
ETA = 2.0 ** -40  # float margin of the Gaussian acceptance test (see DiscreteGaussian)
NAME_LAPLACE = "discrete-laplace"
NAME_GAUSSIAN = "discrete-gaussian"


class _LatticeSampler:
    """Chunked drawing shared by the samplers; subclasses define ``_draw(n)``."""

    def __init__(self, rng: SecureRandom | None, chunk: int, bits: int):
        self.rng = resolve(rng)
        self.chunk = int(chunk)
        self._bits = bits

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """`size` samples as consecutive int64 arrays of at most `chunk` samples."""
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise ValueError(f"size must be a non-negative integer, not {size!r}")
        for start in range(0, int(size), self.chunk):
            yield self._draw(min(self.chunk, int(size) - start))

    def sample(self, size: int) -> np.ndarray:
        """`size` samples, shape (size,), dtype int64."""
        out = np.empty(int(size), dtype=np.int64)
        start = 0
        for part in self.chunks(size):
            out[start:start + part.size] = part
            start += part.size
        return out

    def _words(self, n: int) -> np.ndarray:
        return self.rng.words(n) >> np.uint64(64 - self._bits)


class DiscreteLaplace(_LatticeSampler):
    """The discrete Laplace (two-sided geometric) distribution: ``P(x) ∝ exp(-|x| / scale)`` on the integers.

    Why it is exact: with ``q = exp(-1/scale)``, ``P(X = 0) = (1-q)/(1+q)`` and, given ``X != 0``, the sign
    is a fair bit and ``|X| - 1`` is geometric, ``P(|X| - 1 = g) ∝ q**g``. Write ``g = m*a + b`` with
    ``0 <= b < m`` (``m >= scale``, a product of digit radices): then ``a`` is geometric with ratio
    ``q**m`` and ``b`` is independent of it, with ``P(b) ∝ q**b``, which factorises over the mixed-radix
    digits of ``b``: digit ``j`` (weight ``w_j``, radix ``r_j``) is a truncated geometric with ratio
    ``q**w_j``. Each of these small distributions is drawn by an exact inverse-CDF table
    (:class:`~privspeech.dp.exact.InverseCDF`): integer comparisons of random words with thresholds
    computed once in high precision, and more random words in the ``2**-64`` event of a tie. The
    geometric ``a`` is memoryless, so draws past the end of its table restart the table and add.

    Parameters
    ----------
    scale : int, float or Fraction
        ``t`` in ``exp(-|x|/t)``, in lattice steps; floats are taken at their exact binary value.
    rng : SecureRandom, optional
        Defaults to a fresh generator keyed from ``os.urandom``.
    chunk : int
        Samples per vectorised step (bounds memory).
    """

    name = NAME_LAPLACE

    def __init__(self, scale: int | float | Fraction, *, rng: SecureRandom | None = None, chunk: int = CHUNK,
                 _bits: int = 64):
        super().__init__(rng, chunk, _bits)
        self.scale = check_scale(scale, "discrete Laplace scale", Fraction(1, 10**6), Fraction(10**12))
        self.block, self._zero_or_block, self._block, self._digits = _laplace_tables(self.scale, _bits)

    @property
    def variance(self) -> float:
        """``2q / (1-q)**2`` with ``q = exp(-1/scale)``."""
        q = math.exp(-1 / float(self.scale))
        return 2 * q / (1 - q) ** 2

    def _magnitudes(self, n: int) -> np.ndarray:
        z = self._zero_or_block.draw(self._words(n), self.rng)
        past = np.flatnonzero(z == self._zero_or_block.size)
        while past.size:  # memoryless: a draw past the end of a table adds a fresh geometric
            more = self._block.draw(self._words(past.size), self.rng)
            z[past] += more
            past = past[more == self._block.size]
        zero = z == 0
        mag = z
        mag -= 1
        mag *= self.block
        mag += 1
        for weight, digit in self._digits:
            d = digit.draw(self._words(n), self.rng)
            if weight != 1:
                d *= weight
            mag += d
        mag[zero] = 0
        return mag

    def _draw(self, n: int) -> np.ndarray:
        mag = self._magnitudes(n)
        return np.negative(mag, out=mag, where=self.rng.bits(n))


class DiscreteGaussian(_LatticeSampler):
    """The discrete Gaussian ``P(x) ∝ exp(-x**2 / (2 sigma2))`` on the integers (Canonne, Kamath, Steinke 2020).

    CKS Algorithm 3: draw ``Y`` from the discrete Laplace with scale ``t = floor(sigma) + 1`` (exact, see
    :class:`DiscreteLaplace`) and accept it with probability ``exp(-gamma)``,
    ``gamma = (|Y| - sigma2/t)**2 / (2 sigma2)``, a rational number; accepted values are exactly
    discrete-Gaussian, and about 76 % of candidates are accepted.

    Why the acceptance test is exact: it compares a uniform ``U`` with ``p = exp(-gamma)``. A float
    estimate ``p_hat`` decides it when the 53-bit prefix interval of ``U`` lies farther than ``ETA =
    2**-40`` from ``p_hat``. The estimate's error is far below ``ETA``: ``gamma`` takes five IEEE
    operations on exact integers and correctly rounded constants (relative error < 2**-50, and
    ``p * |d gamma| <= 2**-50``), and NumPy's float64 ``exp`` is accurate to a few ulp (< 2**-50 on
    (0, 1]; ``tests/test_dp_samplers.py`` checks it against ``decimal``). Otherwise (probability about
    ``2**-38``) the test is decided in exact arithmetic with more random bits
    (:func:`~privspeech.dp.exact.uniform_below`).

    Parameters
    ----------
    sigma2 : int, float or Fraction
        The variance parameter ``sigma**2`` in squared lattice steps; floats at their exact binary value.
    rng : SecureRandom, optional
        Defaults to a fresh generator keyed from ``os.urandom``.
    chunk : int
        Candidates per vectorised step (bounds memory).
    """

    name = NAME_GAUSSIAN

    def __init__(self, sigma2: int | float | Fraction, *, rng: SecureRandom | None = None, chunk: int = CHUNK,
                 _bits: int = 64):
        super().__init__(rng, chunk, _bits)
        self.sigma2 = check_scale(sigma2, "discrete Gaussian sigma^2", Fraction(1, 10**6), Fraction(10**24))
        t = math.isqrt(math.floor(self.sigma2)) + 1
        self._laplace = DiscreteLaplace(t, rng=self.rng, chunk=chunk, _bits=_bits)
        self._center = self.sigma2 / t
        self._center_f = float(self._center)
        self._inv_two_sigma2 = 1.0 / float(2 * self.sigma2)

    @property
    def variance(self) -> float:
        """The variance (equal to sigma2 within a relative 1e-100 when sigma2 > 16; summed otherwise)."""
        if self.sigma2 > 16:
            return float(self.sigma2)
        x = np.arange(-200, 201, dtype=float)
        w = np.exp(-x * x / float(2 * self.sigma2))
        return float(np.sum(x * x * w) / np.sum(w))

    def _draw(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.int64)
        filled = 0
        while filled < n:
            want = n - filled
            y = self._laplace._draw(max(64, int(want * 1.35)))  # 1/0.76 candidates per sample, and a margin
            a = np.abs(y).astype(np.float64)
            p = np.exp(-((a - self._center_f) ** 2) * self._inv_two_sigma2)
            v = (self.rng.words(y.size) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53  # U in [v, v + 2**-53)
            accept = v + 2.0 ** -53 <= p - ETA
            unsure = np.flatnonzero(~accept & (v < p + ETA))
            for i in unsure:
                gamma = (abs(int(y[i])) - self._center) ** 2 / (2 * self.sigma2)
                accept[i] = gamma == 0 or uniform_below(exp_neg(gamma), int(v[i] * 2.0 ** 53), 53, self.rng)
            kept = y[accept][:want]
            out[filled:filled + kept.size] = kept
            filled += kept.size
        return out


@functools.lru_cache(maxsize=32)
def _laplace_tables(scale: Fraction, bits: int):
    """The block size m and the exact tables of a discrete Laplace (shared by samplers of the same scale)."""
    inv = 1 / scale
    digits: list[tuple[int, int]] = []  # (weight, radix)
    weight = 1
    while weight * RADIX < scale:
        digits.append((weight, RADIX))
        weight *= RADIX
    last = math.ceil(scale / weight)
    if last > 1:
        digits.append((weight, last))
    block = math.prod(r for _, r in digits)  # m >= scale
    q_m = math.exp(-float(block * inv))
    tail = max(TAIL, 2.0 ** (8 - bits))  # short words (tests) need distinct thresholds at their width
    first = _count_until_tail(lambda k: 2 * math.exp(-float(inv)) / (1 + math.exp(-float(inv))) * q_m ** (k - 1),
                              tail)
    # P(Z >= k): Z = 0 means X = 0, else |X| = 1 + m*(Z-1) + b
    zero_or_block = InverseCDF([_laplace_top(inv, block, k) for k in range(1, first + 1)], bits=bits)
    geometric = InverseCDF([exp_neg(inv * block * k)
                            for k in range(1, _count_until_tail(lambda k: q_m ** k, tail) + 1)], bits=bits)
    tables = [(w, InverseCDF([_truncated(inv * w, r, b) for b in range(1, r)], bits=bits)) for w, r in digits]
    return block, zero_or_block, geometric, tables


def _count_until_tail(threshold, tail: float) -> int:
    """How many thresholds k = 1, 2, ... to tabulate: up to the first below `tail` (at least one, at most 64)."""
    k = 1
    while k < 64 and threshold(k) >= tail:
        k += 1
    return k


def _laplace_top(inv: Fraction, block: int, k: int):
    """``P(Z >= k) = 2q/(1+q) * q**(m(k-1))`` with ``q = exp(-inv)``."""
    def value():
        q = (-dec(inv)).exp()
        return 2 * (-dec(inv * (1 + block * (k - 1)))).exp() / (1 + q)
    return value


def _truncated(rate: Fraction, radix: int, b: int):
    """``P(d >= b) = (r**b - r**radix) / (1 - r**radix)`` for the truncated geometric with ``r = exp(-rate)``."""
    def value():
        r_all = (-dec(rate * radix)).exp()
        return ((-dec(rate * b)).exp() - r_all) / (1 - r_all)
    return value
