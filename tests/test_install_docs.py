"""The README's install, cron and systemd instructions run as written: the cron line under cron's bare
environment, the unit's ExecStart with none at all, and the man pages land where the README links them from."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, SAMPLES, run_cli

README = (REPO / "README.md").read_text(encoding="utf-8")
PROGRAM = "/usr/local/bin/privspeech"
CRON_PATH = "/usr/bin:/bin"  # what cron gives a job (crontab(5))


def _block(language: str) -> str:
    (block,) = re.findall(rf"```{language}\n(.*?)```", README, re.S)
    return block


@pytest.fixture
def installed(tmp_path):
    """The README's layout under tmp_path: /usr/local/bin/privspeech linking to the environment's program, and a
    marked data folder with one recording whose retention has passed."""
    program = Path(sys.executable).parent / "privspeech"
    assert program.exists(), "the test environment installs privspeech (pip install -e .)"
    link = tmp_path / PROGRAM.lstrip("/")
    link.parent.mkdir(parents=True)
    link.symlink_to(program)
    root = tmp_path / "srv" / "calls"
    root.mkdir(parents=True)
    assert run_cli(["init", root]).returncode == 0
    shutil.copy(SAMPLES / "p225" / "p225_003.wav", root / "old.wav")
    (root / "manifest.jsonl").write_text('{"audio_filepath": "old.wav", "privspeech": '
                                         '{"v": 1, "expires_at": "2001-01-01T00:00:00Z"}}\n')
    return tmp_path, link, root


def _localise(command: str, tmp_path: Path, link: Path, root: Path) -> str:
    return (command.replace(PROGRAM, str(link)).replace("/srv/calls", str(root))
            .replace("/var/log/", f"{tmp_path}/"))


def test_the_cron_line_runs_under_crons_environment(installed):
    tmp_path, link, root = installed
    (line,) = [ln for ln in _block("cron").splitlines() if ln.strip() and not ln.startswith("#")]
    command = line.split(None, 5)[5]
    assert command.startswith(PROGRAM + " ")
    proc = subprocess.run(["env", "-i", f"PATH={CRON_PATH}", f"HOME={tmp_path}", "SHELL=/bin/sh", "/bin/sh", "-c",
                           _localise(command, tmp_path, link, root)], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "privspeech-prune.jsonl").read_text()
    assert '"action": "deleted"' in log and not (root / "old.wav").exists()


def test_the_systemd_unit_runs_with_no_environment(installed):
    tmp_path, link, root = installed
    (line,) = [ln for ln in _block("ini").splitlines() if ln.startswith("ExecStart=")]
    argv = shlex.split(_localise(line.removeprefix("ExecStart="), tmp_path, link, root))
    proc = subprocess.run(argv, env={}, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert b'"action": "deleted"' in proc.stdout and not (root / "old.wav").exists()


@pytest.mark.slow
def test_the_installed_package_carries_a_man_page_per_command(tmp_path):
    """`pip install .` puts man/*.1 under share/man/man1, which the README links into /usr/local/share/man."""
    assert "/opt/privspeech/share/man/man1/privspeech*.1" in README
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "privspeech", "man"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif (REPO / name).exists():
            shutil.copy(REPO / name, source / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", tmp_path / "wheel", source], capture_output=True, timeout=300,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "wheel").glob("privspeech-*.whl")
    pages = {Path(n).name for n in zipfile.ZipFile(wheel).namelist() if "/data/share/man/man1/" in n}
    commands = run_cli(["--help"]).stdout.decode()
    assert {p.name for p in (REPO / "man").glob("*.1")} == pages
    for command in ("scan", "anonymize", "noise", "encrypt", "decrypt", "keygen", "prune", "init", "evaluate"):
        assert command in commands and f"privspeech-{command}.1" in pages


@pytest.mark.slow
def test_the_try_it_command_leaves_git_status_clean(tmp_path):
    """The README's first command, after its install step, run in a repository like this one."""
    (block,) = re.findall(r"## Try it\n.*?```sh\n(.*?)```", README, re.S)
    install, _, run = block.strip().partition("pip install -e '.[test]' && ")
    assert install and run.startswith("mkdir -p ")
    work = tmp_path / "clone"
    shutil.copytree(SAMPLES, work / "sample_audio")
    shutil.copy(REPO / ".gitignore", work / ".gitignore")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(work)]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "sample"]):
        subprocess.run(git + args, check=True, capture_output=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["/bin/sh", "-c", run], cwd=work, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = next(work.glob("out/*/manifest.jsonl"))
    assert len(manifest.read_text().splitlines()) == len(list(SAMPLES.rglob("*.wav")) + list(SAMPLES.rglob("*.flac")))
    assert subprocess.run(git + ["status", "--porcelain"], capture_output=True, text=True).stdout == ""


@pytest.mark.slow
def test_the_headline_pipeline_keeps_audio_worth_keeping(tmp_path):
    """The README's first example, run as written on the sample recordings: only encrypted releases stay, they
    open to speech of the originals' length, and the noise example keeps speech above the noise."""
    import numpy as np
    import soundfile as sf

    block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    shutil.copytree(SAMPLES, tmp_path / "calls")
    shutil.copy(SAMPLES / "p226" / "p226_005.wav", tmp_path / "interview.wav")
    program = Path(sys.executable).parent / "privspeech"
    setup = f"{program} keygen -o team.key > team.pub && {program} keygen --anon -o anon.key -q"
    env = {**os.environ, "PATH": f"{program.parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["/bin/sh", "-ec", f"{setup}\n{block}"], cwd=tmp_path, env=env, capture_output=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert b"warning" not in proc.stderr.replace(b"no --key-file", b""), proc.stderr
    sealed = sorted((tmp_path / "vault").rglob("*.age"))
    assert len(sealed) == 5 and not [p for p in (tmp_path / "anon").rglob("*.wav")]
    opened = run_cli(["decrypt", "-i", tmp_path / "team.key", tmp_path / "vault" / "p225" / "p225_003.wav.age",
                      "-o", tmp_path / "opened.wav"])
    assert opened.returncode == 0
    assert sf.info(tmp_path / "opened.wav").frames == sf.info(SAMPLES / "p225" / "p225_003.wav").frames
    clean, _ = sf.read(tmp_path / "interview.wav")
    noised, _ = sf.read(tmp_path / "interview.dp.wav")
    assert 10 * np.log10(np.mean(clean ** 2) / np.mean((noised - clean) ** 2)) > 0
