"""One prune at a time per ROOT: an exclusive flock on ``.privspeech/prune.lock``."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from ..managed import STATE_DIR
from ..lockfile import exclusive_lock
from .walk import Root

LOCK_NAME = "prune.lock"


@contextlib.contextmanager
def hold_lock(root: Root, *, wait: float = 0.0) -> Iterator[tuple[int, int]]:
    """Hold ROOT's prune lock for the block, which gets the lock file's (device, inode); TEMPFAIL naming the pid
    of another run that holds it longer than `wait` seconds (see :func:`privspeech.lockfile.exclusive_lock`)."""
    with exclusive_lock(LOCK_NAME, dir_fd=root.state_fd, shown=os.path.join(root.path, STATE_DIR, LOCK_NAME),
                        wait=wait, who="prune run", hint="wait for it, or pass --wait SECONDS") as fd:
        st = os.fstat(fd)
        yield st.st_dev, st.st_ino
