"""What is evaluated: utterances with their speaker, gender and text, and the original and anonymized audio.

Originals and anonymized versions are paired by the original record's ``id`` and the anonymized record's
``privspeech.source.id`` (or its own ``id``), as ``privspeech scan`` and ``privspeech anonymize`` write them.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .. import audio
from ..errors import DataError, from_os_error, NotFound
from ..manifest import Record


@dataclass(frozen=True)
class Utterance:
    """One evaluated recording. `anonymized` is None when the evaluation anonymizes it itself; `group` is an optional
    label (e.g. a benchmark's slice) that every figure is also given for."""

    id: str
    speaker: str
    original: str
    anonymized: str | None = None
    gender: str = ""
    text: str | None = None
    group: str = ""


def load(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode a file to mono float64: (signal of shape (n,), sample rate)."""
    decoded = audio.read(path)
    return decoded.data.mean(axis=1), decoded.info.sample_rate


def read_genders(path: str | os.PathLike) -> dict[str, str]:
    """Speaker genders from a tab-separated file with a header naming `speaker` and `gender` columns."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError as exc:
        raise from_os_error(exc, str(path)) from None
    if not rows or not {"speaker", "gender"} <= set(rows[0]):
        raise DataError(f"{path}: expected a tab-separated header with 'speaker' and 'gender' columns")
    return {row["speaker"]: (row["gender"] or "").strip().upper() for row in rows if row["speaker"]}


def _gender(record: Record, genders: dict[str, str] | None) -> str:
    value = record.extra.get("gender")
    if not isinstance(value, str) and genders is not None:
        value = genders.get(record.speaker or "")
    return value.strip().upper() if isinstance(value, str) else ""


def _source_id(record: Record) -> str | None:
    source = record.privspeech.source or {}
    value = source.get("id", record.id)
    return value if isinstance(value, str) else record.id


def from_records(originals: Iterable[Record], anonymized: Iterable[Record] | None = None, *,
                 genders: dict[str, str] | None = None,
                 warn: Callable[[str], Any] | None = None) -> list[Utterance]:
    """Pair original records with their anonymized versions (or take the originals alone).

    Every original needs an ``id`` and a ``speaker``. An anonymized record whose source is not among the
    originals is an error; an original without an anonymized version is left out with a warning.
    """
    by_id: dict[str, Record] = {}
    for record in originals:
        if not record.id or not record.speaker:
            raise DataError(f"{record.audio_filepath}: the evaluation needs an 'id' and a 'speaker' for every "
                            f"original record", hint="scan the originals with --speaker-from")
        if record.id in by_id:
            raise DataError(f"duplicate record id {record.id!r} among the originals")
        by_id[record.id] = record
    released: dict[str, Record] = {}
    for record in anonymized or ():
        source = _source_id(record)
        if source not in by_id:
            raise DataError(f"{record.audio_filepath}: its source id {source!r} is not among the originals",
                            hint="pass the manifest the anonymized set was made from")
        released[source] = record
    if anonymized is not None:
        missing = [rid for rid in by_id if rid not in released]
        if missing and warn is not None:
            warn(f"{len(missing)} original(s) have no anonymized version and are left out, e.g. {missing[0]!r}")
        if not released:
            raise DataError("no anonymized record matches an original")
    return [Utterance(rid, rec.speaker, rec.audio_filepath,
                      released[rid].audio_filepath if rid in released else None, _gender(rec, genders), rec.text)
            for rid, rec in by_id.items() if anonymized is None or rid in released]


def from_folder(root: str | os.PathLike, *, genders: dict[str, str] | None = None,
                pattern: str = "*.wav") -> list[Utterance]:
    """Utterances from `root/<speaker>/<file>` (the speaker is the parent folder's name), sorted by path."""
    root = Path(root)
    files = sorted(p for p in root.rglob(pattern) if p.is_file())
    if not files:
        raise NotFound(f"{root}: no files matching {pattern}")
    return [Utterance(str(p.relative_to(root).with_suffix("")), p.parent.name, str(p),
                      gender=(genders or {}).get(p.parent.name, "")) for p in files]
