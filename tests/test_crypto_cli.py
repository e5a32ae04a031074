"""`privspeech keygen`, `encrypt` and `decrypt` end to end in subprocesses with real pipes and real speech."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import SAMPLES, VCTK, packages_imported, records, run_cli
from privspeech.fsutil import sha256_file

SPEAKER = VCTK / "p226"


@pytest.fixture
def keyed(tmp_path) -> tuple[Path, str]:
    result = run_cli(["keygen", "-o", tmp_path / "me.key"])
    assert result.returncode == 0, result.stderr.decode()
    return tmp_path / "me.key", result.stdout.decode().strip()


def test_keygen_writes_private_identity_and_prints_recipient(tmp_path, keyed):
    key, recipient = keyed
    assert recipient.startswith("age1") and f"# public key: {recipient}" in key.read_text()
    assert key.stat().st_mode & 0o777 == 0o600
    again = run_cli(["keygen", "-o", key])
    assert again.returncode == 73 and key.read_text().count("AGE-SECRET-KEY-1") == 1
    anon = run_cli(["keygen", "--anon", "-o", tmp_path / "anon.key"])
    assert anon.returncode == 0 and (tmp_path / "anon.key").read_text().count("privspeech-key-v1:") == 1
    assert (tmp_path / "anon.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_folder_pipeline_round_trip(tmp_path, keyed):
    key, recipient = keyed
    (tmp_path / "team.txt").write_text(f"# team\n{recipient}\n")
    sealed = run_cli(["encrypt", "-R", tmp_path / "team.txt", "--out-dir", tmp_path / "vault", SPEAKER])
    assert sealed.returncode == 0, sealed.stderr.decode()
    assert recipient not in sealed.stdout.decode() and b'"recipients": 1' in sealed.stdout
    (tmp_path / "vault.jsonl").write_bytes(sealed.stdout)
    opened = run_cli(["decrypt", "-i", key, "--out-dir", tmp_path / "plain", tmp_path / "vault.jsonl"])
    assert opened.returncode == 0, opened.stderr.decode()
    for wav in SPEAKER.glob("*.wav"):
        assert (tmp_path / "vault" / f"{wav.name}.age").stat().st_mode & 0o777 == 0o666 & ~_umask()
        plain = tmp_path / "plain" / wav.name
        assert plain.read_bytes() == wav.read_bytes() and plain.stat().st_mode & 0o777 == 0o600
    folder = run_cli(["decrypt", "-i", key, "--out-dir", tmp_path / "again", tmp_path / "vault"])
    assert folder.returncode == 0 and len(list((tmp_path / "again").glob("*.wav"))) == 10


def test_encrypt_and_decrypt_load_no_audio_or_numeric_libraries(tmp_path, keyed):
    """Start-up (issue 26): a file is encrypted and decrypted as bytes, so neither command imports numpy or
    libsndfile (a tenth of a second each run), unless --remove-source must check that a source is audio."""
    key, recipient = keyed
    wav = next(SPEAKER.glob("*.wav"))
    heavy = {"numpy", "soundfile", "scipy", "cryptography", "rich"}
    sealed, imported = packages_imported(["encrypt", "-q", "-r", recipient, "-o", tmp_path / "x.age", wav])
    assert sealed.returncode == 0 and "pyrage" in imported and not imported & heavy, imported & heavy
    opened, imported = packages_imported(["decrypt", "-q", "-i", key, "-o", tmp_path / "x.wav", tmp_path / "x.age"])
    assert opened.returncode == 0 and not imported & heavy, imported & heavy
    assert (tmp_path / "x.wav").read_bytes() == wav.read_bytes()


@pytest.mark.slow
def test_single_file_record_carries_the_sha256_when_it_is_printed(tmp_path, keyed):
    """-o FILE prints no record, so the output is not hashed (issue 26: a quarter of the command's time on a large
    file); with --emit-manifest the record carries the sha256 of the bytes written, encrypted or decrypted."""
    key, recipient = keyed
    wav = next(SPEAKER.glob("*.wav"))
    plain = run_cli(["encrypt", "-q", "-r", recipient, "-o", tmp_path / "a.age", wav])
    assert plain.returncode == 0 and plain.stdout == b""
    opened = run_cli(["decrypt", "-q", "-i", key, "-o", tmp_path / "a.wav", tmp_path / "a.age"])
    assert opened.returncode == 0 and opened.stdout == b"" and (tmp_path / "a.wav").read_bytes() == wav.read_bytes()
    sealed = run_cli(["encrypt", "-q", "-r", recipient, "-o", tmp_path / "b.age", "--emit-manifest", wav])
    (record,) = records(sealed.stdout.decode())
    assert record["privspeech"]["sha256"] == sha256_file(tmp_path / "b.age")
    opened = run_cli(["decrypt", "-q", "-i", key, "-o", tmp_path / "b.wav", "--emit-manifest", tmp_path / "b.age"])
    (record,) = records(opened.stdout.decode())
    assert record["privspeech"]["sha256"] == sha256_file(wav)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_single_files_and_pipes(tmp_path, keyed):
    key, recipient = keyed
    wav = next(SPEAKER.glob("*.wav"))
    piped = run_cli(["encrypt", "-r", recipient, "-a", "-o", "-"], input=wav.read_bytes())
    assert piped.returncode == 0 and piped.stdout.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    opened = run_cli(["decrypt", "-i", key, "-o", "-"], input=piped.stdout)
    assert opened.returncode == 0 and opened.stdout == wav.read_bytes(), opened.stderr.decode()


def test_wrong_key_and_tampering_exit_codes_leave_nothing(tmp_path, keyed):
    key, recipient = keyed
    wav = next(SPEAKER.glob("*.wav"))
    sealed = tmp_path / "x.wav.age"
    assert run_cli(["encrypt", "-r", recipient, "-o", sealed, wav]).returncode == 0
    other = tmp_path / "other.key"
    assert run_cli(["keygen", "-o", other]).returncode == 0
    wrong = run_cli(["decrypt", "-i", other, "-o", tmp_path / "out.wav", sealed])
    assert wrong.returncode == 77, wrong.stderr.decode()
    assert b"no identity or passphrase given can open this file" in wrong.stderr and b"(-i)" in wrong.stderr
    data = bytearray(sealed.read_bytes())
    data[-100] ^= 1
    sealed.write_bytes(bytes(data))
    bad = run_cli(["decrypt", "-i", key, "-o", tmp_path / "out.wav", sealed])
    assert bad.returncode == 65, bad.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.key", "other.key", "x.wav.age"]


def test_passphrase_is_never_taken_from_argv(tmp_path):
    key = tmp_path / "locked.key"
    refused = run_cli(["keygen", "-o", key, "--passphrase", "hunter2"], input=b"")
    assert refused.returncode == 2 and b"unexpected extra argument" in refused.stderr
    assert not key.exists()


@pytest.mark.slow
def test_passphrase_from_fd_and_file(tmp_path):
    wav = next(SPEAKER.glob("*.wav"))
    secret = tmp_path / "pass.txt"
    secret.write_text("a long passphrase\n")
    secret.chmod(0o600)
    key = tmp_path / "locked.key"
    made = run_cli(["keygen", "-o", key, "--passphrase-file", secret])
    assert made.returncode == 0 and key.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    sealed = tmp_path / "x.age"
    assert run_cli(["encrypt", "-r", made.stdout.decode().strip(), "-o", sealed, wav]).returncode == 0
    read_end, write_end = os.pipe()
    os.write(write_end, b"a long passphrase\n")
    os.close(write_end)
    opened = subprocess.run([*_privspeech(), "decrypt", "-i", str(key), "--passphrase-fd", str(read_end), "-o",
                             str(tmp_path / "out.wav"), str(sealed)], pass_fds=(read_end,), capture_output=True)
    os.close(read_end)
    assert opened.returncode == 0, opened.stderr.decode()
    assert (tmp_path / "out.wav").read_bytes() == wav.read_bytes()


def _privspeech() -> list[str]:
    import sys

    return [sys.executable, "-m", "privspeech"]


@pytest.mark.slow
def test_remove_source_after_verify(tmp_path, keyed):
    key, recipient = keyed
    src = tmp_path / "rec.wav"
    shutil.copy(next(SPEAKER.glob("*.wav")), src)
    original = src.read_bytes()
    refused = run_cli(["encrypt", "-r", recipient, "--verify", "-o", tmp_path / "rec.wav.age", src])
    assert refused.returncode == 2 and src.exists()
    done = run_cli(["encrypt", "-r", recipient, "--verify", "-i", key, "--remove-source", "-o",
                    tmp_path / "rec.wav.age", src])
    assert done.returncode == 0, done.stderr.decode()
    assert not src.exists()
    assert run_cli(["decrypt", "-i", key, "-o", src, tmp_path / "rec.wav.age"]).returncode == 0
    assert src.read_bytes() == original


@pytest.mark.skipif(not shutil.which("age"), reason="the age CLI is not installed")
def test_cli_output_opens_with_age(tmp_path, keyed):
    key, recipient = keyed
    wav = next(SPEAKER.glob("*.wav"))
    assert run_cli(["encrypt", "-r", recipient, "-o", tmp_path / "x.age", wav]).returncode == 0
    opened = subprocess.run(["age", "-d", "-i", key, tmp_path / "x.age"], capture_output=True)
    assert opened.returncode == 0 and opened.stdout == wav.read_bytes()


@pytest.mark.slow
def test_input_changed_since_its_manifest_is_refused_in_the_same_pass(tmp_path, keyed):
    _, recipient = keyed
    src = tmp_path / "a.wav"
    shutil.copy(next(SPEAKER.glob("*.wav")), src)
    manifest = run_cli(["scan", src]).stdout
    (tmp_path / "m.jsonl").write_bytes(manifest)
    with open(src, "r+b") as fh:  # one flipped byte after the scan
        fh.seek(2000)
        byte = fh.read(1)
        fh.seek(2000)
        fh.write(bytes([byte[0] ^ 1]))
    result = run_cli(["encrypt", "-r", recipient, "--out-dir", tmp_path / "vault", tmp_path / "m.jsonl"])
    assert result.returncode == 1 and b"sha256 mismatch" in result.stderr
    assert not list((tmp_path / "vault").glob("*.age")) and not list((tmp_path / "vault").glob(".*tmp"))


def test_truncated_file_to_stdout_keeps_the_authenticated_prefix_and_fails(tmp_path, keyed):
    """What the README says of `decrypt -o -`: the chunks before the damage were already written (each
    authenticated), the exit status is non-zero; to a file, nothing is left."""
    key, recipient = keyed
    wav = SAMPLES / "p225" / "p225_003.wav"  # 192 KiB: three 64 KiB chunks
    sealed = tmp_path / "x.wav.age"
    assert run_cli(["encrypt", "-r", recipient, "-o", sealed, wav]).returncode == 0
    sealed.write_bytes(sealed.read_bytes()[:-1000])
    piped = run_cli(["decrypt", "-i", key, "-o", "-", sealed])
    assert piped.returncode == 65 and b"truncated" in piped.stderr
    assert piped.stdout == wav.read_bytes()[:2 * 64 * 1024]
    to_file = run_cli(["decrypt", "-i", key, "-o", tmp_path / "x.wav", sealed])
    assert to_file.returncode == 65 and sorted(p.name for p in tmp_path.iterdir()) == ["me.key", "x.wav.age"]
