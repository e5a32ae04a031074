"""The de-identification methods: settings validation and one converter per channel for an id."""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from ..errors import DataError, UsageError
from ..keys import SecretKey
from .targets import mcadams_alpha, world_candidates

METHODS = ("world", "mcadams", "revoice")  # each the name of its module in this package
LEVELS = ("speaker", "utterance")
MIN_SR, MAX_SR = 8000, 48000


class Voice(Protocol):
    """Converts one channel, segment by segment: ``convert(x, core) -> y`` with ``y.shape == x.shape``.

    `grid` is the analysis hop in samples (1 when it is not whole): segments start on multiples of it.
    """

    grid: int

    def convert(self, x: np.ndarray, core: slice) -> np.ndarray: ...


def module(method: str) -> ModuleType:
    """The module of `method` (one of :data:`METHODS`), imported when first used: world pulls in pyworld and
    pysptk, mcadams librosa and scipy.signal, and a run needs only its own method's."""
    return importlib.import_module(f".{method}", __package__)


def version(method: str) -> str:
    """The algorithm version of `method` (it changes whenever the same key and input give other output)."""
    return module(method).VERSION


def check_method(method: str, level: str) -> None:
    if method not in METHODS:
        raise UsageError(f"unknown anonymization method {method!r}", hint=f"use one of: {', '.join(METHODS)}")
    if level not in LEVELS:
        raise UsageError(f"unknown level {level!r}", hint=f"use one of: {', '.join(LEVELS)}")


def resolve_settings(method: str, settings: dict[str, Any]):
    """The settings object for `method` with defaults filled in; unknown or bad settings are usage errors."""
    cls = {"world": "WorldSettings", "mcadams": "McAdamsSettings", "revoice": "RevoiceSettings"}[method]
    cls = getattr(module(method), cls)
    try:
        return cls(**settings)
    except TypeError:
        known = ", ".join(f.name for f in dataclasses.fields(cls)) or "none"
        unknown = ", ".join(sorted(set(settings) - {f.name for f in dataclasses.fields(cls)}))
        raise UsageError(f"unknown setting for method {method}: {unknown}", hint=f"settings it takes: {known}") from None


def identity(level: str, speaker: str | None, utterance: str | None) -> str:
    """The id the pseudo-speaker is drawn for: the speaker's or the utterance's, which must be given."""
    ident = speaker if level == "speaker" else utterance
    if ident is None or str(ident) == "":
        article = "a speaker" if level == "speaker" else "an utterance"
        hint = ("name speakers with `privspeech scan --speaker-from`, or use --level utterance"
                if level == "speaker" else "give every record an id")
        raise DataError(f"level {level} needs {article} id", hint=hint)
    return str(ident)


def check_rate(sr: Any) -> int:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not MIN_SR <= sr <= MAX_SR:
        raise DataError(f"sample rate {sr!r} Hz is not supported (8 to 48 kHz)",
                        hint="resample the input, e.g. sox in.wav -r 16000 out.wav")
    return int(sr)


def make_voices(method: str, level: str, settings, *, key: SecretKey, ident: str, sr: int,
                channels: int) -> list[Voice]:
    """One converter per channel, all drawing the same pseudo-speaker for `ident`."""
    if not isinstance(key, SecretKey):
        raise UsageError("anonymization needs a privspeech SecretKey")
    if method == "world":
        candidates = world_candidates(key, level=level, ident=ident)
        return [module(method).WorldVoice(candidates, sr=sr, settings=settings) for _ in range(channels)]
    alpha = mcadams_alpha(key, level=level, ident=ident)
    return [module(method).McAdamsVoice(alpha, sr=sr) for _ in range(channels)]
