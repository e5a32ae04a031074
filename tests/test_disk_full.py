"""A full disk is one line naming the output, exit 74 with a hint to free space, and leaves no partial or
temporary file: decrypt (a folder batch and one file), noise and anonymize, each writing onto a real 64 KiB
tmpfs mounted in a mount namespace of its own."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import SAMPLES, run_cli

WAV = SAMPLES / "p225" / "p225_003.wav"  # 192 KiB: more than the tmpfs holds
FULL_SCRIPT = ('mount -t tmpfs -o size=64k none "$1" || exit 99; folder="$1"; listing="$2"; shift 2; "$@"; rc=$?; '
               '(cd "$folder" && find . -mindepth 1 | sort) > "$listing"; exit $rc')


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount a small tmpfs")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=64k none "$0"', folder],
                           capture_output=True)
    if probe.returncode:
        pytest.skip(f"cannot mount a tmpfs in a mount namespace here: {probe.stderr.decode().strip()}")


def on_full_disk(tmp_path, args, **kwargs) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run privspeech with `{full}` in `args` naming a fresh 64 KiB tmpfs; returns the run and what the tmpfs
    held afterwards (listed inside the namespace, before the mount goes away)."""
    full, listing = tmp_path / "full", tmp_path / "listing.txt"
    full.mkdir()
    args = [str(a).replace("{full}", str(full)) for a in args]
    result = subprocess.run(["unshare", "-m", "sh", "-c", FULL_SCRIPT, "sh", full, listing, sys.executable, "-m",
                             "privspeech", *args], capture_output=True, **kwargs)
    assert result.returncode != 99, result.stderr
    return result, listing.read_text().split()


@pytest.fixture
def sealed(tmp_path):
    made = run_cli(["keygen", "-o", tmp_path / "me.key"])
    assert made.returncode == 0, made.stderr
    vault = tmp_path / "vault"
    vault.mkdir()
    for name in ("a.wav", "b.wav"):
        shutil.copy(WAV, tmp_path / name)
        sealed = run_cli(["encrypt", "-r", made.stdout.decode().strip(), "-o", vault / f"{name}.age",
                          tmp_path / name])
        assert sealed.returncode == 0, sealed.stderr
    return tmp_path / "me.key", vault


def _one_disk_full_line(stderr: bytes, dest: str) -> None:
    errors = [line for line in stderr.decode().splitlines() if "error:" in line]
    assert errors and all(f"cannot write {dest}" in line and "No space left on device" in line
                          and "free space" in line for line in errors), stderr.decode()
    assert b"internal error" not in stderr and b"Traceback" not in stderr


@pytest.mark.slow
def test_decrypt_out_dir_on_a_full_disk(can_mount, tmp_path, sealed):
    key, vault = sealed
    result, left = on_full_disk(tmp_path, ["decrypt", "-i", key, "--out-dir", "{full}", vault, "--jobs", "1", "-q"])
    assert result.returncode == 1 and result.stdout == b""  # every record failed, each reported
    _one_disk_full_line(result.stderr, str(tmp_path / "full"))
    assert [p for p in left if not p.startswith("./.privspeech")] == []  # no plaintext, whole or partial
    assert not [p for p in left if p.endswith(".privspeech-tmp")]


def test_decrypt_one_file_on_a_full_disk(can_mount, tmp_path, sealed):
    key, vault = sealed
    result, left = on_full_disk(tmp_path, ["decrypt", "-i", key, "-o", "{full}/a.wav", vault / "a.wav.age"])
    assert result.returncode == 74
    _one_disk_full_line(result.stderr, str(tmp_path / "full" / "a.wav"))
    assert left == []


@pytest.mark.parametrize("command", [["noise", "--epsilon", "8"], pytest.param(["anonymize"], marks=pytest.mark.slow)])
def test_audio_stages_on_a_full_disk(can_mount, tmp_path, command):
    result, left = on_full_disk(tmp_path, [*command, WAV, "-o", "{full}/out.wav", "-q"])
    assert result.returncode == 74
    _one_disk_full_line(result.stderr, str(tmp_path / "full" / "out.wav"))
    assert left == []
