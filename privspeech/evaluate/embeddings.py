"""Speaker embeddings from resemblyzer's pretrained VoiceEncoder (a d-vector LSTM; weights ship in its wheel).

The encoder works on 16 kHz speech: signals at other rates are resampled, volume-normalised and stripped
of long silences (resemblyzer's own preprocessing) before embedding. Torch runs one thread per process.
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from typing import Iterable

import numpy as np

from .. import audio
from ..errors import DataError, PrivspeechError, UsageError
from .deps import need

ENCODER_SR = 16000
DIM = 256


@functools.lru_cache(maxsize=1)
def _encoder():
    torch = need("torch")
    torch.set_num_threads(1)
    with warnings.catch_warnings():  # webrtcvad imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        resemblyzer = need("resemblyzer")
    return resemblyzer, resemblyzer.VoiceEncoder("cpu", verbose=False)


def mono(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Validate a signal and mix it to mono float32.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, channels)
    sr : int
        Sample rate in Hz.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise UsageError(f"sample rate must be a positive integer, not {sr!r}")
    y = np.asarray(y)
    if y.ndim not in (1, 2) or y.shape[0] == 0 or (y.ndim == 2 and y.shape[1] == 0):
        raise DataError(f"expected a non-empty signal of shape (n,) or (n, channels), got {y.shape}")
    if not np.issubdtype(y.dtype, np.floating) or not np.isfinite(y).all():
        raise DataError("expected a finite floating-point signal")
    return (y.mean(axis=1) if y.ndim == 2 else y).astype(np.float32)


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """`y` at `target_sr` (librosa's default soxr resampler); unchanged when the rates match."""
    if orig_sr == target_sr:
        return y
    import librosa

    return librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr)


def embed(y: np.ndarray, *, sr: int) -> np.ndarray:
    """The speaker embedding of one utterance.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, channels)
        Speech, floating point in [-1, 1].
    sr : int
        Sample rate in Hz (resampled to 16 kHz).

    Returns
    -------
    np.ndarray, shape (256,), float32
        L2-normalised, so the dot product of two embeddings is their cosine similarity.

    Raises
    ------
    DataError
        When the signal is empty, shorter than 0.1 s, silent or not finite.
    """
    signal = resample(mono(y, sr=sr), sr, ENCODER_SR)
    resemblyzer, encoder = _encoder()
    if signal.size < ENCODER_SR // 10 or not signal.any():
        raise DataError("no speech found to embed (the signal is silent or too short)")
    # resemblyzer's own preprocessing; when its VAD keeps (almost) nothing of a signal that is not silent (seen on a
    # few converted utterances), the whole signal is embedded, as an attacker would do
    wav = resemblyzer.audio.normalize_volume(signal, resemblyzer.hparams.audio_norm_target_dBFS, increase_only=True)
    trimmed = resemblyzer.audio.trim_long_silences(wav)
    return encoder.embed_utterance(trimmed if trimmed.size >= ENCODER_SR // 10 else wav).astype(np.float32)


class Embedder:
    """Embeddings with an in-memory cache keyed by the signal's content (SHA-256 of rate and samples)."""

    def __init__(self) -> None:
        self._cache: dict[bytes, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def embed(self, y: np.ndarray, *, sr: int) -> np.ndarray:
        """Like :func:`embed`, computed once per distinct signal."""
        signal = mono(y, sr=sr)
        digest = hashlib.sha256(np.int64(sr).tobytes() + signal.tobytes()).digest()
        if digest not in self._cache:
            self._cache[digest] = embed(signal, sr=sr)
        return self._cache[digest]

    def embed_file(self, path: str | os.PathLike) -> np.ndarray:
        """The embedding of an audio file (any format privspeech reads)."""
        decoded = audio.read(path, dtype="float32")
        try:
            return self.embed(decoded.data, sr=decoded.info.sample_rate)
        except PrivspeechError as exc:
            raise exc.reworded(f"{path}: {exc.message}") from None

    def embed_files(self, paths: Iterable[str | os.PathLike]) -> np.ndarray:
        """Embeddings of several files, shape (n, 256)."""
        rows = [self.embed_file(path) for path in paths]
        return np.stack(rows) if rows else np.empty((0, DIM), np.float32)
