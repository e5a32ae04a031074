"""Lock files that let one run at a time through: an exclusive ``flock`` waited for up to a timeout."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Iterator

from .errors import from_os_error, TryAgain

POLL = 0.05  # seconds between tries while another process holds the lock


@contextlib.contextmanager
def exclusive_lock(name: str | os.PathLike, *, dir_fd: int | None = None, shown: str | None = None,
                   wait: float = 0.0, who: str = "run", hint: str) -> Iterator[int]:
    """Hold an exclusive flock on the lock file `name` (relative to `dir_fd` when given) for the block, which gets
    its descriptor.

    The file is created 0600 and never opened through a symlink; its holder writes its pid there for the error
    others get. When another process holds the lock for longer than `wait` seconds: TryAgain naming the lock
    file (as `shown`, else `name`) and that holder (``another {who} (pid N)``), with `hint`. The kernel drops the
    lock when its process ends, so a killed run never leaves a stale lock.
    """
    shown = shown or os.fspath(name)
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise from_os_error(exc, shown, writing=True) from None
    try:
        _wait_for(fd, shown, time.monotonic() + max(wait, 0.0), who, hint)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield fd
    finally:
        os.close(fd)


def _wait_for(fd: int, shown: str, give_up: float, who: str, hint: str) -> None:
    """Take the flock on `fd`, trying every POLL seconds until the monotonic clock reaches `give_up`."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = give_up - time.monotonic()
            if left <= 0:
                raise TryAgain(f"{shown}: locked by another {who}{_holder(fd)}", hint=hint) from None
            time.sleep(min(POLL, left))
        except OSError as exc:
            raise from_os_error(exc, shown, writing=True) from None


def _holder(fd: int) -> str:
    """`` (pid N)`` as the lock's holder wrote it, or nothing when it has not (yet)."""
    with contextlib.suppress(OSError):
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if pid.isdigit():
            return f" (pid {pid})"
    return ""
