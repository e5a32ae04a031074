"""What every record stage does around its own work: check the input against its record, stream audio through a
transform into an atomically written output, and build the output's record."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..errors import DataError
from ..fsutil import STDIO, sha256_file
from ..manifest import Record
from ..task import Task

if TYPE_CHECKING:
    import numpy as np

    from ..audio import AudioInfo
    from ..dp.rng import SecureRandom


class Transform(Protocol):
    """Audio in blocks of (frames, channels) in, the same number of frames out in all (process, then flush)."""

    def process(self, block: np.ndarray) -> np.ndarray: ...

    def flush(self) -> np.ndarray: ...


def verify_input(record: Record) -> None:
    """Refuse an input whose bytes no longer match the sha256 its manifest record carries."""
    expected = record.privspeech.sha256
    if not expected or record.audio_filepath == STDIO:
        return
    if sha256_file(record.audio_filepath) != expected:
        raise DataError(f"{record.audio_filepath}: file changed since its manifest record was written "
                        f"(sha256 mismatch)", hint="rescan it with privspeech scan")


def output_record(task: Task, *, sha256: str | None, op: str, audio: AudioInfo | None = None,
                  **op_fields: Any) -> Record:
    """The input record moved to `task.dest`, with the output's sha256 and one more `ops` entry. A new recording
    (`audio`: its facts) also names the record it came from, when that has an id and no source yet."""
    record = task.record.with_op(op, **op_fields)
    record.privspeech.sha256 = sha256
    if audio is None:
        return dataclasses.replace(record, audio_filepath=task.dest)
    if task.record.privspeech.source is None and task.record.id:
        record.privspeech.source = {"id": task.record.id}
    return describing(dataclasses.replace(record, audio_filepath=task.dest), audio)


def describing(record: Record, audio: AudioInfo, **changes: Any) -> Record:
    """`record` with the duration, sample rate and channels of the recording `audio` describes (and `changes`)."""
    return dataclasses.replace(record, duration=round(audio.duration, 6), sample_rate=audio.sample_rate,
                               num_channels=audio.channels, **changes)


def transcode(task: Task, transform: Callable[[AudioInfo], Transform], *, block_frames: int,
              dtype: str | Callable[[AudioInfo], str] = "float64") -> tuple[Transform, str, AudioInfo]:
    """Verify the task's input, stream it block by block through ``transform(info)`` into `task.dest` (written
    atomically, in the input's sample rate, channels and subtype where the output format allows) and return the
    transform, the output's sha256 and the input's facts. Memory stays bounded by the block size."""
    from .. import audio

    verify_input(task.record)
    with audio.open_input(task.record.audio_filepath) as reader:
        info = reader.info
        stream = transform(info)
        with audio.open_output(task.dest, sample_rate=info.sample_rate, channels=info.channels,
                               subtype=info.subtype, force=task.force) as (snd, result):
            for block in reader.blocks(block_frames, dtype=dtype(info) if callable(dtype) else dtype):
                snd.write(stream.process(block))
            snd.write(stream.flush())
    for message in reader.warnings:
        task.warn(message)
    return stream, result.sha256, reader.info


def seeded_rng(seed: str | None, record: Record) -> SecureRandom | None:
    """For tests only (--seed): a reproducible, NOT PRIVATE generator per record; None draws from the system."""
    if seed is None:
        return None
    from ..dp.rng import SecureRandom

    return SecureRandom(f"{seed}/{record.id or record.audio_filepath}")
