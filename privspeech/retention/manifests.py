"""Manifests under ROOT: read through folder descriptors when trusted, line by line, and rewritten without pruned
records.

Every ``*.jsonl`` file under ROOT (outside ``.privspeech/``) is a manifest by convention; ``--manifest`` names
others. A manifest is read only when it and its folders are trusted (:mod:`.trust`). A line that is no valid
record is reported on its own; the other lines count. An unfinished last line (no newline, not valid yet) is
being written by someone: it is left for the next run. Lines are kept byte for byte: a rewrite
(:mod:`.rewrite`) only drops the lines of pruned records, in place, and keeps lines appended meanwhile.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

from ..errors import PrivspeechError
from ..manifest import Record
from . import trust
from .rewrite import Left, finish, update
from .statx import stat_at
from .walk import Parts, Remover, Unsafe, show

SUFFIX = ".jsonl"
SIDECARS = "sidecars"  # privspeech.sidecars: further files of the record, relative to the manifest's folder


@dataclass
class Line:
    """One record of a manifest: its 1-based line number and the paths it names (as written)."""

    number: int
    record: Record
    paths: list[str]


class Refused(Exception):
    """A manifest prune does not read: `rule` is ``untrusted-manifest`` or ``unreadable-manifest``."""

    def __init__(self, rule: str, detail: str):
        super().__init__(detail)
        self.rule, self.detail = rule, detail


@dataclass
class Manifest:
    """A manifest as read: its lines (with their newlines), the valid records and the lines that are not."""

    parts: Parts
    raw: list[bytes]
    lines: list[Line]
    bad: list[tuple[int, str]]  # (line number, what is wrong with it)
    identity: tuple[int, int]  # device, inode

    @property
    def name(self) -> str:
        return show(self.parts)

    def rewrite(self, fs: Remover, drop: set[int]) -> None:
        """Drop the lines numbered in `drop`, keeping every other line and lines appended since it was read.

        Raises Left when the manifest is in use or changed (it stays as it is), Unsafe or OSError.
        """
        folder = fs.folder(self.parts[:-1])
        kept = b"".join(text for number, text in enumerate(self.raw, 1) if number not in drop)
        update(folder, _folder_path(fs, folder, self.parts), self.parts[-1], self.identity, b"".join(self.raw), kept)


def load(fs: Remover, parts: Parts, *, dry_run: bool = False) -> Manifest:
    """Read the manifest at `parts`, first finishing a rewrite that a killed run left (only reading it in a dry run).

    Raises Refused when the manifest or a folder above it is not trusted, or it cannot be read.
    """
    why = trust.problem(fs.tree.files[parts]) or trust.folders_problem(fs.tree, parts[:-1])
    if why:
        raise Refused("untrusted-manifest", why)
    try:
        folder = fs.folder(parts[:-1])
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except Unsafe as exc:
        raise Refused("unreadable-manifest", str(exc)) from None
    except OSError as exc:
        raise Refused("unreadable-manifest", exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as fh:
        st = stat_at(fd)
        if not stat.S_ISREG(st.mode):
            raise Refused("unreadable-manifest", "not a regular file")
        why = trust.problem(st)  # again, on what was opened
        if why:
            raise Refused("untrusted-manifest", why)
        data = fh.read()
    try:
        finished = finish(folder, _folder_path(fs, folder, parts), parts[-1], (st.dev, st.ino), dry_run=dry_run)
    except (Left, OSError) as exc:
        raise Refused("unreadable-manifest", f"a rewrite left by a killed run could not be finished: {exc}") from None
    raw = (data if finished is None else finished).splitlines(keepends=True)
    lines, bad = [], []
    for number, text in enumerate(raw, 1):
        if not text.strip():
            continue
        try:
            lines.append(Line(number, *_parse(text)))
        except ValueError as exc:
            if number == len(raw) and not text.endswith(b"\n"):
                raw.pop()  # still being written: not part of the text this run plans with
            else:
                bad.append((number, str(exc)))
    return Manifest(parts, raw, lines, bad, (st.dev, st.ino))


def _parse(text: bytes) -> tuple[Record, list[str]]:
    """The record on one line and the paths it names; raises ValueError saying what is wrong."""
    try:
        data = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    try:
        record = Record.from_dict(data)  # no base folder: '..' is resolved later, by descriptor
    except PrivspeechError as exc:  # a bad timestamp
        raise ValueError(exc.message) from None
    sidecars = record.privspeech.extra.get(SIDECARS, [])
    if not isinstance(sidecars, list) or not all(isinstance(p, str) and p and "\x00" not in p for p in sidecars):
        raise ValueError(f"'privspeech.{SIDECARS}' must be a list of paths")
    return record, [record.audio_filepath, *sidecars]


def _folder_path(fs: Remover, folder: int, parts: Parts) -> str:
    """A path to the verified folder descriptor (through /proc where mounted)."""
    if os.path.isdir("/proc/self/fd"):
        return f"/proc/self/fd/{folder}"
    return os.path.join(fs.root.path, *parts[:-1])
