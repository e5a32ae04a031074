"""Interop with the real `age` command (Debian package `age`): files from privspeech open with `age -d`,
files from `age` open with privspeech, for X25519, ssh-ed25519, ssh-rsa, passphrase, armored and
multi-recipient files, and passphrase-protected identity files. Plaintext is real speech from the corpus.
`age` asks for passphrases on /dev/tty only, so those runs go through a pseudo-terminal (`script`)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from privspeech import crypto
from privspeech.crypto import recipients

from conftest import VCTK

SPEECH = VCTK / "p225" / "p225_003.wav"  # 188 KiB: three 64 KiB STREAM chunks
PASSPHRASE = "correct horse battery staple"

pytestmark = pytest.mark.skipif(not (shutil.which("age") and shutil.which("age-keygen")),
                                reason="the age CLI is not installed (apt-get install age)")


def age(*args, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["age", *map(str, args)], capture_output=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


def age_on_tty(*args, answers: int) -> None:
    """Run age in a pseudo-terminal, answering its passphrase prompts."""
    assert shutil.which("script"), "needs script(1) from util-linux"
    command = shlex.join(["age", *map(str, args)])
    result = subprocess.run(["script", "-qec", command, "/dev/null"], input=(PASSPHRASE + "\n").encode() * answers,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode(errors="replace")


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """An age-keygen identity, a privspeech identity, and ssh-ed25519 and ssh-rsa key pairs."""
    folder = tmp_path_factory.mktemp("keys")
    subprocess.run(["age-keygen", "-o", folder / "age.key"], check=True, capture_output=True)
    crypto.write_identity_file(folder / "privspeech.key")
    for kind, extra in (("ed25519", []), ("rsa", ["-b", "2048"])):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", "", "-f", folder / kind], check=True)
    return {"age": folder / "age.key", "privspeech": folder / "privspeech.key", "ed25519": folder / "ed25519",
            "rsa": folder / "rsa"}


def public(keys: dict[str, Path], which: str) -> str:
    if which in ("ed25519", "rsa"):
        return keys[which].with_suffix(".pub").read_text().strip()
    return subprocess.run(["age-keygen", "-y", keys[which]], check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("which", ["age", "privspeech", "ed25519", "rsa"])
def test_privspeech_encrypts_age_decrypts(keys, which, armor, tmp_path):
    sealed = tmp_path / "speech.wav.age"
    written = crypto.encrypt_file(SPEECH, sealed, recipients=[recipients.parse(public(keys, which))], armor=armor)
    assert sealed.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----" if armor else b"age-encryption.org/v1")
    assert written.size == sealed.stat().st_size
    age("-d", "-i", keys[which], "-o", tmp_path / "out.wav", sealed)
    assert (tmp_path / "out.wav").read_bytes() == SPEECH.read_bytes()


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("which", ["age", "privspeech", "ed25519", "rsa"])
def test_age_encrypts_privspeech_decrypts(keys, which, armor, tmp_path):
    sealed = tmp_path / "speech.wav.age"
    age("-r", public(keys, which), *(["-a"] if armor else []), "-o", sealed, SPEECH)
    identities, _ = crypto.load_identity_file(keys[which])
    written = crypto.decrypt_file(sealed, tmp_path / "out.wav", identities=identities)
    assert (tmp_path / "out.wav").read_bytes() == SPEECH.read_bytes()
    assert written.size == SPEECH.stat().st_size


def test_multi_recipient_both_ways(keys, tmp_path):
    everyone = [public(keys, which) for which in ("age", "privspeech", "ed25519")]
    ours = tmp_path / "ours.age"
    crypto.encrypt_file(SPEECH, ours, recipients=[recipients.parse(text) for text in everyone])
    for which in ("age", "privspeech", "ed25519"):
        out = tmp_path / f"by-age-{which}.wav"
        age("-d", "-i", keys[which], "-o", out, ours)
        assert out.read_bytes() == SPEECH.read_bytes()
    theirs = tmp_path / "theirs.age"
    age(*[arg for text in everyone for arg in ("-r", text)], "-o", theirs, SPEECH)
    for which in ("age", "privspeech", "ed25519"):
        identities, _ = crypto.load_identity_file(keys[which])
        out = tmp_path / f"by-privspeech-{which}.wav"
        crypto.decrypt_file(theirs, out, identities=identities)
        assert out.read_bytes() == SPEECH.read_bytes()


def test_recipients_file_as_age_reads_it(keys, tmp_path):
    listing = tmp_path / "team.txt"
    listing.write_text(f"# the team\n{public(keys, 'age')}\n\n# ssh users\n{public(keys, 'ed25519')}\n")
    found = recipients.parse_file(listing)
    assert len(found) == 2
    ours, theirs = tmp_path / "ours.age", tmp_path / "theirs.age"
    crypto.encrypt_file(SPEECH, ours, recipients=found)
    age("-R", listing, "-o", theirs, SPEECH)
    for sealed in (ours, theirs):
        for which in ("age", "ed25519"):
            assert age("-d", "-i", keys[which], sealed).stdout == SPEECH.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_passphrase_both_ways(armor, tmp_path):
    ours = tmp_path / "ours.age"
    crypto.encrypt_file(SPEECH, ours, passphrase=PASSPHRASE, armor=armor)
    head = ours.read_bytes()[:40]
    assert head.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----" if armor else b"age-encryption.org/v1\n-> scrypt ")
    age_on_tty("-d", "-o", tmp_path / "by-age.wav", ours, answers=1)
    assert (tmp_path / "by-age.wav").read_bytes() == SPEECH.read_bytes()
    theirs = tmp_path / "theirs.age"
    age_on_tty("-p", *(["-a"] if armor else []), "-o", theirs, SPEECH, answers=2)
    crypto.decrypt_file(theirs, tmp_path / "by-privspeech.wav", passphrase=PASSPHRASE)
    assert (tmp_path / "by-privspeech.wav").read_bytes() == SPEECH.read_bytes()


@pytest.mark.slow
def test_passphrase_protected_identity_files_both_ways(tmp_path):
    ours = tmp_path / "ours.key.age"
    recipient = crypto.write_identity_file(ours, passphrase=PASSPHRASE)
    age_on_tty("-d", "-o", tmp_path / "ours.key", ours, answers=1)  # age opens it: a plain identity file inside
    assert f"# public key: {recipient}\n" in (tmp_path / "ours.key").read_text()
    sealed = tmp_path / "speech.age"
    age("-r", recipient, "-o", sealed, SPEECH)
    identities, warnings = crypto.load_identity_file(ours, passphrase=PASSPHRASE)
    assert warnings == []
    crypto.decrypt_file(sealed, tmp_path / "out.wav", identities=identities)
    assert (tmp_path / "out.wav").read_bytes() == SPEECH.read_bytes()

    plain = tmp_path / "theirs.key"
    subprocess.run(["age-keygen", "-o", plain], check=True, capture_output=True)
    theirs = tmp_path / "theirs.key.age"
    age_on_tty("-p", "-a", "-o", theirs, plain, answers=2)  # the way age's README protects an identity
    identities, _ = crypto.load_identity_file(theirs, passphrase=PASSPHRASE)
    assert [str(i) for i in identities] == [line for line in plain.read_text().splitlines()
                                            if line.startswith("AGE-SECRET-KEY-1")]
