"""Manifests under ROOT: read through folder descriptors, and rewritten atomically without pruned records.

Every ``*.jsonl`` file under ROOT (outside ``.privspeech/``) is a manifest by convention; ``--manifest`` names
others. Lines are kept byte for byte: a rewrite only drops the lines of pruned records.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass

from ..errors import ExitStatus, PrivspeechError
from ..fsutil import atomic_write
from ..manifest import Record
from .walk import Parts, Remover, Unsafe, show

SUFFIX = ".jsonl"
SIDECARS = "sidecars"  # privspeech.sidecars: further files of the record, relative to the manifest's folder


@dataclass
class Line:
    """One record of a manifest: its 1-based line number and the paths it names (as written)."""

    number: int
    record: Record
    paths: list[str]


@dataclass
class Manifest:
    parts: Parts
    text: list[str]  # the raw lines, with their newlines
    lines: list[Line]
    identity: tuple[int, int, int, int]  # dev, inode, size, mtime_ns when read
    mode: int

    @property
    def name(self) -> str:
        return show(self.parts)


def load(fs: Remover, parts: Parts) -> Manifest:
    """Read and validate the manifest at `parts`; a bad line raises DATAERR naming it (nothing is deleted)."""
    name = show(parts)
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fs.folder(parts[:-1]))
    except Unsafe as exc:
        raise PrivspeechError(f"manifest {name}: {exc}", status=ExitStatus.DATAERR) from None
    except OSError as exc:
        raise PrivspeechError(f"manifest {name}: {exc.strerror}", hint="a manifest must be a regular file inside ROOT",
                              status=ExitStatus.NOINPUT if exc.errno == errno.ENOENT else ExitStatus.DATAERR) from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise PrivspeechError(f"manifest {name}: not a regular file", status=ExitStatus.DATAERR)
        data = fh.read()
    try:
        text = data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        raise PrivspeechError(f"manifest {name}: not UTF-8 text", hint="move files that are not manifests out of "
                              "ROOT or rename them", status=ExitStatus.DATAERR) from None
    lines = [_parse(raw, number, name) for number, raw in enumerate(text, 1) if raw.strip()]
    return Manifest(parts, text, lines, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns), st.st_mode & 0o7777)


def _parse(raw: str, number: int, name: str) -> Line:
    try:
        record = Record.from_dict(json.loads(raw))  # no base folder: '..' is resolved later, by descriptor
        sidecars = record.privspeech.extra.get(SIDECARS, [])
        if not isinstance(sidecars, list) or not all(isinstance(p, str) and p and "\x00" not in p for p in sidecars):
            raise ValueError(f"'privspeech.{SIDECARS}' must be a list of paths")
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise PrivspeechError(f"{name}:{number}: bad manifest line: {reason}",
                              hint="prune reads every *.jsonl under ROOT; fix the line or move the file out of ROOT",
                              status=ExitStatus.DATAERR) from None
    return Line(number, record, [record.audio_filepath, *sidecars])


def rewrite(fs: Remover, manifest: Manifest, drop: set[int]) -> None:
    """Replace the manifest, atomically, by its lines minus the line numbers in `drop`.

    Refuses (Unsafe) when the file changed since it was read, so records written meanwhile are never lost.
    The new file keeps the old one's mode.
    """
    folder = fs.folder(manifest.parts[:-1])
    st = os.stat(manifest.parts[-1], dir_fd=folder, follow_symlinks=False)
    if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != manifest.identity:
        raise Unsafe(f"{manifest.name} changed since it was read; its records stay until the next run")
    dest = f"/proc/self/fd/{folder}/{manifest.parts[-1]}"  # through the verified folder descriptor
    if not os.path.isdir("/proc/self/fd"):
        dest = os.path.join(fs.root.path, *manifest.parts)
    with atomic_write(dest, force=True, private=True) as fh:
        fh.write("".join(t for n, t in enumerate(manifest.text, 1) if n not in drop).encode("utf-8"))
        os.fchmod(fh.fileno(), manifest.mode)
