"""Utility figures that need no recognizer: intonation kept (pitch-contour correlation) and duration kept."""

from __future__ import annotations

import numpy as np

from ..errors import ExitStatus, PrivspeechError
from .embeddings import mono

FRAME_MS = 10.0
MIN_VOICED_FRAMES = 20


def f0_contour(y: np.ndarray, *, sr: int) -> np.ndarray:
    """F0 every 10 ms from WORLD's DIO refined by StoneMask.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, channels)
    sr : int

    Returns
    -------
    np.ndarray, shape (frames,)
        Hz, 0 where unvoiced.
    """
    from ..voice.worldlib import pyworld

    x = mono(y, sr=sr).astype(np.float64)
    f0, times = pyworld.dio(x, sr, frame_period=FRAME_MS)
    return pyworld.stonemask(x, f0, times, sr)


def pitch_correlation(original: np.ndarray, anonymized: np.ndarray, *, sr: int) -> float:
    """Pearson correlation of log F0 over the 10 ms frames voiced in both signals.

    Parameters
    ----------
    original, anonymized : np.ndarray, shape (n,) or (n, channels)
        The same utterance before and after anonymization, at the same rate (frames are aligned by time).
    sr : int

    Returns
    -------
    float
        In [-1, 1]; NaN when fewer than 20 frames are voiced in both or either contour is flat.
    """
    a, b = f0_contour(original, sr=sr), f0_contour(anonymized, sr=sr)
    n = min(len(a), len(b))
    both = (a[:n] > 0) & (b[:n] > 0)
    if both.sum() < MIN_VOICED_FRAMES:
        return float("nan")
    la, lb = np.log(a[:n][both]), np.log(b[:n][both])
    if la.std() == 0 or lb.std() == 0:
        return float("nan")
    return float(np.corrcoef(la, lb)[0, 1])


def summarize(values: list[float]) -> dict[str, float | int | None]:
    """Mean over the finite values, with how many were used and skipped."""
    finite = [v for v in values if np.isfinite(v)]
    return {"mean": float(np.mean(finite)) if finite else None, "used": len(finite),
            "skipped": len(values) - len(finite)}


def duration_check(original_s: list[float], anonymized_s: list[float], *, tolerance_s: float) -> dict:
    """How far anonymized durations stray from the originals: max absolute difference and count over tolerance."""
    if len(original_s) != len(anonymized_s) or tolerance_s < 0:
        raise PrivspeechError("duration check needs paired durations and a non-negative tolerance",
                              status=ExitStatus.USAGE)
    diff = np.abs(np.asarray(anonymized_s, float) - np.asarray(original_s, float))
    return {"max_abs_diff_s": float(diff.max()) if len(diff) else 0.0,
            "mismatched": int((diff > tolerance_s).sum()), "tolerance_s": tolerance_s, "checked": len(diff)}
