"""Rewriting a manifest in place without losing the lines other programs append to it meanwhile.

prune drops the lines of pruned records from manifests that pipelines may be appending to
(``privspeech scan ... >> m.jsonl``). Renaming a new file over the old one would lose the lines appended while
prune writes, and every later line of a writer that keeps the old file open. So :func:`update`:

1. opens the manifest read-write and takes a Linux write lease on it (``F_SETLEASE``). The kernel refuses the
   lease while any other process has the file open: the manifest is in use (:class:`Left`) and keeps its lines
   until a later run. While prune holds the lease, other processes' opens of the file wait for its release (at
   most ``/proc/sys/fs/lease-break-time``, 45 s by default; a rewrite takes milliseconds). The kernel announces
   such a wait with a signal, set to SIGURG (ignored unless handled) instead of SIGIO (which would kill prune).
2. reads the file again under the lease. The text read when planning must be its start (lines appended since
   are kept after the new text); otherwise the file changed (:class:`Left`) and the next run reads it again.
3. writes the old and the new text to a redo file ``.NAME.privspeech-rewrite`` beside it, atomically.
4. writes a marker byte just past the new text's end and fsyncs, writes the new text over the start and fsyncs,
   truncates to the new length and fsyncs, then removes the redo file. The inode stays, and with it owner, group
   and mode; a writer that waited for the lease appends to the rewritten file.

:func:`finish` runs before a manifest is read. A redo file left by a killed run is finished when the manifest
still starts with the old text, or holds the marker (step 4 was interrupted): the new text, then what was
appended past the old text's end since. Otherwise the rewrite had completed and the redo file is removed.

Where the filesystem has no leases (EINVAL: NFS, some FUSE filesystems) or prune may not take one (EACCES,
EPERM), the check of step 2 is repeated just before a complete new file (same owner, group and mode) is renamed
over the manifest. There, lines appended in the instant between that check and the rename, or written later
by a program that keeps the old file open, are lost.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import stat

from ..fsutil import atomic_write, write_bytes
from . import trust
from .statx import stat_at

REDO_SUFFIX = ".privspeech-rewrite"
_NO_LEASE = (errno.EINVAL, errno.EACCES, errno.EPERM)
_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Left(Exception):
    """The manifest stays as it is for now: in use, changed since it was read, or with a redo file prune cannot use."""


def redo_name(name: str) -> str:
    """The redo file of manifest `name`, in the same folder."""
    return f".{name}{REDO_SUFFIX}"


def update(folder: int, folder_path: str, name: str, identity: tuple[int, int], planned: bytes, new: bytes) -> None:
    """Replace `planned`, the manifest's text when it was read, by `new`, keeping what was appended since.

    `folder` is a descriptor of the manifest's folder (`folder_path` a path to it), `identity` the manifest's
    (device, inode) when it was read. Raises Left, or OSError when writing fails (a redo file then remains).
    """
    with _Open(folder, folder_path, name, identity, write=True) as manifest:
        current = manifest.read()
        if not current.startswith(planned):
            raise Left("it changed since it was read")
        manifest.replace(current, new + current[len(planned):])


def finish(folder: int, folder_path: str, name: str, identity: tuple[int, int], *,
           dry_run: bool = False) -> bytes | None:
    """Finish a rewrite of manifest `name` that a killed run left; returns the manifest's text after it.

    Returns None when there is no redo file. With `dry_run` nothing is written: the text is the one the
    manifest will have. Raises Left, or OSError.
    """
    redo = Redo.load(folder, redo_name(name))
    if redo is None:
        return None
    with _Open(folder, folder_path, name, identity, write=not dry_run) as manifest:
        current = manifest.read()
        done = redo.finished(current) if identity[1] == redo.ino else None
        if not dry_run:
            if done is None:
                os.unlink(redo_name(name), dir_fd=folder)
                os.fsync(folder)
            else:
                manifest.replace(current, done)
    return current if done is None else done


class Redo:
    """A redo file: one JSON line (the manifest's inode, the lengths of the old and new text, the marker byte), then
    the old and the new text. The inode, not the device: device numbers can change at boot."""

    def __init__(self, ino: int, old: bytes, new: bytes, marker: int):
        self.ino, self.old, self.new, self.marker = ino, old, new, marker

    @staticmethod
    def dump(ino: int, old: bytes, new: bytes, marker: int) -> bytes:
        head = {"privspeech_rewrite": 1, "ino": ino, "old": len(old), "new": len(new), "marker": marker}
        return json.dumps(head).encode() + b"\n" + old + new

    @classmethod
    def load(cls, folder: int, name: str) -> "Redo | None":
        try:
            fd = os.open(name, os.O_RDONLY | _FLAGS, dir_fd=folder)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as fh:
            st = stat_at(fd)
            why = "not a regular file" if not stat.S_ISREG(st.mode) else trust.problem(st)
            if why:
                raise Left(f"its redo file {name} is {why}")
            data = fh.read()
        head, _, body = data.partition(b"\n")
        try:
            meta = json.loads(head)
            old, new, marker, ino = (int(meta[key]) for key in ("old", "new", "marker", "ino"))
            if meta["privspeech_rewrite"] != 1 or len(body) != old + new or not new < old or not 0 <= marker < 256:
                raise ValueError("sizes do not match")
        except (ValueError, KeyError, TypeError) as exc:
            raise Left(f"its redo file {name} is not one prune wrote ({exc})") from None
        return cls(ino, body[:old], body[old:], marker)

    def finished(self, current: bytes) -> bytes | None:
        """The manifest's text once this rewrite is finished, or None when `current` shows it completed."""
        cut, end = len(self.new), len(self.old)
        interrupted = len(current) >= end and current[cut] == self.marker \
            and current[cut + 1:end] == self.old[cut + 1:end]
        if interrupted or current[:end] == self.old:
            return self.new + current[end:]
        return None


class _Open:
    """The manifest opened (read-write and leased when `write`), checked to be the file planning read."""

    def __init__(self, folder: int, folder_path: str, name: str, identity: tuple[int, int], *, write: bool):
        self.folder, self.path, self.name, self.leased = folder, f"{folder_path}/{name}", name, False
        try:
            self.fd = os.open(name, (os.O_RDWR if write else os.O_RDONLY) | _FLAGS, dir_fd=folder)
        except BlockingIOError:  # another process holds a lease on it
            raise Left("it is open in another process") from None
        try:
            st = os.fstat(self.fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != identity:
                raise Left("it was replaced since it was read")
            self.leased = write and _lease(self.fd)
        except BaseException:
            os.close(self.fd)
            raise

    def __enter__(self) -> "_Open":
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.leased:
                fcntl.fcntl(self.fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        finally:
            os.close(self.fd)

    def read(self) -> bytes:
        chunks, offset = [], 0
        while chunk := os.pread(self.fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def replace(self, current: bytes, new: bytes) -> None:
        """Make the file's text `new` (shorter than `current`, its text now), in place or by rename."""
        if self.leased:
            self._in_place(current, new)
        else:
            self._by_rename(current, new)

    def _in_place(self, current: bytes, new: bytes) -> None:
        cut = len(new)
        marker = 0 if current[cut] else 0xFF  # differs from what stands there now
        redo = f"{os.path.dirname(self.path)}/{redo_name(self.name)}"
        write_bytes(redo, Redo.dump(os.fstat(self.fd).st_ino, current, new, marker), force=True, private=True)
        _pwrite(self.fd, bytes([marker]), cut)
        os.fsync(self.fd)
        _pwrite(self.fd, new, 0)
        os.fsync(self.fd)
        os.ftruncate(self.fd, cut)
        os.fsync(self.fd)
        os.unlink(redo_name(self.name), dir_fd=self.folder)
        os.fsync(self.folder)

    def _by_rename(self, current: bytes, new: bytes) -> None:
        st = os.fstat(self.fd)
        with atomic_write(self.path, force=True, private=True) as fh:
            fh.write(new)
            mine = os.fstat(fh.fileno())
            if (mine.st_uid, mine.st_gid) != (st.st_uid, st.st_gid):
                os.fchown(fh.fileno(), st.st_uid, st.st_gid)
            os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
            now = os.stat(self.name, dir_fd=self.folder, follow_symlinks=False)
            if (now.st_dev, now.st_ino, now.st_size) != (st.st_dev, st.st_ino, len(current)):
                raise Left("it changed while it was rewritten")


def _lease(fd: int) -> bool:
    """Take a write lease on `fd`: True, or False where leases are not available. Raises Left when in use."""
    if not hasattr(fcntl, "F_SETLEASE"):  # not Linux
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    except OSError as exc:
        if exc.errno == errno.EAGAIN:
            raise Left("it is open in another process") from None
        if exc.errno in _NO_LEASE:
            return False
        raise
    return True


def _pwrite(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done
