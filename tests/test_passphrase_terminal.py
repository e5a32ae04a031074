"""Passphrases typed on a real terminal: keygen -p, encrypt -p and decrypt ask on /dev/tty of a pseudo-terminal,
with the answers typed after each prompt appears; without a controlling terminal they refuse clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from privspeech import crypto

from conftest import VCTK, run_on_terminal

SPEECH = VCTK / "p228" / "p228_003.wav"
PASSPHRASE = "a passphrase typed at the prompt"


@pytest.mark.slow
def test_keygen_then_decrypt_with_a_typed_passphrase(tmp_path):
    key = tmp_path / "me.key"
    status, shown = run_on_terminal(["keygen", "-p", "-o", key], answers=[PASSPHRASE, PASSPHRASE])
    assert status == 0, shown
    assert "Passphrase: " in shown and PASSPHRASE not in shown  # asked, and not echoed
    recipient = shown.strip().splitlines()[-1]
    assert recipient.startswith("age1") and key.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert key.stat().st_mode & 0o777 == 0o600

    sealed = tmp_path / "speech.wav.age"
    crypto.encrypt_file(SPEECH, sealed, recipients=[crypto.recipients.parse(recipient)])
    status, shown = run_on_terminal(["decrypt", "-i", key, sealed, "-o", tmp_path / "out.wav"], answers=[PASSPHRASE])
    assert status == 0, shown
    assert (tmp_path / "out.wav").read_bytes() == SPEECH.read_bytes()


@pytest.mark.slow
def test_encrypt_and_decrypt_with_a_typed_passphrase(tmp_path):
    sealed = tmp_path / "speech.wav.age"
    status, shown = run_on_terminal(["encrypt", "-p", SPEECH, "-o", sealed], answers=[PASSPHRASE, PASSPHRASE])
    assert status == 0, shown
    assert sealed.read_bytes().startswith(b"age-encryption.org/v1\n-> scrypt ")
    status, shown = run_on_terminal(["decrypt", sealed, "-o", tmp_path / "out.wav"], answers=[PASSPHRASE])
    assert status == 0, shown
    assert (tmp_path / "out.wav").read_bytes() == SPEECH.read_bytes()

    status, shown = run_on_terminal(["decrypt", sealed, "-o", tmp_path / "wrong.wav"], answers=["not it"])
    assert status == 77 and "Traceback" not in shown, shown
    assert not (tmp_path / "wrong.wav").exists()


def test_a_mistyped_confirmation_writes_nothing(tmp_path):
    key = tmp_path / "me.key"
    status, shown = run_on_terminal(["keygen", "-p", "-o", key], answers=[PASSPHRASE, PASSPHRASE + "!"])
    assert status == 2 and "the passphrases differ" in shown, shown
    assert not key.exists()


def test_without_a_terminal_the_prompt_refuses_and_names_the_alternatives(tmp_path):
    key = tmp_path / "me.key"
    proc = subprocess.run([sys.executable, "-m", "privspeech", "keygen", "-p", "-o", key], input=b"typed\ntyped\n",
                          capture_output=True, start_new_session=True, timeout=60)  # no controlling terminal
    assert proc.returncode == 2
    assert proc.stderr.decode().strip().splitlines() == [
        "privspeech: error: no terminal to ask for the passphrase on (hint: use --passphrase-fd N or "
        "--passphrase-file PATH)"]
    assert not key.exists()
