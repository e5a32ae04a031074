"""1-D filters of float64 signals with the edges extended (scipy.ndimage's mode "nearest"), in numpy.

They do scipy.ndimage's arithmetic in its order, so they give its results bit for bit
(tests/test_voice_filters.py compares them): importing scipy.ndimage takes longer than a short conversion
(docs/experiments.md), and the voice modules need only these three.
"""

from __future__ import annotations

import numpy as np


def smooth(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """`x`, shape (n,), correlated with a symmetric kernel of odd length (``scipy.ndimage.correlate1d``).

    As scipy.ndimage does for symmetric kernels, each output sample is the centre tap's product plus the
    pairs ``(x[i - j] + x[i + j]) * kernel[c - j]`` added from the outermost pair inwards.
    """
    r = kernel.shape[0] // 2
    n = x.shape[0]
    padded = np.pad(x, r, mode="edge")
    out = padded[r : r + n] * kernel[r]
    for j in range(r, 0, -1):
        out += (padded[r - j : r - j + n] + padded[r + j : r + j + n]) * kernel[r - j]
    return out


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """`x`, shape (n,), smoothed by a Gaussian of `sigma` samples cut at 4 sigma
    (``scipy.ndimage.gaussian_filter1d``)."""
    radius = int(4.0 * float(sigma) + 0.5)
    t = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * t**2)
    return smooth(x, weights / weights.sum())


def running_min(x: np.ndarray, size: int) -> np.ndarray:
    """The minimum of each window of odd `size` centred on each sample of `x`, shape (n,)
    (``scipy.ndimage.minimum_filter1d``).

    In O(n): the padded signal is cut into blocks of `size`, and each window, which spans the end of one block
    and the start of the next, is the smaller of the suffix minimum of the one and the prefix minimum of the other.
    """
    r = size // 2
    n = x.shape[0]
    blocks = np.pad(x, (r, r + (-(n + 2 * r)) % size), mode="edge").reshape(-1, size)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:n], prefix[size - 1 : size - 1 + n])
