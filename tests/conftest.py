"""Shared fixtures: the real corpus, the sample audio, and ways to run the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

# The one definition of where the repository, the tests and their data are: test modules import these.
REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SAMPLES = REPO / "sample_audio"
DATA = TESTS / "data"  # a small part of the benchmarks' corpus, in its layout (tests/data/LICENSES.md)
VCTK = DATA / "vctk"
SPEAKERS = DATA / "speakers.tsv"  # the corpus's rows for the shipped files, paths relative to DATA
NOBODY = 65534  # the unprivileged user tests run as root act as


def corpus_files(folder: str = "vctk", pattern: str = "*.wav") -> list[Path]:
    files = sorted((DATA / folder).rglob(pattern))
    assert files, f"tests/data/{folder} holds no {pattern}"
    return files


@pytest.fixture(autouse=True, scope="session")
def no_scheduler_from_the_environment():
    """Tests run on this machine unless they give --scheduler (or set PRIVSPEECH_SCHEDULER) themselves."""
    os.environ.pop("PRIVSPEECH_SCHEDULER", None)


@pytest.fixture
def public_tmp():
    """A folder every user can reach (pytest's tmp_path is private to its user), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="privspeech-public-"))
    folder.chmod(0o755)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=True)


def as_nobody(*command) -> list[str]:
    """`command` run by setpriv (util-linux) as the user nobody: uid and gid 65534, no supplementary groups. Root
    ignores file modes; this is how a test run as root (as CI is) sees what an unprivileged user gets."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *map(str, command)]


@pytest.fixture
def cli():
    """Invoke the real Typer app in-process: cli(args, input=...) -> result (exit_code, stdout, stderr)."""
    from privspeech.cli.app import app

    runner = CliRunner()

    def invoke(args, input=None, **kwargs):
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False, **kwargs)

    return invoke


def run_cli(args, *, input: bytes | None = None, cwd=None, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run `privspeech` in a subprocess with real pipes."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("PRIVSPEECH_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "privspeech", *map(str, args)], input=input, capture_output=True,
                          cwd=cwd, env=full_env, timeout=timeout)


_REPORT_IMPORTS = """
import runpy, sys
sys.argv = ["privspeech", *sys.argv[1:]]
try:
    runpy.run_module("privspeech", run_name="__main__")
finally:
    print("imported:", *sorted({name.split(".")[0] for name in sys.modules}))
"""


def packages_imported(args, **kwargs) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `privspeech` as `python -m privspeech` does, in a subprocess: (the process, the top-level packages it
    imported by the end of the run)."""
    proc = subprocess.run([sys.executable, "-c", _REPORT_IMPORTS, *map(str, args)], capture_output=True, **kwargs)
    return proc, set(proc.stdout.decode().splitlines()[-1].split()[1:])


def run_on_terminal(args, *, answers: list[str], cwd=None, env=None, timeout=120) -> tuple[int, str]:
    """Run `privspeech` with a pseudo-terminal as its controlling terminal (stdin, stdout and stderr on it too),
    typing each answer after the next passphrase prompt appears, as a person would: (exit status, what it showed)."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        try:
            if cwd is not None:
                os.chdir(cwd)
            os.environ.pop("PRIVSPEECH_DEBUG", None)
            os.environ.update(env or {})
            os.execv(sys.executable, [sys.executable, "-m", "privspeech", *map(str, args)])
        finally:
            os._exit(127)
    shown, typed, deadline = b"", 0, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if typed < len(answers) and shown.count(b"assphrase: ") > typed:
                os.write(fd, answers[typed].encode() + b"\n")
                typed += 1
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace").replace("\r\n", "\n")


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".privspeech-tmp")]


def foreground_sigint() -> None:
    """`preexec_fn` giving a child SIGINT's default disposition, as a terminal's foreground job has: a background
    job of a non-interactive shell (a CI runner's, say) inherits SIGINT ignored, and Python then keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
