"""What passes between the runner (:mod:`privspeech.pipeline`) and a stage's per-record function."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import PrivspeechError
from .manifest import Record
from .removal import FileIdentity, SourceRemover


@dataclass
class Task:
    """What a worker gets: the input record, where to write (None for stages without output files), options.

    `record_kept` is false when the record the work returns goes nowhere (single-file mode without
    --emit-manifest: neither printed nor journaled), so a stage may skip what only the record needs, such as the
    sha256 of a large output; the record it returns then has none.
    """

    record: Record
    dest: str | None
    force: bool = False
    record_kept: bool = True
    warnings: list[str] = field(default_factory=list)
    consumed: FileIdentity | None = None  # set by a stage that read its input whole and may have it removed

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@dataclass
class Outcome:
    """What became of one record: 'ok' (a new record), 'resumed' (an earlier run's) or 'error'."""

    kind: str
    value: Record | PrivspeechError
    warnings: list[str] = field(default_factory=list)
    consumed: FileIdentity | None = None


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: its op name, the per-record function, the settings that identify its output, the
    suffix its output files get (None: the stage writes no files, e.g. scan), whether its work is I/O
    bound (hashing, encryption: run in threads, which these libraries release the GIL for) rather than
    CPU bound in Python (DSP: run in worker processes), and the remover of inputs it consumes, if any."""

    name: str
    work: Callable[[Task], Record]
    params: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    io_bound: bool = False
    remover: SourceRemover | None = None

    @property
    def identity(self) -> str:
        """Names the stage and its settings (not its input) in the journal."""
        blob = json.dumps({"stage": self.name, "params": self.params}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()
