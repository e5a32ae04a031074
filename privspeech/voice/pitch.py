"""F0 by short-term autocorrelation with a Viterbi path over candidates, after Boersma (1993), "Accurate short-term
analysis of the fundamental frequency and the harmonics-to-noise ratio of a sampled sound" (the method of Praat's
"To Pitch (ac)", with its default settings).

The signal is first resampled to 16 kHz (by default) when faster. Each frame (a Hann window of three periods of the floor,
centred on the frame's time) gives voiced candidates at the local maxima of its normalized autocorrelation, divided
by the window's own, that pass half the voicing threshold, with strength ``r - octave_cost * log2(ceiling * lag)``;
and one unvoiced candidate whose strength grows as the frame gets quieter than the loudest sample of the signal.
The path maximizes the summed strengths minus the transition costs: ``octave_jump_cost * |log2(f1 / f2)|`` between
voiced frames and ``voiced_unvoiced_cost`` at each voicing change (both per 10 ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.signal

from ..errors import ExitStatus, PrivspeechError


BLOCK_FRAMES = 256  # frames analysed at once (bounds the memory of long segments)


@dataclass(frozen=True)
class AutocorrelationSettings:
    """Search range (Hz), candidates per frame and the path costs (Praat's defaults for "To Pitch (ac)"), and the
    highest analysis rate (Hz): faster signals are resampled to it first (8000 halves the cost)."""

    floor: float = 75.0
    ceiling: float = 600.0
    candidates: int = 15
    silence_threshold: float = 0.03
    voicing_threshold: float = 0.45
    octave_cost: float = 0.01
    octave_jump_cost: float = 0.35
    voiced_unvoiced_cost: float = 0.14
    max_rate: int = 16000

    def __post_init__(self):
        if not 20.0 <= self.floor < self.ceiling <= 2000.0:
            raise _usage(f"the F0 search range must satisfy 20 <= floor < ceiling <= 2000 Hz, got {self.floor} to "
                         f"{self.ceiling}")
        if not 4 * self.ceiling <= self.max_rate <= 192000:
            raise _usage(f"max_rate must be between 4 times the ceiling and 192000 Hz, got {self.max_rate}")
        if self.candidates < 2:
            raise _usage(f"candidates must be at least 2, got {self.candidates}")
        costs = (self.silence_threshold, self.voicing_threshold, self.octave_cost, self.octave_jump_cost,
                 self.voiced_unvoiced_cost)
        if not all(0.0 <= c <= 10.0 for c in costs):
            raise _usage(f"thresholds and costs must be between 0 and 10, got {costs}")


def _usage(message: str) -> PrivspeechError:
    return PrivspeechError(message, status=ExitStatus.USAGE)


def autocorrelation_f0(x: np.ndarray, *, sr: int, frame_period: float,
                       settings: AutocorrelationSettings = AutocorrelationSettings()) -> np.ndarray:
    """F0 in Hz (0 where unvoiced) of a mono float64 signal, shape (n,), at the frame times
    ``k * frame_period`` ms (WORLD's grid): shape (int(1000 * n / sr / frame_period) + 1,)."""
    if x.ndim != 1:
        raise _usage(f"expected a mono signal of shape (n,), got shape {x.shape}")
    if not (sr > 0 and frame_period > 0):
        raise _usage(f"sample rate and frame period must be positive, got {sr} Hz and {frame_period} ms")
    if sr < 4 * settings.ceiling:
        raise _usage(f"a sample rate of {sr} Hz is too low for an F0 ceiling of {settings.ceiling} Hz "
                     f"(at least {4 * settings.ceiling:g} Hz)")
    n_frames = int(1000.0 * len(x) / sr / frame_period) + 1
    if sr > settings.max_rate:
        common = math.gcd(int(sr), settings.max_rate)
        x = scipy.signal.resample_poly(x, settings.max_rate // common, int(sr) // common)
        sr = settings.max_rate
    hop = frame_period * sr / 1000.0
    width = int(round(3.0 * sr / settings.floor)) | 1  # odd, so the window is centred on its frame's time
    half = width // 2
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + int(math.ceil(hop)) + 1)])
    starts = np.round(np.arange(n_frames) * hop).astype(np.int64)
    analysis = _Frames(sr, width, settings)
    period = int(sr / settings.floor)
    centre = slice(max(0, half - period // 2), half + period // 2 + 1)  # where the frame's loudness is read
    f0 = np.zeros((n_frames, analysis.k + 1))  # candidate 0 is unvoiced
    strength = np.empty((n_frames, analysis.k + 1))
    local_peak = np.empty(n_frames)
    for first in range(0, n_frames, BLOCK_FRAMES):
        block = slice(first, min(first + BLOCK_FRAMES, n_frames))
        frames = padded[starts[block, None] + np.arange(width)]
        frames -= frames.mean(axis=1, keepdims=True)
        local_peak[block] = np.abs(frames[:, centre]).max(axis=1)
        f0[block, 1:], strength[block, 1:] = analysis.candidates(frames)
    global_peak = float(np.abs(x - x.mean()).max()) if len(x) else 0.0
    loudness = local_peak / global_peak if global_peak > 0 else np.zeros(n_frames)
    strength[:, 0] = settings.voicing_threshold + np.maximum(
        0.0, 2.0 - loudness / (settings.silence_threshold / (1.0 + settings.voicing_threshold)))
    return _viterbi(f0, strength, settings, step_correction=10.0 / frame_period)


class _Frames:
    """The per-frame part: normalized autocorrelation and its strongest local maxima."""

    def __init__(self, sr: int, width: int, settings: AutocorrelationSettings):
        self.sr, self.settings = sr, settings
        max_lag = min(int(math.ceil(sr / settings.floor)), width - 2)
        self.lags = np.arange(max(2, int(math.floor(sr / settings.ceiling))), max_lag + 1)
        self.k = min(settings.candidates - 1, len(self.lags))
        self.nfft = 1 << int(math.ceil(math.log2(width + max_lag + 1)))
        self.window = scipy.signal.get_window("hann", width + 2, fftbins=False)[1:-1]  # no zero end points
        window_ac = np.fft.irfft(np.abs(np.fft.rfft(self.window, self.nfft)) ** 2, self.nfft)[: max_lag + 2]
        self.window_ac = window_ac / window_ac[0]

    def candidates(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F0, strength), each (frames, k): the k strongest local maxima, F0 0 and strength -inf where fewer."""
        spectrum = np.fft.rfft(frames * self.window, self.nfft)
        ac = np.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, self.nfft)[:, : len(self.window_ac)]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = ac / ac[:, :1] / self.window_ac
        r[~np.isfinite(r)] = 0.0
        lags = self.lags
        mid, left, right = r[:, lags], r[:, lags - 1], r[:, lags + 1]
        curve = left - 2.0 * mid + right
        with np.errstate(invalid="ignore", divide="ignore"):
            shift = np.clip(np.where(curve < 0.0, 0.5 * (left - right) / curve, 0.0), -0.5, 0.5)
        value = mid - 0.25 * (left - right) * shift  # the parabola's top through the three points
        np.divide(1.0, value, out=value, where=value > 1.0)  # Praat's guard for over-corrected short windows
        lag = lags + shift
        peak = (mid > left) & (mid >= right) & (mid > 0.5 * self.settings.voicing_threshold)
        strength = np.where(peak, value - self.settings.octave_cost * np.log2(self.settings.ceiling * lag / self.sr),
                            -np.inf)
        best = np.argpartition(-strength, self.k - 1, axis=1)[:, : self.k]
        strength = np.take_along_axis(strength, best, axis=1)
        f0 = np.where(np.isfinite(strength), self.sr / np.take_along_axis(lag, best, axis=1), 0.0)
        return f0, strength


def _viterbi(f0: np.ndarray, strength: np.ndarray, settings: AutocorrelationSettings, *,
             step_correction: float) -> np.ndarray:
    """The F0 of the best path through the candidates (frames, k): summed strength minus transition costs."""
    # columns sorted by strength, and those no frame fills (strength -inf everywhere) dropped
    order = np.argsort(-strength, axis=1, kind="stable")
    f0, strength = np.take_along_axis(f0, order, axis=1), np.take_along_axis(strength, order, axis=1)
    k = max(1, int(np.isfinite(strength).sum(axis=1).max()))
    f0, strength = f0[:, :k], strength[:, :k]
    n = len(f0)
    voiced = f0 > 0
    logs = np.log2(np.where(voiced, f0, 1.0))
    jump = settings.octave_jump_cost * step_correction * np.abs(logs[:-1, :, None] - logs[1:, None, :])
    before, after = voiced[:-1, :, None], voiced[1:, None, :]
    cost = np.where(before != after, settings.voiced_unvoiced_cost * step_correction, np.where(after, jump, 0.0))
    score = strength[0].copy()
    back = np.zeros((n, k), dtype=np.int64)
    columns = np.arange(k)
    for i in range(1, n):
        total = score[:, None] - cost[i - 1]
        back[i] = best = total.argmax(axis=0)
        score = total[best, columns] + strength[i]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return f0[np.arange(n), path]
