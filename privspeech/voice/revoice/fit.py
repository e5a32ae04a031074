"""Fitting synthetic phrases into the original's time line: phrases from recognised words, the synthetic voice
moved to the keyed pseudo-speaker and stretched to the phrase's span (WORLD), levels per phrase, comfort noise
everywhere else."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..targets import Target
from ..warp import apply_warp, vtln_warp
from .recognize import Word

PAUSE_S = 0.2  # a pause this long or longer ends a phrase
MAX_PHRASE_S = 5.0  # a longer phrase is cut at its longest gap between words (the voice's memory grows with length)
FRAME_MS = 5.0
EDGE_S = 0.01  # raised-cosine edges of each placed phrase
LEVEL_FRAME_S = 0.02
BACKGROUND_QUANTILE = 0.1  # the quietest tenth of a chunk's frames gives the comfort noise its level
TIMBRE_DB = 3.0


@dataclass(frozen=True)
class Phrase:
    """Words said between pauses of :data:`PAUSE_S` or more, from `start` to `end` seconds."""

    text: str
    start: float
    end: float


def phrases(words: list[Word]) -> list[Phrase]:
    """`words` grouped into phrases at pauses of :data:`PAUSE_S` or more, none longer than :data:`MAX_PHRASE_S`
    unless it is one word."""
    found: list[list[Word]] = []
    for word in words:
        if found and word.start - found[-1][-1].end < PAUSE_S - 1e-6:  # (times are floats)
            found[-1].append(word)
        else:
            found.append([word])
    return [Phrase(" ".join(w.text for w in group), group[0].start, group[-1].end)
            for whole in found for group in _short(whole)]


def _short(group: list[Word]) -> list[list[Word]]:
    """`group` cut at its longest gaps between words until no part is longer than :data:`MAX_PHRASE_S`."""
    if len(group) < 2 or group[-1].end - group[0].start <= MAX_PHRASE_S:
        return [group]
    cut = 1 + max(range(len(group) - 1), key=lambda i: group[i + 1].start - group[i].end)
    return _short(group[:cut]) + _short(group[cut:])


def trim(y: np.ndarray, *, sr: int, floor_db: float = -50.0) -> np.ndarray:
    """`y` without its leading and trailing silence (frames more than `floor_db` below its loudest)."""
    hop = max(1, int(sr * 0.01))
    frames = np.sqrt(np.convolve(y.astype(np.float64) ** 2, np.ones(hop) / hop, mode="same"))[::hop]
    loud = np.flatnonzero(frames > frames.max() * 10 ** (floor_db / 20)) if frames.size and frames.max() > 0 else []
    if len(loud) == 0:
        return y[:0]
    return y[max(0, (loud[0] - 3) * hop):min(y.size, (loud[-1] + 3) * hop)]  # 30 ms kept either side


def convert(y: np.ndarray, *, sr: int, length: int, target: Target) -> np.ndarray:
    """The synthetic phrase `y` (at `sr`) spoken by `target` and stretched to exactly `length` samples: WORLD
    analysis, frames mapped linearly onto the new length, the voice's own pitch contour moved to the target's mean
    and spread, formants scaled and its timbre tilted, then resynthesis."""
    from ..worldlib import pyworld

    x = np.ascontiguousarray(y, dtype=np.float64)
    f0, times = pyworld.dio(x, sr, frame_period=FRAME_MS, f0_floor=60.0, f0_ceil=400.0)
    f0 = pyworld.stonemask(x, f0, times, sr)
    sp = pyworld.cheaptrick(x, f0, times, sr)
    ap = pyworld.d4c(x, f0, times, sr)
    frames = max(2, int(round(length / sr * 1000.0 / FRAME_MS)) + 1)
    where = np.linspace(0, len(f0) - 1, frames)
    nearest = np.rint(where).astype(int)
    low = np.floor(where).astype(int)
    high = np.minimum(low + 1, len(f0) - 1)
    w = (where - low)[:, None]
    sp = sp[low] * (1 - w) + sp[high] * w
    ap = ap[low] * (1 - w) + ap[high] * w
    f0 = _move_pitch(f0[nearest], target)
    warp = vtln_warp(sp.shape[1], sr=sr, scale=target.formant_scale)
    sp = np.maximum(apply_warp(sp, warp), 1e-16) * _tilt(sp.shape[1], sr, target)
    ap = np.clip(apply_warp(ap, warp), 0.0, 1.0)
    out = pyworld.synthesize(f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr, frame_period=FRAME_MS)
    return _exact(out, length)


def _move_pitch(f0: np.ndarray, target: Target) -> np.ndarray:
    """The synthetic voice's own contour, in log F0, moved to the target's mean and spread (0 stays unvoiced)."""
    voiced = f0 > 0
    if voiced.sum() < 2:
        return f0
    logs = np.log(f0[voiced])
    spread = max(float(logs.std()), 1e-3)
    out = np.zeros_like(f0)
    out[voiced] = np.exp((logs - logs.mean()) / spread * target.f0_spread + math.log(target.f0_mean_hz))
    return out


def _tilt(bins: int, sr: int, target: Target) -> np.ndarray:
    """Power gains tilting the spectrum by the target's slope around 1 kHz."""
    f = np.linspace(0.0, sr / 2.0, bins)
    octaves = np.log2(np.maximum(f, 50.0) / 1000.0)
    return 10.0 ** (target.tilt_db_per_octave * octaves / 10.0)


def _exact(y: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length)
    out[:min(length, y.size)] = y[:length]
    return out


def place(out: np.ndarray, phrase: np.ndarray, start: int, *, sr: int) -> None:
    """Lay `phrase` into `out` at `start` over what is there, with raised-cosine edges."""
    edge = min(phrase.size // 4, int(EDGE_S * sr))
    fade = np.ones(phrase.size)
    if edge > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, edge))
        fade[:edge], fade[-edge:] = ramp, ramp[::-1]
    region = out[start:start + phrase.size]
    region *= 1.0 - fade[:region.size]
    region += (phrase * fade)[:region.size]


def level(x: np.ndarray, *, sr: int) -> float:
    """The RMS of the loudest half of `x`'s 20 ms frames: the level of the speech in it."""
    hop = max(1, int(sr * LEVEL_FRAME_S))
    frames = x[:x.size // hop * hop].reshape(-1, hop) if x.size >= hop else x.reshape(1, -1)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(np.sqrt(np.mean(np.sort(rms)[rms.size // 2:] ** 2))) if rms.size else 0.0


def background(x: np.ndarray, *, sr: int) -> float:
    """The RMS of the quietest tenth of `x`'s 20 ms frames: its background level."""
    hop = max(1, int(sr * LEVEL_FRAME_S))
    if x.size < hop:
        return 0.0
    rms = np.sqrt(np.mean(x[:x.size // hop * hop].reshape(-1, hop).astype(np.float64) ** 2, axis=1))
    return float(np.quantile(rms, BACKGROUND_QUANTILE))


def comfort_noise(length: int, rms: float, rng: np.random.Generator) -> np.ndarray:
    """Gentle low-passed noise of `rms`, to fill what is not re-spoken (never the source's own sound)."""
    if rms <= 0.0 or length == 0:
        return np.zeros(length)
    white = rng.standard_normal(length + 1)
    soft = white[1:] + white[:-1]
    return soft / max(float(np.sqrt(np.mean(soft ** 2))), 1e-12) * rms
