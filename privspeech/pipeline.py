"""The per-record runner every stage uses.

A stage (:class:`privspeech.stages.Stage`) has a top-level function ``work(task, settings) -> Record`` (picklable,
so it runs in worker processes). The runner takes work items (see :mod:`privspeech.inputs`), places each output
(:mod:`privspeech.placement`), skips work an identical earlier run already finished and journals what this run
finishes (:mod:`privspeech.resume`), maps the work over an executor (:mod:`privspeech.executors`), prints the
resulting records to stdout in input order, and reports failures without stopping the batch. A stage that consumes
its input (encrypt --remove-source) has the input removed by the runner, in order, only after the output's journal
line is fsynced (:mod:`privspeech.removal`).

With a cluster (:mod:`privspeech.executors_dask`) the work runs on its workers, which read and write files at the
paths the client names (a shared filesystem); placement, the journal and the manifest stay with the client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import socket
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from . import manifest
from .console import Env, silence_stdout
from .managed import mark
from .errors import ExitStatus, InternalError, IOFailure, NotFound, PrivspeechError, UsageError
from .executors import Done, Executor, Pool, Progress, Sequential, reported
from .fsutil import STDIO
from .inputs import Item, stdout_folder
from .manifest import Record
from .placement import Outputs, Placement
from .removal import FileIdentity
from .resume import Resume
from .stages import Stage
from .task import Outcome, Task

if TYPE_CHECKING:
    from .executors_dask import Cluster


@dataclass(frozen=True)
class Execution:
    """How a run executes its records: in parallel jobs here or on a cluster, stopping at the first failure or not,
    over one shard of the input or all of it."""

    jobs: int = 1
    fail_fast: bool = False
    shard: tuple[int, int] | None = None  # (i, n), 1-based i
    cluster: Cluster | None = None  # run on a Dask cluster instead of local processes


@dataclass
class RunSummary:
    done: int = 0
    resumed: int = 0
    failed: int = 0
    kept: int = 0  # sources that were to be removed and stay
    error_status: ExitStatus | None = None  # the first failure's own status
    broken_pipe: bool = False  # stdout closed before every record was delivered

    @property
    def status(self) -> ExitStatus:
        if self.broken_pipe:
            return ExitStatus.BROKEN_PIPE
        return ExitStatus.FAILED if self.failed or self.kept else ExitStatus.OK

    def describe(self) -> str:
        """The counts as the summary line says them."""
        parts = [f"{self.done} done"]
        if self.resumed:
            parts.append(f"{self.resumed} already done (resumed)")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.kept:
            parts.append(f"{self.kept} source(s) kept")
        if self.broken_pipe:
            parts.append("stopped: stdout was closed")
        return ", ".join(parts)


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1 <= I <= N) for --shard."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        i = n = 0
    if not 1 <= i <= n:
        raise UsageError(f"bad --shard {text!r}", hint="write I/N with 1 <= I <= N, e.g. 2/8")
    return i, n


def _shard(items: Iterable[Item], shard: tuple[int, int] | None) -> Iterator[Item]:
    if shard is None:
        yield from items
        return
    i, n = shard
    for item in items:
        if item.index % n == i - 1:
            yield item


def _execute(work: Callable[[Task, Any], Record], settings: Any, task: Task, cwd: str | None = None) -> Outcome:
    """Run one task (in a worker): its record, or its failure. A closed stdout (BrokenPipeError) is not a
    record's failure: it stops the run, so it is raised. `cwd`: the client's folder, for a cluster's worker."""
    if cwd is not None:
        return _in_client_folder(work, settings, task, cwd)
    try:
        return Outcome("ok", work(task, settings), task.warnings, task.consumed)
    except PrivspeechError as exc:
        return Outcome("error", exc, task.warnings)
    except BrokenPipeError:
        raise
    except MemoryError:
        return Outcome("error", IOFailure("out of memory", hint="lower --jobs"),
                       task.warnings)
    except Exception as exc:  # a bug: report it with the record, keep the batch going
        detail = traceback.format_exc()
        return Outcome("error", InternalError(f"internal error: {type(exc).__name__}: {exc}", hint="rerun with "
                                              "--debug for the traceback, and report it"), task.warnings + [detail])


def _in_client_folder(work: Callable[[Task, Any], Record], settings: Any, task: Task, cwd: str) -> Outcome:
    """Run a task on a cluster's worker, whose working folder is not the client's: with relative paths resolved
    against the client's folder `cwd`, and the record and messages naming files as the client does. An input the
    worker cannot find is said to be missing there."""
    names = {}
    for path in (task.record.audio_filepath, task.dest):
        if path is not None and not os.path.isabs(path):
            names[os.path.join(cwd, path)] = path
    task.record = dataclasses.replace(task.record, audio_filepath=os.path.join(cwd, task.record.audio_filepath))
    task.dest = task.dest and os.path.join(cwd, task.dest)
    outcome = _execute(work, settings, task)

    def named(text: str) -> str:
        for full in sorted(names, key=len, reverse=True):
            text = text.replace(full, names[full])
        return text

    outcome.warnings = [named(message) for message in outcome.warnings]
    if outcome.kind == "ok":
        path = outcome.value.audio_filepath
        outcome.value = dataclasses.replace(outcome.value, audio_filepath=names.get(path, path))
    else:
        exc = outcome.value
        hint = exc.hint
        if isinstance(exc, NotFound):
            hint = (f"Dask worker on {socket.gethostname()}: every worker must see the inputs at the paths this "
                    f"machine gives (a shared filesystem)")
        outcome.value = exc.reworded(named(exc.message), hint and named(hint))
    return outcome


def _input_size(task: Task) -> int | None:
    """Bytes of a task's input file (None for a pipe or an unreadable path)."""
    try:
        return os.stat(task.record.audio_filepath).st_size
    except (OSError, ValueError):
        return None


class Runner:
    """Runs one stage over work items and writes the resulting manifest to stdout; `progress` is told each
    record handed on."""

    def __init__(self, stage: Stage, placement: Placement, options: Execution, env: Env,
                 progress: Progress | None = None):
        self.stage, self.placement, self.options, self.env = stage, placement, options, env
        self.progress = progress or (lambda *args: None)
        self.summary = RunSummary()
        self.base_dir = stdout_folder()
        self.outputs = Outputs(placement, stage.naming)
        self.resume: Resume | None = None
        self.executor = _executor(options, stage)

    def run(self, items: Iterable[Item]) -> RunSummary:
        if self.placement.out_dir is not None:
            mark(self.placement.out_dir)
            self.resume = Resume(self.placement.out_dir, self.stage, self.placement.force)
        cwd = os.getcwd() if self.executor.remote else None
        results = self.executor.map(functools.partial(_execute, self.stage.work, self.stage.settings, cwd=cwd),
                                    _shard(items, self.options.shard), prepare=self._prepare, size=_input_size,
                                    salvage=self._salvage, lost=_lost)
        try:
            with contextlib.closing(results):
                for item, outcome in reported(results, self.progress, self.stage.name):
                    self._finish(item, outcome)
        except BrokenPipeError:
            silence_stdout()
            self.summary.broken_pipe = True
        finally:
            if self.resume is not None:
                self.resume.close(keep_claims=self.executor.remote)
        return self.summary

    def _prepare(self, item: Item) -> Task | Done:
        """The task for an item, or Done with its outcome when nothing is to run: an identical earlier run finished
        it, or it is refused."""
        try:
            src = item.record.audio_filepath
            if self.stage.remover is not None and src != STDIO:
                self.stage.remover.check(src, item.root)
            dest = self.outputs.dest(item)
            if self.executor.remote and STDIO in (src, dest):
                raise UsageError("stdin and stdout stay on this machine, out of the cluster's reach",
                                 hint="give files, or run without --scheduler")
            task = Task(item.record, dest, force=self.placement.force, record_kept=self.placement.record_kept)
            if dest is None or dest == STDIO:
                return task
            resumed = self.resume.claim(item, dest, task) if self.resume is not None else None
            if resumed is not None:
                return Done(resumed)
            self.outputs.make_parent(dest)
            return task
        except PrivspeechError as exc:
            return Done(Outcome("error", exc))

    def _finish(self, item: Item, outcome: Outcome) -> None:
        for message in outcome.warnings:
            if outcome.kind == "error" and message.startswith("Traceback") and not self.env.debug:
                continue
            self.env.warn(message)
        if outcome.kind == "error":
            self.summary.failed += 1
            if self.summary.error_status is None:
                self.summary.error_status = outcome.value.status
            self.env.error(_with_path(outcome.value, item))
            if self.resume is not None:
                self.resume.release(item.index, failed=True)
            if self.options.fail_fast:
                self.executor.stop()
            return
        if outcome.kind == "resumed":
            self.summary.resumed += 1
        else:
            self.summary.done += 1
            if self.resume is not None:
                self.resume.finish(item, outcome)
        if outcome.consumed is not None and self.stage.remover is not None:
            self._consume(item, outcome.consumed)
        if self.placement.emit_manifest:
            self.env.stdout.write(manifest.dumps(outcome.value, self.base_dir))
            self.env.stdout.flush()

    def _consume(self, item: Item, identity: FileIdentity) -> None:
        """Remove the input of a finished output (with --out-dir its journal line is fsynced already, and what
        became of the input is journaled)."""
        if self.resume is not None and self.resume.source_settled(item):
            return
        kept = None
        try:
            self.stage.remover.remove(item.record.audio_filepath, item.root, identity)
        except PrivspeechError as exc:
            self.summary.kept += 1
            self.env.error(exc)
            kept = exc
        if self.resume is not None:
            self.resume.source_outcome(item, kept)

    def _salvage(self, item: Item, outcome: Outcome) -> None:
        """After an interrupt, journal an output a worker finished anyway, so a rerun resumes it (and removes its
        source, if consumed)."""
        if outcome.kind == "ok" and self.resume is not None:
            with contextlib.suppress(OSError, PrivspeechError):
                self.resume.finish(item, outcome)


def _executor(options: Execution, stage: Stage) -> Executor:
    if options.cluster is not None:
        from .executors_dask import Dask

        return Dask(options.cluster)
    return Pool(options.jobs, threads=stage.io_bound) if options.jobs > 1 else Sequential()


def _lost(item: Item, why: str) -> Outcome:
    """The failure of a record whose work a cluster gave up on."""
    return Outcome("error", InternalError(f"{item.record.audio_filepath}: not done: {why}",
                                          hint="see the workers' logs (out of memory? a crash?); a rerun tries it "
                                               "again"))


def _with_path(exc: PrivspeechError, item: Item) -> PrivspeechError:
    """Make sure a per-record error names its input."""
    path = item.record.audio_filepath
    if path in exc.message or (item.record.id and item.record.id in exc.message):
        return exc
    return exc.reworded(f"{path}: {exc.message}")
