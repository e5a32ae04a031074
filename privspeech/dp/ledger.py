"""The dataset's DP ledger: one JSON object per release in ``.privspeech/dp-ledger.jsonl``.

Releases about the whole dataset (``privspeech stats``) charge every speaker, so they are kept beside
the data rather than in any one record. Appends are serialised by an advisory lock and follow the rule of
:mod:`privspeech.appendlog`: an entry is fsynced before :func:`append` returns (so before the release it accounts
for is printed), and a line a crash cut short is passed over by :func:`read`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..appendlog import AppendLog, read_lines
from ..managed import state_dir
from ..errors import DataError, NotFound
from ..fsutil import make_dirs
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
    entries = []
    for lineno, line in read_lines(path):
        try:
            entry = json.loads(line)
        except ValueError as exc:  # not JSON, or not UTF-8
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            raise DataError(f"{path}:{lineno}: bad ledger line: {reason}") from None
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
                        hint="wait for it to finish and run again"), AppendLog(state / LEDGER, private=False) as log:
        log.append_jsonl([entry], sync=True)
    return entry
