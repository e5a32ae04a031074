"""The manifest record (one JSONL line, a superset of NeMo's manifest) and JSONL reading and writing.

Top-level keys are NeMo's; everything privspeech adds lives under the ``privspeech`` key. Paths are kept
absolute in memory and written relative to the manifest's folder when that folder is known.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, TextIO

from . import __version__
from .errors import DataError, PrivspeechError
from .timeutil import format_ts, now, parse_ts

SCHEMA_VERSION = 1
_NEMO_KEYS = ("audio_filepath", "duration", "id", "speaker", "sample_rate", "num_channels", "text")


@dataclass
class Provenance:
    """What privspeech knows of a record: integrity, origin, the append-only op chain, retention."""

    sha256: str | None = None
    source: dict[str, Any] | None = None
    ops: list[dict[str, Any]] = field(default_factory=list)
    created_at: str | None = None
    expires_at: str | None = None
    hold: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": SCHEMA_VERSION}
        for name in ("sha256", "source"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out["ops"] = self.ops
        for name in ("created_at", "expires_at"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out["hold"] = self.hold
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "Provenance":
        if not isinstance(data, dict):
            raise ValueError("'privspeech' must be an object")
        data = dict(data)
        version = data.pop("v", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported privspeech record version {version!r}")
        ops = data.pop("ops", [])
        if not isinstance(ops, list) or not all(isinstance(op, dict) and isinstance(op.get("op"), str) for op in ops):
            raise ValueError("'privspeech.ops' must be a list of objects with an 'op' name")
        sha = data.pop("sha256", None)
        if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
            raise ValueError("'privspeech.sha256' must be 64 hex digits")
        source = data.pop("source", None)
        if source is not None and not isinstance(source, dict):
            raise ValueError("'privspeech.source' must be an object")
        stamps = {}
        for name in ("created_at", "expires_at"):
            value = data.pop(name, None)
            if value is not None:
                if not isinstance(value, str):
                    raise ValueError(f"'privspeech.{name}' must be an RFC 3339 string")
                parse_ts(value)
            stamps[name] = value
        hold = data.pop("hold", False)
        if not isinstance(hold, bool):
            raise ValueError("'privspeech.hold' must be true or false")
        return cls(sha256=sha, source=source, ops=ops, hold=hold, extra=data, **stamps)


@dataclass
class Record:
    """One manifest line. `audio_filepath` is an absolute (or cwd-relative) path in memory."""

    audio_filepath: str
    duration: float | None = None
    id: str | None = None
    speaker: str | None = None
    sample_rate: int | None = None
    num_channels: int | None = None
    text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    privspeech: Provenance = field(default_factory=Provenance)

    @property
    def path(self) -> Path:
        return Path(self.audio_filepath)

    def to_dict(self, base_dir: Path | None = None) -> dict[str, Any]:
        """The JSON object; `audio_filepath` relative to `base_dir` when given and possible."""
        out: dict[str, Any] = {"audio_filepath": relative_path(self.audio_filepath, base_dir)}
        for name in _NEMO_KEYS[1:]:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extra)
        out["privspeech"] = self.privspeech.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, base_dir: Path | None = None) -> "Record":
        """Validate and build a record; relative paths resolve against `base_dir`. Raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("a manifest line must be a JSON object")
        data = dict(data)
        path = data.pop("audio_filepath", None)
        if not isinstance(path, str) or not path:
            raise ValueError("missing 'audio_filepath'")
        if "\x00" in path:
            raise ValueError("'audio_filepath' contains a NUL byte")
        if base_dir is not None and not os.path.isabs(path):
            path = os.path.normpath(os.path.join(base_dir, path))
        duration = data.pop("duration", None)
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float))
                                     or not math.isfinite(duration) or duration < 0):
            raise ValueError("'duration' must be a non-negative number")
        ints = {}
        for name in ("sample_rate", "num_channels"):
            value = data.pop(name, None)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"'{name}' must be a positive integer")
            ints[name] = value
        strings = {}
        for name in ("id", "speaker", "text"):
            value = data.pop(name, None)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"'{name}' must be a string")
            strings[name] = value
        prov = Provenance.from_dict(data.pop("privspeech", {}))
        return cls(audio_filepath=path, duration=float(duration) if duration is not None else None,
                   privspeech=prov, extra=data, **ints, **strings)

    def with_op(self, op: str, **fields: Any) -> "Record":
        """A copy with one more entry appended to the provenance chain (see :func:`make_op`)."""
        copy = dataclasses.replace(self, extra=dict(self.extra),
                                   privspeech=dataclasses.replace(self.privspeech, ops=list(self.privspeech.ops),
                                                                  extra=dict(self.privspeech.extra)))
        copy.privspeech.ops.append(make_op(op, **fields))
        return copy


def make_op(op: str, **fields: Any) -> dict[str, Any]:
    """An `ops` entry: the op's name, its fields, the time and privspeech's version."""
    entry: dict[str, Any] = {"op": op}
    entry.update(fields)
    entry.setdefault("at", format_ts(now()))
    entry.setdefault("version", __version__)
    return entry


def relative_path(path: str, base_dir: Path | None) -> str:
    """`path` relative to `base_dir` (NeMo's rule) when both are known; otherwise unchanged."""
    if base_dir is None:
        return path
    try:
        return os.path.relpath(os.path.abspath(path), os.path.abspath(base_dir))
    except ValueError:
        return os.path.abspath(path)


def read_jsonl(stream: TextIO, *, base_dir: Path | None, name: str = "<stdin>",
               skip_invalid: bool = False, warn=None) -> Iterator[Record]:
    """Yield records from a JSONL stream; a bad line raises DATAERR with its line number.

    With `skip_invalid`, bad lines are reported through `warn(message)` and skipped.
    Blank lines are ignored.
    """
    for lineno, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield Record.from_dict(json.loads(line), base_dir)
        except (ValueError, PrivspeechError) as exc:  # json.JSONDecodeError is a ValueError
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            message = f"{name}:{lineno}: bad manifest line: {reason}"
            if skip_invalid:
                if warn is not None:
                    warn(message)
                continue
            raise DataError(message, hint="fix the line, or pass --skip-invalid to skip bad lines") from None


def dumps(record: Record, base_dir: Path | None = None) -> str:
    """One JSONL line (with newline)."""
    return json.dumps(record.to_dict(base_dir), ensure_ascii=False, separators=(", ", ": ")) + "\n"


def write_jsonl(stream: TextIO, records: Iterable[Record], base_dir: Path | None = None) -> int:
    """Write records one per line, flushing after each; returns the count."""
    count = 0
    for record in records:
        stream.write(dumps(record, base_dir))
        stream.flush()
        count += 1
    return count


def check_inside(path: str, root: Path) -> None:
    """Refuse a record path that escapes `root` (through `..` or an absolute path elsewhere)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise DataError(f"{path}: path escapes the dataset root {root}",
                        hint="manifest paths must stay inside the manifest's folder")
