"""Helpers for stages that turn one audio file into another: input checks and the output record."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from . import audio
from .errors import DataError
from .fsutil import STDIO, sha256_file
from .manifest import Record
from .task import Task


def verify_input(record: Record) -> None:
    """Refuse an input whose bytes no longer match the sha256 its manifest record carries."""
    expected = record.privspeech.sha256
    if not expected or record.audio_filepath == STDIO:
        return
    if sha256_file(record.audio_filepath) != expected:
        raise DataError(f"{record.audio_filepath}: file changed since its manifest record was written "
                        f"(sha256 mismatch)", hint="rescan it with privspeech scan")


def output_record(task: Task, *, sha256: str, info: audio.AudioInfo, op: str, **op_fields: Any) -> Record:
    """The input record moved to `task.dest`, with the new file's facts and one more `ops` entry."""
    record = task.record.with_op(op, **op_fields)
    record.privspeech.sha256 = sha256
    if task.record.privspeech.source is None and task.record.id:
        record.privspeech.source = {"id": task.record.id}
    return dataclasses.replace(record, audio_filepath=task.dest, duration=round(info.frames / info.sample_rate, 6),
                               sample_rate=info.sample_rate, num_channels=info.channels)


def transform_file(task: Task, fn: Callable[[np.ndarray, int], np.ndarray], *, op: str,
                   **op_fields: Any) -> Record:
    """Read the task's audio, apply ``fn(data, sr) -> data`` (shape (frames, channels)), write it atomically.

    The output keeps the input's sample rate, channel count and subtype (when the output format allows it).
    """
    verify_input(task.record)
    loaded = audio.read(task.record.audio_filepath)
    for message in loaded.warnings:
        task.warn(message)
    out = np.asarray(fn(loaded.data, loaded.info.sample_rate))
    if out.ndim == 1:
        out = out[:, None]
    sha = audio.write(task.dest, out, sample_rate=loaded.info.sample_rate, subtype=loaded.info.subtype,
                      force=task.force)
    info = dataclasses.replace(loaded.info, frames=out.shape[0], channels=out.shape[1])
    return output_record(task, sha256=sha, info=info, op=op, **op_fields)
