"""privspeech.crypto on real files: round trips of real speech, tampering, wrong keys, overwrites,
permissions, interrupted runs, identity and recipients files, passphrase input and flat memory."""

from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import io
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyrage
import pytest

from privspeech import crypto
from privspeech.crypto import passphrase, recipients
from privspeech.crypto import stream as crypto_stream
from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.manifest import Record, dumps

from conftest import SAMPLES, VCTK, foreground_sigint

SPEECH = VCTK / "p226" / "p226_005.wav"
CHUNK = 64 * 1024 + 16  # one STREAM chunk of ciphertext


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture(scope="module")
def identity() -> pyrage.x25519.Identity:
    return crypto.generate()


@pytest.fixture
def sealed(tmp_path, identity) -> Path:
    path = tmp_path / "speech.wav.age"
    crypto.encrypt_file(SPEECH, path, recipients=[identity.to_public()])
    return path


def leftovers(folder: Path, *keep: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p not in keep)


# --- round trips, hashes and the manifest entry ----------------------------------------------------------

@pytest.mark.parametrize("armor", [False, True])
def test_round_trip_real_speech(tmp_path, identity, armor):
    sealed = tmp_path / "speech.wav.age"
    ciphertext = crypto.encrypt_file(SPEECH, sealed, recipients=[identity.to_public()], armor=armor)
    assert ciphertext.sha256 == hashlib.sha256(sealed.read_bytes()).hexdigest()
    assert ciphertext.size == sealed.stat().st_size > SPEECH.stat().st_size
    assert sealed.stat().st_mode & 0o777 == 0o666 & ~umask()
    plain = crypto.decrypt_file(sealed, tmp_path / "out.wav", identities=[identity])
    assert (tmp_path / "out.wav").read_bytes() == SPEECH.read_bytes()
    assert plain.sha256 == hashlib.sha256(SPEECH.read_bytes()).hexdigest()
    assert (tmp_path / "out.wav").stat().st_mode & 0o777 == 0o600


def test_empty_plaintext_round_trips(tmp_path, identity):
    (tmp_path / "empty").write_bytes(b"")
    crypto.encrypt_file(tmp_path / "empty", tmp_path / "empty.age", recipients=[identity.to_public()])
    written = crypto.decrypt_file(tmp_path / "empty.age", tmp_path / "out", identities=[identity])
    assert written.size == 0 and (tmp_path / "out").read_bytes() == b""


def test_manifest_op_names_counts_never_recipients(identity):
    record = Record(audio_filepath="vault/a.wav.age", duration=1.0)
    fields = crypto.op_fields(recipients=2, armor=True)
    line = dumps(record.with_op("encrypt", **fields))
    op = record.with_op("encrypt", **fields).privspeech.ops[-1]
    assert (op["op"], op["format"], op["recipients"], op["armor"]) == ("encrypt", "age", 2, True)
    assert "age1" not in line and str(identity.to_public()) not in line
    assert crypto.op_fields(recipients=0, passphrase=True)["passphrase"] is True


# --- tampering, wrong keys, bad input: an error of the right kind and no plaintext -----------------------

def _payload_start(data: bytes) -> int:
    return data.index(b"\n", data.index(b"\n--- ") + 1) + 1


TAMPERING = {
    "header-mac": lambda d: _flip(d, d.index(b"\n--- ") + 8),
    "version-line": lambda d: _flip(d, 3),
    "payload-nonce": lambda d: _flip(d, _payload_start(d) + 2),
    "first-chunk": lambda d: _flip(d, _payload_start(d) + 16 + 100),
    "last-chunk": lambda d: _flip(d, len(d) - 20),
    "last-tag": lambda d: _flip(d, len(d) - 1),
    "truncated-one-byte": lambda d: d[:-1],
    "truncated-at-chunk-boundary": lambda d: d[:_payload_start(d) + 16 + CHUNK],
    "truncated-in-header": lambda d: d[:40],
    "trailing-garbage": lambda d: d + b"\0" * 32,
    "chunks-swapped": lambda d: _swap_chunks(d),
}


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1:]


def _swap_chunks(data: bytes) -> bytes:
    start = _payload_start(data) + 16
    first, second = data[start:start + CHUNK], data[start + CHUNK:start + 2 * CHUNK]
    return data[:start] + second + first + data[start + 2 * CHUNK:]


def test_damaged_key_stanza_reads_as_someone_elses(tmp_path, identity, sealed):
    """A damaged wrapped file key cannot be told from one wrapped for another key (age: "no match")."""
    data = sealed.read_bytes()
    body = data.index(b"\n", data.index(b"-> X25519")) + 1
    letter = next(at for at in range(body + 2, body + 40) if chr(data[at]).isalpha())
    sealed.write_bytes(_flip(data, letter))  # swapped case: still base64, but another wrapped key
    with pytest.raises(PrivspeechError) as caught:
        crypto.decrypt_file(sealed, tmp_path / "out.wav", identities=[identity])
    assert caught.value.status == ExitStatus.NOPERM and "damaged" in caught.value.hint
    assert leftovers(tmp_path, sealed) == []


@pytest.mark.parametrize("how", TAMPERING)
def test_tampering_is_data_error_without_plaintext(tmp_path, identity, sealed, how):
    assert SPEECH.stat().st_size > 2 * 64 * 1024  # at least three chunks, so first and last differ
    sealed.write_bytes(TAMPERING[how](sealed.read_bytes()))
    with pytest.raises(PrivspeechError) as caught:
        crypto.decrypt_file(sealed, tmp_path / "out.wav", identities=[identity])
    assert caught.value.status == ExitStatus.DATAERR
    assert str(sealed) in str(caught.value) and caught.value.hint
    assert leftovers(tmp_path, sealed) == []


def test_wrong_identity_is_noperm_with_hint(tmp_path, sealed):
    with pytest.raises(PrivspeechError) as caught:
        crypto.decrypt_file(sealed, tmp_path / "out.wav", identities=[crypto.generate()])
    assert caught.value.status == ExitStatus.NOPERM and "-i" in caught.value.hint
    assert leftovers(tmp_path, sealed) == []


@pytest.mark.parametrize("content", [b"", SPEECH.read_bytes()[:4096]], ids=["empty-file", "plain-wav"])
def test_not_age_is_data_error(tmp_path, identity, content):
    (tmp_path / "in.age").write_bytes(content)
    with pytest.raises(PrivspeechError) as caught:
        crypto.decrypt_file(tmp_path / "in.age", tmp_path / "out", identities=[identity])
    assert caught.value.status == ExitStatus.DATAERR and "not a valid age file" in str(caught.value)
    assert leftovers(tmp_path, tmp_path / "in.age") == []


def test_missing_input_is_noinput(tmp_path, identity):
    with pytest.raises(PrivspeechError) as caught:
        crypto.decrypt_file(tmp_path / "absent.age", tmp_path / "out", identities=[identity])
    assert caught.value.status == ExitStatus.NOINPUT


@pytest.mark.slow
def test_passphrase_and_recipient_files_need_the_right_secret(tmp_path, identity, sealed):
    with pytest.raises(PrivspeechError) as caught:
        crypto.decrypt_file(sealed, tmp_path / "out", passphrase="anything")
    assert caught.value.status == ExitStatus.NOPERM and "X25519" in str(caught.value)
    small = tmp_path / "small.age"
    crypto.encrypt_file(SAMPLES / "jackson" / "jackson_take00.wav", small, passphrase="pw one")
    for kwargs in ({"identities": [identity]}, {"passphrase": "pw two"}):
        with pytest.raises(PrivspeechError) as caught:
            crypto.decrypt_file(small, tmp_path / "out", **kwargs)
        assert caught.value.status == ExitStatus.NOPERM
    assert leftovers(tmp_path, sealed, small) == []


def test_existing_output_needs_force(tmp_path, identity, sealed):
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep me")
    with pytest.raises(PrivspeechError) as caught:
        crypto.decrypt_file(sealed, out, identities=[identity])
    assert caught.value.status == ExitStatus.CANTCREAT and out.read_bytes() == b"keep me"
    with pytest.raises(PrivspeechError):
        crypto.encrypt_file(SPEECH, sealed, recipients=[identity.to_public()])
    crypto.decrypt_file(sealed, out, identities=[identity], force=True)
    assert out.read_bytes() == SPEECH.read_bytes() and out.stat().st_mode & 0o777 == 0o600
    assert leftovers(tmp_path, sealed, out) == []


def test_disk_full_is_reported_against_the_output(identity, sealed):
    with open("/dev/full", "wb", buffering=0) as full, pytest.raises(PrivspeechError) as caught:
        crypto.decrypt_stream(sealed.open("rb"), full, identities=[identity], out_name="/dev/full")
    assert caught.value.status == ExitStatus.IOERR and "/dev/full" in str(caught.value)


def test_passphrase_mode_refuses_large_files(tmp_path):
    big = tmp_path / "big.raw"
    with big.open("wb") as fh:
        fh.truncate(passphrase.MAX_BYTES + 1)
    with pytest.raises(PrivspeechError) as caught:
        crypto.encrypt_file(big, tmp_path / "big.age", passphrase="pw")
    assert caught.value.status == ExitStatus.DATAERR and "-r/-R" in caught.value.hint
    assert leftovers(tmp_path, big) == []


def test_encrypt_needs_exactly_one_kind_of_recipient(tmp_path, identity):
    for kwargs in ({}, {"recipients": [identity.to_public()], "passphrase": "pw"}):
        with pytest.raises(PrivspeechError) as caught:
            crypto.encrypt_file(SPEECH, tmp_path / "x.age", **kwargs)
        assert caught.value.status == ExitStatus.USAGE
    assert leftovers(tmp_path) == []


# --- Ctrl-C mid-stream: a real SIGINT while the input (a FIFO) is half read ------------------------------

CHILD = """
import sys, pyrage
from privspeech import crypto
mode, src, dest, key = sys.argv[1:5]
identity = pyrage.x25519.Identity.from_str(key)
try:
    if mode == "decrypt":
        crypto.decrypt_file(src, dest, identities=[identity])
    else:
        crypto.encrypt_file(src, dest, recipients=[identity.to_public()])
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory) -> Path:
    """About 12 MiB of real speech: VCTK recordings back to back (several of the 2 MiB read and write blocks)."""
    path = tmp_path_factory.mktemp("speech") / "long.raw"
    with path.open("wb") as fh:
        for wav in itertools.cycle(sorted(VCTK.rglob("*.wav"))):
            if fh.tell() > 12 << 20:
                break
            fh.write(wav.read_bytes())
    return path


@pytest.mark.parametrize("mode", ["decrypt", "encrypt"])
def test_ctrl_c_mid_stream_leaves_nothing(tmp_path, identity, long_speech, mode):
    source = long_speech.read_bytes()
    if mode == "decrypt":
        source = pyrage.encrypt(source, [identity.to_public()])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    fifo = tmp_path / "input.fifo"
    os.mkfifo(fifo)
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode, fifo, out_dir / "result", str(identity)],
                             stderr=subprocess.PIPE, preexec_fn=foreground_sigint)
    try:
        with open(fifo, "wb") as feed:
            feed.write(source[:len(source) // 2])  # output has begun, the input is not over
            feed.flush()
            deadline = time.monotonic() + 20
            while not any(p.stat().st_size > 0 for p in out_dir.iterdir()):
                if time.monotonic() > deadline or child.poll() is not None:
                    child.kill()
                    pytest.fail(f"no output appeared: {child.communicate()[1].decode()}")
                time.sleep(0.01)
            child.send_signal(signal.SIGINT)
            assert child.wait(timeout=20) == 130, child.communicate()[1].decode()
    finally:
        if child.poll() is None:
            child.kill()
    assert leftovers(out_dir) == []


# --- the block path: input read and output written in 2 MiB blocks, hashed and written by worker threads ---

def _quiet_after(run):
    """Run `run`; check it restored the interpreter's switch interval and left no thread behind."""
    interval, threads = sys.getswitchinterval(), threading.active_count()
    try:
        return run()
    finally:
        assert sys.getswitchinterval() == interval and threading.active_count() == threads


def test_long_round_trip_hashes_every_block(tmp_path, identity, long_speech):
    sealed, out = tmp_path / "long.age", tmp_path / "long.out"
    written = _quiet_after(lambda: crypto.encrypt_file(long_speech, sealed, recipients=[identity.to_public()]))
    assert (written.sha256, written.size) == (sha256_of(sealed), sealed.stat().st_size)
    assert pyrage.decrypt(sealed.read_bytes(), [identity]) == long_speech.read_bytes()  # rage's one-shot path
    plain = _quiet_after(lambda: crypto.decrypt_file(sealed, out, identities=[identity]))
    assert (plain.sha256, plain.size) == (sha256_of(long_speech), long_speech.stat().st_size)
    assert out.read_bytes() == long_speech.read_bytes()


def test_streams_in_threads_at_once(tmp_path, identity, long_speech):
    """Four encryptions in threads at the same time: all right, and the switch interval restored after the last."""
    outputs = [tmp_path / f"{n}.age" for n in range(4)]

    def run():
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda out: crypto.encrypt_file(long_speech, out, recipients=[identity.to_public()]),
                                 outputs))

    results = _quiet_after(run)
    for out, written in zip(outputs, results):
        assert written.sha256 == sha256_of(out) and pyrage.decrypt(out.read_bytes(), [identity]) == \
            long_speech.read_bytes()


def test_long_file_bad_last_chunk_releases_only_the_authenticated_prefix(tmp_path, identity, long_speech):
    sealed = tmp_path / "long.age"
    crypto.encrypt_file(long_speech, sealed, recipients=[identity.to_public()])
    sealed.write_bytes(_flip(sealed.read_bytes(), sealed.stat().st_size - 20))
    with pytest.raises(PrivspeechError) as caught:
        _quiet_after(lambda: crypto.decrypt_file(sealed, tmp_path / "out", identities=[identity]))
    assert caught.value.status == ExitStatus.DATAERR and leftovers(tmp_path, sealed) == []
    released = io.BytesIO()
    with pytest.raises(PrivspeechError), sealed.open("rb") as reader:
        crypto.decrypt_stream(reader, released, identities=[identity])
    whole_chunks = long_speech.stat().st_size // (64 * 1024) * (64 * 1024)
    assert released.getvalue() == long_speech.read_bytes()[:whole_chunks]


@pytest.mark.parametrize("mode", ["encrypt", "decrypt"])
def test_disk_full_mid_stream_stops_the_cipher_early(tmp_path, identity, long_speech, mode):
    """The worker's write error reaches rage's thread at its next block: reading stops within the blocks that
    were already in flight (the queue's bound, whatever the scheduling), long before the end of a 61 MiB input."""
    src = tmp_path / "long.raw"
    src.write_bytes(long_speech.read_bytes() * 5)
    if mode == "decrypt":
        src = tmp_path / "long.age"
        crypto.encrypt_file(tmp_path / "long.raw", src, recipients=[identity.to_public()])
    run = crypto.decrypt_stream if mode == "decrypt" else crypto.encrypt_stream
    keys = {"identities": [identity]} if mode == "decrypt" else {"recipients": [identity.to_public()]}
    with src.open("rb") as reader, open("/dev/full", "wb") as full:
        with pytest.raises(PrivspeechError) as caught:
            _quiet_after(lambda: run(reader, full, out_name="/dev/full", **keys))
        assert reader.tell() <= (crypto_stream._IN_FLIGHT + 3) * crypto_stream._BLOCK < src.stat().st_size // 4
    assert caught.value.status == ExitStatus.IOERR and "No space left" in str(caught.value)


def test_input_changed_in_a_later_block_is_refused_unpublished(tmp_path, identity, long_speech):
    expected = sha256_of(long_speech)
    changed = tmp_path / "changed.raw"
    changed.write_bytes(_flip(long_speech.read_bytes(), long_speech.stat().st_size - 5))
    with long_speech.open("rb") as reader, crypto.stream.atomic_write(tmp_path / "good.age") as writer:
        crypto.encrypt_stream(reader, writer, recipients=[identity.to_public()], input_sha256=expected)
    with pytest.raises(PrivspeechError) as caught, changed.open("rb") as reader, \
            crypto.stream.atomic_write(tmp_path / "bad.age") as writer:
        crypto.encrypt_stream(reader, writer, recipients=[identity.to_public()], input_sha256=expected)
    assert caught.value.status == ExitStatus.DATAERR and "sha256 mismatch" in str(caught.value)
    assert leftovers(tmp_path, changed) == ["good.age"]


@pytest.mark.skipif(not shutil.which("age"), reason="the age CLI is not installed (apt-get install age)")
def test_pipes_in_and_out_with_age_on_the_other_end(tmp_path, identity, long_speech):
    """Plaintext from `cat` through a pipe (short reads), ciphertext into `age -d` through another."""
    key = tmp_path / "me.key"
    key.write_text(f"{identity}\n")
    with (tmp_path / "out").open("wb") as out:
        feed = subprocess.Popen(["cat", long_speech], stdout=subprocess.PIPE)
        opener = subprocess.Popen(["age", "-d", "-i", key], stdin=subprocess.PIPE, stdout=out)
        written = crypto.encrypt_stream(feed.stdout, opener.stdin, recipients=[identity.to_public()])
        opener.stdin.close()
        assert opener.wait(timeout=60) == 0 and feed.wait(timeout=60) == 0
    assert sha256_of(tmp_path / "out") == sha256_of(long_speech) and written.size > long_speech.stat().st_size


# --- identity files ---------------------------------------------------------------------------------------

def test_identity_file_like_age_keygen(tmp_path):
    path = tmp_path / "me.key"
    recipient = crypto.write_identity_file(path)
    lines = path.read_text("ascii").splitlines()
    assert re.fullmatch(r"# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[0])
    assert lines[1] == f"# public key: {recipient}" and re.fullmatch(r"age1[0-9a-z]{58}", recipient)
    assert re.fullmatch(r"AGE-SECRET-KEY-1[0-9A-Z]{58}", lines[2]) and len(lines) == 3
    assert path.stat().st_mode & 0o777 == 0o600
    identities, warnings = crypto.load_identity_file(path)
    assert warnings == [] and [crypto.recipient(i) for i in identities] == [recipient]
    with pytest.raises(PrivspeechError) as caught:
        crypto.write_identity_file(path)
    assert caught.value.status == ExitStatus.CANTCREAT and path.read_text("ascii").splitlines() == lines


@pytest.mark.slow
def test_passphrase_protected_identity_file(tmp_path):
    path = tmp_path / "me.key.age"
    recipient = crypto.write_identity_file(path, passphrase=b"s3cret words")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----") and b"SECRET" not in path.read_bytes()
    with pytest.raises(PrivspeechError) as caught:
        crypto.load_identity_file(path)
    assert caught.value.status == ExitStatus.NOPERM and "passphrase" in str(caught.value)
    with pytest.raises(PrivspeechError) as caught:
        crypto.load_identity_file(path, passphrase="wrong words")
    assert caught.value.status == ExitStatus.NOPERM
    identities, _ = crypto.load_identity_file(path, passphrase=lambda: "s3cret words")
    assert [crypto.recipient(i) for i in identities] == [recipient]


def test_passphrase_prompt_is_called_only_when_needed(tmp_path):
    crypto.write_identity_file(tmp_path / "plain.key")
    asked = []
    crypto.load_identities([tmp_path / "plain.key"], passphrase=lambda: asked.append(1) or "x")
    assert asked == []


def test_loose_identity_file_warns(tmp_path):
    path = tmp_path / "me.key"
    crypto.write_identity_file(path)
    path.chmod(0o644)
    _, warnings = crypto.load_identity_file(path)
    assert len(warnings) == 1 and str(path) in warnings[0] and "chmod 600" in warnings[0]


SECRET_LOOKALIKE = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"


@pytest.mark.parametrize("content, words", [
    (b"", "no identities"),
    (b"# only a comment\n\n", "no identities"),
    (f"# me\n{SECRET_LOOKALIKE}\n".encode(), "line 2: malformed X25519 identity"),
    (b"AGE-SECRET-KEY-PQ-1ABCDEF\n", "line 1: not an X25519 identity"),
    (b"AGE-PLUGIN-YUBIKEY-1ABCDEF\n", "line 1: not an X25519 identity"),
    (b"hunter2 my password\n", "line 1: not an X25519 identity"),
    (b"\xff\xfe\x00binary", "not a text file"),
], ids=["empty", "comments-only", "bad-checksum", "post-quantum", "plugin", "garbage", "binary"])
def test_bad_identity_files(tmp_path, content, words):
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(PrivspeechError) as caught:
        crypto.load_identity_file(path)
    assert caught.value.status == ExitStatus.DATAERR and words in str(caught.value) and str(path) in str(caught.value)
    assert "hunter2" not in str(caught.value) and "QQQQ" not in str(caught.value)  # secrets are never echoed


def test_ssh_identity_files(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "plain"], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", tmp_path / "locked"], check=True)
    identities, _ = crypto.load_identity_file(tmp_path / "plain")
    assert isinstance(identities[0], pyrage.ssh.Identity)
    with pytest.raises(PrivspeechError) as caught:
        crypto.load_identity_file(tmp_path / "locked")
    assert caught.value.status == ExitStatus.DATAERR and "passphrase-protected ssh" in caught.value.hint


def test_missing_identity_file(tmp_path):
    with pytest.raises(PrivspeechError) as caught:
        crypto.load_identities([tmp_path / "absent.key"])
    assert caught.value.status == ExitStatus.NOINPUT and "absent.key" in str(caught.value)
    with pytest.raises(PrivspeechError) as caught:
        crypto.load_identities([])
    assert caught.value.status == ExitStatus.USAGE


# --- recipients ---------------------------------------------------------------------------------------------

def test_recipient_kinds(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@host", "-f", tmp_path / "k"], check=True)
    ssh_line = (tmp_path / "k.pub").read_text().strip()
    assert isinstance(recipients.parse(ssh_line), pyrage.ssh.Recipient)
    assert isinstance(recipients.parse(f"  {crypto.recipient(crypto.generate())}\n"), pyrage.x25519.Recipient)


@pytest.mark.parametrize("text, words", [
    ("age1qqqqqqqq", "not a valid age recipient"),
    ("age1pq1" + "q" * 80, "post-quantum"),
    ("ssh-ed25519 AAAAnotbase64", "not a valid ssh-ed25519 recipient"),
    ("ssh-dss AAAAB3NzaC1kc3MAAACBA", "unsupported recipient type 'ssh-dss'"),
    ("AGE-SECRET-KEY-1QQQQ", "this is a secret key (an age identity), not a recipient"),
    ("", "empty recipient"),
])
def test_bad_recipients(text, words):
    with pytest.raises(PrivspeechError) as caught:
        recipients.parse(text)
    assert caught.value.status == ExitStatus.USAGE
    assert words in str(caught.value) + " " + (caught.value.hint or "")


def test_recipients_file_errors_name_file_and_line(tmp_path):
    good = crypto.recipient(crypto.generate())
    listing = tmp_path / "team.txt"
    listing.write_text(f"# team\n{good}\n\n  # indented comments are errors, as in age\n")
    with pytest.raises(PrivspeechError) as caught:
        recipients.parse_file(listing)
    assert f"{listing} line 4" in str(caught.value)
    listing.write_text("# nobody yet\n")
    with pytest.raises(PrivspeechError, match="no recipients"):
        recipients.parse_file(listing)
    with pytest.raises(PrivspeechError) as caught:
        recipients.collect(files=[tmp_path / "absent.txt"])
    assert caught.value.status == ExitStatus.NOINPUT
    with pytest.raises(PrivspeechError) as caught:
        recipients.collect()
    assert caught.value.status == ExitStatus.USAGE
    listing.write_text(f"{good}\n")
    assert len(recipients.collect([good], [listing])) == 2


# --- passphrases from a file descriptor or a file ----------------------------------------------------------

def test_passphrase_from_fd():
    read_end, write_end = os.pipe()
    os.write(write_end, "pässword one\nsecond line\n".encode())
    os.close(write_end)
    assert passphrase.read_fd(read_end) == "pässword one"
    with pytest.raises(OSError) as caught:
        os.fstat(read_end)
    assert caught.value.errno == errno.EBADF  # read_fd closed it


def test_passphrase_from_file(tmp_path):
    path = tmp_path / "pass.txt"
    path.write_bytes(b"from a file\r\n")
    path.chmod(0o600)
    assert passphrase.read_file(path) == ("from a file", [])
    path.chmod(0o640)
    assert "readable by group or others" in passphrase.read_file(path)[1][0]
    path.write_bytes(b"\n")
    with pytest.raises(PrivspeechError) as caught:
        passphrase.read_file(path)
    assert caught.value.status == ExitStatus.USAGE
    with pytest.raises(PrivspeechError) as caught:
        passphrase.read_file(tmp_path / "absent")
    assert caught.value.status == ExitStatus.NOINPUT


# --- flat memory ---------------------------------------------------------------------------------------------

MEMORY_CHILD = """
import re, sys
from privspeech import crypto
src, sealed, out = sys.argv[1:4]
identity = crypto.generate()
crypto.encrypt_file(src, sealed, recipients=[identity.to_public()])
crypto.decrypt_file(sealed, out, identities=[identity])
print(re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read()).group(1))  # peak RSS since exec
"""


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@pytest.mark.slow
def test_memory_stays_flat(tmp_path):
    """96 MiB of speech through encrypt and decrypt in a fresh process: peak RSS stays under 64 MiB."""
    src = tmp_path / "big.wav"
    speech = SPEECH.read_bytes()
    with src.open("wb") as fh:
        for _ in range(96 * 1024 * 1024 // len(speech)):
            fh.write(speech)
    result = subprocess.run([sys.executable, "-c", MEMORY_CHILD, src, tmp_path / "big.age", tmp_path / "big.out"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    peak_mib = int(result.stdout) / 1024
    assert peak_mib < 64, f"peak RSS {peak_mib:.1f} MiB"
    assert sha256_of(src) == sha256_of(tmp_path / "big.out")
