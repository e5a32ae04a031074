"""Utility figures that need no recognizer: intonation kept (pitch contours compared), duration kept, and the
statistics of per-utterance word disagreement."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UsageError
from .embeddings import mono

FRAME_MS = 10.0
MIN_VOICED_FRAMES = 20
GROSS_ERROR = 0.2  # relative departure from the fitted mapping that makes a frame a gross F0 error
FIT_FRAMES = 1000  # the robust fit's slope is taken over at most this many evenly spaced frames
F0_METHOD = "harvest"


def f0_contour(y: np.ndarray, *, sr: int) -> np.ndarray:
    """F0 every 10 ms from WORLD's harvest (robust to noise and channel, unlike dio, whose own errors on degraded
    speech would count against the anonymization).

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
    f0, _ = pyworld.harvest(x, sr, frame_period=FRAME_MS)
    return f0


@dataclass(frozen=True)
class PitchAgreement:
    """How one output's F0 contour follows its input's, over the frames voiced in both.

    Attributes
    ----------
    correlation : float
        Pearson correlation of log F0; NaN when fewer than 20 frames are voiced in both or a contour is flat.
    correlation_without_gross : float
        The same over the frames that are not gross errors (NaN under the same conditions).
    gross_errors : int
        Frames whose output F0 departs by more than 20 % from the fitted mapping (see :func:`compare_contours`).
    frames : int
        Frames voiced in both; 0 when there are fewer than 20.
    """

    correlation: float
    correlation_without_gross: float
    gross_errors: int
    frames: int


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < MIN_VOICED_FRAMES or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def compare_contours(source: np.ndarray, output: np.ndarray) -> PitchAgreement:
    """Compare two F0 contours (Hz, 0 where unvoiced, the same frame rate, aligned from the first frame).

    Over the frames voiced in both, output log F0 is fitted as a straight line of input log F0, robustly: the
    slope is the Theil-Sen estimate (the median of the slopes between all pairs of frames, taken over at most
    1000 frames evenly spaced in time, pairs with equal input F0 left out) and the intercept the median of
    ``log F0_out - slope * log F0_in`` over every frame. The line is the conversion's own mapping (a linear map
    in log F0 for WORLD, the identity for resynthesis), so a frame is a gross error when its output F0 differs
    from the line's prediction ``F0_fit`` by more than 20 % of it: ``|F0_out - F0_fit| > 0.2 * F0_fit``, as in
    the gross pitch error of F0 trackers (an octave jump, or voicing given to noise, in either signal).
    """
    n = min(len(source), len(output))
    both = (source[:n] > 0) & (output[:n] > 0)
    if both.sum() < MIN_VOICED_FRAMES:
        return PitchAgreement(float("nan"), float("nan"), 0, 0)
    la, lb = np.log(source[:n][both]), np.log(output[:n][both])
    slope = _theil_sen_slope(la, lb)
    intercept = float(np.median(lb - slope * la))
    fitted = np.exp(intercept + slope * la)
    gross = np.abs(np.exp(lb) - fitted) > GROSS_ERROR * fitted
    return PitchAgreement(_pearson(la, lb), _pearson(la[~gross], lb[~gross]), int(gross.sum()), len(la))


def _theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    step = max(1, math.ceil(len(x) / FIT_FRAMES))
    xs, ys = x[::step], y[::step]
    i, j = np.triu_indices(len(xs), 1)
    dx = xs[j] - xs[i]
    keep = dx != 0
    return float(np.median((ys[j] - ys[i])[keep] / dx[keep])) if keep.any() else 1.0


def pitch_agreement(original: np.ndarray, anonymized: np.ndarray, *, sr: int) -> PitchAgreement:
    """:func:`compare_contours` of the two signals' harvest contours.

    Parameters
    ----------
    original, anonymized : np.ndarray, shape (n,) or (n, channels)
        The same utterance before and after anonymization, at the same rate (frames are aligned by time).
    sr : int
    """
    return compare_contours(f0_contour(original, sr=sr), f0_contour(anonymized, sr=sr))


def summarize_pitch(values: Sequence[PitchAgreement]) -> dict[str, float | int | str | None]:
    """Means of the two correlations over the utterances where they are defined, and the gross-error rate over
    all their frames voiced in both (utterances with fewer than 20 such frames are skipped)."""
    used = [v for v in values if v.frames]
    frames = sum(v.frames for v in used)

    def mean(name):
        finite = [getattr(v, name) for v in used if np.isfinite(getattr(v, name))]
        return float(np.mean(finite)) if finite else None

    return {"f0_method": F0_METHOD, "correlation": mean("correlation"),
            "correlation_without_gross": mean("correlation_without_gross"),
            "gross_error_rate": sum(v.gross_errors for v in used) / frames if frames else None,
            "used": len(used), "skipped": len(values) - len(used)}


def summarize_disagreement(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Per-utterance word disagreement capped at 1 (100 %): its mean and median, and the share of utterances
    above 0.5; None values (an original transcript with no words) are skipped."""
    capped = np.minimum([v for v in values if v is not None], 1.0)
    if not capped.size:
        return {"mean": None, "median": None, "over_half": None, "used": 0, "skipped": len(values)}
    return {"mean": float(capped.mean()), "median": float(np.median(capped)),
            "over_half": float((capped > 0.5).mean()), "used": int(capped.size), "skipped": len(values) - capped.size}


def duration_check(original_s: list[float], anonymized_s: list[float], *, tolerance_s: float) -> dict:
    """How far anonymized durations stray from the originals: max absolute difference and count over tolerance."""
    if len(original_s) != len(anonymized_s) or tolerance_s < 0:
        raise UsageError("duration check needs paired durations and a non-negative tolerance")
    diff = np.abs(np.asarray(anonymized_s, float) - np.asarray(original_s, float))
    return {"max_abs_diff_s": float(diff.max()) if len(diff) else 0.0,
            "mismatched": int((diff > tolerance_s).sum()), "tolerance_s": tolerance_s, "checked": len(diff)}
