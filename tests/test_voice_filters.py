"""privspeech.voice.filters gives scipy.ndimage's results bit for bit, so dropping the import changed no output."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from privspeech.voice.filters import gaussian, running_min, smooth


def signals():
    rng = np.random.default_rng(26)
    for n in (1, 2, 7, 100, 1025, 4801):  # shorter and longer than the filters
        yield rng.normal(size=n) * 10.0 ** rng.uniform(-3, 3)
    yield np.minimum(1.0, 0.9 / np.maximum(np.abs(rng.normal(size=3000)), 1e-12))  # a limiter's gain curve


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.7, 41.5, 512.0])
def test_gaussian_is_scipys(sigma):
    for x in signals():
        assert np.array_equal(gaussian(x, sigma), scipy.ndimage.gaussian_filter1d(x, sigma, mode="nearest"))


@pytest.mark.parametrize("width", [3, 5, 81, 241])
def test_hann_smoothing_is_scipys_convolution(width):
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    for x in signals():
        assert np.array_equal(smooth(x, kernel), scipy.ndimage.convolve1d(x, kernel, mode="nearest"))


@pytest.mark.parametrize("size", [1, 3, 7, 483, 5001])
def test_running_min_is_scipys(size):
    for x in signals():
        assert np.array_equal(running_min(x, size), scipy.ndimage.minimum_filter1d(x, size, mode="nearest"))
