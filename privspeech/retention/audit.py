"""The append-only audit log of prune decisions (``ROOT/.privspeech/audit.jsonl`` by default)."""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any

from ..errors import CannotWrite, from_os_error
from ..timeutil import format_ts, now
from .walk import Root

AUDIT_NAME = "audit.jsonl"
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class AuditLog:
    """JSONL lines appended (O_APPEND, 0600, never through a symlink) and fsynced in batches.

    Every line carries the run id and the time. Lines are written and fsynced by :meth:`flush` (prune calls it
    with each batch of intents, before deleting), every `batch` lines, and when the log is closed. `identity`
    is the log file's (device, inode).
    """

    def __init__(self, root: Root, run: str, path: str | os.PathLike | None = None, *, batch: int = 1000):
        try:
            if path is None:
                self.fd = os.open(AUDIT_NAME, _FLAGS, 0o600, dir_fd=root.state_fd)
            else:
                self.fd = os.open(path, _FLAGS, 0o600)
        except OSError as exc:
            raise from_os_error(exc, f"audit log {path or AUDIT_NAME}", writing=True) from None
        st = os.fstat(self.fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(self.fd)
            raise CannotWrite(f"audit log {path}: not a regular file")
        self.identity = (st.st_dev, st.st_ino)
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
        self._lines.append(f"{self._prefix}, {body[1:]}\n" if body != "{}" else f"{self._prefix}}}\n")
        if len(self._lines) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines and fsync."""
        data = memoryview("".join(self._lines).encode())
        self._lines = []
        try:
            while data:
                data = data[os.write(self.fd, data):]
            os.fsync(self.fd)
        except OSError as exc:
            raise from_os_error(exc, "audit log", writing=True) from None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            os.close(self.fd)
