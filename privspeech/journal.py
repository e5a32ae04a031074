"""The out-dir's journal (``DIR/.privspeech/journal.jsonl``): what makes reruns resume and crashes recoverable.

One JSON object per line, appended by the process that runs the batch under the rule of :mod:`privspeech.appendlog`:

- ``{"planned": DEST, "fp": ..., "at_ns": ...}``: this run may publish DEST; written before its work starts.
- ``{"dest": DEST, "fp": ..., "stage": ..., "size": ..., "mtime_ns": ..., "ino": ..., "record": {...}}``: DEST
  is finished; with ``"source": {"path": ..., <identity>}`` when the stage removes its input afterwards.
- ``{"released": DEST}``: the claim is dropped (the record failed, or never ran).
- ``{"removed": PATH}`` / ``{"kept": PATH, "why": ...}``: what became of a finished output's source.

A DEST that exists while its last line is ``planned`` was published by a run that died before journaling
it (kill -9 between the rename and the journal line): an orphan of this folder, which the next run replaces.
A DEST that exists with no claim at all is someone else's file and is never replaced without --force.
Planned lines need no fsync (a killed process loses nothing it wrote); finished lines that promise a source
removal are fsynced before the removal, and the journal when it is closed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from .appendlog import AppendLog, read_lines
from .managed import state_dir
from .errors import PrivspeechError

JOURNAL = "journal.jsonl"
CLOCK_SLACK_NS = 2_000_000_000  # an orphan's mtime may precede its claim by a coarse filesystem clock's step


class Journal:
    """The journal of one out-dir, loaded once and appended to while a batch runs."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.path = state_dir(out_dir) / JOURNAL
        self.done: dict[str, dict[str, Any]] = {}
        self.claims: dict[str, dict[str, Any]] = {}  # DEST -> its open "planned" line
        self.sources: dict[str, dict[str, Any]] = {}  # source path -> the finished line that consumed it
        self.removed: set[str] = set()
        for entry in read(self.path):
            self._apply(entry)
        self._log = AppendLog(self.path)

    def close(self) -> None:
        """fsync (a failure is passed over: no line of the run depends on it any more) and close."""
        with contextlib.suppress(PrivspeechError):
            self._log.sync()
        self._log.close()

    def key(self, dest: str) -> str:
        """DEST as the journal names it: relative to the out-dir."""
        return os.path.relpath(os.path.abspath(dest), os.path.abspath(self.out_dir))

    def finished(self, dest: str, fp: str) -> dict[str, Any] | None:
        """The finished line of an identical output at `dest`, if the file there is still the one written."""
        entry = self.done.get(self.key(dest))
        if not entry or entry.get("fp") != fp:
            return None
        try:
            st = os.stat(dest, follow_symlinks=False)
        except OSError:
            return None
        if (st.st_size, st.st_mtime_ns) != (entry.get("size"), entry.get("mtime_ns")) or \
                entry.get("ino", st.st_ino) != st.st_ino:
            return None
        return entry

    def consumed(self, source: str) -> dict[str, Any] | None:
        """The finished line whose stage consumed (and may have removed) the input file `source`."""
        return self.sources.get(os.path.abspath(source))

    def orphan(self, dest: str) -> bool:
        """True when `dest` exists, this folder's journal claimed it and never saw it finished: a run that was
        killed published it. Only a regular file of this user's, not older than the claim, qualifies."""
        claim = self.claims.get(self.key(dest))
        if claim is None:
            return False
        try:
            st = os.stat(dest, follow_symlinks=False)
        except OSError:
            return False
        return st.st_uid == os.geteuid() and st.st_mtime_ns >= claim.get("at_ns", 0) - CLOCK_SLACK_NS

    def plan(self, dest: str, fp: str) -> None:
        self._append({"planned": self.key(dest), "fp": fp, "at_ns": time.time_ns()})

    def release(self, dest: str) -> None:
        if self.key(dest) in self.claims:
            self._append({"released": self.key(dest)})

    def finish(self, dest: str, fp: str, stage: str, record: dict[str, Any],
               source: dict[str, Any] | None = None) -> None:
        """Journal a finished output (fsynced when it names a `source` to remove next)."""
        st = os.stat(dest)
        entry = {"dest": self.key(dest), "fp": fp, "stage": stage, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                 "ino": st.st_ino, "record": record}
        if source is not None:
            entry["source"] = source
        self._append(entry, sync=source is not None)

    def outcome(self, source: str, removed: bool, why: str | None = None) -> None:
        self._append({"removed": source} if removed else {"kept": source, "why": why})

    def _append(self, entry: dict[str, Any], *, sync: bool = False) -> None:
        self._log.append_jsonl([entry], sync=sync)
        self._apply(entry)

    def _apply(self, entry: dict[str, Any]) -> None:
        if "planned" in entry:
            self.claims[entry["planned"]] = entry
        elif "dest" in entry:
            self.done[entry["dest"]] = entry
            self.claims.pop(entry["dest"], None)
            source = entry.get("source")
            if isinstance(source, dict) and isinstance(source.get("path"), str):
                self.sources[source["path"]] = entry
        elif "released" in entry:
            self.claims.pop(entry["released"], None)
        elif "removed" in entry:
            self.removed.add(entry["removed"])


def read(path: Path) -> list[dict[str, Any]]:
    """The journal's well-formed lines (a fragment left by a crash, or a line not understood, is passed over)."""
    entries = []
    for _, line in read_lines(path):
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and any(isinstance(entry.get(k), str) for k in
                                               ("planned", "dest", "released", "removed", "kept")):
                entries.append(entry)
    return entries


def consumed_sources(out_dir: str | os.PathLike) -> set[str]:
    """Paths of inputs that stages writing into `out_dir` consumed (and may have removed)."""
    return {entry["source"]["path"] for entry in read(state_dir(out_dir) / JOURNAL)
            if isinstance(entry.get("source"), dict) and isinstance(entry["source"].get("path"), str)}
