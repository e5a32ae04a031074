"""WORLD conversion on real speech: F0 follows the keyed mapping, formants move by the drawn scale."""

from __future__ import annotations

import math

import numpy as np
import pyworld
import pytest
import scipy.stats
import soundfile as sf

from conftest import VCTK
from privspeech.keys import SecretKey
from privspeech.voice import targets as T
from privspeech.voice import world
from privspeech.voice.warp import vtln_source_frequencies

KEY = SecretKey(bytes(range(32)))
HOP_MS = world.WorldSettings().frame_period


def load(name: str, seconds: float | None = None) -> tuple[np.ndarray, int]:
    y, sr = sf.read(VCTK / name.split("_")[0] / f"{name}.wav")
    return (y if seconds is None else y[: int(seconds * sr)]), sr


def f0_track(x: np.ndarray, sr: int) -> np.ndarray:
    """An independent F0 measurement: harvest (not the dio path the converter uses), on the converter's hop."""
    return pyworld.harvest(x, sr, frame_period=HOP_MS)[0]


def frame_envelopes(x: np.ndarray, sr: int, f0: np.ndarray) -> np.ndarray:
    """Log envelopes (frames, bins) at the given F0 track, each minus the long-term mean over voiced frames."""
    t = np.arange(f0.size) * HOP_MS / 1000.0
    env = np.log(pyworld.cheaptrick(x, f0, t, sr))
    return env - env[f0 > 0].mean(axis=0)


def formant_scale(x: np.ndarray, y: np.ndarray, sr: int) -> float:
    """The factor s by which frequency-stretching the input's frame-by-frame envelope movements (its vowels'
    formants, relative to the long-term mean) best matches the output's, 300 Hz to 0.3 sr.

    Deviations from the long-term mean are compared, so the tilt and timbre changes (which reshape the
    long-term envelope) do not bias it."""
    fx, fy = f0_track(x, sr), f0_track(y, sr)
    n = min(fx.size, fy.size)
    a, b = frame_envelopes(x, sr, fx[:n]), frame_envelopes(y, sr, fy[:n])
    voiced = (fx[:n] > 0) & (fy[:n] > 0)
    a, b = a[voiced], b[voiced]
    f = np.linspace(0.0, sr / 2.0, a.shape[1])
    band = np.flatnonzero((f >= 300.0) & (f <= 0.3 * sr))
    target = b[:, band].ravel()
    grid = np.arange(0.70, 1.45, 0.005)

    def fit(s: float) -> float:
        pos = f[band] / s / (f[1] - f[0])
        left = np.floor(pos).astype(int)
        w = pos - left
        warped = a[:, left] * (1.0 - w) + a[:, left + 1] * w
        return np.corrcoef(target, warped.ravel())[0, 1]

    return float(grid[np.argmax([fit(s) for s in grid])])


def convert(name: str, settings: world.WorldSettings, ident: str | None = None):
    x, sr = load(name)
    voice = world.WorldVoice(T.world_candidates(KEY, level="speaker", ident=ident or name[:4]), sr=sr,
                             settings=settings)
    return x, sr, voice.convert(x, slice(0, x.size)), voice


# with this key p226 (male) crosses up, p228 (female) crosses down, p227 (male) stays on the low side
@pytest.mark.slow
@pytest.mark.parametrize("name", ["p226_003", "p228_005", "p227_005"])
def test_output_f0_follows_the_target_mapping(name):
    settings = world.WorldSettings()
    x, sr, y, voice = convert(name, settings)
    params = world.analyse(x, sr=sr, settings=settings)
    logs = np.log(params.f0[params.f0 > 0])
    expected = world.map_f0(params.f0, source_mean=logs.mean(), source_spread=logs.std(), target=voice.target)
    measured = f0_track(y, sr)
    n = min(expected.size, measured.size)
    both = (expected[:n] > 0) & (measured[:n] > 0)
    assert both.sum() > 0.6 * (expected > 0).sum()
    error_st = np.abs(12.0 * np.log2(measured[:n][both] / expected[:n][both]))
    assert np.median(error_st) < 0.5 and np.percentile(error_st, 80) < 1.5
    # the voice moved to the keyed side of the population, by at least the minimum distance
    source_hz, out_hz = math.exp(logs.mean()), float(np.exp(np.log(measured[measured > 0]).mean()))
    # (harvest reads p228_005's low synthetic voice about a semitone above the mapped F0 on average)
    assert abs(T.semitones(out_hz, source_hz)) > settings.min_f0_distance - 1.5
    assert (out_hz > source_hz) == (voice.target.f0_mean_hz > source_hz)
    assert (voice.target.formant_scale > 1.0) == (out_hz > source_hz)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["p226_003", "p225_003"])
def test_formants_move_by_the_drawn_scale(name):
    x, sr, y, voice = convert(name, world.WorldSettings())
    scale = voice.target.formant_scale
    assert abs(scale - 1.0) >= T.FORMANT_SCALE[0] - 1.0 - 1e-9
    assert formant_scale(x, y, sr) == pytest.approx(scale, abs=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["p226_003", "p228_005"])
def test_long_term_shape_is_the_keyed_band_weighted_one(name):
    # The same key with and without the keyed shape: F0, warp and tilt are the same, so the outputs' long-term log
    # envelopes (measured at one F0 track) differ by the keyed shape, read through the formant warp.
    _, sr, y, voice = convert(name, world.WorldSettings())
    _, _, plain, _ = convert(name, world.WorldSettings(timbre_db=0.0))
    f0 = f0_track(y, sr)
    t = np.arange(f0.size) * HOP_MS / 1000.0
    log_envelopes = [np.log(pyworld.cheaptrick(z, f0, t, sr))[f0 > 0] for z in (y, plain)]
    measured = (log_envelopes[0] - log_envelopes[1]).mean(axis=0)
    scale = voice.target.formant_scale
    source_hz = vtln_source_frequencies(measured.size, sr=sr, scale=scale)
    expected = world.keyed_timbre(voice.target, source_hz, world.WorldSettings().timbre_db)
    f = np.linspace(0.0, sr / 2.0, measured.size)
    band = (f >= 100.0) & (f <= 0.45 * sr)
    assert np.corrcoef(measured[band], expected[band])[0, 1] > 0.9
    # up to 3.6 kHz the shape is realised in full; higher up its deepest dips measure shallower (the analysis
    # window leaks power from louder bands into them)
    band &= f <= 3600.0
    assert np.polyfit(expected[band], measured[band], 1)[0] == pytest.approx(1.0, abs=0.15)


def keyed_shapes(f: np.ndarray) -> np.ndarray:
    return np.array([world.keyed_timbre(T.world_candidates(KEY, level="utterance", ident=str(i)).low, f, 8.0)
                     for i in range(200)])


def test_keyed_shape_is_heavier_below_700_hz_and_above_3600_than_over_the_second_formant():
    f = np.linspace(0.0, 8000.0, 513)
    boosts = np.maximum(keyed_shapes(f), 0.0)  # the cuts above 2.8 kHz are soft-limited
    low, mid, high = (np.sqrt(np.mean(np.square(boosts[:, band]))) / (8.0 * math.log(10.0) / 10.0)
                      for band in (f < 700.0, (f > 1200.0) & (f < 2800.0), f > 3600.0))
    weights = world.TIMBRE_BAND_WEIGHTS
    assert low / mid == pytest.approx(weights[0] / weights[1], rel=0.25)
    assert high / mid == pytest.approx(weights[2] / weights[1], rel=0.25)


def test_keyed_cuts_above_2800_hz_are_soft_limited_and_boosts_are_not(monkeypatch):
    f = np.linspace(0.0, 8000.0, 513)
    limited = keyed_shapes(f)
    limit = world.HF_CUT_LIMIT_DB * math.log(10.0) / 10.0  # natural-log power units, as the shape
    monkeypatch.setattr(world, "HF_CUT_LIMIT_DB", 1e9)
    full = keyed_shapes(f)
    below, above = f <= 2800.0, f >= 2800.0 * math.sqrt(2.0)
    assert np.array_equal(limited[:, below], full[:, below])
    assert np.array_equal(limited[full > 0.0], full[full > 0.0])  # boosts keep their size everywhere
    deep = full[:, above] < -limit
    assert deep.any() and full[:, above].max() > 1.5 * limit
    assert limited[:, above].min() > -limit
    assert np.all(limited[:, above][deep] > full[:, above][deep])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["p225_008", "p226_005", "p227_005", "p228_005"])
def test_pitch_contour_stays_correlated_with_the_original(name):
    # Measured by harvest on input and output, over the frames the converter treats as voiced (dio voices
    # about a fifth fewer frames than harvest; those are synthesised unvoiced). Rank correlation, because
    # F0 trackers still jump an octave on a few percent of frames, which would dominate a Pearson figure.
    settings = world.WorldSettings()
    x, sr, y, _ = convert(name, settings)
    voiced = world.analyse(x, sr=sr, settings=settings).f0 > 0
    fx, fy = f0_track(x, sr), f0_track(y, sr)
    n = min(fx.size, fy.size, voiced.size)
    both = (fx[:n] > 0) & (fy[:n] > 0) & voiced[:n]
    assert both.sum() > 0.8 * voiced.sum()
    a, b = np.log2(fx[:n][both]), np.log2(fy[:n][both])
    # harvest reads the low synthetic voice an octave off on 9 % (dio) to 15 % (rapt) of p228_005's frames, whose own
    # F0 harvest and either tracker disagree on by over 20 % on 9-10 % of the frames; fold those back by octaves
    shift = b - a - np.median(b - a)
    assert np.mean(np.abs(shift) > 0.5) < 0.2
    assert scipy.stats.spearmanr(a, b - np.round(shift))[0] >= 0.7


def test_map_f0_keeps_unvoiced_frames_and_flattens_intonation():
    x, sr = load("p227_005")
    f0 = world.analyse(x, sr=sr, settings=world.WorldSettings()).f0
    logs = np.log(f0[f0 > 0])
    target = T.Target(200.0, 0.2, 1.15, 0.0)
    mapped = world.map_f0(f0, source_mean=logs.mean(), source_spread=logs.std(), target=target)
    assert np.array_equal(mapped == 0, f0 == 0)
    out = np.log(mapped[mapped > 0])
    assert out.mean() == pytest.approx(math.log(200.0), abs=1e-9)
    assert out.std() == pytest.approx(0.2, rel=1e-9)
    assert np.corrcoef(out, logs)[0, 1] == pytest.approx(1.0)
    flat = world.map_f0(f0, source_mean=logs.mean(), source_spread=logs.std(), target=target, intonation=0.0)
    assert np.allclose(flat[flat > 0], 200.0)


@pytest.mark.slow
@pytest.mark.parametrize("f0_method", ["harvest", "rapt"])
def test_other_f0_methods_convert_too(f0_method):
    x, sr = load("p226_003", seconds=2.5)
    settings = world.WorldSettings(f0_method=f0_method)
    voice = world.WorldVoice(T.world_candidates(KEY, level="speaker", ident="p226"), sr=sr, settings=settings)
    y = voice.convert(x, slice(0, x.size))
    measured = f0_track(y, sr)
    out_hz = float(np.exp(np.log(measured[measured > 0]).mean()))
    assert abs(T.semitones(out_hz, voice.target.f0_mean_hz)) < 1.0


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("scale", [0.8, 1.0, 1.2])
def test_vtln_map_scales_the_formant_region_and_fixes_the_ends(sr, scale):
    n = 513
    src = vtln_source_frequencies(n, sr=sr, scale=scale)
    f = np.linspace(0.0, sr / 2.0, n)
    assert src[0] == 0.0 and src[-1] == pytest.approx(sr / 2.0)
    assert np.all(np.diff(src) > 0)
    formant_region = f <= 0.8 * (sr / 2.0) * min(1.0, scale)
    assert np.allclose(src[formant_region], f[formant_region] / scale)
