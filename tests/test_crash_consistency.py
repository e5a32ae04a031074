"""kill -9 at any moment, then a rerun: one record per input, nothing lost, no orphan, no stale temporary file.

Real processes and real SIGKILLs on real speech (the sample recordings, tiled into longer files so that a batch
runs long enough to be cut at chosen points).
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLES, no_temp_files, records, run_cli

pytestmark = pytest.mark.slow  # every test runs and kills real batches, several times over

FILES = 30


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory) -> Path:
    """30 recordings of real speech (about 2.5 MB each) in two subfolders, a/ and b/."""
    folder = tmp_path_factory.mktemp("speech") / "in"
    clips = []
    for path in sorted(SAMPLES.rglob("*")):
        if path.suffix in (".wav", ".flac"):
            data, sr = sf.read(path, dtype="int16", always_2d=True)
            clips.append(sf.read(path, dtype="int16")[0] if sr == 16000 else data[:, 0])
    for i in range(FILES):
        clip = clips[i % len(clips)]
        clip = clip if clip.ndim == 1 else clip[:, 0]
        (folder / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        sf.write(folder / "ab"[i % 2] / f"{i:02d}.wav", np.tile(clip, 1 + 1_300_000 // clip.size), 16000,
                 subtype="PCM_16")
    return folder


def _walk_order() -> list[str]:
    return [f"a/{i:02d}" for i in range(0, FILES, 2)] + [f"b/{i:02d}" for i in range(1, FILES, 2)]


def _copy(src: Path, dest: Path) -> dict[str, str]:
    """Copy the speech folder; returns {id: sha256} of the copies."""
    sums = {}
    for path in sorted(src.rglob("*.wav")):
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        sums[str(target.relative_to(dest).with_suffix(""))] = _sha(target)
    return sums


def _start(args, stdout: Path) -> subprocess.Popen:
    with open(stdout, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "privspeech", *map(str, args)], stdout=out,
                                stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 60.0) -> bool:
    """SIGKILL `proc` as soon as `ready()` holds; False when it finished first (or never got there)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if ready() or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return time.monotonic() <= deadline
        time.sleep(0.002)
    return False


def _keys(tmp_path: Path) -> tuple[Path, str]:
    made = run_cli(["keygen", "-o", tmp_path / "me.key"])
    assert made.returncode == 0, made.stderr.decode()
    return tmp_path / "me.key", made.stdout.decode().strip()


CUTS = {
    "first ciphertext published": lambda vault, src: any(vault.rglob("*.age")),
    "ten sources removed": lambda vault, src: len(list(src.rglob("*.wav"))) <= FILES - 10,
    "twenty records printed": lambda vault, src: (vault / "manifest.jsonl").exists()
    and (vault / "manifest.jsonl").read_bytes().count(b"\n") >= 20,
}


@pytest.mark.parametrize("cut", CUTS)
def test_encrypt_remove_source_killed_then_rerun_keeps_every_record(tmp_path, speech_folder, cut):
    """The issue's reproduction: encrypt --remove-source --out-dir vault in > vault/manifest.jsonl, killed, rerun."""
    key, recipient = _keys(tmp_path)
    src, vault = tmp_path / "in", tmp_path / "vault"
    originals = _copy(speech_folder, src)
    vault.mkdir()
    args = ["encrypt", "-r", recipient, "-i", key, "--remove-source", "--out-dir", vault, src]
    proc = _start(args, vault / "manifest.jsonl")
    killed = _kill_when(proc, lambda: CUTS[cut](vault, src))
    assert killed or proc.returncode == 0, proc.stderr.read().decode()

    rerun = subprocess.run([sys.executable, "-m", "privspeech", *map(str, args)], capture_output=True)
    assert rerun.returncode == 0, rerun.stderr.decode()
    (vault / "manifest.jsonl").write_bytes(rerun.stdout)
    got = records(rerun.stdout.decode())
    assert [r["id"] for r in got] == _walk_order()  # one record per input, in input order
    assert not list(src.rglob("*.wav")) and no_temp_files(vault) and no_temp_files(src)
    assert sorted(p.relative_to(vault) for p in vault.rglob("*.age")) == \
        sorted(Path(f"{i}.wav.age") for i in _walk_order())
    plain = run_cli(["decrypt", "-i", key, "--out-dir", tmp_path / "plain", vault / "manifest.jsonl"])
    assert plain.returncode == 0, plain.stderr.decode()
    assert {i: _sha(tmp_path / "plain" / f"{i}.wav") for i in _walk_order()} == originals
    again = run_cli(args)
    assert again.returncode == 0 and records(again.stdout.decode()) == got


def test_noise_runner_killed_leaves_no_worker_and_the_rerun_adopts_or_replaces(tmp_path, speech_folder):
    """`noise -j 2` with the main process killed: its workers die with it; the rerun prints every record once."""
    out = tmp_path / "dp"
    out.mkdir()
    args = ["noise", "--epsilon", "100", "--seed", "t", "-j", "2", "--out-dir", out, speech_folder]
    proc = _start(args, out / "manifest.jsonl")
    deadline = time.monotonic() + 30
    children = []
    while len(children) < 2 and time.monotonic() < deadline:  # the pool's two workers, however loaded the machine
        time.sleep(0.1)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    killed = _kill_when(proc, lambda: len(list(out.rglob("*.wav"))) >= 8)
    assert killed, "the batch finished before it could be cut"
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children and not any(Path(f"/proc/{pid}").exists() for pid in children), "a worker outlived its runner"

    rerun = run_cli(args)
    assert rerun.returncode == 0, rerun.stderr.decode()
    got = records(rerun.stdout.decode())
    assert [r["id"] for r in got] == _walk_order()
    for rec in got:
        assert rec["privspeech"]["sha256"] == _sha(Path(rec["audio_filepath"]))
    assert no_temp_files(out) and "output already exists" not in rerun.stderr.decode()


def test_a_file_placed_by_hand_is_never_taken_for_an_orphan(tmp_path, speech_folder):
    """Only outputs this folder's journal claimed are replaced; anyone else's file stays (exit 1)."""
    out = tmp_path / "dp"
    out.mkdir()
    (out / "00.wav").write_bytes(b"mine")
    result = run_cli(["noise", "--epsilon", "100", "--seed", "t", "-j", "1", "--out-dir", out, speech_folder / "a"])
    assert result.returncode == 1 and b"00.wav: output already exists" in result.stderr
    assert (out / "00.wav").read_bytes() == b"mine"
    again = run_cli(["noise", "--epsilon", "100", "--seed", "t", "-j", "1", "--out-dir", out, speech_folder / "a"])
    assert again.returncode == 1 and (out / "00.wav").read_bytes() == b"mine"
    assert len(records(again.stdout.decode())) == FILES // 2 - 1


def test_killed_decrypt_leaves_a_temporary_file_that_the_rerun_removes(tmp_path, speech_folder):
    """decrypt -o FILE killed mid-write (its input trickles in through a pipe): the plaintext prefix it left is
    0600, and rerunning removes it and writes the whole file."""
    key, recipient = _keys(tmp_path)
    wav = speech_folder / "a" / "00.wav"
    sealed = tmp_path / "x.age"
    assert run_cli(["encrypt", "-r", recipient, "-o", sealed, wav]).returncode == 0
    data = sealed.read_bytes()
    out = tmp_path / "plain.wav"
    proc = subprocess.Popen([sys.executable, "-m", "privspeech", "decrypt", "-i", str(key), "-o", str(out)],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(data[:-65536])  # more than one 2 MiB output block: part of the plaintext is on disk
    proc.stdin.flush()
    leftover = tmp_path / ".plain.wav.privspeech-tmp"
    assert _kill_when(proc, lambda: leftover.exists() and leftover.stat().st_size > 0)
    assert leftover.stat().st_mode & 0o777 == 0o600 and not out.exists()
    with open(sealed, "rb") as stdin:
        again = subprocess.run([sys.executable, "-m", "privspeech", "decrypt", "-i", str(key), "-o", str(out)],
                               stdin=stdin, capture_output=True)
    assert again.returncode == 0, again.stderr.decode()
    assert out.read_bytes() == wav.read_bytes() and no_temp_files(tmp_path)


def test_a_temporary_file_a_live_writer_holds_is_left_alone(tmp_path, speech_folder):
    """Two runs writing the same output: the second fails (75) without touching the first's temporary file."""
    key, recipient = _keys(tmp_path)
    sealed = tmp_path / "x.age"
    assert run_cli(["encrypt", "-r", recipient, "-o", sealed, speech_folder / "a" / "00.wav"]).returncode == 0
    data = sealed.read_bytes()
    out = tmp_path / "plain.wav"
    first = subprocess.Popen([sys.executable, "-m", "privspeech", "decrypt", "-i", str(key), "-o", str(out)],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    first.stdin.write(data[:len(data) // 2])
    first.stdin.flush()
    temp = tmp_path / ".plain.wav.privspeech-tmp"
    deadline = time.monotonic() + 30
    while not (temp.exists() and temp.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.01)
    second = run_cli(["decrypt", "-i", key, "-o", out, sealed])
    assert second.returncode == 75 and b"another run is writing it" in second.stderr
    first.stdin.write(data[len(data) // 2:])
    first.stdin.close()
    assert first.wait(timeout=60) == 0, first.stderr.read().decode()
    assert out.read_bytes() == (speech_folder / "a" / "00.wav").read_bytes() and no_temp_files(tmp_path)


def test_sigterm_to_an_idle_runner_ends_it_and_its_workers(tmp_path, speech_folder):
    """SIGTERM (what systemd and kill send) ends a run as Ctrl-C does: exit 130, no temporary files."""
    out = tmp_path / "dp"
    out.mkdir()
    proc = _start(["noise", "--epsilon", "100", "-j", "2", "--out-dir", out, speech_folder], out / "m.jsonl")
    deadline = time.monotonic() + 30
    while not any(out.rglob("*.wav")) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130, proc.stderr.read().decode()
    assert no_temp_files(out)
    time.sleep(0.2)
    assert not subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True).stdout
