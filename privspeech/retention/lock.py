"""One prune at a time per ROOT: an exclusive flock on ``.privspeech/prune.lock``."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Iterator

from ..errors import TryAgain
from .walk import Root

LOCK_NAME = "prune.lock"


@contextlib.contextmanager
def hold_lock(root: Root, *, wait: float = 0.0) -> Iterator[tuple[int, int]]:
    """Hold ROOT's prune lock for the block, which gets the lock file's (device, inode); TEMPFAIL when another run
    holds it longer than `wait` seconds.

    The lock file (0600, opened without following links) records the holder's pid for the error message.
    The kernel drops the lock when the process ends, so a killed run never leaves a stale lock.
    """
    fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=root.state_fd)
    try:
        give_up = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = give_up - time.monotonic()
                if left <= 0:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                    raise TryAgain(f"{root.path}: another prune run (pid {holder}) holds the lock",
                                   hint="wait for it, or pass --wait SECONDS") from None
                time.sleep(min(0.05, left))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        st = os.fstat(fd)
        yield st.st_dev, st.st_ino
    finally:
        os.close(fd)
