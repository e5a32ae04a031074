"""Utility measures on real speech: pitch contours compared (correlation, gross errors), durations and the summary of
word disagreement. Transcripts and word error rates (jiwer, num2words and the recognizer of the eval extra) are in
test_evaluate_asr.py, so that these run without them."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from privspeech.errors import PrivspeechError
from privspeech.evaluate import preservation

from conftest import SAMPLES


def sample(name: str) -> tuple[np.ndarray, int]:
    """A recording from sample_audio/ (in the repository)."""
    return sf.read(next(SAMPLES.glob(f"*/{name}.*")))


@pytest.mark.slow
def test_pitch_agreement_of_a_signal_with_itself_is_perfect():
    y, sr = sample("p225_003")
    same = preservation.pitch_agreement(y, y, sr=sr)
    assert same.correlation == pytest.approx(1.0) and same.correlation_without_gross == pytest.approx(1.0)
    assert same.gross_errors == 0 and same.frames > 300


@pytest.mark.slow
def test_a_shifted_contour_is_kept_and_another_recording_is_not():
    import pyworld

    y, sr = sample("p226_005")
    f0, envelope, aperiodicity = pyworld.wav2world(y, sr, frame_period=10.0)
    shifted = pyworld.synthesize(f0 * 2 ** (4 / 12), envelope, aperiodicity, sr, frame_period=10.0)
    other, _ = sample("p225_003")
    n = min(len(y), len(other))
    kept = preservation.pitch_agreement(y, shifted, sr=sr)
    unrelated = preservation.pitch_agreement(y[:n], other[:n], sr=sr)
    assert kept.correlation > 0.8 and kept.gross_errors < 0.1 * kept.frames
    assert abs(unrelated.correlation) < 0.5 and unrelated.gross_errors > 0.2 * unrelated.frames


@pytest.mark.slow
def test_a_linear_map_of_log_f0_is_no_error_and_octave_jumps_are():
    """WORLD's conversion maps log F0 linearly: the fitted line absorbs it, and only broken frames count."""
    y, sr = sample("201-122255-0000")
    source = preservation.f0_contour(y, sr=sr)
    voiced = source > 0
    mapped = np.where(voiced, np.exp(0.6 * (np.log(np.where(voiced, source, 1.0)) - 4.8) + np.log(210.0)), 0.0)
    clean = preservation.compare_contours(source, mapped)
    assert clean.correlation == pytest.approx(1.0) and clean.gross_errors == 0 and clean.frames == voiced.sum()
    broken = mapped.copy()
    stretch = np.flatnonzero(voiced)[100:140]  # 40 voiced frames an octave down, as a tracker's halving error
    broken[stretch] /= 2
    hurt = preservation.compare_contours(source, broken)
    assert hurt.gross_errors == len(stretch) and hurt.frames == clean.frames
    assert hurt.correlation < 0.8 and hurt.correlation_without_gross == pytest.approx(1.0)
    few = np.zeros_like(mapped)
    few[np.flatnonzero(voiced)[:19]] = 200.0  # 19 frames voiced in both: too few to judge
    too_few = preservation.compare_contours(source, few)
    assert too_few.frames == 0 and np.isnan(too_few.correlation)


@pytest.mark.slow
def test_an_octave_error_in_the_signal_is_found_as_gross_errors():
    import pyworld

    y, sr = sample("p226_005")
    f0, times = pyworld.harvest(y, sr, frame_period=10.0)
    envelope, aperiodicity = pyworld.cheaptrick(y, f0, times, sr), pyworld.d4c(y, f0, times, sr)
    voiced = np.flatnonzero(f0 > 0)
    broken = f0.copy()
    broken[voiced[len(voiced) // 3:len(voiced) // 2]] *= 2  # one sixth of the voiced frames an octave up
    resynthesized = pyworld.synthesize(f0, envelope, aperiodicity, sr, frame_period=10.0)
    jumped = pyworld.synthesize(broken, envelope, aperiodicity, sr, frame_period=10.0)
    whole = preservation.pitch_agreement(y, resynthesized, sr=sr)
    hurt = preservation.pitch_agreement(y, jumped, sr=sr)
    assert hurt.gross_errors - whole.gross_errors > 0.1 * hurt.frames
    assert hurt.correlation < whole.correlation - 0.2
    assert hurt.correlation_without_gross > 0.9


@pytest.mark.slow
def test_pitch_contour_is_harvest_in_10ms_frames_and_unvoiced_noise_gives_nan():
    y, sr = sample("p225_003")
    f0 = preservation.f0_contour(y, sr=sr)
    assert abs(len(f0) - len(y) / sr * 100) <= 2
    voiced = f0[f0 > 0]
    assert 150 < np.median(voiced) < 300  # a woman's speaking voice
    rng = np.random.default_rng(0)
    noise = preservation.pitch_agreement(y, 1e-4 * rng.standard_normal(len(y)), sr=sr)
    assert np.isnan(noise.correlation) and noise.frames == 0


def test_pitch_summary_pools_the_frames_and_skips_too_short_utterances():
    values = [preservation.PitchAgreement(0.9, 0.95, 10, 100), preservation.PitchAgreement(0.5, np.nan, 30, 100),
              preservation.PitchAgreement(np.nan, np.nan, 0, 0)]
    assert preservation.summarize_pitch(values) == {
        "f0_method": "harvest", "correlation": pytest.approx(0.7), "correlation_without_gross": 0.95,
        "gross_error_rate": pytest.approx(0.2), "used": 2, "skipped": 1}
    assert preservation.summarize_pitch([])["correlation"] is None


def test_word_disagreement_is_capped_per_utterance():
    summary = preservation.summarize_disagreement([0.0, 0.2, 1.5, None, 0.6])  # a hallucination costs 100 %, not 150
    assert summary == {"mean": pytest.approx(0.45), "median": pytest.approx(0.4), "over_half": 0.5, "used": 4,
                       "skipped": 1}
    assert preservation.summarize_disagreement([None])["mean"] is None


def test_duration_check():
    check = preservation.duration_check([1.0, 2.0, 3.0], [1.0, 2.05, 2.99], tolerance_s=0.02)
    assert check["mismatched"] == 1 and check["max_abs_diff_s"] == pytest.approx(0.05)
    with pytest.raises(PrivspeechError):
        preservation.duration_check([1.0], [1.0, 2.0], tolerance_s=0.02)

