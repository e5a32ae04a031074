"""Files: safe writing (every output goes through a locked 0600 temporary file, fsync and an atomic rename),
their sha256, and the name that stands for stdin or stdout."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import CannotWrite, from_os_error, TryAgain, UsageError

TMP_SUFFIX = ".privspeech-tmp"
STDIO = "-"  # as an input path: stdin; as an output path: stdout
HASH_CHUNK = 1 << 20


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def refuse_existing(dest: Path, force: bool) -> None:
    """Raise CANTCREAT when `dest` exists and `force` is not set."""
    if not force and os.path.lexists(dest):
        raise CannotWrite(f"{dest}: output already exists", hint="use --force to overwrite it")


@contextlib.contextmanager
def atomic_write(dest: str | os.PathLike, *, force: bool = False, private: bool = False) -> Iterator[BinaryIO]:
    """Open a binary file (read-write) that appears at `dest` complete, or not at all.

    The data goes to ``.NAME.privspeech-tmp`` in the destination folder (mode 0600, held under an exclusive
    ``flock`` while it is written), is fsynced, and is renamed over `dest` only when the block ends without
    an exception. Any exception, Ctrl-C included, removes the temporary file; one left by a writer that was
    killed (its lock died with it) is removed by the next write to `dest`. Without `force` an existing `dest`
    is never replaced, even one created meanwhile.

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
    tmp = temp_path(dest)
    fh = os.fdopen(_claim(tmp, dest), "w+b")
    try:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        if not private:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
        _publish(tmp, dest, force)
        fsync_dir(dest.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # still ours: nobody removes a temporary file whose lock is held
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):  # writing, flushing, fsync
            raise from_os_error(exc, str(dest), writing=True) from None
        raise
    finally:
        fh.close()


def temp_path(dest: Path) -> Path:
    """The temporary name `dest` is written under (hashed when the name would be too long)."""
    name = f".{dest.name}{TMP_SUFFIX}"
    if len(os.fsencode(name)) > 255:
        name = f".{hashlib.sha256(os.fsencode(dest.name)).hexdigest()[:40]}{TMP_SUFFIX}"
    return dest.parent / name


def _claim(tmp: Path, dest: Path) -> int:
    """Create `tmp` (0600, never through a link) and lock it; a dead writer's leftover is removed first."""
    for _ in range(5):
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            if not remove_stale(tmp):
                raise TryAgain(f"{dest}: another run is writing it ({tmp.name} is in use or not ours)",
                               hint="wait for that run to finish, then run again") from None
            continue
        except OSError as exc:
            raise from_os_error(exc, str(dest), writing=True) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _names(fd, tmp):
                return fd
        except BlockingIOError:  # a cleaner took it between our open and our lock, and is removing it
            pass
        os.close(fd)
    raise TryAgain(f"{dest}: could not claim {tmp.name}", hint="is another run writing it?")


def remove_stale(tmp: str | os.PathLike) -> bool:
    """Remove the temporary file `tmp` if its writer is gone (no lock held on it). True when no such file is
    left; False when a live writer holds it, or it is not a regular file of this user's."""
    try:
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if _names(fd, tmp):
            os.unlink(tmp)
        return True
    except FileNotFoundError:
        return True
    finally:
        os.close(fd)


def _names(fd: int, path: str | os.PathLike) -> bool:
    """True when `path` still names the file open on `fd`."""
    try:
        st, here = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def _publish(tmp: str, dest: Path, force: bool) -> None:
    if force:
        os.replace(tmp, dest)
        return
    try:  # link() refuses an existing name, so a file created since the check is never clobbered
        os.link(tmp, dest)
    except FileExistsError:
        raise CannotWrite(f"{dest}: output already exists", hint="use --force to overwrite it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise from_os_error(exc, str(dest), writing=True) from None
        refuse_existing(dest, force)
        os.replace(tmp, dest)
    else:
        os.unlink(tmp)


def fsync_dir(folder: str | os.PathLike | int) -> None:
    """fsync a folder (given by name, or as a descriptor open on it) so that the names just created in it survive a
    crash; a filesystem that cannot is passed over."""
    with contextlib.suppress(OSError):
        if isinstance(folder, int):
            os.fsync(folder)
            return
        fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
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
        raise CannotWrite(f"{folder}: exists and is not a folder", hint="choose another --out-dir") from None
    except OSError as exc:
        raise from_os_error(exc, str(folder), writing=True) from None
    return folder


def binary_stdout() -> BinaryIO:
    """stdout for binary data, always buffered (a raw stdout, as under ``python -u``, may take only part of a
    write and say so only in its return value); refuses a terminal. Flush it when done."""
    if sys.stdout.isatty():
        raise UsageError("refusing to write binary output to the terminal",
                         hint="redirect stdout to a file or a pipe, or give -o FILE")
    sys.stdout.flush()
    try:
        return open(sys.stdout.fileno(), "wb", closefd=False)
    except (AttributeError, ValueError, OSError):  # a stream without a descriptor (tests)
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


def sha256_stream(fh: BinaryIO) -> str:
    """sha256 of what remains in an open binary file."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    try:
        with open(path, "rb") as fh:
            return sha256_stream(fh)
    except OSError as exc:
        raise from_os_error(exc, str(path)) from None
