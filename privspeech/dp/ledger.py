"""The dataset's DP ledger: one JSON object per release in ``.privspeech/dp-ledger.jsonl``.

Releases about the whole dataset (``privspeech stats``) charge every speaker, so they are kept beside
the data rather than in any one record. Appends are serialised by an advisory lock and published by an
atomic rewrite, so a crash leaves the old ledger or the new one, never a torn line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..dataset import state_dir
from ..errors import DataError, from_os_error, NotFound
from ..fsutil import atomic_write, make_dirs
from ..lockfile import exclusive_lock
from ..manifest import make_op

LEDGER = "dp-ledger.jsonl"
LOCK = "dp-ledger.lock"
LOCK_WAIT = 10.0  # seconds


def ledger_path(root: str | os.PathLike) -> Path:
    return state_dir(root) / LEDGER


def read(root: str | os.PathLike) -> list[dict[str, Any]]:
    """The ledger's entries in order (none when the dataset has no ledger yet)."""
    path = ledger_path(root)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise from_os_error(exc, str(path)) from None
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: bad ledger line: {exc.msg}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("op"), str):
            raise DataError(f"{path}:{lineno}: a ledger line must be an object with an 'op' name")
        entries.append(entry)
    return entries


def append(root: str | os.PathLike, op: str, **fields: Any) -> dict[str, Any]:
    """Append one entry (:func:`privspeech.manifest.make_op` adds time and version); returns it."""
    entry = make_op(op, **fields)
    if not Path(root).is_dir():
        raise NotFound(f"{root}: no such dataset folder", hint="--dataset names the folder the data is in")
    state = make_dirs(state_dir(root))  # no root.json marker: marking (which lets prune act) is for `init`
    with exclusive_lock(state / LOCK, wait=LOCK_WAIT, who="run writing the DP ledger",
                        hint="wait for it to finish and run again"):
        path = state / LEDGER
        try:
            old = path.read_bytes()
        except FileNotFoundError:
            old = b""
        except OSError as exc:
            raise from_os_error(exc, str(path)) from None
        if old and not old.endswith(b"\n"):
            old += b"\n"
        with atomic_write(path, force=True) as fh:
            fh.write(old + (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
    return entry
