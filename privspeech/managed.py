"""Folders privspeech manages: the `.privspeech/` marker that `init` writes and `--out-dir` creates, and the kinds of
files privspeech reads and writes in them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import CannotWrite
from .fsutil import make_dirs, write_bytes
from .timeutil import format_ts, now

STATE_DIR = ".privspeech"
MARKER = "root.json"
AUDIO_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".aifc", ".au",
                            ".snd", ".caf", ".w64", ".rf64", ".mp3", ".sph", ".nist"})
AGE_SUFFIX = ".age"  # encrypted outputs: the input's whole name plus .age (a/0003.wav.age)


def is_managed_file(name: str) -> bool:
    """True for a file name of a kind privspeech reads and writes: audio (by suffix, any case) or age-encrypted."""
    return os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES or name.endswith(AGE_SUFFIX)


def state_dir(root: str | os.PathLike) -> Path:
    return Path(root) / STATE_DIR


def is_marked(root: str | os.PathLike) -> bool:
    """True when `root` holds a regular (not symlinked) privspeech marker."""
    marker = state_dir(root) / MARKER
    return not state_dir(root).is_symlink() and marker.is_file() and not marker.is_symlink()


def mark(root: str | os.PathLike) -> Path:
    """Create `root` if needed and mark it as managed by privspeech (idempotent). Returns the state folder."""
    root = make_dirs(root)
    state = make_dirs(state_dir(root))
    marker = state / MARKER
    if not marker.exists():
        body = {"privspeech": 1, "created_at": format_ts(now()),
                "note": "this folder is managed by privspeech; prune acts only inside marked folders"}
        try:
            write_bytes(marker, (json.dumps(body) + "\n").encode())
        except CannotWrite:
            if not marker.exists():  # else another run wrote it first: fine
                raise
    return state
