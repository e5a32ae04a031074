"""Whose word prune takes: the ownership and mode rules sshd applies to ``authorized_keys``.

A manifest (or a rewrite file) is trusted only when it, and every folder from ROOT down to it (ROOT included),
is owned by the user running prune or by root and is not writable by group or others. Anyone else who could
have written it could make prune delete what they cannot delete themselves.
"""

from __future__ import annotations

import os

from .statx import Stat
from .walk import Parts, Tree, show


def problem(st: Stat) -> str | None:
    """Why a file or folder with this stat is not trusted, or None."""
    euid = os.geteuid()
    if st.uid not in (euid, 0):
        return f"owned by uid {st.uid}, not by you (uid {euid}) or root"
    writers = [who for bit, who in ((0o020, "group"), (0o002, "others")) if st.mode & bit]
    if writers:
        return f"writable by {' and '.join(writers)} (mode {st.mode & 0o7777:04o})"
    return None


def folders_problem(tree: Tree, folder: Parts) -> str | None:
    """Why a file in `folder` is not trusted because of the folders from ROOT down to it (as walked), or None."""
    for depth in range(len(folder) + 1):
        why = problem(tree.dirs[folder[:depth]])
        if why:
            return f"folder {show(folder[:depth]) if depth else 'ROOT'} is {why}"
    return None
