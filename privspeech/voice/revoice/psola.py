"""Time-domain pitch-synchronous overlap-add (TD-PSOLA): a voice's own waveform cut into two-period grains at its
glottal pulses and laid out again at new periods and a new pace. No vocoder is involved, so the voice keeps its own
sound; suited to a clean voice whose F0 is known (revoice's synthetic one)."""

from __future__ import annotations

import numpy as np

UNVOICED_S = 0.005  # spacing of the grains where there is no pitch
SNAP = 0.15  # a voiced mark moves to the waveform's peak within this fraction of a period of where it is expected


def marks(x: np.ndarray, f0: np.ndarray, *, sr: int, frame_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The grain centres of `x` (samples) and their periods (samples) from its F0 track `f0` (a frame every
    `frame_s` seconds, 0 where unvoiced): one per period where voiced, each on the waveform's largest peak near
    where the period before predicts it, and every :data:`UNVOICED_S` elsewhere."""
    at, periods = [], []
    t, voiced_before = 0, False
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
        periods.append(period)
        voiced_before = hz > 0
        t = max(t + 1, int(round(t + period)))
    return np.asarray(at, dtype=np.int64), np.asarray(periods, dtype=np.float64)


def overlap_add(x: np.ndarray, at: np.ndarray, periods: np.ndarray, ratios: np.ndarray, *, start: int, stop: int,
                length: int) -> np.ndarray:
    """`x[start:stop]` laid out again over `length` samples (its time mapped linearly), the period at each grain
    divided by its entry of `ratios` (1 keeps the pitch, 2 raises it an octave), levels kept."""
    out, weight = np.zeros(length), np.zeros(length)
    if at.size == 0 or length == 0:
        return out
    pace = (stop - start) / length
    t = 0.0
    while t < length:
        i = int(np.clip(np.searchsorted(at, start + t * pace), 1, at.size - 1))
        i -= int(abs(at[i - 1] - (start + t * pace)) <= abs(at[i] - (start + t * pace)))
        half = max(1, int(round(periods[i])))
        window = np.hanning(2 * half + 1)
        lo, hi = at[i] - half, at[i] + half + 1
        grain = np.zeros(2 * half + 1)
        grain[max(0, -lo):grain.size - max(0, hi - x.size)] = x[max(0, lo):min(x.size, hi)]
        centre = int(round(t))
        a, b = max(0, centre - half), min(length, centre + half + 1)
        out[a:b] += (grain * window)[a - (centre - half):b - (centre - half)]
        weight[a:b] += window[a - (centre - half):b - (centre - half)]
        t += periods[i] / ratios[i]
    return out / np.maximum(weight, 1.0)
