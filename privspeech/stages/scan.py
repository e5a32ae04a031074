"""`scan`: describe audio files as manifest records (duration, format, sha256, speaker, retention)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .. import audio
from ..errors import DataError, from_os_error, UsageError
from ..fsutil import HASH_CHUNK, STDIO
from ..keys import SecretKey
from ..manifest import Record
from ..secretref import SecretFile, reveal
from ..task import Task
from ..timeutil import format_ts, now
from . import Settings
from .records import describing

SOURCE_LABEL = "source-hmac"
SPEAKER_LABEL = "source-speaker"


@dataclass(frozen=True)
class SpeakerRule:
    """How a record's speaker is named: the parent folder ('dir') or a regex over the path."""

    kind: str
    pattern: re.Pattern | None = None

    @classmethod
    def parse(cls, text: str) -> "SpeakerRule":
        if text == "dir":
            return cls("dir")
        if text.startswith("regex:"):
            try:
                pattern = re.compile(text[len("regex:"):])
            except re.error as exc:
                raise UsageError(f"bad --speaker-from regex: {exc}") from None
            if pattern.groups == 0:
                raise UsageError("--speaker-from regex needs a group that captures the speaker",
                                 hint=r"e.g. regex:(?P<speaker>spk\d+)")
            return cls("regex", pattern)
        raise UsageError(f"bad --speaker-from {text!r}", hint="use dir or regex:PATTERN")

    def fill(self, record: Record) -> Record:
        """`record` with its speaker named by this rule, when it has none."""
        if record.speaker is not None or record.audio_filepath == audio.STDIO:
            return record
        return replace(record, speaker=self.speaker(record.audio_filepath))

    def speaker(self, path: str) -> str | None:
        if self.kind == "dir":
            parent = Path(path).parent.name
            return parent or None
        match = self.pattern.search(Path(path).as_posix())
        if not match:
            return None
        return match.groupdict().get("speaker") or match.group(1)


@dataclass(frozen=True)
class ScanSettings(Settings):
    speaker_from: SpeakerRule | None = None
    retain: dt.timedelta | None = None
    retain_from_mtime: bool = False
    key: SecretKey | SecretFile | None = None  # a SecretFile for a cluster's workers


def digest_file(path: str, key: SecretKey | None) -> tuple[str, str | None, os.stat_result]:
    """sha256 (and the keyed source HMAC when a key is given) of a file, in one read."""
    sha = hashlib.sha256()
    mac = key.hasher(SOURCE_LABEL) if key is not None else None
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
                sha.update(chunk)
                if mac is not None:
                    mac.update(chunk)
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an audio file") from None
    except OSError as exc:
        raise from_os_error(exc, path) from None
    return sha.hexdigest(), mac.hexdigest() if mac is not None else None, st


def source_speaker(key: SecretKey, speaker: str) -> str:
    """The keyed pseudonym of a source speaker that the DP ledger is kept by (``privspeech.source.speaker``):
    the same person under the same key whatever run or pseudonym a record went through."""
    return key.pseudonym(SPEAKER_LABEL, speaker, prefix="src-")


def scan_record(task: Task, settings: ScanSettings) -> Record:
    """The stage function: a record describing the file at `task.record.audio_filepath`."""
    record = task.record
    path = record.audio_filepath
    if path == STDIO:
        raise UsageError("scan reads files, not audio on stdin", hint="give the file's path")
    key = reveal(settings.key)
    sha, mac, st = digest_file(path, key)
    info = audio.probe(path)
    if info.frames == 0:
        raise DataError(f"{path}: zero-length recording", hint="the file holds no samples")
    created = now()
    prov = replace(record.privspeech, sha256=sha, created_at=record.privspeech.created_at or format_ts(created))
    speaker = record.speaker
    if settings.speaker_from is not None:
        speaker = settings.speaker_from.speaker(path) or speaker
    if mac is not None and prov.source is None:  # a record that names its source already (a derived file) keeps it
        prov.source = {"id": record.id, "hmac": mac, "key": key.fingerprint}
        if speaker:
            prov.source["speaker"] = source_speaker(key, speaker)
    if settings.retain is not None:
        start = dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc) if settings.retain_from_mtime else created
        prov.expires_at = format_ts(start + settings.retain)
    return describing(record, info, speaker=speaker, privspeech=prov)
