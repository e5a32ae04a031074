"""The append-only audit log of prune decisions (``ROOT/.privspeech/audit.jsonl`` by default)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ..appendlog import AppendLog
from ..managed import STATE_DIR
from ..timeutil import format_ts, now
from .walk import Root

AUDIT_NAME = "audit.jsonl"


class AuditLog:
    """JSONL lines appended under the rule of :mod:`privspeech.appendlog` (0600, never through a symlink), fsynced
    in batches.

    Every line carries the run id and the time. Lines are written and fsynced by :meth:`flush` (prune calls it
    with each batch of intents, before deleting), every `batch` lines, and when the log is closed. `identity`
    is the log file's (device, inode).
    """

    def __init__(self, root: Root | None, run: str, path: str | os.PathLike | None = None, *, batch: int = 1000):
        if path is None and root is not None:
            self._log = AppendLog(AUDIT_NAME, dir_fd=root.state_fd,
                                  shown=f"audit log {os.path.join(root.path, STATE_DIR, AUDIT_NAME)}")
        else:
            self._log = AppendLog(path, shown=f"audit log {os.fspath(path)}")
        self.identity = self._log.identity
        self.run, self.batch, self._lines = run, batch, []
        self._second, self._prefix = -1, ""

    def write(self, entry: dict[str, Any]) -> None:
        """Append one entry (an event such as begin or end)."""
        self.write_json(json.dumps(entry))

    def write_json(self, body: str) -> None:
        """Append one entry given as the JSON text of an object."""
        second = int(time.time())
        if second != self._second:
            self._second, self._prefix = second, f'{{"run": "{self.run}", "at": "{format_ts(now())}"'
        self._lines.append(f"{self._prefix}, {body[1:]}" if body != "{}" else f"{self._prefix}}}")
        if len(self._lines) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines and fsync."""
        lines, self._lines = self._lines, []
        self._log.append_jsonl(lines, sync=True)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._log.close()
