"""Frequency warping of WORLD spectra (VTLN-style piecewise-linear) and spectral tilt, precomputed once.

A warp is a pair of arrays (left bin index, right-bin weight) over the output bins, so applying it to
every frame of a spectrogram is one vectorised gather: ``S[:, i] * (1 - w) + S[:, i + 1] * w``.

One scale for all formants keeps their ratios (a keyed two-slope warp was tried: docs/experiments.md).
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError

BREAK_FRACTION = 0.85  # of the Nyquist frequency: where the linear part ends and the map bends to fixed ends


def vtln_source_frequencies(n_bins: int, *, sr: float, scale: float) -> np.ndarray:
    """For each output bin, the source frequency (Hz) it takes its value from.

    Output frequency ``f`` below the break point reads source frequency ``f / scale``, so formants move
    by the factor `scale`; above it the map is linear up to Nyquist, which maps to itself.

    Parameters
    ----------
    n_bins : int
        Bins from 0 Hz to Nyquist inclusive (``fft_size // 2 + 1``).
    sr : float
        Sample rate in Hz.
    scale : float
        Formant scale factor, positive (1.0 is identity).

    Returns
    -------
    np.ndarray, shape (n_bins,)
    """
    if not scale > 0:
        raise UsageError(f"formant scale must be positive, got {scale}")
    nyquist = sr / 2.0
    f_out = np.linspace(0.0, nyquist, n_bins)
    f_break = BREAK_FRACTION * nyquist * min(1.0, scale)  # the break's source frequency stays below Nyquist
    f_src_break = f_break / scale
    upper = f_src_break + (f_out - f_break) * (nyquist - f_src_break) / (nyquist - f_break)
    return np.where(f_out <= f_break, f_out / scale, upper)


def vtln_warp(n_bins: int, *, sr: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The gather (left index, right weight) that applies :func:`vtln_source_frequencies` to spectra."""
    pos = vtln_source_frequencies(n_bins, sr=sr, scale=scale) * (n_bins - 1) / (sr / 2.0)
    pos = np.clip(pos, 0.0, n_bins - 1.0)
    left = np.minimum(np.floor(pos).astype(np.intp), n_bins - 2)
    return left, pos - left


def apply_warp(spec: np.ndarray, warp: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Warp every frame of `spec`, shape (frames, bins), by linear interpolation along frequency."""
    left, weight = warp
    return spec[:, left] * (1.0 - weight) + spec[:, left + 1] * weight


def tilt_gains(n_bins: int, *, sr: float, db_per_octave: float, pivot_hz: float = 1000.0,
               floor_hz: float = 100.0) -> np.ndarray:
    """Power gains, shape (n_bins,), changing the spectral slope by `db_per_octave` around `pivot_hz`.

    Frequencies below `floor_hz` get the gain at `floor_hz`, so the slope cannot blow up near 0 Hz.
    """
    f = np.maximum(np.linspace(0.0, sr / 2.0, n_bins), floor_hz)
    return 10.0 ** (db_per_octave * np.log2(f / pivot_hz) / 10.0)
