"""A real Dask cluster for tests: `dask scheduler` and `dask worker` processes on 127.0.0.1 (random ports).

Each worker has this checkout and its tests first on its PYTHONPATH (so it runs the privspeech under test, and
tests/stages.py) and a working folder of its own (so relative paths work only when the client resolves them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60


class DaskCluster:
    def __init__(self, folder: Path, workers: int = 2, *, env: dict[str, str] | None = None,
                 tls: dict[str, Path] | None = None):
        """`tls`: {"ca": ..., "cert": ..., "key": ...} PEM files for a tls:// cluster (one certificate for all)."""
        self.folder = folder
        self.tls = [] if tls is None else ["--tls-ca-file", str(tls["ca"]), "--tls-cert", str(tls["cert"]),
                                           "--tls-key", str(tls["key"])]
        self.security = None
        if tls is not None:
            from distributed.security import Security

            self.security = Security(tls_ca_file=str(tls["ca"]), tls_client_cert=str(tls["cert"]),
                                     tls_client_key=str(tls["key"]), require_encryption=True)
        folder.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests"),
                                                                os.environ.get("PYTHONPATH", "")]),
                        **(env or {}))
        self.env.pop("PRIVSPEECH_DEBUG", None)
        self.scheduler_file = folder / "scheduler.json"
        self.workers: list[subprocess.Popen] = []
        protocol = ["--protocol", "tls", *self.tls] if tls is not None else []
        self.scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(self.scheduler_file), *protocol], "scheduler", folder)
        try:
            self.address = self._wait(lambda: self.scheduler_file.is_file() and self.scheduler_file.stat().st_size
                                       and json.loads(self.scheduler_file.read_text())["address"])
            for _ in range(workers):
                self.add_worker()
            self.wait_for_workers(workers)
        except BaseException:
            self.close()
            raise

    def _start(self, args: list[str], name: str, cwd: Path) -> subprocess.Popen:
        cwd.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / f"{name}.log", "wb")
        with log:
            return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=cwd, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def add_worker(self) -> subprocess.Popen:
        """Start one more worker process (one thread, no nanny: killing it kills the worker)."""
        n = len(self.workers)
        worker = self._start(["worker", "--scheduler-file", str(self.scheduler_file), "--nthreads", "1",
                              "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "30",
                              "--name", f"worker{n}", *self.tls], f"worker{n}", self.folder / f"worker{n}")
        self.workers.append(worker)
        return worker

    def info(self) -> dict:
        """The scheduler's view: {"workers": {address: {...}}, "processing": {address: [task keys]}}."""
        from distributed import Client

        with Client(self.address, timeout=10, security=self.security) as client:
            return {"workers": client.scheduler_info(n_workers=-1)["workers"], "processing": client.processing()}

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=START_TIMEOUT, security=self.security) as client:
            client.wait_for_workers(n, timeout=START_TIMEOUT)

    def kill_busy_worker(self) -> None:
        """SIGKILL a worker that is running a task."""
        by_name = {f"worker{n}": proc for n, proc in enumerate(self.workers)}
        info = self.info()
        busy = [info["workers"][address]["name"] for address, keys in info["processing"].items() if keys]
        assert busy, f"no worker is running a task: {info['processing']}"
        by_name[busy[0]].send_signal(signal.SIGKILL)
        by_name[busy[0]].wait()

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _wait(self, ready):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited: {(self.folder / 'scheduler.log').read_text()}")
            value = ready()
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError("dask scheduler did not start")
