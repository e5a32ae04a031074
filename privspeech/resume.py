"""One run's use of its out-dir journal (:mod:`privspeech.journal`): what makes reruns resume and crashes recoverable.

Every output is claimed in the journal before its work starts and journaled when finished, so after kill -9 at any
point a rerun resumes what was finished, replaces what a dead run published but never journaled, and prints one
record per input. A consumed input is removed only after its output's journal line is fsynced, and what became
of it is journaled; a rerun resumes records whose inputs are already gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from .errors import NotFound, PrivspeechError
from .fsutil import STDIO, remove_stale, temp_path
from .inputs import Item
from .journal import Journal
from .manifest import Record
from .removal import FileIdentity
from .stages import Stage
from .task import Outcome, Task


def fingerprint(stage: Stage, record: Record) -> str:
    """Identifies an output: the stage, its settings, the exact input (by sha256, else path/size/mtime) and the
    record's id and speaker (a keyed conversion depends on them)."""
    if record.privspeech.sha256:
        source = record.privspeech.sha256
    else:
        try:
            st = os.stat(record.audio_filepath)
            source = f"{os.path.abspath(record.audio_filepath)}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            source = record.audio_filepath
    blob = json.dumps({"stage": stage.name, "params": stage.params, "input": source, "id": record.id,
                       "speaker": record.speaker}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class Resume:
    """Claims, finishes and releases the outputs of one run of `stage` in `out_dir`'s journal."""

    def __init__(self, out_dir: Path, stage: Stage, force: bool):
        self.journal = Journal(out_dir)
        self.stage, self.force = stage, force
        self._fps: dict[int, str] = {}
        self._claimed: dict[int, str] = {}  # item index -> dest claimed and not yet settled

    def claim(self, item: Item, dest: str, task: Task) -> Outcome | None:
        """The outcome of an identical earlier run that finished `dest`; else None, with `dest` claimed for `task`
        (told to replace what a killed run published there and never journaled)."""
        done = self._resumable(item, dest)
        if done is not None:
            with contextlib.suppress(OSError):
                remove_stale(temp_path(Path(dest)))
            return done
        if not task.force and self.journal.orphan(dest):
            task.warn(f"{dest}: published by an earlier run that was killed before journaling it; replacing it")
            task.force = True
        self.journal.plan(dest, self._fps[item.index])
        self._claimed[item.index] = dest
        return None

    def _resumable(self, item: Item, dest: str) -> Outcome | None:
        """The finished outcome of an identical earlier run at `dest` (also for an input it consumed), if any."""
        src = item.record.audio_filepath
        entry = None
        if not item.record.privspeech.sha256 and not os.path.lexists(src):
            entry = self.journal.consumed(src)  # an input an earlier run removed
            if entry is not None and (entry.get("dest") != self.journal.key(dest)
                                      or entry.get("stage") != self.stage.identity):
                raise NotFound(f"{src}: removed by an earlier run into {self.journal.out_dir} with other "
                               f"settings", hint="rerun with the settings of that run")
            if entry is not None:
                self._fps[item.index] = entry["fp"]
                entry = self.journal.finished(dest, entry["fp"])
        if item.index not in self._fps:
            self._fps[item.index] = fingerprint(self.stage, item.record)
        if entry is None:
            entry = self.journal.finished(dest, self._fps[item.index])
        if entry is None or self.force:
            return None
        try:
            record = Record.from_dict(entry["record"], self.journal.out_dir)
        except (ValueError, KeyError):
            return None
        source = entry.get("source")
        return Outcome("resumed", record, [], FileIdentity.from_dict(source) if source else None)

    def finish(self, item: Item, outcome: Outcome) -> None:
        """Journal a finished output; the line is fsynced when it names a source to remove next."""
        record = outcome.value
        fp = self._fps.get(item.index)
        if fp is None or record.audio_filepath == STDIO:
            return
        source = None
        if outcome.consumed is not None and self.stage.remover is not None:
            source = {"path": os.path.abspath(item.record.audio_filepath), **outcome.consumed.to_dict()}
        self.journal.finish(record.audio_filepath, fp, self.stage.identity, record.to_dict(self.journal.out_dir),
                            source)
        self._claimed.pop(item.index, None)

    def source_settled(self, item: Item) -> bool:
        """Whether an earlier run already removed the item's consumed input (journaling it now when that run was
        killed before it could)."""
        src = os.path.abspath(item.record.audio_filepath)
        if src in self.journal.removed:
            return True
        if not os.path.lexists(src) and self.journal.consumed(src):
            self.journal.outcome(src, removed=True)
            return True
        return False

    def source_outcome(self, item: Item, kept: PrivspeechError | None) -> None:
        """Journal that the item's consumed input was removed, or why it stays."""
        self.journal.outcome(os.path.abspath(item.record.audio_filepath), removed=kept is None,
                             why=kept.message if kept is not None else None)

    def release(self, index: int, *, failed: bool = False) -> None:
        """Drop the claim on the output of the item at `index`: the record failed (what is at its output, if
        anything, is not this run's), or it never ran and nothing was published there."""
        dest = self._claimed.pop(index, None)
        if dest is not None and (failed or not os.path.lexists(dest)):
            with contextlib.suppress(PrivspeechError):
                self.journal.release(dest)

    def close(self, *, keep_claims: bool = False) -> None:
        """Drop the claims of records that never ran (an output a worker published meanwhile keeps its claim, so
        the next run knows it for an orphan), and close the journal. `keep_claims`: keep them all, as work that was
        cancelled on a cluster may still publish its output later."""
        if not keep_claims:
            for index in list(self._claimed):
                self.release(index)
        self.journal.close()
