"""Append-only JSONL logs (the out-dir journal, the DP ledger, prune's audit log) and the one rule they are
written and read by.

- Lines: one JSON object each, in ASCII (``json.dumps``' default), so that any text, file names that are not
  UTF-8 included, goes in and comes back unchanged.
- Appends: the file is opened with O_APPEND, never through a symlink, must be a regular file, and is created 0600
  (0666 less the umask when not `private`). Each append is one ``write`` of whole lines, so the lines of
  concurrent appenders never interleave.
- Fragments: a line counts once its newline is written. A writer killed mid-write, or a full disk, can leave the
  last line cut short; the next append ends such a fragment with TORN and a newline first (a whole object that
  only lacks its newline gets the newline), so that it never swallows a line, and :func:`read_lines` passes over
  fragments.
- Durability: an append with `sync` (or :meth:`AppendLog.sync`) fsyncs the file, and its folder the first time
  when this open created it, before it returns. Callers sync before they rely on a line (before a source is
  removed, before files are deleted, before a statistic is released), not for lines that only spare a rerun work.
- Locking, where a log needs it, is the caller's.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import Any, Iterable, Iterator

from .errors import CannotWrite, from_os_error
from .fsutil import fsync_dir

TORN = b"\x18"  # ASCII CANCEL, never in a JSON line: ends a fragment a writer left
_FLAGS = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 16


class AppendLog:
    """A JSONL log open for appending; `identity` is its (device, inode), `shown` its name in errors.

    `path` is relative to `dir_fd` when that is given.
    """

    def __init__(self, path: str | os.PathLike, *, dir_fd: int | None = None, shown: str | None = None,
                 private: bool = True):
        self.shown = shown or os.fspath(path)
        self.fd, created = _open(path, dir_fd, 0o600 if private else 0o666, self.shown)
        st = os.fstat(self.fd)
        if not stat.S_ISREG(st.st_mode):
            self.close()
            raise CannotWrite(f"{self.shown}: not a regular file")
        self.identity = (st.st_dev, st.st_ino)
        self._new_in: str | int | None = None  # the folder to fsync at the first sync: this open created the file
        if created:
            self._new_in = dir_fd if dir_fd is not None else os.path.dirname(os.fspath(path))

    def append_jsonl(self, entries: Iterable[dict[str, Any] | str], *, sync: bool = False) -> None:
        """Append `entries` (objects, or the JSON text of objects) in one write; with `sync`, durably."""
        data = b"".join((entry if isinstance(entry, str) else json.dumps(entry)).encode() + b"\n"
                        for entry in entries)
        if data:
            try:
                data = _ending(self.fd) + data
                written = os.write(self.fd, data)
            except OSError as exc:
                raise from_os_error(exc, self.shown, writing=True) from None
            if written != len(data):
                raise from_os_error(OSError(errno.ENOSPC, "short write"), self.shown, writing=True)
        if sync:
            self.sync()

    def sync(self) -> None:
        """fsync the file, and the first time its folder when this open created it."""
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise from_os_error(exc, self.shown, writing=True) from None
        if self._new_in is not None:
            fsync_dir(self._new_in)
            self._new_in = None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, bytes]]:
    """The lines of the log at `path` with their numbers (from 1), passing over blank lines and fragments: lines
    ended with TORN, and a last line without its newline unless it is a whole object; nothing when there is no log."""
    try:
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip() and not line.endswith(TORN + b"\n") and (line.endswith(b"\n") or _whole(line)):
                    yield number, line
    except FileNotFoundError:
        return
    except OSError as exc:
        raise from_os_error(exc, os.fspath(path)) from None


def _open(path: str | os.PathLike, dir_fd: int | None, mode: int, shown: str) -> tuple[int, bool]:
    """A descriptor for appending to `path`, and whether this call created the file."""
    try:
        while True:
            try:
                return os.open(path, _FLAGS | os.O_CREAT | os.O_EXCL, mode, dir_fd=dir_fd), True
            except FileExistsError:
                pass
            try:
                return os.open(path, _FLAGS, dir_fd=dir_fd), False
            except FileNotFoundError:  # removed between the two calls
                continue
    except OSError as exc:
        raise from_os_error(exc, shown, writing=True) from None


def _ending(fd: int) -> bytes:
    """What must precede an append so that the file's last line, if it lacks its newline, does not swallow it."""
    size = os.fstat(fd).st_size
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return b""
    return b"\n" if _whole(_last_line(fd, size)) else TORN + b"\n"


def _last_line(fd: int, size: int) -> bytes:
    """The bytes after the last newline of the first `size` bytes of the file open on `fd`."""
    tail, end = b"", size
    while end > 0:
        start = max(0, end - _CHUNK)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return chunk[cut + 1:] + tail
        tail, end = chunk + tail, start
    return tail


def _whole(line: bytes) -> bool:
    """True when `line` is one JSON object."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
