"""`encrypt --remove-source` against hostile manifests and careless use: it deletes only verified audio sources
inside the inputs' roots, on the word of manifests nobody else could have written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import SAMPLES, no_temp_files, records, run_cli
from privspeech.errors import PrivspeechError
from privspeech.removal import FileIdentity, SourceRemover

WAV = SAMPLES / "p225" / "p225_003.wav"
OTHER = SAMPLES / "p226" / "p226_005.wav"


@pytest.fixture
def keys(tmp_path) -> tuple[Path, str]:
    made = run_cli(["keygen", "-o", tmp_path / "me.key"])
    assert made.returncode == 0, made.stderr.decode()
    return tmp_path / "me.key", made.stdout.decode().strip()


def _line(path: str) -> str:
    return json.dumps({"audio_filepath": path, "id": Path(path).stem}) + "\n"


def _dataset(tmp_path: Path) -> tuple[Path, Path]:
    """data/ with two recordings, and a victim folder beside it holding a secret and a recording."""
    data, victim = tmp_path / "data", tmp_path / "victim"
    data.mkdir()
    victim.mkdir()
    shutil.copy(WAV, data / "a.wav")
    shutil.copy(OTHER, data / "b.wav")
    (victim / "secret.txt").write_text("not audio, not yours\n")
    shutil.copy(WAV, victim / "keep.wav")
    return data, victim


@pytest.mark.parametrize("named", ["../victim/secret.txt", pytest.param("../victim/keep.wav", marks=pytest.mark.slow),
                                   pytest.param("ABSOLUTE", marks=pytest.mark.slow)])
def test_a_manifest_cannot_delete_what_lies_outside_its_folder(tmp_path, keys, named):
    key, recipient = keys
    data, victim = _dataset(tmp_path)
    target = str(victim / "keep.wav") if named == "ABSOLUTE" else named
    (data / "m.jsonl").write_text(_line("a.wav") + _line(target))
    before = {p.name: p.read_bytes() for p in victim.iterdir()}
    result = run_cli(["encrypt", "-r", recipient, "-i", key, "--remove-source", "--out-dir", tmp_path / "vault",
                      data / "m.jsonl"])
    assert result.returncode == 1, result.stderr.decode()
    assert b"outside the folders its input came from" in result.stderr and b"Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == before
    assert [r["id"] for r in records(result.stdout.decode())] == ["a"] and not (data / "a.wav").exists()
    assert sorted(p.name for p in (tmp_path / "vault").rglob("*.age")) == ["a.wav.age"]


def test_only_regular_audio_files_are_removed(tmp_path, keys):
    key, recipient = keys
    data, victim = _dataset(tmp_path)
    (data / "notes.txt").write_text("minutes of the meeting\n")
    (data / "link.wav").symlink_to(victim / "keep.wav")
    (data / "m.jsonl").write_text(_line("notes.txt") + _line("link.wav") + _line("a.wav"))
    result = run_cli(["encrypt", "-r", recipient, "-i", key, "--remove-source", "--out-dir", tmp_path / "vault",
                      data / "m.jsonl"])
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "notes.txt: not a recognised audio file" in err and "link.wav" in err and "symlink" in err
    assert (data / "notes.txt").exists() and (data / "link.wav").is_symlink() and (victim / "keep.wav").exists()
    assert not (data / "a.wav").exists()
    assert sorted(p.name for p in (tmp_path / "vault").rglob("*.age")) == ["a.wav.age"]


@pytest.mark.parametrize("args, message", [
    (["--remove-source", "-o", "-"], b"-o -"),
    (["--remove-source", "-o", "x.age"], b"give the identity"),
    (["--verify", "-o", "x.age"], b"give the identity"),
    (["--source-root", "."], b"--source-root applies with --remove-source only"),
])
def test_careless_removal_is_a_usage_error_that_touches_nothing(tmp_path, keys, args, message):
    key, recipient = keys
    data, _ = _dataset(tmp_path)
    before = (data / "a.wav").read_bytes()
    extra = ["-i", key] if args[-1] == "-" else []
    result = run_cli(["encrypt", "-r", recipient, *extra, *args, data / "a.wav"], cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr.decode()
    assert (data / "a.wav").read_bytes() == before and not (tmp_path / "x.age").exists()


@pytest.mark.slow
def test_a_wrong_identity_keeps_the_source_and_writes_nothing(tmp_path, keys):
    _, recipient = keys
    data, _ = _dataset(tmp_path)
    assert run_cli(["keygen", "-o", tmp_path / "other.key"]).returncode == 0
    result = run_cli(["encrypt", "-r", recipient, "-i", tmp_path / "other.key", "--remove-source", "-o",
                      tmp_path / "a.wav.age", data / "a.wav"])
    assert result.returncode == 77 and b"does not open the new ciphertext" in result.stderr
    assert (data / "a.wav").exists() and not (tmp_path / "a.wav.age").exists() and no_temp_files(tmp_path)


@pytest.mark.slow
def test_a_passphrase_verifies_itself(tmp_path):
    data, _ = _dataset(tmp_path)
    original = (data / "a.wav").read_bytes()
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    sealed = run_cli(["encrypt", "-p", "--passphrase-file", tmp_path / "pass", "--remove-source", "-o",
                      tmp_path / "a.wav.age", data / "a.wav"])
    assert sealed.returncode == 0, sealed.stderr.decode()
    assert not (data / "a.wav").exists()
    opened = run_cli(["decrypt", "--passphrase-file", tmp_path / "pass", "-o", tmp_path / "back.wav",
                      tmp_path / "a.wav.age"])
    assert opened.returncode == 0 and (tmp_path / "back.wav").read_bytes() == original


@pytest.mark.parametrize("how", ["world-writable", "group-writable", "foreign-owner"])
def test_a_manifest_others_could_write_removes_nothing(tmp_path, keys, how):
    key, recipient = keys
    data, _ = _dataset(tmp_path)
    manifest = data / "m.jsonl"
    manifest.write_text(_line("a.wav") + _line("b.wav"))
    if how == "foreign-owner":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the manifest to another user")
        os.chown(manifest, 65534, 65534)
    else:
        manifest.chmod(0o666 if how == "world-writable" else 0o664)
    result = run_cli(["encrypt", "-r", recipient, "-i", key, "--remove-source", "--out-dir", tmp_path / "vault",
                      manifest])
    assert result.returncode == 77 and b"refusing to remove sources on the word of" in result.stderr
    assert (data / "a.wav").exists() and (data / "b.wav").exists() and not (tmp_path / "vault").exists()


def test_a_manifest_dropped_by_an_unprivileged_user_cannot_make_root_delete(tmp_path, keys):
    """The issue's attack, played by the real user nobody in a world-writable (sticky) drop folder."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as another user")
    key, recipient = keys
    shared = Path(tempfile.mkdtemp(prefix="privspeech-drop-"))  # beside pytest's folders, which are 0700
    try:
        shared.chmod(0o755)
        drop = shared / "drop"
        drop.mkdir()
        drop.chmod(0o1777)
        shutil.copy(WAV, drop / "root-only.wav")
        (drop / "root-only.wav").chmod(0o600)
        script = f"open({str(drop / 'm.jsonl')!r}, 'w').write({_line('root-only.wav')!r})"
        wrote = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                                script], capture_output=True, text=True)
        if wrote.returncode and "python" in wrote.stderr.lower() and not (drop / "m.jsonl").exists():
            pytest.skip("the unprivileged user cannot run this interpreter")
        assert (drop / "m.jsonl").stat().st_uid == 65534
        result = run_cli(["encrypt", "-r", recipient, "-i", key, "--remove-source", "--out-dir", tmp_path / "vault",
                          drop / "m.jsonl"])
        assert result.returncode == 77 and b"owned by uid 65534" in result.stderr
        assert (drop / "root-only.wav").read_bytes() == WAV.read_bytes()
    finally:
        shutil.rmtree(shared)


@pytest.mark.slow
def test_a_piped_manifest_needs_a_source_root(tmp_path, keys):
    key, recipient = keys
    data, victim = _dataset(tmp_path)
    scan = run_cli(["scan", data / "a.wav", victim / "keep.wav"])
    base = ["encrypt", "-r", recipient, "-i", key, "--remove-source", "--out-dir", tmp_path / "vault"]
    refused = run_cli(base, input=scan.stdout)
    assert refused.returncode == 2 and b"--source-root" in refused.stderr
    assert (data / "a.wav").exists() and (victim / "keep.wav").exists()
    done = run_cli([*base, "--source-root", data], input=scan.stdout)
    assert done.returncode == 1 and b"keep.wav: not removed: outside" in done.stderr
    assert [r["id"] for r in records(done.stdout.decode())] == ["a"]
    assert not (data / "a.wav").exists() and (victim / "keep.wav").exists()


def test_a_source_changed_after_encryption_is_kept(tmp_path):
    """The last check before unlinking: the file must still be the one that was read."""
    src = tmp_path / "a.wav"
    shutil.copy(WAV, src)
    seen = FileIdentity.of(os.stat(src))
    with open(src, "r+b") as fh:  # rewritten in place, same size
        fh.seek(100)
        fh.write(b"\x00\x01")
    remover = SourceRemover()
    with pytest.raises(PrivspeechError, match="changed after it was encrypted"):
        remover.remove(str(src), str(tmp_path), seen)
    assert src.exists()
    remover.remove(str(src), str(tmp_path), FileIdentity.of(os.stat(src)))
    assert not src.exists()


def test_a_swapped_folder_on_the_way_is_never_followed(tmp_path):
    """A folder inside the root replaced by a symlink to elsewhere: the file beyond it stays."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "spk").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(WAV, elsewhere / "x.wav")
    seen = FileIdentity.of(os.stat(elsewhere / "x.wav"))
    (root / "spk").rmdir()
    (root / "spk").symlink_to(elsewhere)
    with pytest.raises(PrivspeechError, match="symlink or not a folder"):
        SourceRemover().remove(str(root / "spk" / "x.wav"), str(root), seen)
    assert (elsewhere / "x.wav").exists()


@pytest.mark.slow
def test_rerunning_on_files_already_removed_prints_their_records(tmp_path, keys):
    """Files named on the command line that an earlier run encrypted and removed are not 'missing' to a rerun."""
    key, recipient = keys
    data, _ = _dataset(tmp_path)
    args = ["encrypt", "-r", recipient, "-i", key, "--remove-source", "--out-dir", tmp_path / "vault",
            data / "a.wav", data / "b.wav"]
    first = run_cli(args)
    assert first.returncode == 0 and not (data / "a.wav").exists() and not (data / "b.wav").exists()
    again = run_cli(args)
    assert again.returncode == 0, again.stderr.decode()
    assert records(again.stdout.decode()) == records(first.stdout.decode())
    assert b"2 already done (resumed)" in again.stderr
