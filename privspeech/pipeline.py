"""The per-record runner every stage uses.

A stage (:class:`privspeech.task.Stage`) has a top-level function ``work(task) -> Record`` (picklable, so it runs
in worker processes). The runner takes work items (see :mod:`privspeech.inputs`), decides each one's output path, skips work an
identical earlier run already finished (resume), maps the function over a process pool, streams the
resulting records to stdout in input order, and reports failures without stopping the batch.

Crash consistency: with --out-dir every output is claimed in the folder's journal before its work starts and
journaled when finished (:mod:`privspeech.journal`), so after kill -9 at any point a rerun resumes what was
finished, replaces what a dead run published but never journaled, and prints one record per input. Worker
processes die with the runner (``PR_SET_PDEATHSIG``). A stage that consumes its input (encrypt
--remove-source) has the input removed by the runner, in order, only after the output's journal line is
fsynced (:mod:`privspeech.removal`); a rerun resumes records whose inputs are already gone.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import hashlib
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from . import manifest
from .console import Env
from .dataset import mark
from .errors import ExitStatus, PrivspeechError
from .fsutil import STDIO, remove_stale, temp_path
from .inputs import Item, stdout_folder
from .journal import Journal
from .manifest import Record
from .removal import FileIdentity
from .task import Outcome, Stage, Task


@dataclass(frozen=True)
class Placement:
    """Where outputs go: mirrored under `out_dir`, or one `out_file` ('-' for stdout)."""

    out_dir: Path | None = None
    out_file: str | None = None
    force: bool = False
    emit_manifest: bool = True


@dataclass(frozen=True)
class RunOptions:
    jobs: int = 1
    fail_fast: bool = False
    shard: tuple[int, int] | None = None  # (i, n), 1-based i


@dataclass
class Summary:
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
        raise PrivspeechError(f"bad --shard {text!r}", hint="write I/N with 1 <= I <= N, e.g. 2/8",
                              status=ExitStatus.USAGE)
    return i, n


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


# A thread-pool task takes up to THREAD_BATCH records, and stops adding records once they hold THREAD_BATCH_BYTES
# of input, so large files still spread over the threads.
THREAD_BATCH = 8
THREAD_BATCH_BYTES = 8 << 20
BATCH_WAIT = 0.005  # seconds the runner waits for another input before starting a part-filled batch

_worker_state: dict[str, Any] = {"busy": False, "interrupted": False, "cancel": None}


def _execute(work: Callable[[Task], Record], task: Task, cancel=None) -> Outcome:
    """Worker side: run one task. `cancel` (threads) or the worker process's cancel event, once set, turns tasks
    not yet started into interruptions. A closed stdout (BrokenPipeError) is not a record's failure: it stops
    the run, so it is raised."""
    _worker_state["busy"] = True
    try:
        cancel = cancel if cancel is not None else _worker_state["cancel"]
        if _worker_state["interrupted"] or (cancel is not None and cancel.is_set()):
            return Outcome("error", PrivspeechError("interrupted", status=ExitStatus.INTERRUPTED))  # queued before Ctrl-C
        record = work(task)
        return Outcome("ok", record, task.warnings, task.consumed)
    except PrivspeechError as exc:
        return Outcome("error", exc, task.warnings)
    except BrokenPipeError:
        raise
    except MemoryError:
        return Outcome("error", PrivspeechError("out of memory", hint="lower --jobs", status=ExitStatus.IOERR),
                       task.warnings)
    except Exception as exc:  # a bug: report it with the record, keep the batch going
        detail = traceback.format_exc()
        return Outcome("error", PrivspeechError(f"internal error: {type(exc).__name__}: {exc}", hint="rerun with "
                                                "--debug for the traceback, and report it",
                                                status=ExitStatus.FAILED), task.warnings + [detail])
    finally:
        _worker_state["busy"] = False


def _execute_batch(work: Callable[[Task], Record], tasks: list[Task], cancel=None) -> list[Outcome]:
    return [_execute(work, task, cancel) for task in tasks]


def _input_size(task: Task) -> int:
    """Bytes of a task's input file (a pipe or an unreadable path counts as large: it runs alone)."""
    try:
        return os.stat(task.record.audio_filepath).st_size
    except (OSError, ValueError):
        return THREAD_BATCH_BYTES


def _read_ahead(items: Iterator[Item], events: queue.Queue, room: threading.Semaphore, stop: threading.Event) -> None:
    """Put ("item", item) on `events` as each input arrives, at most as far ahead as `room` allows; then ("end",
    None), or ("error", exc) when reading the inputs fails."""
    try:
        while True:
            while not room.acquire(timeout=0.1):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            item = next(items, None)
            if item is None:
                events.put(("end", None))
                return
            events.put(("item", item))
    except BaseException as exc:  # a bad manifest line, an unreadable folder: raised in the runner, in order
        events.put(("error", exc))


def _ready(outcome) -> bool:
    """Whether a pending entry's outcome can be handed on without waiting."""
    return isinstance(outcome, Outcome) or (isinstance(outcome, _Slot) and outcome.future.done())


@dataclass(frozen=True)
class _Slot:
    """Where a record's outcome will be: its place in a submitted batch."""

    future: cf.Future
    index: int

    def result(self) -> Outcome:
        return self.future.result()[self.index]


def _worker_sigint(signum, frame):
    """In a worker, Ctrl-C interrupts the running task (its cleanup runs) and cancels any queued ones. Only the
    first signal interrupts: the runner forwards the terminal's Ctrl-C again, which must not cut that cleanup."""
    first = not _worker_state["interrupted"]
    _worker_state["interrupted"] = True
    if first and _worker_state["busy"]:
        raise KeyboardInterrupt


def _worker_init(cancel, parent: int) -> None:
    """Die with the runner; install the worker's Ctrl-C handling, then accept signals (blocked since the fork;
    any that arrived meanwhile are delivered now), and pin numeric libraries to one thread."""
    _die_with(parent)
    _worker_state["cancel"] = cancel
    signal.signal(signal.SIGINT, _worker_sigint)
    signal.signal(signal.SIGTERM, _worker_sigint)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def _die_with(parent: int) -> None:
    """Have the kernel kill this worker when the process that forked it dies (Linux ``PR_SET_PDEATHSIG``), so a
    runner killed with SIGKILL leaves no worker behind; elsewhere a thread watches the parent."""
    import ctypes

    try:
        armed = ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        armed = False
    if not armed:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="privspeech-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _signals_blocked():
    """Hold Ctrl-C while worker processes may be forked, so none starts with Python's default handler;
    a signal that arrives meanwhile is delivered when the block ends, not lost."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


class Runner:
    """Runs one stage over work items and writes the resulting manifest to stdout."""

    def __init__(self, stage: Stage, placement: Placement, options: RunOptions, env: Env):
        self.stage, self.placement, self.options, self.env = stage, placement, options, env
        self.summary = Summary()
        self.journal: Journal | None = None
        self.base_dir = stdout_folder()
        self._dests: set[str] = set()
        self._fps: dict[int, str] = {}
        self._claimed: dict[int, str] = {}  # item index -> dest claimed in the journal and not yet settled

    # -- output placement -------------------------------------------------------------------------------
    def _dest(self, item: Item) -> str | None:
        place = self.placement
        if self.stage.suffix is None:
            return None
        if place.out_file is not None:
            return place.out_file
        assert place.out_dir is not None
        return str(place.out_dir / (item.rel + self.stage.suffix))

    def _prepare(self, item: Item) -> Task | Outcome:
        """A task to run, or the outcome when an identical earlier run already finished the output."""
        dest = self._dest(item)
        src = item.record.audio_filepath
        if self.stage.remover is not None and src != STDIO:
            self.stage.remover.check(src, item.root)
        task = Task(item.record, dest, force=self.placement.force,
                    record_kept=self.placement.emit_manifest or self.placement.out_dir is not None)
        if dest is None or dest == STDIO:
            return task
        key = os.path.abspath(dest)
        if key in self._dests:
            raise PrivspeechError(f"{src}: output {dest} would be written twice",
                                  hint="two inputs share a name; give them distinct ids", status=ExitStatus.USAGE)
        self._dests.add(key)
        if os.path.abspath(src) == key:
            raise PrivspeechError(f"{dest}: output would replace its input", hint="choose another --out-dir",
                                  status=ExitStatus.USAGE)
        if self.journal is not None:
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
        if self.placement.out_dir is not None:
            from .fsutil import make_dirs

            make_dirs(Path(dest).parent)
        return task

    def _resumable(self, item: Item, dest: str) -> Outcome | None:
        """The finished outcome of an identical earlier run at `dest` (also for an input it consumed), if any."""
        assert self.journal is not None
        src = item.record.audio_filepath
        entry = None
        if not item.record.privspeech.sha256 and not os.path.lexists(src):
            entry = self.journal.consumed(src)  # an input an earlier run removed
            if entry is not None and (entry.get("dest") != self.journal.key(dest)
                                      or entry.get("stage") != self.stage.identity):
                raise PrivspeechError(f"{src}: removed by an earlier run into {self.placement.out_dir} with other "
                                      f"settings", hint="rerun with the settings of that run", status=ExitStatus.NOINPUT)
            if entry is not None:
                self._fps[item.index] = entry["fp"]
                entry = self.journal.finished(dest, entry["fp"])
        if item.index not in self._fps:
            self._fps[item.index] = fingerprint(self.stage, item.record)
        if entry is None:
            entry = self.journal.finished(dest, self._fps[item.index])
        if entry is None or self.placement.force:
            return None
        try:
            record = Record.from_dict(entry["record"], self.journal.out_dir)
        except (ValueError, KeyError):
            return None
        source = entry.get("source")
        return Outcome("resumed", record, [], FileIdentity.from_dict(source) if source else None)

    # -- running ----------------------------------------------------------------------------------------
    def run(self, items: Iterable[Item]) -> Summary:
        if self.placement.out_dir is not None:
            mark(self.placement.out_dir)
            self.journal = Journal(self.placement.out_dir)
        items = self._shard(items)
        try:
            with self._progress() as advance, contextlib.closing(self._results(items)) as results:
                for item, outcome in results:
                    self._finish(item, outcome)
                    advance()
        except BrokenPipeError:
            _silence_stdout()
            self.summary.broken_pipe = True
        finally:
            self._release_unfinished()
        return self.summary

    def _shard(self, items: Iterable[Item]) -> Iterator[Item]:
        if self.options.shard is None:
            yield from items
            return
        i, n = self.options.shard
        for item in items:
            if item.index % n == i - 1:
                yield item

    def _results(self, items: Iterable[Item]) -> Iterator[tuple[Item, Outcome]]:
        """(item, outcome) in input order."""
        if self.options.jobs <= 1:
            for item in items:
                yield item, self._local(item)
                if self._stop:
                    return
            return
        yield from self._pooled(items)

    _stop = False

    def _local(self, item: Item) -> Outcome:
        try:
            prepared = self._prepare(item)
        except PrivspeechError as exc:
            return Outcome("error", exc)
        if isinstance(prepared, Outcome):
            return prepared
        return _execute(self.stage.work, prepared)

    def _pooled(self, items: Iterable[Item]) -> Iterator[tuple[Item, Outcome]]:
        # Threads take records in batches: for light per-record work (scan hashes ~1 GB/s from the page cache)
        # a future and a GIL hand-off per record cost more than a second thread gains.
        threads = self.stage.io_bound
        batch_size = THREAD_BATCH if threads else 1
        window = self.options.jobs * 2 * batch_size + batch_size
        pending: collections.deque = collections.deque()
        batch: list[tuple[list, Task]] = []
        batch_bytes = 0
        # Inputs are read on a thread (at most `window` ahead), so that a finished record is handed on at once
        # even while the next input is still to come from a slow upstream stage.
        events: queue.Queue = queue.Queue()
        room = threading.Semaphore(window)
        stop_reading = threading.Event()
        if threads:
            cancel = threading.Event()
            pool: cf.Executor = cf.ThreadPoolExecutor(max_workers=self.options.jobs)
        else:
            import multiprocessing

            cancel = multiprocessing.get_context().Event()
            pool = cf.ProcessPoolExecutor(max_workers=self.options.jobs, initializer=_worker_init,
                                          initargs=(cancel, os.getpid()))
            with _signals_blocked():  # fork the workers now: a child forked while the reader thread holds
                pool.submit(int)      # stdin's lock would hang closing its copy of stdin
        threading.Thread(target=_read_ahead, args=(iter(items), events, room, stop_reading), daemon=True,
                         name="privspeech-inputs").start()

        def submit() -> None:
            nonlocal batch_bytes
            if batch:
                with _signals_blocked():
                    future = pool.submit(_execute_batch, self.stage.work, [task for _, task in batch],
                                         cancel if threads else None)
                future.add_done_callback(lambda _: events.put(("done", None)))
                for i, (entry, _) in enumerate(batch):
                    entry[1] = _Slot(future, i)
                batch.clear()
                batch_bytes = 0

        def take(item: Item) -> None:
            nonlocal batch_bytes
            try:
                prepared = self._prepare(item)
            except PrivspeechError as exc:
                pending.append([item, Outcome("error", exc)])
                return
            if isinstance(prepared, Outcome):
                pending.append([item, prepared])
                return
            entry = [item, None]
            pending.append(entry)
            batch.append((entry, prepared))
            if threads:
                batch_bytes += _input_size(prepared)
            if len(batch) == batch_size or batch_bytes >= THREAD_BATCH_BYTES:
                submit()

        try:
            exhausted = False
            while True:
                while pending and _ready(pending[0][1]):
                    item, outcome = pending.popleft()
                    room.release()
                    yield item, outcome.result() if isinstance(outcome, _Slot) else outcome
                    if self._stop and not exhausted:
                        exhausted = True
                        stop_reading.set()
                        submit()
                if exhausted and not pending:
                    break
                try:  # a short wait lets a batch fill while inputs flow; then what is batched starts
                    kind, value = events.get(timeout=BATCH_WAIT)
                except queue.Empty:
                    submit()
                    kind, value = events.get()
                if kind == "item" and not exhausted:
                    take(value)
                elif kind == "end":
                    exhausted = True
                    submit()
                elif kind == "error":
                    raise value
        except BaseException:
            stop_reading.set()
            cancel.set()
            _interrupt_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)
            self._journal_finished(pending)
            raise
        finally:
            stop_reading.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def _journal_finished(self, pending) -> None:
        """After an interrupt, remember outputs that workers completed anyway, so a rerun resumes them (their
        sources, if consumed, are removed by that rerun)."""
        for item, outcome in pending:
            if not isinstance(outcome, _Slot) or outcome.future.cancelled() or outcome.future.exception() is not None:
                continue
            outcome = outcome.result()
            if outcome.kind == "ok":
                with contextlib.suppress(OSError, PrivspeechError):
                    self._journal(item, outcome)

    def _journal(self, item: Item, outcome: Outcome) -> None:
        """Journal a finished output; the line is fsynced when it names a source to remove next."""
        record = outcome.value
        fp = self._fps.get(item.index)
        if self.journal is None or fp is None or record.audio_filepath == STDIO:
            return
        source = None
        if outcome.consumed is not None and self.stage.remover is not None:
            source = {"path": os.path.abspath(item.record.audio_filepath), **outcome.consumed.to_dict()}
        self.journal.finish(record.audio_filepath, fp, self.stage.identity, record.to_dict(self.journal.out_dir),
                            source)
        self._claimed.pop(item.index, None)

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
            self._release(item.index, failed=True)
            if self.options.fail_fast:
                self._stop = True
            return
        if outcome.kind == "resumed":
            self.summary.resumed += 1
        else:
            self.summary.done += 1
            self._journal(item, outcome)
        if outcome.consumed is not None and self.stage.remover is not None:
            self._consume(item, outcome.consumed)
        if self.placement.emit_manifest:
            self.env.stdout.write(manifest.dumps(outcome.value, self.base_dir))
            self.env.stdout.flush()

    def _consume(self, item: Item, identity: FileIdentity) -> None:
        """Remove the input of a finished output (journaled and fsynced first, with --out-dir), and journal the
        outcome."""
        src = os.path.abspath(item.record.audio_filepath)
        if self.journal is not None:
            if src in self.journal.removed:
                return
            if not os.path.lexists(src) and self.journal.consumed(src):
                self.journal.outcome(src, removed=True)  # removed by a run killed before it could say so
                return
        try:
            self.stage.remover.remove(item.record.audio_filepath, item.root, identity)
        except PrivspeechError as exc:
            self.summary.kept += 1
            self.env.error(exc)
            if self.journal is not None:
                self.journal.outcome(src, removed=False, why=exc.message)
            return
        if self.journal is not None:
            self.journal.outcome(src, removed=True)

    def _release(self, index: int, *, failed: bool = False) -> None:
        """Drop the journal's claim on a record's output: the record failed (what is at its output, if anything,
        is not this run's), or it never ran and nothing was published there."""
        dest = self._claimed.pop(index, None)
        if dest is not None and self.journal is not None and (failed or not os.path.lexists(dest)):
            with contextlib.suppress(PrivspeechError):
                self.journal.release(dest)

    def _release_unfinished(self) -> None:
        """At the end of a run, drop the claims of records that never ran; an output a worker published meanwhile
        keeps its claim, so the next run knows it for an orphan."""
        for index in list(self._claimed):
            self._release(index)
        if self.journal is not None:
            self.journal.close()

    @contextlib.contextmanager
    def _progress(self):
        if not self.env.show_progress:
            yield lambda: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, \
            TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn(self.stage.name), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.env.console(), transient=True) as progress:
            task = progress.add_task(self.stage.name, total=None)
            yield lambda: progress.advance(task)


def _with_path(exc: PrivspeechError, item: Item) -> PrivspeechError:
    """Make sure a per-record error names its input."""
    path = item.record.audio_filepath
    if path in exc.message or (item.record.id and item.record.id in exc.message):
        return exc
    return PrivspeechError(f"{path}: {exc.message}", hint=exc.hint, status=exc.status)


def _interrupt_workers(pool: cf.Executor) -> None:
    """Forward Ctrl-C to worker processes so each removes its temporary files before the pool shuts down
    (threads finish their current record, which is written atomically)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGINT)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run_stage(stage: Stage, items: Iterable[Item], placement: Placement, options: RunOptions, env: Env) -> Summary:
    """Run `stage` over `items`; prints the summary line on stderr and returns the counts."""
    runner = Runner(stage, placement, options, env)
    summary = runner.run(items)
    parts = [f"{summary.done} done"]
    if summary.resumed:
        parts.append(f"{summary.resumed} already done (resumed)")
    if summary.failed:
        parts.append(f"{summary.failed} failed")
    if summary.kept:
        parts.append(f"{summary.kept} source(s) kept")
    if summary.broken_pipe:
        parts.append("stopped: stdout was closed")
    env.info(f"{stage.name}: " + ", ".join(parts))
    return summary
