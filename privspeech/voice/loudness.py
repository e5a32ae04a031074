"""Loudness over active speech (RMS of the frames within 40 dB of the loudest, never a peak), and a peak limiter."""

from __future__ import annotations

import numpy as np

from .filters import running_min, smooth

FRAME_SECONDS = 0.02
ACTIVE_RANGE_DB = 40.0
SILENCE_RMS = 1e-5  # about -100 dBFS: quieter frames never count as speech
MAX_GAIN_DB = 30.0


def active_frames(x: np.ndarray, *, sr: int) -> np.ndarray:
    """Boolean mask over the 20 ms frames of mono `x`, shape (n,): True where speech is active.

    Returns
    -------
    np.ndarray, shape (ceil(n / frame),)
    """
    rms = frame_rms(x, sr=sr)
    if rms.size == 0:
        return np.zeros(0, dtype=bool)
    floor = max(rms.max() * 10.0 ** (-ACTIVE_RANGE_DB / 20.0), SILENCE_RMS)
    return rms >= floor


def frame_rms(x: np.ndarray, *, sr: int) -> np.ndarray:
    """RMS of each 20 ms frame of mono `x`, shape (n,) (the last frame zero-padded)."""
    size = max(1, int(FRAME_SECONDS * sr))
    count = -(-x.shape[0] // size)
    padded = np.zeros(count * size)
    padded[: x.shape[0]] = x
    return np.sqrt(np.mean(np.square(padded.reshape(count, size)), axis=1))


def match_gain(source: np.ndarray, converted: np.ndarray, *, sr: int) -> float:
    """The gain that gives `converted` the RMS of `source` over the frames where `source` is active.

    Both are mono, shape (n,). Silence in gives 0 (the output is silence too); the gain is capped at
    +30 dB so near-silent synthesis noise is never blown up.
    """
    rms_in = active_rms(source, sr=sr)
    rms_out = active_rms(converted, sr=sr, mask_from=source)
    if rms_in <= 0.0 or rms_out <= 0.0:
        return 0.0
    return float(min(rms_in / rms_out, 10.0 ** (MAX_GAIN_DB / 20.0)))


def active_rms(x: np.ndarray, *, sr: int, mask_from: np.ndarray | None = None) -> float:
    """RMS of mono `x` over the active frames of `mask_from` (default: of `x` itself); 0 for silence."""
    ref = x if mask_from is None else mask_from
    mask = active_frames(ref, sr=sr)
    if not mask.any():
        return 0.0
    size = max(1, int(FRAME_SECONDS * sr))
    sample_mask = np.repeat(mask, size)[: ref.shape[0]]
    return float(np.sqrt(np.mean(np.square(x[sample_mask]))))


def limit_peaks(y: np.ndarray, *, sr: int, ceiling: float = 1.0, window_seconds: float = 0.005) -> np.ndarray:
    """Keep mono `y`, shape (n,), within +-`ceiling` by a smooth look-ahead gain instead of clipping.

    The per-sample gain needed (``ceiling / |y|``, at most 1) goes through a running minimum and then a
    Hann smoother no wider than that minimum, so the gain ramps down over a few ms around each peak and
    never exceeds what the peak needs. Samples far from any peak are untouched.
    """
    if y.size == 0 or np.abs(y).max() <= ceiling:
        return y
    width = max(3, int(window_seconds * sr)) | 1
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(y), 1e-12))
    floor = running_min(need, 2 * width + 1)
    kernel = np.hanning(width + 2)[1:-1]
    gain = smooth(floor, kernel / kernel.sum())
    gain[gain > 1.0 - 1e-9] = 1.0  # the smoother's rounding must not touch samples far from peaks
    return np.clip(y * gain, -ceiling, ceiling)  # the clip only absorbs rounding
