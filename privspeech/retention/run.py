"""A prune run: lock ROOT, plan, carry out the plan (or only report it), log every action, rewrite manifests.

The audit log is written ahead of the deletions: before each batch of up to ``BATCH`` deletions (and before each
manifest rewrite) an ``intent`` line per file is appended and fsynced; each outcome follows. After a crash at any
moment, every file that may be gone is named by an intent line.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ExitStatus, PrivspeechError
from .audit import AuditLog
from .lock import hold_lock
from .policy import Action, Plan, Policy, make_plan
from .rewrite import Left
from .walk import Remover, Root, Unsafe, open_root, show

Sink = Callable[[Action], None]
Intend = Callable[[list[dict]], None]
STOPPED = "--max-runtime reached"
BATCH = 64  # deletions per fsynced batch of intent lines


@dataclass
class PruneSummary:
    """Counts of actions by (action, kind), bytes freed, whether --max-runtime stopped the run, and warnings
    (manifests, lines and folders that were not read; manifests left as they were)."""

    counts: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    freed: int = 0
    stopped: bool = False
    seconds: float = 0.0

    @property
    def status(self) -> ExitStatus:
        if any(action == "error" for action, _ in self.counts):
            return ExitStatus.FAILED
        return ExitStatus.TEMPFAIL if self.stopped else ExitStatus.OK

    def text(self, dry_run: bool) -> str:
        """One line for people, e.g. 'prune: deleted 12 files (3.1 MB), 4 records; destroyed 1 key; kept 2 files'."""
        parts = []
        for action in ("would-delete", "would-destroy", "deleted", "destroyed", "kept", "skipped", "error"):
            items = [f"{n} {kind}{'s' if n != 1 else ''}" for (a, kind), n in sorted(self.counts.items())
                     if a == action]
            if items:
                size = f" ({self.freed / 1e6:.1f} MB)" if action in ("deleted", "would-delete") and self.freed else ""
                parts.append(f"{action.replace('-', ' ')} {', '.join(items)}{size}")
        tail = "; stopped at --max-runtime, run again to finish" if self.stopped else ""
        return f"prune{' (dry run)' if dry_run else ''}: {'; '.join(parts) or 'nothing to do'} " \
               f"in {self.seconds:.1f} s{tail}"


def prune(root: str | os.PathLike, policy: Policy, *, dry_run: bool = False, wait: float = 0.0,
          max_runtime: float | None = None, audit_log: str | os.PathLike | None = None,
          emit: Callable[[str], None] | None = None) -> PruneSummary:
    """Prune ROOT under `policy`: the whole run, as the CLI does it.

    Parameters
    ----------
    root : path
        A folder marked by ``privspeech init`` (refuses ``/``, the home folder and unmarked folders).
    policy : Policy
        What expires.
    dry_run : bool
        Report the plan (``would-delete``) without changing anything but the audit log.
    wait : float
        Seconds to wait for another run's lock before failing with TEMPFAIL.
    max_runtime : float, optional
        Seconds after which the run stops cleanly; the rest is reported as skipped.
    audit_log : path, optional
        Where to append the audit lines instead of ``ROOT/.privspeech/audit.jsonl``.
    emit : callable, optional
        Called with each action as it is settled, as the JSON text of one object (the CLI prints these lines).

    Returns
    -------
    PruneSummary
    """
    started = time.monotonic()
    deadline = started + max_runtime if max_runtime is not None else None
    with open_root(root) as handle, hold_lock(handle, wait=wait) as lock:
        audit = AuditLog(handle, uuid.uuid4().hex, audit_log)
        try:
            audit.write({"event": "begin", "root": os.path.abspath(handle.path), "dry_run": dry_run,
                         "pid": os.getpid(), "policy": policy.describe()})
            try:
                plan = make_plan(handle, policy, deadline=deadline, dry_run=dry_run,
                                 reserved={audit.identity: "prune's audit log", lock: "prune's lock file"})
            except PrivspeechError as exc:
                audit.write({"event": "abort", "error": exc.message, "status": int(exc.status)})
                raise

            def sink(action: Action) -> None:
                line = action.to_json()
                audit.write_json(line)
                if emit is not None:
                    emit(line)

            def intend(entries: list[dict]) -> None:
                for entry in entries:
                    audit.write({"event": "intent", **entry})
                audit.flush()

            summary = execute(handle, plan, dry_run=dry_run, deadline=deadline, sink=sink, intend=intend)
            summary.seconds = time.monotonic() - started
            audit.write({"event": "end", "status": int(summary.status), "seconds": round(summary.seconds, 3),
                         "counts": {f"{a} {k}": n for (a, k), n in sorted(summary.counts.items())}})
        finally:
            audit.close()
    return summary


def execute(root: Root, plan: Plan, *, dry_run: bool = False, deadline: float | None = None,
            sink: Sink | None = None, intend: Intend | None = None) -> PruneSummary:
    """Carry out `plan` (or, with `dry_run`, only report it), handing each settled action to `sink`.

    Each deletion re-opens its folders from ROOT without following links and re-checks device, inode and mount
    (see :class:`~privspeech.retention.walk.Remover`); anything changed since planning becomes an error and is
    left alone. Before each batch of up to ``BATCH`` deletions, `intend` gets what the batch deletes
    (``{"kind", "path"}``), and before each manifest rewrite the manifest and the lines it drops; it must make
    them durable before it returns. A record leaves its manifest only when all its planned deletions happened.
    """
    summary = PruneSummary()
    intend = intend or (lambda entries: None)

    def settle(action: Action) -> None:
        summary.counts[action.action, action.kind] += 1
        if action.action in ("deleted", "would-delete") and action.size:
            summary.freed += action.size
        if sink is not None:
            sink(action)

    for note in plan.notes:
        summary.warnings.append(_warning(note))
        settle(note)
    steps = plan.files + plan.dirs
    deletions = [] if dry_run else [a for a in steps if a.action == "would-delete"]
    done = announced = 0
    with Remover(root, plan.tree) as fs:
        for action in steps:
            if action.action == "would-delete" and not dry_run:
                summary.stopped = summary.stopped or (deadline is not None and time.monotonic() > deadline)
                if done == announced and not summary.stopped:
                    announced = min(done + BATCH, len(deletions))
                    intend([{"kind": a.kind, "path": a.path} for a in deletions[done:announced]])
                done += 1
                _carry_out(fs, action, summary.stopped)
            settle(action)
        by_manifest: dict = {}
        for record in plan.records:
            by_manifest.setdefault(record.parts, []).append(record)
        for parts, records in by_manifest.items():
            if not dry_run:
                for record in records:
                    if record.action == "would-delete":
                        _judge(record)
            deleted = [r for r in records if r.action == "deleted"]
            if deleted:
                _rewrite(fs, plan, parts, deleted, intend, summary)
            for record in records:
                settle(record)
    return summary


def _rewrite(fs: Remover, plan: Plan, parts, deleted: list[Action], intend: Intend, summary: PruneSummary) -> None:
    """Drop the deleted records' lines from their manifest; when it cannot be done now, say why on each record."""
    drop = {r.reason["line"] for r in deleted}
    intend([{"kind": "manifest", "path": show(parts), "drop": sorted(drop)}])
    try:
        plan.manifests[parts].rewrite(fs, drop)
    except Left as exc:
        summary.warnings.append(f"{show(parts)}: not rewritten now, {exc}; a later run removes the pruned lines")
        for record in deleted:
            record.action = "skipped"
            record.detail = f"its files are deleted but the line stays until a later run: {show(parts)}: {exc}"
    except (Unsafe, OSError, PrivspeechError) as exc:
        for record in deleted:
            record.action, record.detail = "error", f"manifest not rewritten: {exc}"


def _warning(note: Action) -> str:
    """The stderr line for an action about something prune did not read."""
    if note.kind == "line":
        return f"{note.path}:{note.reason['line']}: {note.detail}"
    what = {"manifest": "manifest", "dir": "folder"}[note.kind]
    return f"{note.path}: {what} {'skipped' if note.action == 'skipped' else 'not read'}: {note.detail}"


def _carry_out(fs: Remover, action: Action, stopped: bool) -> None:
    if stopped:
        action.action, action.detail = "skipped", STOPPED
        return
    try:
        if action.kind == "dir":
            fs.rmdir(action.parts)
        else:
            fs.unlink(action.parts)
        action.action = "deleted"
    except Unsafe as exc:
        action.action, action.detail = "error", f"left alone: {exc}"
    except FileNotFoundError:
        action.action, action.detail = "skipped", "already gone"
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and action.kind == "dir":
            action.action, action.detail = "skipped", "no longer empty"
        else:
            action.action, action.detail = "error", exc.strerror or str(exc)


def _judge(record: Action) -> None:
    failed = [n for n in record.needs if n.action != "deleted" and n.detail != "already gone"]
    if not failed:
        record.action = "deleted"
    elif all(n.detail == STOPPED for n in failed):
        record.action, record.detail = "skipped", f"{STOPPED} before all its files were deleted; the record stays"
    else:
        record.action = "error"
        record.detail = f"{len(failed)} of its files not deleted ({failed[0].path}: {failed[0].detail}); " \
                        "the record stays"
