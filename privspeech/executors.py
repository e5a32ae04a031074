"""Executors: map a per-record function over work items, results in input order.

``executor.map(fn, items)`` yields ``(item, fn(arg))`` in the order of `items`, each as soon as it and every item
before it are done. ``prepare(item)``, called in the caller's thread as each item is taken, gives fn's argument,
or ``Done(result)`` when no call is needed. ``stop()`` takes no more items; the results of those already taken
still come. An exception fn raises is raised at its item's turn.

When the caller leaves early through an exception (Ctrl-C, a closed stdout, an input that cannot be read), the
executor cancels the calls not started (their results raise KeyboardInterrupt), interrupts worker processes so
each cleans up its temporary files, waits for the rest, and hands each result that was finished but not yet
yielded to ``salvage(item, result)``, so the caller can record it.

Executors know nothing of manifests: items, arguments and results are the caller's. :class:`Sequential` calls fn
in the caller's thread; :class:`Pool` runs calls in local worker processes or threads; ``executors_dask.Dask`` on
a Dask cluster. :func:`reported` tells a progress callback (the CLI's bars) how far a map has come.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar

# A thread takes up to THREAD_BATCH calls at once, fewer once they hold THREAD_BATCH_BYTES of input, so large
# files still spread over the threads.
THREAD_BATCH = 8
THREAD_BATCH_BYTES = 8 << 20
BATCH_WAIT = 0.005  # seconds to wait for another item before starting a part-filled batch

T = TypeVar("T")
Fn = Callable[[Any], Any]
Prepare = Callable[[Any], Any]
Size = Callable[[Any], "int | None"]
Salvage = Callable[[Any, Any], None]
Lost = Callable[[Any, str], Any]
Progress = Callable[[str, int, "int | None"], None]  # progress(name, done, total); total None: not known


@dataclass(frozen=True)
class Done:
    """What ``prepare`` returns for an item whose result is known without calling fn."""

    value: Any


def _same(item: Any) -> Any:
    return item


class Executor:
    """Where calls run, behind one interface (see the module docstring).

    `remote` executors run calls on other machines: fn and its arguments are pickled and must name files by paths
    the workers see, and a call cancelled while it runs may still finish after the map has ended.
    """

    remote = False
    _stopping = False

    def map(self, fn: Fn, items: Iterable, *, prepare: Prepare = _same, size: Size | None = None,
            salvage: Salvage | None = None, lost: Lost | None = None) -> Iterator[tuple[Any, Any]]:
        """(item, result) for each of `items`, in input order. `size(arg)` is the bytes of input a call reads
        (None: unknown, counted as large), for executors that batch calls. ``lost(item, why)`` gives the result of
        a call an executor gave up on without fn returning (a cluster whose workers kept dying while running it);
        without it, that raises at the item's turn."""
        raise NotImplementedError

    def stop(self) -> None:
        """Take no more items; the results of items already taken still come."""
        self._stopping = True

    def _ordered(self, calls: _Calls, inputs: _ReadAhead, prepare: Prepare) -> Iterator[tuple[Any, Any]]:
        """Take items from `inputs` into `calls` and yield results from the head of `calls` as they are done."""
        exhausted = False
        while True:
            for result in calls.ready():
                inputs.room.release()
                yield result
                if self._stopping and not exhausted:
                    exhausted = True
                    inputs.stop()
                    calls.submit()
            if exhausted and not calls.pending:
                return
            try:  # a short wait lets a batch fill while items flow; then what is batched starts
                kind, value = inputs.events.get(timeout=BATCH_WAIT)
            except queue.Empty:
                calls.submit()
                kind, value = inputs.events.get()
            if kind == "item" and not exhausted:
                calls.take(value, prepare(value))
            elif kind == "end":
                exhausted = True
                calls.submit()
            elif kind == "error":
                raise value


class Sequential(Executor):
    """One call at a time, in the caller's thread (--jobs 1)."""

    def map(self, fn, items, *, prepare=_same, size=None, salvage=None, lost=None):
        for item in items:
            arg = prepare(item)
            yield item, arg.value if isinstance(arg, Done) else fn(arg)
            if self._stopping:
                return


class Pool(Executor):
    """Calls on `jobs` worker processes (Python-bound work; each worker pins numeric libraries to one thread), or
    on threads (work in libraries that release the GIL).

    Threads take calls in batches: for light work (scan hashes ~1 GB/s from the page cache) a future and a GIL
    hand-off per call cost more than a second thread gains. Items are read on a thread, at most a window ahead,
    so that a finished result is handed on at once even while the next item is still to come from a slow
    upstream stage. The worker processes are forked before that thread starts: a child forked while the thread
    held stdin's lock would hang closing its copy of stdin.
    """

    def __init__(self, jobs: int, *, threads: bool = False):
        self.jobs, self.threads = jobs, threads

    def map(self, fn, items, *, prepare=_same, size=None, salvage=None, lost=None):
        batch_size = THREAD_BATCH if self.threads else 1
        pool, cancel = self._start()
        inputs = _ReadAhead(items, window=self.jobs * 2 * batch_size + batch_size)
        calls = _Calls(pool, fn, batch_size, wake=inputs.wake, cancel=cancel if self.threads else None,
                       size=size if self.threads else None)
        try:
            yield from self._ordered(calls, inputs, prepare)
        except BaseException:
            inputs.stop()
            cancel.set()
            _interrupt_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)
            if salvage is not None:
                calls.salvage(salvage)
            raise
        finally:
            inputs.stop()
            pool.shutdown(wait=True, cancel_futures=True)

    def _start(self) -> tuple[cf.Executor, Any]:
        """The pool and its cancel event."""
        if self.threads:
            return cf.ThreadPoolExecutor(max_workers=self.jobs), threading.Event()
        import multiprocessing

        cancel = multiprocessing.get_context().Event()
        pool = cf.ProcessPoolExecutor(max_workers=self.jobs, initializer=_worker_init, initargs=(cancel, os.getpid()))
        with _signals_blocked():
            pool.submit(int)  # forks every worker now, before the reader thread starts
        return pool, cancel

class _ReadAhead:
    """Takes items on a thread, at most `window` ahead: puts ("item", item) on `events` as each arrives, then
    ("end", None), or ("error", exc) when taking the next item fails. Each result handed on makes room for one
    more (``room.release()``)."""

    def __init__(self, items: Iterable, window: int):
        self.events: queue.Queue = queue.Queue()
        self.room = threading.Semaphore(window)
        self._stop = threading.Event()
        threading.Thread(target=self._read, args=(iter(items),), daemon=True, name="privspeech-inputs").start()

    def wake(self) -> None:
        """End the caller's wait for the next event: a call finished."""
        self.events.put(("done", None))

    def stop(self) -> None:
        self._stop.set()

    def _read(self, items: Iterator) -> None:
        try:
            while True:
                while not self.room.acquire(timeout=0.1):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                item = next(items, None)
                if item is None:
                    self.events.put(("end", None))
                    return
                self.events.put(("item", item))
        except BaseException as exc:  # a bad manifest line, an unreadable folder: raised in the caller, in order
            self.events.put(("error", exc))


@dataclass(frozen=True)
class _Slot:
    """Where an item's result will be: its place in a submitted batch."""

    future: cf.Future
    index: int

    def result(self) -> Any:
        ok, value = self.future.result()[self.index]
        if not ok:
            raise value
        return value

    def finished(self) -> bool:
        """Whether fn ran to its end for this item (it was neither cancelled nor failed)."""
        return (self.future.done() and not self.future.cancelled() and self.future.exception() is None
                and self.future.result()[self.index][0])


def _ready(outcome: Done | _Slot | None) -> bool:
    return isinstance(outcome, Done) or (isinstance(outcome, _Slot) and outcome.future.done())


class _Calls:
    """Items taken and not yet handed on, in input order (`pending`: [item, Done | _Slot | None while its batch
    fills]), and the batch being filled."""

    def __init__(self, pool: cf.Executor, fn: Fn, batch_size: int, *, wake: Callable[[], None], cancel,
                 size: Size | None):
        self.pool, self.fn, self.batch_size, self.wake = pool, fn, batch_size, wake
        self.cancel, self.size = cancel, size
        self.pending: collections.deque = collections.deque()
        self._batch: list[tuple[list, Any]] = []
        self._bytes = 0

    def take(self, item: Any, arg: Any) -> None:
        if isinstance(arg, Done):
            self.pending.append([item, arg])
            return
        entry = [item, None]
        self.pending.append(entry)
        self._batch.append((entry, arg))
        if self.size is not None:
            n = self.size(arg)
            self._bytes += THREAD_BATCH_BYTES if n is None else n
        if len(self._batch) == self.batch_size or self._bytes >= THREAD_BATCH_BYTES:
            self.submit()

    def submit(self) -> None:
        """Start the batch being filled, if any."""
        if not self._batch:
            return
        with _signals_blocked():
            future = self.pool.submit(_call_batch, self.fn, [arg for _, arg in self._batch], self.cancel)
        future.add_done_callback(lambda _: self.wake())
        for i, (entry, _) in enumerate(self._batch):
            entry[1] = _Slot(future, i)
        self._batch.clear()
        self._bytes = 0

    def ready(self) -> Iterator[tuple[Any, Any]]:
        """(item, result) from the head while the head is done."""
        while self.pending and _ready(self.pending[0][1]):
            item, outcome = self.pending.popleft()
            yield item, outcome.value if isinstance(outcome, Done) else outcome.result()

    def salvage(self, salvage: Salvage) -> None:
        """Hand each finished result still pending to `salvage`."""
        for item, slot in self.pending:
            if isinstance(slot, _Slot) and slot.finished():
                salvage(item, slot.result())


def reported(results: Iterable[T], progress: Progress, name: str, total: int | None = None) -> Iterator[T]:
    """`results` passed on, calling ``progress(name, done, total)`` as the caller finishes with each."""
    for done, result in enumerate(results, 1):
        yield result
        progress(name, done, total)


# -- worker side ------------------------------------------------------------------------------------------------

_worker_state: dict[str, Any] = {"busy": False, "interrupted": False, "cancel": None}


def _call_batch(fn: Fn, args: list, cancel=None) -> list[tuple[bool, Any]]:
    """Call fn on each argument: (True, result) or (False, the exception it raised). Once `cancel` (threads) or
    the worker process's cancel event is set, or the worker was interrupted, calls not yet started get
    KeyboardInterrupt instead."""
    cancel = cancel if cancel is not None else _worker_state["cancel"]
    out: list[tuple[bool, Any]] = []
    for arg in args:
        if _worker_state["interrupted"] or (cancel is not None and cancel.is_set()):
            out.append((False, KeyboardInterrupt()))
            continue
        _worker_state["busy"] = True
        try:
            out.append((True, fn(arg)))
        except Exception as exc:
            out.append((False, exc))
        finally:
            _worker_state["busy"] = False
    return out


def _worker_sigint(signum, frame):
    """In a worker, Ctrl-C interrupts the running call (its cleanup runs) and cancels any queued ones. Only the
    first signal interrupts: the terminal's Ctrl-C is forwarded again by the parent, which must not cut that
    cleanup."""
    first = not _worker_state["interrupted"]
    _worker_state["interrupted"] = True
    if first and _worker_state["busy"]:
        raise KeyboardInterrupt


def _worker_init(cancel, parent: int) -> None:
    """Die with the parent; install the worker's Ctrl-C handling, then accept signals (blocked since the fork;
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
    parent killed with SIGKILL leaves no worker behind; elsewhere a thread watches the parent."""
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


def _interrupt_workers(pool: cf.Executor) -> None:
    """Forward Ctrl-C to worker processes so each removes its temporary files before the pool shuts down
    (threads finish their current call)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGINT)
