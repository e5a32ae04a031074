"""The per-record anonymize stage: stream one input through VoiceStream into an atomically written output."""

from __future__ import annotations

import dataclasses
from typing import Any

import soundfile as sf

from .. import audio
from ..keys import SecretKey
from ..manifest import Record
from ..pipeline import Task
from ..transform import output_record, verify_input
from . import describe
from .stream import VoiceStream

BLOCK_FRAMES = 1 << 16


@dataclasses.dataclass(frozen=True)
class AnonymizeSettings:
    """Everything the stage needs besides the record: method, level, method settings, speaker-id policy."""

    key: SecretKey
    method: str = "world"
    level: str = "speaker"
    keep_speaker_ids: bool = False
    options: tuple[tuple[str, Any], ...] = ()

    def params(self) -> dict[str, Any]:
        """The non-secret description that goes into the ops entry (and identifies the output for resume)."""
        return {**describe(self.method, self.level, self.key, **dict(self.options)),
                "keep_speaker_ids": self.keep_speaker_ids}


def anonymize_record(task: Task, *, settings: AnonymizeSettings) -> Record:
    """Convert the task's audio to its keyed pseudo-speaker and write it to ``task.dest``."""
    verify_input(task.record)
    record = task.record
    path = record.audio_filepath
    info = audio.probe(path) if path != audio.STDIO else None
    loaded = audio.read(path) if info is None else None
    if loaded is not None:
        info = loaded.info
    speaker = record.speaker
    if not speaker and settings.level == "speaker":
        speaker = f"recording:{record.id or path}"
        task.warn(f"{path}: no speaker id, so it is its own speaker (name speakers with "
                  f"`privspeech scan --speaker-from`)")
    stream = VoiceStream(sr=info.sample_rate, channels=info.channels, key=settings.key, speaker=speaker,
                         utterance=record.id or path, method=settings.method, level=settings.level,
                         **dict(settings.options))
    with audio.open_output(task.dest, sample_rate=info.sample_rate, channels=info.channels, subtype=info.subtype,
                           force=task.force) as (snd, result):
        if loaded is not None:
            snd.write(stream.process(loaded.data))
        else:
            with sf.SoundFile(path) as src:
                for block in src.blocks(blocksize=BLOCK_FRAMES, dtype="float64", always_2d=True):
                    snd.write(stream.process(block))
        snd.write(stream.flush())
    params = settings.params()
    keep = params.pop("keep_speaker_ids")
    out = output_record(task, sha256=result.sha256, info=info, op="anonymize", **params)
    if not keep and out.speaker:
        out = dataclasses.replace(out, speaker=settings.key.pseudonym("speaker", out.speaker))
    return out
