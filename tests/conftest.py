"""Shared fixtures: the real corpus, the sample audio, and ways to run the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"  # benchmarks' corpus; only the tests that need LibriSpeech read it
SAMPLES = REPO / "sample_audio"
DATA = REPO / "tests" / "data"
VCTK = DATA / "vctk"  # the corpus's 40 VCTK recordings, shipped (tests/data/LICENSES.md)
SPEAKERS = DATA / "speakers.tsv"  # the corpus's speakers.tsv rows for them


def corpus_files(folder: str = "vctk", pattern: str = "*.wav") -> list[Path]:
    files = sorted((DATA / folder if folder == "vctk" else CORPUS / folder).rglob(pattern))
    assert files, f"corpus folder {folder} is missing: tests need ../shared/corpus"
    return files


@pytest.fixture(scope="session")
def corpus() -> Path:
    assert CORPUS.is_dir(), "tests need the shared corpus beside the repository (../shared/corpus)"
    return CORPUS


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


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".privspeech-tmp")]


def foreground_sigint() -> None:
    """`preexec_fn` giving a child SIGINT's default disposition, as a terminal's foreground job has: a background
    job of a non-interactive shell (a CI runner's, say) inherits SIGINT ignored, and Python then keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
