"""What passes between the runner (:mod:`privspeech.pipeline`) and a stage's per-record function
(:mod:`privspeech.stages`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import PrivspeechError
from .manifest import Record
from .removal import FileIdentity


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
