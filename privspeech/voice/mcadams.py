"""The VoicePrivacy Challenge 2020 B2 baseline: LPC pole angles raised to the McAdams coefficient.

Follows the reference ``anonymise_dir_mcadams.py`` (Patino et al. 2020, "Speaker anonymisation using
the McAdams coefficient"): 20 ms frames with a 10 ms hop, a square-root Hann window normalised for
perfect reconstruction, used for analysis and synthesis; Burg LPC of order 20 (``librosa.lpc``);
every complex pole's angle phi becomes ``phi ** alpha`` (clipped to [0, pi]), its conjugate follows,
real poles are kept; the LPC residual is re-filtered through the new all-pole filter; overlap-add.

Differences from the reference, all fixes: frames are vectorised (same arithmetic); the signal is
zero-padded so the first and last samples get full overlap-add coverage (the reference skips
frame 0 and drops the tail); poles are paired by the sign of their imaginary part (the reference
takes every other complex root, which can pick the negative-angle member of a pair); the output is
loudness-matched by the caller instead of peak-normalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import librosa
import numpy as np
import scipy.signal

from ..errors import UsageError

VERSION = "mcadams-1"
WIN_MS = 20.0
HOP_MS = 10.0
LPC_ORDER = 20
EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class McAdamsSettings:
    """The B2 baseline has no settings: frame, hop, order and the alpha range are fixed."""


class McAdamsVoice:
    """The McAdams conversion of one channel with a keyed coefficient."""

    def __init__(self, alpha: float, *, sr: int):
        self.alpha = alpha
        self.sr = sr
        self.grid = hop_samples(sr)

    def convert(self, x: np.ndarray, core: slice) -> np.ndarray:
        return mcadams(x, sr=self.sr, alpha=self.alpha)


def hop_samples(sr: int) -> int:
    """The frame hop in samples at `sr`."""
    return int(math.floor(HOP_MS * 0.001 * sr))


def mcadams(y: np.ndarray, *, sr: int, alpha: float) -> np.ndarray:
    """Shift formants by raising LPC pole angles to the power `alpha`.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono signal, float.
    sr : int
        Sample rate in Hz.
    alpha : float
        McAdams coefficient in (0, 1.5]; the baseline draws it from [0.5, 0.9].

    Returns
    -------
    np.ndarray, shape (n,), float64
        The converted signal, not level-matched.
    """
    if not 0.0 < alpha <= 1.5:
        raise UsageError(f"McAdams coefficient must be in (0, 1.5], got {alpha}")
    n = y.shape[0]
    winlen = int(math.floor(WIN_MS * 0.001 * sr))
    shift = hop_samples(sr)
    hann = np.hanning(winlen)
    win = np.sqrt(hann / (hann.sum() / shift))
    padded = np.concatenate([np.zeros(winlen), np.asarray(y, dtype=np.float64) + EPS, np.zeros(winlen + shift)])
    count = 1 + (padded.shape[0] - winlen) // shift
    frames = np.lib.stride_tricks.sliding_window_view(padded, winlen)[::shift][:count] * win

    a = librosa.lpc(frames + EPS, order=LPC_ORDER, axis=-1)
    a_new = _raise_pole_angles(a, alpha)
    residual = _fir(a, frames)
    out = np.zeros(padded.shape[0])
    for m in range(count):
        rec = scipy.signal.lfilter([1.0], a_new[m], residual[m]) * win
        out[m * shift : m * shift + winlen] += rec
    return out[winlen : winlen + n]


def _raise_pole_angles(a: np.ndarray, alpha: float) -> np.ndarray:
    """New all-pole coefficients, shape (frames, order + 1), with complex pole angles raised to `alpha`."""
    order = a.shape[1] - 1
    companion = np.zeros((a.shape[0], order, order))
    companion[:, 0, :] = -a[:, 1:] / a[:, :1]
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    poles = np.linalg.eigvals(companion)
    upper = poles.imag > 0
    lower = poles.imag < 0
    angle = np.abs(np.angle(poles))
    new_angle = np.clip(angle ** alpha, 0.0, np.pi)
    moved = np.abs(poles) * np.exp(1j * new_angle)
    poles = np.where(upper, moved, np.where(lower, np.conj(moved), poles))
    coeffs = np.zeros((a.shape[0], order + 1), dtype=complex)
    coeffs[:, 0] = 1.0
    for k in range(order):  # np.poly, one root at a time for all frames
        coeffs[:, 1 : k + 2] = coeffs[:, 1 : k + 2] - poles[:, k : k + 1] * coeffs[:, : k + 1]
    return coeffs.real


def _fir(a: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """``lfilter(a[m], 1, frames[m])`` for every frame m at once (the LPC residual)."""
    out = np.zeros_like(frames)
    for k in range(a.shape[1]):
        out[:, k:] += a[:, k : k + 1] * frames[:, : frames.shape[1] - k]
    return out
