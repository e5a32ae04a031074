"""Whose word a file is: the ownership and mode rules sshd applies to ``authorized_keys`` (StrictModes).

privspeech deletes files only on the word of a file that nobody but the user running it (or root) could have
written: the file and every folder above it must be owned by that user or root and must not be writable by
group or others. A folder writable by others is accepted only with the sticky bit (as ``/tmp``), where nobody
else can rename or replace what it holds.
"""

from __future__ import annotations

import os
import stat


def distrust(path: str | os.PathLike) -> str | None:
    """Why `path` could have been written by someone other than this user or root; None when it could not."""
    uid = os.geteuid()
    here = os.path.realpath(path)
    st = os.stat(here)
    why = _unsafe(st, uid, here, folder=False)
    while why is None and here != "/":
        here = os.path.dirname(here)
        why = _unsafe(os.stat(here), uid, here, folder=True)
    return why


def _unsafe(st: os.stat_result, uid: int, path: str, *, folder: bool) -> str | None:
    if st.st_uid not in (uid, 0):
        return f"{path} is owned by uid {st.st_uid}, not by you (uid {uid}) or root"
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not (folder and st.st_mode & stat.S_ISVTX):
        return f"{path} is writable by {'others' if st.st_mode & stat.S_IWOTH else 'its group'} " \
               f"(mode {stat.S_IMODE(st.st_mode):o})"
    return None
