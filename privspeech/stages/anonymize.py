"""The `anonymize` stage: stream one input through a keyed voice conversion into an atomically written output.

With DP intonation (:mod:`privspeech.voice.dp_intonation`) the record's ops gain a second, ledger entry
(``op: "dp-intonation"``) after the ``anonymize`` one."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..keys import SecretKey
from ..manifest import Record
from ..secretref import SecretFile, reveal
from ..task import Task
from ..voice import describe, open_stream
from ..voice.methods import version
from . import Settings, setting
from .records import output_record, seeded_rng, transcode
from .scan import source_speaker

if TYPE_CHECKING:
    from ..voice.dp_intonation import DPSettings

BLOCK_FRAMES = 1 << 16


@dataclasses.dataclass(frozen=True)
class AnonymizeSettings(Settings):
    """Everything the stage needs besides the record: method, level, method settings, speaker-id policy."""

    key: SecretKey | SecretFile = setting(identity=lambda key: reveal(key).fingerprint)  # a SecretFile on a cluster
    method: str = "world"
    level: str = "speaker"
    keep_speaker_ids: bool = False
    options: tuple[tuple[str, Any], ...] = ()
    dp: DPSettings | None = None
    seed: str | None = None  # tests only: reproducible DP noise per record, marked NOT PRIVATE

    def __post_init__(self):
        if self.dp is not None and self.method != "world":
            raise UsageError("DP intonation (--dp-epsilon) applies to --method world only",
                             hint=f"the {self.method} method keeps the source's intonation as it is")
        self.describe()  # checks method, level and settings

    def describe(self) -> dict[str, Any]:
        """The non-secret description of the conversion that goes into the ops entry."""
        return describe(self.method, self.level, reveal(self.key), **dict(self.options))

    def identity(self) -> dict[str, Any]:
        """The settings, and the version of the method's algorithm: a new one converts differently."""
        return {**super().identity(), "version": version(self.method)}


def anonymize_record(task: Task, settings: AnonymizeSettings) -> Record:
    """Convert the task's audio to its keyed pseudo-speaker and write it to ``task.dest``.

    The record's speaker becomes a keyed pseudonym (unless kept); with a persistent key, a source that names
    no speaker yet gets the keyed source speaker (:func:`privspeech.stages.scan.source_speaker`) the ledger is kept
    by.
    """
    record = task.record
    path = record.audio_filepath
    speaker = record.speaker
    if not speaker and settings.level == "speaker":
        speaker = f"recording:{record.id or path}"
    key = reveal(settings.key)
    ids = dict(key=key, speaker=speaker, utterance=record.id or path, level=settings.level)
    budget = None

    def stream(info):
        nonlocal budget
        if settings.dp is None:
            return open_stream(sr=info.sample_rate, channels=info.channels, method=settings.method, **ids,
                               **dict(settings.options))
        from ..voice.dp_intonation import dp_stream

        voice, budget = dp_stream(settings=settings.dp, n_samples=info.frames, sr=info.sample_rate,
                                  channels=info.channels, rng=seeded_rng(settings.seed, record), **ids,
                                  **dict(settings.options))
        return voice

    converted, sha256, info = transcode(task, stream, block_frames=BLOCK_FRAMES)
    params = settings.describe()
    if settings.method == "revoice":
        params["respoken"] = converted.entry()
    if settings.method == "world" and converted.voices[0].settings.fallback:  # what the per-recording checks found
        params["checks"] = {"degraded": any(voice.degraded for voice in converted.voices),
                            "lost_voicing": any(voice.fell_back for voice in converted.voices)}
    out = output_record(task, sha256=sha256, audio=info, op="anonymize", **params)
    if budget is not None:
        out = out.with_op("dp-intonation", **budget.entry())
    if not settings.keep_speaker_ids and out.speaker:
        source = out.privspeech.source or {}
        if not key.ephemeral and not source.get("speaker"):
            out.privspeech.source = {**source, "speaker": source_speaker(key, out.speaker)}
        out = dataclasses.replace(out, speaker=key.pseudonym("speaker", out.speaker))
    return out
