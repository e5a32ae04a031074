"""The Dask executor: calls as tasks on the workers of a Dask cluster (dask.distributed), for --scheduler.

dask is an optional extra: it is imported only when a map starts. Calls are submitted as items are taken, at most
a window of items ahead of the oldest result not yet handed on (a few per worker thread), so a million-record
manifest keeps the client's memory and the scheduler's task list bounded; results come in input order as the head
finishes (see :mod:`privspeech.executors`).

A worker that dies while running a call (killed, out of memory, a crash in a library) has the call run again on
another worker by the scheduler itself, up to its ``distributed.scheduler.allowed-failures`` (3 by default); past
that the call is lost and ``lost`` names it. On an early exit the calls not finished are cancelled, but Dask does
not stop a call that is running: it may still finish (its output complete: outputs are written atomically) after
the map has ended.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import logging
import os
import signal
import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from . import __version__
from .errors import NotFound, PrivspeechError, TryAgain, UsageError
from .executors import Done, Executor, Fn, _ReadAhead, _same

LOCAL = "local"  # --scheduler local: a LocalCluster on this machine
WINDOW_PER_THREAD = 4  # calls submitted ahead per worker thread: slack for a slow record at the head
MIN_WINDOW = 16
INSTALL_HINT = "install the dask extra: pip install 'privspeech[dask]'"


@dataclass(frozen=True)
class Cluster:
    """Where records run: a Dask scheduler's address (``tcp://HOST:PORT``, ``tls://HOST:PORT``), or 'local' for a
    LocalCluster of `workers` processes on 127.0.0.1. TLS files left None come from Dask's own configuration."""

    address: str
    workers: int | None = None
    tls_ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    def check(self) -> None:
        """Refuse (USAGE) options that do not fit the address, and a missing dask extra."""
        if self.workers is not None and self.address != LOCAL:
            raise UsageError("--jobs sets the worker processes of --scheduler local only",
                             hint="a cluster's parallelism is its workers' threads")
        tls_files = (self.tls_ca_file, self.tls_cert, self.tls_key)
        if any(tls_files) and not self.address.startswith("tls://"):
            raise UsageError("--tls-ca-file, --tls-cert and --tls-key apply to a tls:// scheduler address")
        if any(tls_files) and not all(tls_files):
            raise UsageError("TLS needs --tls-ca-file, --tls-cert and --tls-key together",
                             hint="or leave all three to Dask's configuration (distributed.comm.tls)")
        for name, path in (("--tls-ca-file", self.tls_ca_file), ("--tls-cert", self.tls_cert),
                           ("--tls-key", self.tls_key)):
            if path is not None and not os.path.isfile(path):
                raise NotFound(f"{name} {path}: no such file")
        try:
            import dask.config
            import distributed  # noqa: F401
        except ImportError:
            raise UsageError("--scheduler needs dask.distributed, which is not installed", hint=INSTALL_HINT) from None
        if (self.address.startswith("tls://") and not self.tls_cert
                and not dask.config.get("distributed.comm.tls.client.cert", None)):
            raise UsageError("a tls:// scheduler needs this client's certificate",
                             hint="give --tls-ca-file, --tls-cert and --tls-key (or set Dask's "
                                  "distributed.comm.tls configuration)")

    def warning(self) -> str | None:
        """What to say about an address whose traffic is neither encrypted nor kept on this machine."""
        if self.address == LOCAL or self.address.startswith("tls://"):
            return None
        from distributed.comm.addressing import get_address_host

        try:
            host = get_address_host(self.address)
        except ValueError:
            host = ""
        if _loopback(host):
            return None
        return (f"{self.address}: plain TCP to another machine: recordings' paths and metadata cross the network "
                f"unencrypted (use a tls:// scheduler with --tls-ca-file, --tls-cert and --tls-key)")


def _loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


class Dask(Executor):
    """Calls on the workers of the Dask cluster at `cluster` (see the module docstring)."""

    remote = True

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    def map(self, fn, items, *, prepare=_same, size=None, salvage=None, lost=None):
        with contextlib.ExitStack() as stack:
            client = self._connect(stack)
            threads = sum(client.nthreads().values())
            inputs = _ReadAhead(items, window=max(MIN_WINDOW, WINDOW_PER_THREAD * threads))
            stack.callback(inputs.stop)
            tasks = _Tasks(client, fn, wake=inputs.wake, lost=lost, address=self.cluster.address)
            try:
                yield from self._ordered(tasks, inputs, prepare)
            except BaseException:
                inputs.stop()
                tasks.cancel(salvage)
                raise

    def _connect(self, stack: contextlib.ExitStack):
        """A client of the cluster (started first for 'local') with at least one worker that runs this privspeech;
        closed with `stack`."""
        import dask.config
        from dask.utils import parse_timedelta
        from distributed import Client, LocalCluster
        from distributed.security import Security

        stack.enter_context(_quiet_logs())
        address: Any = self.cluster.address
        if address == LOCAL:
            address = stack.enter_context(LocalCluster(  # no dashboard; the scheduler's health routes on any port
                n_workers=self.cluster.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.CRITICAL))
        security = None
        if self.cluster.tls_cert:
            security = Security(tls_ca_file=self.cluster.tls_ca_file, tls_client_cert=self.cluster.tls_cert,
                                tls_client_key=self.cluster.tls_key, require_encryption=True)
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
        try:
            client = stack.enter_context(Client(address, security=security, timeout=timeout))
        except OSError as exc:  # TimeoutError included
            raise self._unavailable(f"cannot be reached ({exc})") from None
        except Exception:  # e.g. MemoryError: an HTTP answer read as the length of a Dask message
            raise self._unavailable("does not answer as a Dask scheduler (is it the dashboard's port?)") from None
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise self._unavailable(f"has had no workers for {timeout:g} s") from None
        _check_workers(client)
        if self.cluster.address == LOCAL:  # the terminal's Ctrl-C reaches them too: the client stops them
            client.run(_ignore_interrupts)
        return client

    def _unavailable(self, why: str) -> PrivspeechError:
        return TryAgain(f"--scheduler {self.cluster.address}: {why}",
                        hint="check the address, and that `dask scheduler` and `dask worker` run there")


@contextlib.contextmanager
def _quiet_logs():
    """Keep log records to critical ones: Dask logs a lost connection with tracebacks on stderr (through loggers
    its configuration gives levels of their own), where the user gets privspeech's one-line error instead."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(previous)


def _version() -> str:
    """This privspeech's version (run on each worker)."""
    return __version__


def _ignore_interrupts() -> None:
    """Ignore SIGINT (run in each worker's main thread)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_workers(client) -> None:
    """Refuse (USAGE) a cluster whose workers cannot import privspeech or run another version of it: every record
    would fail, or come out differently than here."""
    for worker, version in client.run(_version, on_error="return").items():
        if isinstance(version, BaseException):
            raise UsageError(f"Dask worker {worker} cannot run privspeech ({type(version).__name__}: {version})",
                             hint=f"install privspeech {__version__} on every worker")
        if version != __version__:
            raise UsageError(f"Dask worker {worker} runs privspeech {version}, this machine {__version__}",
                             hint=f"install privspeech {__version__} on every worker")


class _Tasks:
    """Items taken and not yet handed on, in input order (`pending`: (item, Done | Future)); each call is submitted
    as its own task when it is taken."""

    def __init__(self, client, fn: Fn, *, wake: Callable[[], None], lost: Callable[[Any, str], Any] | None,
                 address: str):
        self.client, self.fn, self.wake, self.lost, self.address = client, fn, wake, lost, address
        self.pending: collections.deque = collections.deque()

    def take(self, item: Any, arg: Any) -> None:
        if isinstance(arg, Done):
            self.pending.append((item, arg))
            return
        future = self.client.submit(self.fn, arg, pure=False)
        future.add_done_callback(lambda _: self.wake())
        self.pending.append((item, future))

    def submit(self) -> None:
        """Nothing waits to be submitted: each call was submitted as it was taken."""

    def ready(self) -> Iterator[tuple[Any, Any]]:
        """(item, result) from the head while the head is done."""
        while self.pending and (isinstance(self.pending[0][1], Done) or self.pending[0][1].done()):
            item, outcome = self.pending.popleft()
            if isinstance(outcome, Done):
                yield item, outcome.value
                continue
            result = self._result(item, outcome)
            outcome.release()  # here, not in its finalizer, which would swallow a Ctrl-C arriving meanwhile
            yield item, result

    def _result(self, item: Any, future) -> Any:
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            if self.lost is None:
                raise
            deaths = exc.allowed_failures + 1
            return self.lost(item, f"{deaths} Dask worker{'s' * (deaths > 1)} died while running it")
        except Exception:
            if future.status == "error":  # fn's own exception, raised at its item's turn
                raise
            # cancelled by the cluster (it lost the scheduler, or someone cancelled it there), or lost on the way
            raise TryAgain(f"--scheduler {self.address}: the cluster dropped the work (lost the scheduler?)",
                           hint="what was printed is done; run again to finish (with --out-dir it resumes)") from None

    def cancel(self, salvage: Callable[[Any, Any], None] | None) -> None:
        """Cancel the calls not finished; hand the results of those finished to `salvage`."""
        futures = [(item, f) for item, f in self.pending if not isinstance(f, Done)]
        finished = [(item, f) for item, f in futures if f.status == "finished"]
        with contextlib.suppress(Exception):  # a cluster already gone has nothing left to cancel or salvage
            self.client.cancel([f for _, f in futures if f.status != "finished"])
            if salvage is not None and finished:
                for (item, _), result in zip(finished, self.client.gather([f for _, f in finished])):
                    salvage(item, result)
