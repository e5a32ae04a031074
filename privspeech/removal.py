"""Removing the inputs a stage has replaced (``encrypt --remove-source``), and nothing else.

A source goes only when all of these hold:

- its path lies inside one of the input's roots (the folder given, the file named, the manifest's own folder)
  or a ``--source-root``, and is reached from that root name by name without passing through a symlink;
- it is a regular file, and is still the very file the stage read (device, inode, size, mtime and ctime as
  they were when it was opened), so a file swapped or rewritten meanwhile stays;
- the stage's output is durable and journaled (see :mod:`privspeech.journal`): the caller fsyncs the
  journal line that names the source before calling :meth:`SourceRemover.remove`, and logs the outcome.

The unlink is relative to a descriptor of the verified folder, which is fsynced afterwards.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from .errors import NotPermitted, PrivspeechError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(frozen=True)
class FileIdentity:
    """What tells one file apart from a replacement or a rewrite of it."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> "FileIdentity":
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "FileIdentity | None":
        try:
            return cls(**{name: int(data[name]) for name in ("dev", "ino", "size", "mtime_ns", "ctime_ns")})
        except (KeyError, TypeError, ValueError):
            return None


class SourceRemover:
    """Checks and removes sources for a run; `extra_roots` are the ``--source-root`` folders."""

    def __init__(self, extra_roots: Sequence[str | os.PathLike] = ()):
        self.extra_roots = [os.path.abspath(r) for r in extra_roots]

    def check(self, path: str, root: str | None) -> None:
        """Refuse (NOPERM) a source that may not be removed, before any work is done on it."""
        fd, name = self._folder(path, root)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return  # reading it will say so
        finally:
            os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, "not a regular file (a symlink?)")

    def remove(self, path: str, root: str | None, identity: FileIdentity) -> None:
        """Unlink `path` if it is still the file described by `identity`; raises PrivspeechError otherwise."""
        fd, name = self._folder(path, root)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or FileIdentity.of(st) != identity:
                raise _refuse(path, "it changed after it was encrypted (replaced, rewritten or touched)")
            os.unlink(name, dir_fd=fd)
            os.fsync(fd)
        except FileNotFoundError:
            raise _refuse(path, "it is gone already") from None
        except OSError as exc:
            raise _refuse(path, exc.strerror or str(exc)) from None
        finally:
            os.close(fd)

    def _folder(self, path: str, root: str | None) -> tuple[int, str]:
        """A descriptor of `path`'s folder, reached from a root without following links, and the file's name."""
        target = os.path.abspath(path)
        roots = ([os.path.abspath(root)] if root else []) + self.extra_roots
        for base in roots:
            if target == base:  # a file named on the command line is its own root
                folder, name = os.path.split(target)
                return _open(folder, path), name
            prefix = base if base.endswith("/") else base + "/"
            if target.startswith(prefix):
                *folders, name = target[len(prefix):].split("/")
                fd = _open(base, path)
                for part in folders:
                    try:
                        child = os.open(part, _DIR | os.O_NOFOLLOW, dir_fd=fd)
                    except OSError as exc:
                        os.close(fd)
                        raise _refuse(path, f"{part} on the way is a symlink or not a folder"
                                      if exc.errno in (errno.ELOOP, errno.ENOTDIR) else
                                      exc.strerror or str(exc)) from None
                    os.close(fd)
                    fd = child
                return fd, name
        raise NotPermitted(f"{path}: not removed: outside the folders its input came from",
                           hint="--remove-source deletes only files inside the folders given, the file named or "
                                "the manifest's own folder; widen it explicitly with --source-root DIR")


def _open(folder: str, path: str) -> int:
    try:
        return os.open(folder, _DIR)
    except OSError as exc:
        raise _refuse(path, f"its folder cannot be opened ({exc.strerror})") from None


def _refuse(path: str, why: str) -> PrivspeechError:
    return NotPermitted(f"{path}: source kept: {why}", hint="nothing was deleted")
