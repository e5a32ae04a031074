"""The lattice samplers draw exactly the stated distributions, from the secure generator, in bounded memory."""

from __future__ import annotations

import decimal
import math
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from privspeech.dp import exact
from privspeech.dp.exact import exp_neg, floor_scaled, uniform_below
from privspeech.dp.rng import SecureRandom, resolve
from privspeech.dp.samplers import CHUNK, DiscreteGaussian, DiscreteLaplace
from privspeech.errors import ExitStatus, PrivspeechError


def laplace_pmf(x: np.ndarray, scale: float) -> np.ndarray:
    q = math.exp(-1 / scale)
    return (1 - q) / (1 + q) * q ** np.abs(x)


def gaussian_pmf(x: np.ndarray, sigma2: float) -> np.ndarray:
    support = np.arange(-int(40 * math.sqrt(sigma2)) - 40, int(40 * math.sqrt(sigma2)) + 41)
    norm = np.exp(-support.astype(float) ** 2 / (2 * sigma2)).sum()
    return np.exp(-np.asarray(x, dtype=float) ** 2 / (2 * sigma2)) / norm


def chi_square_pvalue(draws: np.ndarray, pmf, half_width: int) -> float:
    """Chi-square of integer draws against `pmf`: bins of single values or equal-probability runs of values
    over [-half_width, half_width], and one bin per tail beyond it (both tails tested)."""
    values = np.arange(-half_width, half_width + 1)
    probs = pmf(values)
    n = draws.size
    # group consecutive values into bins of expected count >= 50
    edges, acc = [values[0]], 0.0
    for v, p in zip(values, probs):
        acc += p
        if acc * n >= 50:
            edges.append(v + 1)
            acc = 0.0
    edges[-1] = values[-1] + 1
    edges = np.array(edges)
    inside = draws[(draws >= edges[0]) & (draws < edges[-1])]
    observed = np.bincount(np.searchsorted(edges, inside, side="right") - 1, minlength=edges.size - 1)
    expected = np.array([probs[(values >= a) & (values < b)].sum() for a, b in zip(edges[:-1], edges[1:])]) * n
    low_tail, high_tail = (draws < edges[0]).sum(), (draws >= edges[-1]).sum()
    tail = (1 - probs.sum()) / 2 * n
    assert tail >= 20, "choose half_width so that each tail holds at least 20 expected draws"
    observed = np.concatenate([[low_tail], observed, [high_tail]])
    expected = np.concatenate([[tail], expected, [tail]])
    expected *= observed.sum() / expected.sum()
    return stats.chisquare(observed, expected).pvalue


@pytest.mark.parametrize("scale", [0.45, 3.0, 57.3, 1234.5])
def test_discrete_laplace_matches_exact_pmf(scale):
    draws = DiscreteLaplace(scale, rng=SecureRandom(f"laplace-{scale}")).sample(2_000_000)
    half_width = int(scale * math.log(2_000_000 / 100)) if scale > 1 else 2
    assert chi_square_pvalue(draws, lambda x: laplace_pmf(x, scale), half_width) > 1e-4
    assert draws.min() < -half_width and draws.max() > half_width


@pytest.mark.parametrize("sigma2", [0.4, 2.5, 150.0, pytest.param(12345.6, marks=pytest.mark.slow)])
def test_discrete_gaussian_matches_exact_pmf(sigma2):
    draws = DiscreteGaussian(sigma2, rng=SecureRandom(f"gauss-{sigma2}")).sample(2_000_000)
    sigma = math.sqrt(sigma2)
    half_width = max(1, int(sigma * 3.0))
    assert chi_square_pvalue(draws, lambda x: gaussian_pmf(x, sigma2), half_width) > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("sampler", [lambda rng: DiscreteLaplace(Fraction(5, 2), rng=rng, _bits=10),
                                     lambda rng: DiscreteLaplace(300, rng=rng, _bits=12),
                                     lambda rng: DiscreteGaussian(3, rng=rng, _bits=10)])
def test_exact_path_on_ties_keeps_the_distribution(sampler, monkeypatch):
    """With 10-12-bit words, ties between a draw and a threshold are frequent: the exact path must be right."""
    calls = []
    original = exact.uniform_below

    def counted(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(exact, "uniform_below", counted)
    s = sampler(SecureRandom("ties"))
    draws = s.sample(300_000)
    if isinstance(s, DiscreteLaplace):
        pmf, half = (lambda x: laplace_pmf(x, float(s.scale))), int(float(s.scale) * 7)
    else:
        pmf, half = (lambda x: gaussian_pmf(x, float(s.sigma2))), 5
    assert len(calls) > 1000
    assert chi_square_pvalue(draws, pmf, half) > 1e-4


@pytest.mark.parametrize("r", [pytest.param(Fraction(1, 3), marks=pytest.mark.slow),
                               pytest.param(Fraction(7, 2), marks=pytest.mark.slow), Fraction(1, 10**6)])
def test_uniform_below_is_exact_after_a_tie(r):
    """Given a tied 8-bit prefix, U < c must hold with probability frac(c * 2**8), read from further bits."""
    value = exp_neg(r)
    prefix = floor_scaled(value, 8)
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        p = float(value() * 256 - prefix)
    rng = SecureRandom(f"tie-{r}")
    hits = sum(uniform_below(value, prefix, 8, rng) for _ in range(20_000))
    assert stats.binomtest(hits, 20_000, p).pvalue > 1e-4
    assert uniform_below(value, prefix - 1, 8, rng) and not uniform_below(value, prefix + 1, 8, rng)


@pytest.mark.slow
def test_numpy_exp_is_within_the_gaussian_margin():
    """The Gaussian's float shortcut assumes |np.exp(-g) - exp(-g)| << 2**-40; check it against decimal."""
    g = np.concatenate([np.linspace(0, 60, 20_001), SecureRandom("exp").words(20_000) / 2.0**64 * 40])
    approx = np.exp(-g)
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        truth = np.array([float((-decimal.Decimal(float(x))).exp()) for x in g])
    assert np.max(np.abs(approx - truth)) < 2.0**-50


def test_default_generator_is_secure_and_seeding_is_flagged():
    laplace = DiscreteLaplace(10)
    assert laplace.rng.private and "os.urandom" in laplace.rng.description
    assert not np.array_equal(DiscreteLaplace(10).sample(64), DiscreteLaplace(10).sample(64))
    seeded = [DiscreteGaussian(9, rng=SecureRandom(7)).sample(1000) for _ in range(2)]
    assert np.array_equal(*seeded)
    assert not SecureRandom(7).private and "NOT PRIVATE" in SecureRandom(7).description
    with pytest.raises(PrivspeechError) as err:
        resolve(np.random.default_rng(0))
    assert err.value.status == ExitStatus.USAGE


@pytest.mark.parametrize("make", [lambda: DiscreteLaplace(1e5, rng=SecureRandom("memory")),
                                  lambda: DiscreteGaussian(1e6, rng=SecureRandom("memory"))])
def test_memory_is_bounded_by_the_chunk(make):
    def peak(chunks: int) -> int:
        sampler = make()
        tracemalloc.start()
        try:
            for part in sampler.chunks(chunks * CHUNK):
                assert part.size == CHUNK
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    few, many = peak(2), peak(40)
    assert many < 1.2 * few + 100_000  # twenty times the samples, the same memory
    assert many < 200 * CHUNK  # a few hundred bytes per sample of one chunk


@pytest.mark.parametrize("bad", [0, -1.5, float("nan"), float("inf"), True, "3", 10**13, 1e-9])
def test_laplace_rejects_bad_scales(bad):
    with pytest.raises(PrivspeechError) as err:
        DiscreteLaplace(bad)
    assert err.value.status == ExitStatus.USAGE


@pytest.mark.parametrize("bad", [0, -2, float("nan"), None, 1e30])
def test_gaussian_rejects_bad_variances(bad):
    with pytest.raises(PrivspeechError):
        DiscreteGaussian(bad)


@pytest.mark.parametrize("bad", [-1, 2.5, "10"])
def test_sample_rejects_bad_sizes(bad):
    with pytest.raises(ValueError):
        DiscreteLaplace(2).sample(bad)
