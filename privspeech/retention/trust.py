"""Whose word prune takes: the ownership and mode rules sshd applies to ``authorized_keys``.

A manifest (or a rewrite file) is trusted only when it, and every folder from ROOT down to it (ROOT included),
passes :func:`privspeech.trust.problem`: owned by the user running prune or by root, and not writable by group
or others. Anyone else who could have written it could make prune delete what they cannot delete themselves.
"""

from __future__ import annotations

from ..trust import problem as _problem
from .statx import Stat
from .walk import Parts, Tree, show


def problem(st: Stat) -> str | None:
    """Why a file or folder with this stat is not trusted, or None."""
    return _problem(st.uid, st.mode)


def folders_problem(tree: Tree, folder: Parts) -> str | None:
    """Why a file in `folder` is not trusted because of the folders from ROOT down to it (as walked), or None."""
    for depth in range(len(folder) + 1):
        why = problem(tree.dirs[folder[:depth]])
        if why:
            return f"folder {show(folder[:depth]) if depth else 'ROOT'} is {why}"
    return None
