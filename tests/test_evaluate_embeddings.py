"""Speaker embeddings from the real pretrained encoder on real corpus speech."""

from __future__ import annotations

import sys

import librosa
import numpy as np
import pytest
import soundfile as sf

from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.evaluate import embeddings, metrics

from conftest import VCTK

VCTK_FILES = sorted(VCTK.rglob("*.wav"))


def test_missing_extra_names_the_install_hint(monkeypatch):
    embeddings._encoder.cache_clear()
    monkeypatch.setitem(sys.modules, "resemblyzer", None)  # what an install without the extra looks like
    with pytest.raises(PrivspeechError) as info:
        embeddings.embed(np.zeros(16000), sr=16000)
    embeddings._encoder.cache_clear()
    assert "resemblyzer" in info.value.message
    assert info.value.hint == "pip install 'privspeech[eval]'" and info.value.status == ExitStatus.USAGE


pytest.importorskip("resemblyzer")


@pytest.fixture(scope="module")
def vctk():
    embedder = embeddings.Embedder()
    vectors = embedder.embed_files(VCTK_FILES)
    return metrics.Labelled.build(vectors, [p.parent.name for p in VCTK_FILES], [p.stem for p in VCTK_FILES]), embedder


@pytest.mark.slow
def test_original_vs_original_eer_is_low_on_16k_speech(vctk):
    data, _ = vctk
    assert data.vectors.shape == (40, embeddings.DIM)
    np.testing.assert_allclose(np.linalg.norm(data.vectors, axis=1), 1.0, atol=1e-5)
    trials = metrics.make_trials(data)
    assert (trials.n_target, trials.n_nontarget) == (180, 600)
    assert metrics.eer(trials.scores, trials.target) < 0.05


@pytest.mark.slow
def test_cache_returns_the_same_vector_without_recomputing(vctk):
    data, embedder = vctk
    size = len(embedder)
    again = embedder.embed_file(VCTK_FILES[3])
    assert len(embedder) == size
    np.testing.assert_array_equal(again, data.vectors[3].astype(np.float32))


@pytest.mark.slow
def test_other_rates_and_stereo_are_resampled_and_mixed(vctk):
    data, _ = vctk
    y, sr = sf.read(VCTK_FILES[0])
    narrow = librosa.resample(y, orig_sr=sr, target_sr=8000)
    stereo = np.stack((y, y), axis=1)
    assert float(embeddings.embed(narrow, sr=8000) @ data.vectors[0]) > 0.85
    assert float(embeddings.embed(stereo, sr=sr) @ data.vectors[0]) > 0.999


@pytest.mark.parametrize("y, sr, status", [
    (np.zeros(16000), 16000, ExitStatus.DATAERR),            # silence: no speech
    (np.zeros(0), 16000, ExitStatus.DATAERR),
    (np.full(16000, np.nan), 16000, ExitStatus.DATAERR),
    (np.zeros((2, 2, 2)), 16000, ExitStatus.DATAERR),
    (np.arange(16000), 16000, ExitStatus.DATAERR),            # integers, not a float signal
    (np.zeros(16000), 0, ExitStatus.USAGE),
    (np.zeros(16000), 16000.0, ExitStatus.USAGE),
])
def test_bad_signals_are_refused(y, sr, status):
    with pytest.raises(PrivspeechError) as info:
        embeddings.embed(y, sr=sr)
    assert info.value.status == status


@pytest.mark.slow
def test_signal_the_vad_rejects_is_embedded_whole(vctk):
    """resemblyzer's VAD keeps nothing of a 60 Hz hum; it is embedded whole rather than stopping an evaluation."""
    data, _ = vctk
    hum = 0.3 * np.sin(2 * np.pi * 60.0 * np.arange(32000) / 16000)
    vector = embeddings.embed(hum, sr=16000)
    assert vector.shape == (embeddings.DIM,) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-4)
    assert float(vector @ data.vectors[0]) < 0.85  # not mistaken for the speech of the corpus


def test_unreadable_file_names_the_path(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(PrivspeechError, match="bad.wav"):
        embeddings.Embedder().embed_file(bad)
