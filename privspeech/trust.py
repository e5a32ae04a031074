"""Whose word a file is: the ownership and mode rules sshd applies to ``authorized_keys`` (StrictModes).

privspeech deletes files only on the word of a file that nobody but the user running it (or root) could have
written: the file and every folder above it must be owned by that user or root and must not be writable by
group or others. ``prune`` applies the rule from ROOT down to each manifest, on the folders it walked
(:mod:`privspeech.retention.trust`). ``encrypt --remove-source`` applies it to a manifest and its folder, and
above that accepts a folder writable by others if it has the sticky bit (as ``/tmp``), where nobody else can
rename or replace what it holds.
"""

from __future__ import annotations

import os
import stat


def problem(uid: int, mode: int, *, sticky_ok: bool = False) -> str | None:
    """Why a file or folder owned by `uid` with `mode` could have been written by someone other than this user or
    root, as a phrase ("owned by uid 1000, ..."), or None. `sticky_ok`: a sticky folder may be writable."""
    euid = os.geteuid()
    if uid not in (euid, 0):
        return f"owned by uid {uid}, not by you (uid {euid}) or root"
    writers = [who for bit, who in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others")) if mode & bit]
    if writers and not (sticky_ok and stat.S_ISDIR(mode) and mode & stat.S_ISVTX):
        return f"writable by {' and '.join(writers)} (mode {stat.S_IMODE(mode):04o})"
    return None


def distrust(path: str | os.PathLike) -> str | None:
    """Why the file `path` could have been written by someone other than this user or root (the file itself or a
    folder on its real path), or None."""
    here = os.path.realpath(path)
    depth = 0
    while True:
        st = os.stat(here)
        why = problem(st.st_uid, st.st_mode, sticky_ok=depth > 1)
        if why is not None:
            return f"{here} is {why}"
        if here == "/":
            return None
        here, depth = os.path.dirname(here), depth + 1
