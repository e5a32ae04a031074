"""Safe file writing: every output goes through a 0600 temporary file, fsync and an atomic rename."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import ExitStatus, PrivspeechError, from_os_error

TMP_SUFFIX = ".privspeech-tmp"


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def refuse_existing(dest: Path, force: bool) -> None:
    """Raise CANTCREAT when `dest` exists and `force` is not set."""
    if not force and os.path.lexists(dest):
        raise PrivspeechError(f"{dest}: output already exists", hint="use --force to overwrite it",
                              status=ExitStatus.CANTCREAT)


@contextlib.contextmanager
def atomic_write(dest: str | os.PathLike, *, force: bool = False, private: bool = False) -> Iterator[BinaryIO]:
    """Open a binary file (read-write) that appears at `dest` complete, or not at all.

    The data goes to a temporary file in the destination folder (mode 0600), is fsynced, and is renamed
    over `dest` only when the block ends without an exception. Any exception, Ctrl-C included, removes
    the temporary file. Without `force` an existing `dest` is never replaced, even one created meanwhile.

    Parameters
    ----------
    dest : path
        The final file name.
    force : bool
        Replace an existing file.
    private : bool
        Keep the final file at mode 0600 (secrets, decrypted audio); otherwise 0666 less the umask.
    """
    dest = Path(dest)
    refuse_existing(dest, force)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TMP_SUFFIX, dir=dest.parent or ".")
    except OSError as exc:
        raise from_os_error(exc, str(dest), writing=True) from None
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if not private:
            os.chmod(tmp, 0o666 & ~_umask())
        _publish(tmp, dest, force)
        _fsync_dir(dest.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):  # writing, flushing, fsync
            raise from_os_error(exc, str(dest), writing=True) from None
        raise


def _publish(tmp: str, dest: Path, force: bool) -> None:
    if force:
        os.replace(tmp, dest)
        return
    try:  # link() refuses an existing name, so a file created since the check is never clobbered
        os.link(tmp, dest)
    except FileExistsError:
        raise PrivspeechError(f"{dest}: output already exists", hint="use --force to overwrite it",
                              status=ExitStatus.CANTCREAT) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise from_os_error(exc, str(dest), writing=True) from None
        refuse_existing(dest, force)
        os.replace(tmp, dest)
    else:
        os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(dest: str | os.PathLike, data: bytes, *, force: bool = False, private: bool = False) -> None:
    """Write `data` to `dest` atomically (see :func:`atomic_write`)."""
    with atomic_write(dest, force=force, private=private) as fh:
        fh.write(data)


def make_dirs(folder: str | os.PathLike) -> Path:
    """Create `folder` and its parents, translating failures to CANTCREAT."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise PrivspeechError(f"{folder}: exists and is not a folder", hint="choose another --out-dir",
                              status=ExitStatus.CANTCREAT) from None
    except OSError as exc:
        raise from_os_error(exc, str(folder), writing=True) from None
    return folder


def binary_stdout() -> BinaryIO:
    """stdout for binary data; refuses a terminal."""
    if sys.stdout.isatty():
        raise PrivspeechError("refusing to write binary data to a terminal",
                              hint="redirect stdout to a file or pipe, or use -o FILE", status=ExitStatus.USAGE)
    return sys.stdout.buffer


def check_private(path: Path, what: str) -> list[str]:
    """Return warnings when a secret file is readable by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if mode & 0o077:
        return [f"{what} {path} is readable by group or others (mode {mode & 0o777:o}); run: chmod 600 {path}"]
    return []
