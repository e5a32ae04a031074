"""revoice's PSOLA on a real voice: the pitch moves by the ratio asked, the length is what is asked (the pace
follows it, the pitch does not), and a ratio of 1 at the same length gives the voice back."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from privspeech.voice.revoice import psola
from privspeech.voice.worldlib import pyworld

from conftest import VCTK

FRAME_S = 0.005


@pytest.fixture(scope="module")
def voice():
    x, sr = sf.read(VCTK / "p225" / "p225_003.wav")
    f0 = pitch(x, sr)
    at, periods = psola.marks(x, f0, sr=sr, frame_s=FRAME_S)
    return x, sr, f0, at, periods


def pitch(x: np.ndarray, sr: int) -> np.ndarray:
    """F0 by Harvest (it makes fewer octave errors than DIO on this recorded voice)."""
    f0, _ = pyworld.harvest(np.ascontiguousarray(x, np.float64), sr, frame_period=FRAME_S * 1000, f0_floor=60.0,
                            f0_ceil=500.0)
    return f0


def median_voiced(f0: np.ndarray) -> float:
    return float(np.median(f0[f0 > 0]))


def test_grains_sit_one_period_apart_where_voiced(voice):
    x, sr, f0, at, periods = voice
    assert np.all(np.diff(at) > 0) and at[0] >= 0 and at[-1] < x.size
    frames = np.minimum(np.rint(at / (sr * FRAME_S)).astype(int), f0.size - 1)
    voiced = (f0[frames] > 0)[:-1] & (f0[frames] > 0)[1:]
    spacing = np.diff(at)[voiced] / periods[:-1][voiced]
    assert voiced.sum() > 200 and abs(np.median(spacing) - 1.0) < 0.05


def test_ratio_one_at_the_same_length_gives_the_voice_back(voice):
    x, sr, _, at, periods = voice
    y = psola.overlap_add(x, at, periods, np.ones(at.size), start=0, stop=x.size, length=x.size)
    assert y.size == x.size
    assert np.corrcoef(x, y)[0, 1] > 0.95


@pytest.mark.parametrize("ratio", [0.8, 1.5, 2.0])
def test_pitch_moves_by_the_ratio_and_the_length_is_kept(voice, ratio):
    x, sr, f0, at, periods = voice
    y = psola.overlap_add(x, at, periods, np.full(at.size, ratio), start=0, stop=x.size, length=x.size)
    assert y.size == x.size
    assert median_voiced(pitch(y, sr)) / median_voiced(f0) == pytest.approx(ratio, rel=0.05)
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=0.25)  # levels kept


def test_a_stretch_changes_the_pace_not_the_pitch(voice):
    x, sr, f0, at, periods = voice
    start, stop = x.size // 4, x.size // 2
    length = int((stop - start) * 1.3)
    y = psola.overlap_add(x, at, periods, np.ones(at.size), start=start, stop=stop, length=length)
    assert y.size == length
    part = f0[int(start / (sr * FRAME_S)):int(stop / (sr * FRAME_S))]
    assert median_voiced(pitch(y, sr)) / median_voiced(part) == pytest.approx(1.0, rel=0.05)


def test_a_ratio_beyond_two_octaves_is_held_at_two(voice):
    x, sr, _, at, periods = voice
    wild = psola.overlap_add(x, at, periods, np.full(at.size, 1e9), start=0, stop=x.size, length=x.size)
    held = psola.overlap_add(x, at, periods, np.full(at.size, psola.MAX_RATIO), start=0, stop=x.size, length=x.size)
    assert np.array_equal(wild, held)
