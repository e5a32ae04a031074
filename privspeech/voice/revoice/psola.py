"""Time-domain pitch-synchronous overlap-add (TD-PSOLA): a voice's own waveform cut into two-period grains at its
glottal pulses and laid out again at new periods and a new pace. No vocoder is involved, so the voice keeps its own
sound; suited to a clean voice whose F0 is known (revoice's synthetic one)."""

from __future__ import annotations

import functools

import numpy as np

UNVOICED_S = 0.005  # spacing of the grains where there is no pitch
SNAP = 0.15  # a voiced mark moves to the waveform's peak within this fraction of a period of where it is expected
MAX_RATIO = 4.0  # pitch moves by at most two octaves either way


def marks(x: np.ndarray, f0: np.ndarray, *, sr: int, frame_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The grain centres of `x` (samples) and the distance from each to the next (the last: its period) from its F0
    track `f0` (a frame every `frame_s` seconds, 0 where unvoiced): one per period where voiced, each on the
    waveform's largest peak near where the period before predicts it, and every :data:`UNVOICED_S` elsewhere."""
    at = []
    t, voiced_before, period = 0, False, UNVOICED_S * sr
    last = len(f0) - 1
    while t < x.size:
        hz = f0[min(last, int(round(t / (sr * frame_s))))]
        if hz > 0:
            period = sr / hz
            if voiced_before:
                reach = max(1, int(SNAP * period))
                lo, hi = max(0, t - reach), min(x.size, t + reach + 1)
            else:
                lo, hi = t, min(x.size, t + int(period) + 1)
            t = lo + int(np.argmax(x[lo:hi]))
        else:
            period = UNVOICED_S * sr
        at.append(t)
        voiced_before = hz > 0
        t = max(t + 1, int(round(t + period)))
    centres = np.asarray(at, dtype=np.int64)
    return centres, np.append(np.diff(centres), period).astype(np.float64)


def overlap_add(x: np.ndarray, at: np.ndarray, periods: np.ndarray, ratios: np.ndarray, *, start: int, stop: int,
                length: int) -> np.ndarray:
    """`x[start:stop]` laid out again over `length` samples (its time mapped linearly), the spacing of the grains
    divided by `ratios` (1 keeps the pitch, 2 raises it an octave; held within :data:`MAX_RATIO` either way), each
    grain scaled by 1/sqrt(ratio) so that the level stays about the same; with ratios of 1 and its own length,
    `x[start:stop]` itself."""
    ratios = np.clip(ratios, 1.0 / MAX_RATIO, MAX_RATIO)
    out = np.zeros(length)
    if at.size == 0 or length == 0:
        return out
    pace = (stop - start) / length
    i = max(0, int(np.searchsorted(at, start, side="right")) - 1)  # the grain at or before `start`
    t = (at[i] - start) / pace
    while t < length + periods[i]:
        i = _nearest(at, start + t * pace)
        half = max(1, int(round(periods[i])))
        lo, hi = at[i] - half, at[i] + half + 1
        grain = np.zeros(2 * half + 1)
        grain[max(0, -lo):grain.size - max(0, hi - x.size)] = x[max(0, lo):min(x.size, hi)]
        first = int(round(t)) - half
        a, b = max(0, first), min(length, first + 2 * half + 1)
        if a < b:
            out[a:b] += (grain * _hann(half))[a - first:b - first] / np.sqrt(ratios[i])
        t += periods[i] / ratios[i]
    return out


def _nearest(at: np.ndarray, t: float) -> int:
    """The index of the grain centre in `at` (sorted) nearest `t`."""
    i = int(np.searchsorted(at, t))
    return i - 1 if i == at.size or (i > 0 and t - at[i - 1] <= at[i] - t) else i


@functools.lru_cache(maxsize=1024)
def _hann(half: int) -> np.ndarray:
    """A Hann window of 2 * `half` + 1 samples; copies spaced `half` apart sum to 1."""
    return np.hanning(2 * half + 1)
