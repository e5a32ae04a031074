"""Fitting synthetic speech into the original's time line: phrases from recognised words, grouped into utterances
the voice speaks whole; each phrase's stretch of the synthetic utterance moved to the keyed pseudo-speaker and
stretched to the phrase's span (PSOLA), levels per phrase, comfort noise everywhere else."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from ..targets import FORMANT_SCALE, Target
from . import psola
from .recognize import Word

PAUSE_S = 0.2  # a pause this long or longer ends a phrase
UTTERANCE_S = 10.0  # phrases are spoken together up to this much speech (the voice's memory grows with length)
MAX_PHRASE_S = UTTERANCE_S  # a longer phrase is cut between two of its words (see _short)
GAP_STEP_S = 0.05  # gaps between words within this of each other count as equally long when choosing a cut
FRAME_MS = 5.0
TILT_TAPS = 129  # of the spectral tilt filter
EDGE_S = 0.01  # raised-cosine edges of each placed phrase
LEVEL_FRAME_S = 0.02
# a low target's formants over the voice's own: the voice is a man's, so a low (man's) target stays within the +-8 %
# spread of tract lengths within a gender instead of world's band for taking a high voice down
LOW_FORMANT_SCALE = (0.92, 1.08)
BACKGROUND_QUANTILE = 0.1  # the quietest tenth of a chunk's frames gives the comfort noise its level


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
    """`group` cut until no part is longer than :data:`MAX_PHRASE_S`: at its longest gap between words, among gaps
    about as long after a word that ends a clause, and then nearest the middle (Whisper's word times within a
    segment often touch, and a cut at the first of many equal gaps left one-word phrases that were misheard)."""
    if len(group) < 2 or group[-1].end - group[0].start <= MAX_PHRASE_S:
        return [group]
    middle = (group[0].start + group[-1].end) / 2

    def merit(i: int) -> tuple:
        gap = group[i + 1].start - group[i].end
        return round(gap / GAP_STEP_S), group[i].text[-1:] in ",.;:!?", -abs(group[i].end - middle)

    cut = 1 + max(range(len(group) - 1), key=merit)
    return _short(group[:cut]) + _short(group[cut:])


def utterances(found: list[Phrase]) -> list[list[Phrase]]:
    """Consecutive phrases grouped into utterances for the voice to speak whole (its words then sound as they do
    in a sentence, not as a list of fragments), each at most :data:`UTTERANCE_S` of speech."""
    grouped: list[list[Phrase]] = []
    for phrase in found:
        if grouped and sum(p.end - p.start for p in grouped[-1]) + phrase.end - phrase.start <= UTTERANCE_S:
            grouped[-1].append(phrase)
        else:
            grouped.append([phrase])
    return grouped


def speech_bounds(y: np.ndarray, start: int, stop: int, *, sr: int, floor_db: float = -50.0) -> tuple[int, int]:
    """The part of y[start:stop] from its first to its last sound (10 ms frames no more than `floor_db` below its
    loudest), with 30 ms kept either side; an empty range if it is silent."""
    hop = max(1, int(sr * 0.01))
    piece = np.asarray(y[start:stop], np.float64)
    frames = np.sqrt(np.convolve(piece ** 2, np.ones(hop) / hop, mode="same"))[::hop] if piece.size else piece
    if not frames.size or frames.max() <= 0:
        return start, start
    loud = np.flatnonzero(frames > frames.max() * 10 ** (floor_db / 20))
    return start + max(0, (loud[0] - 3) * hop), start + min(piece.size, (loud[-1] + 3) * hop)


@dataclass(frozen=True)
class Analysis:
    """A synthetic utterance `x` at rate `sr`, its F0 (a frame every :data:`FRAME_MS` ms), its PSOLA grains (centres
    and periods) and the mean and spread of its log F0 over the voiced frames (None if fewer than two are voiced)."""

    x: np.ndarray
    f0: np.ndarray
    at: np.ndarray
    periods: np.ndarray
    sr: int
    pitch: tuple[float, float] | None


def analyse(y: np.ndarray, *, sr: int) -> Analysis:
    """The synthetic utterance `y` analysed for :func:`render` (its pitch by DIO and StoneMask: the voice is
    clean)."""
    from ..worldlib import pyworld

    x = np.ascontiguousarray(y, dtype=np.float64)
    f0, times = pyworld.dio(x, sr, frame_period=FRAME_MS, f0_floor=60.0, f0_ceil=400.0)
    f0 = pyworld.stonemask(x, f0, times, sr)
    logs = np.log(f0[f0 > 0])
    pitch = (float(logs.mean()), max(float(logs.std()), 1e-3)) if logs.size >= 2 else None
    at, periods = psola.marks(x, f0, sr=sr, frame_s=FRAME_MS / 1000.0)
    return Analysis(x, f0, at, periods, sr, pitch)


def render(voice: Analysis, start: int, stop: int, *, length: int, target: Target) -> np.ndarray:
    """Samples `start` to `stop` of the analysed utterance, stretched to exactly `length` samples (time mapped
    linearly), its own pitch contour moved to the target's mean and spread by PSOLA and its spectrum tilted by the
    target's slope (its formants were scaled before: see :func:`formant_rate`)."""
    frames = np.minimum(np.rint(voice.at / voice.sr * 1000.0 / FRAME_MS).astype(int), len(voice.f0) - 1)
    source = voice.f0[frames]
    moved = _move_pitch(source, voice.pitch, target)
    ratios = np.where(source > 0, moved / np.maximum(source, 1e-9), 1.0)
    out = psola.overlap_add(voice.x, voice.at, voice.periods, ratios, start=start, stop=stop, length=length)
    return _tilted(out, voice.sr, target)


def for_voice(target: Target) -> Target:
    """`target` for the synthetic voice: a low target's formant scale (drawn between the reciprocals of
    :data:`~privspeech.voice.targets.FORMANT_SCALE`) moved, by its place in that band, onto :data:`LOW_FORMANT_SCALE`
    (the mildest lowering to the top); a high target as drawn."""
    if target.formant_scale >= 1.0:
        return target
    lo, hi = (math.log(b) for b in FORMANT_SCALE)
    place = (-math.log(target.formant_scale) - lo) / (hi - lo)
    top, bottom = (math.log(b) for b in LOW_FORMANT_SCALE[::-1])
    return replace(target, formant_scale=math.exp(top + place * (bottom - top)))


def formant_rate(sr: int, target: Target) -> float:
    """The rate to resample the voice to, before it is read back at `sr`, so that its formants (and pitch, and
    pace) are scaled by the target's formant scale."""
    return sr / target.formant_scale


def _move_pitch(f0: np.ndarray, pitch: tuple[float, float] | None, target: Target) -> np.ndarray:
    """The voice's own contour, in log F0, moved from its utterance's mean and spread `pitch` to the target's (0
    stays unvoiced)."""
    if pitch is None:
        return f0
    mean, spread = pitch
    voiced = f0 > 0
    out = np.zeros_like(f0)
    out[voiced] = np.exp((np.log(f0[voiced]) - mean) / spread * target.f0_spread + math.log(target.f0_mean_hz))
    return out


def _tilted(y: np.ndarray, sr: int, target: Target) -> np.ndarray:
    """`y` through a linear-phase filter tilting its spectrum by the target's slope around 1 kHz."""
    return np.convolve(y, _tilt_taps(sr, target.tilt_db_per_octave))[TILT_TAPS // 2:TILT_TAPS // 2 + y.size]


@functools.lru_cache(maxsize=64)
def _tilt_taps(sr: int, db_per_octave: float) -> np.ndarray:
    """The tilt filter's taps, designed once per rate and slope (a stream's target keeps both)."""
    from scipy.signal import firwin2

    f = np.linspace(0.0, sr / 2.0, 65)
    octaves = np.log2(np.maximum(f, 50.0) / 1000.0)
    return firwin2(TILT_TAPS, f, 10.0 ** (db_per_octave * octaves / 20.0), fs=sr)


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
