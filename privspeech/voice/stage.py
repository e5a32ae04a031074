"""The per-record anonymize stage: stream one input through VoiceStream into an atomically written output.

With DP intonation (:mod:`privspeech.voice.dp`) the record's ops gain a second, ledger entry
(``op: "dp-intonation"``) after the ``anonymize`` one."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .. import audio
from ..errors import UsageError
from ..keys import SecretKey
from ..manifest import Record
from ..secretref import SecretFile, reveal
from ..task import Task
from ..scan import source_speaker
from ..transform import output_record, verify_input
from . import describe
from .stream import VoiceStream

if TYPE_CHECKING:
    from .dp import DPSettings

BLOCK_FRAMES = 1 << 16


@dataclasses.dataclass(frozen=True)
class AnonymizeSettings:
    """Everything the stage needs besides the record: method, level, method settings, speaker-id policy."""

    key: SecretKey | SecretFile  # a SecretFile for a cluster's workers
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

    def params(self) -> dict[str, Any]:
        """The non-secret description that goes into the ops entry (and identifies the output for resume)."""
        return {**describe(self.method, self.level, reveal(self.key), **dict(self.options)),
                "keep_speaker_ids": self.keep_speaker_ids}

    def stage_params(self) -> dict[str, Any]:
        """Everything that identifies an output for resume: :meth:`params` and the DP release."""
        dp = None if self.dp is None else {**dataclasses.asdict(self.dp), "seed": self.seed}
        return {**self.params(), "dp_intonation": dp}


def anonymize_record(task: Task, *, settings: AnonymizeSettings) -> Record:
    """Convert the task's audio to its keyed pseudo-speaker and write it to ``task.dest``.

    The record's speaker becomes a keyed pseudonym (unless kept); with a persistent key, a source that names
    no speaker yet gets the keyed source speaker (:func:`privspeech.scan.source_speaker`) the ledger is kept by.
    """
    verify_input(task.record)
    record = task.record
    path = record.audio_filepath
    speaker = record.speaker
    if not speaker and settings.level == "speaker":
        speaker = f"recording:{record.id or path}"
    key = reveal(settings.key)
    ids = dict(key=key, speaker=speaker, utterance=record.id or path, level=settings.level)
    with audio.open_input(path) as reader:
        info = reader.info
        budget = None
        if settings.dp is None:
            stream = VoiceStream(sr=info.sample_rate, channels=info.channels, method=settings.method, **ids,
                                 **dict(settings.options))
        else:
            from ..dp.rng import SecureRandom
            from .dp import dp_stream

            rng = None if settings.seed is None else SecureRandom(f"{settings.seed}/{record.id or path}")
            stream, budget = dp_stream(settings=settings.dp, n_samples=info.frames, sr=info.sample_rate,
                                       channels=info.channels, rng=rng, **ids, **dict(settings.options))
        with audio.open_output(task.dest, sample_rate=info.sample_rate, channels=info.channels,
                               subtype=info.subtype, force=task.force) as (snd, result):
            for block in reader.blocks(BLOCK_FRAMES):
                snd.write(stream.process(block))
            snd.write(stream.flush())
    for message in reader.warnings:
        task.warn(message)
    params = settings.params()
    keep = params.pop("keep_speaker_ids")
    if settings.method == "world" and stream.voices[0].settings.fallback:  # what the per-recording checks found
        params["checks"] = {"degraded": any(voice.degraded for voice in stream.voices),
                            "lost_voicing": any(voice.fell_back for voice in stream.voices)}
    out = output_record(task, sha256=result.sha256, info=reader.info, op="anonymize", **params)
    if budget is not None:
        out = out.with_op("dp-intonation", **budget.entry())
    if not keep and out.speaker:
        source = out.privspeech.source or {}
        if not key.ephemeral and not source.get("speaker"):
            out.privspeech.source = {**source, "speaker": source_speaker(key, out.speaker)}
        out = dataclasses.replace(out, speaker=key.pseudonym("speaker", out.speaker))
    return out
