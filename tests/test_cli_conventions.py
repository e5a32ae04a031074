"""Conventions a newcomer relies on: decrypt and keygen behave as age and age-keygen do where they overlap, a short
flag means one thing across subcommands, binary output never goes to a terminal, and speakers can be named from
paths in anonymize itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from privspeech import crypto
from privspeech.errors import UsageError

from conftest import VCTK, records, run_cli, run_on_terminal

SPEECH = VCTK / "p227" / "p227_003.wav"


@pytest.fixture
def sealed(tmp_path):
    key = tmp_path / "me.key"
    recipient = crypto.write_identity_file(key)
    sealed = tmp_path / "speech.wav.age"
    crypto.encrypt_file(SPEECH, sealed, recipients=[crypto.recipients.parse(recipient)])
    return key, sealed


def test_decrypt_one_file_without_output_writes_stdout_as_age_does(sealed):
    key, path = sealed
    proc = run_cli(["decrypt", "-i", key, path])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == SPEECH.read_bytes()
    with open(path, "rb") as fh:  # and from stdin, with age's -d habit
        proc = subprocess.run([sys.executable, "-m", "privspeech", "decrypt", "-d", "-i", str(key)], stdin=fh,
                              capture_output=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == SPEECH.read_bytes(), proc.stderr


def test_decrypt_never_writes_plaintext_to_a_terminal(sealed, tmp_path):
    key, path = sealed
    status, shown = run_on_terminal(["decrypt", "-i", key, path], answers=[], cwd=tmp_path)
    assert status == 2 and "stdout is a terminal" in shown and "RIFF" not in shown, shown
    status, shown = run_on_terminal(["decrypt", "-i", key, path, "-o", "-"], answers=[], cwd=tmp_path)
    assert status == 2 and "refusing to write binary output to the terminal" in shown, shown


def test_decrypt_several_files_still_needs_an_output(sealed, tmp_path):
    key, path = sealed
    shutil.copy(path, tmp_path / "again.wav.age")
    proc = run_cli(["decrypt", "-i", key, path, tmp_path / "again.wav.age"])
    assert proc.returncode == 2 and b"no output given" in proc.stderr and proc.stdout == b""


def test_keygen_without_output_prints_the_identity_like_age_keygen(tmp_path):
    proc = run_cli(["keygen"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[0].startswith("# created: ") and lines[2].startswith("AGE-SECRET-KEY-1")
    recipient = lines[1].removeprefix("# public key: ")
    assert proc.stderr.decode().strip() == f"Public key: {recipient}"
    key = tmp_path / "k.key"
    key.write_bytes(proc.stdout)
    if shutil.which("age-keygen"):
        assert subprocess.run(["age-keygen", "-y", key], capture_output=True, text=True).stdout.strip() == recipient


def test_keygen_refuses_a_redirect_into_a_file_others_can_read(tmp_path):
    loose = tmp_path / "loose.key"
    with open(loose, "wb") as fh:
        os.fchmod(fh.fileno(), 0o644)
        proc = subprocess.run([sys.executable, "-m", "privspeech", "keygen", "--anon"], stdout=fh,
                              stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 73 and b"others can read" in proc.stderr
    assert loose.read_bytes() == b""
    tight = tmp_path / "tight.key"
    with open(os.open(tight, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
        proc = subprocess.run([sys.executable, "-m", "privspeech", "keygen", "--anon"], stdout=fh,
                              stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0 and tight.read_text().splitlines()[1].startswith("privspeech-key-v1:")


def test_keygen_never_overwrites_and_does_not_offer_a_force_it_lacks(tmp_path):
    key = tmp_path / "me.key"
    key.write_text("old\n")
    proc = run_cli(["keygen", "-o", key])
    assert proc.returncode == 73 and b"never overwrites" in proc.stderr and b"--force" not in proc.stderr
    assert key.read_text() == "old\n"


@pytest.mark.parametrize("command, flag", [("anonymize", "-d"), ("decrypt", "-d"), ("noise", "-m"),
                                           pytest.param("prune", "-m", marks=pytest.mark.slow),
                                           pytest.param("evaluate", "-a", marks=pytest.mark.slow),
                                           ("encrypt", "-j"), pytest.param("decrypt", "-j", marks=pytest.mark.slow)])
def test_short_flags_keep_one_meaning(command, flag, tmp_path):
    """-d is age's decrypt, not --out-dir; -m is --method only; encrypt and decrypt leave age's -j (plugins) alone."""
    proc = run_cli([command, "--help"])
    help_text = proc.stdout.decode()
    if (command, flag) == ("decrypt", "-d"):
        assert "--decrypt" in help_text and "-d" in help_text
    else:
        proc = run_cli([command, SPEECH, flag, tmp_path / "out"])
        assert proc.returncode == 2 and b"No such option" in proc.stderr
        assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_speakers_named_from_folders_in_anonymize(tmp_path):
    """The same audio under two names in one speaker's folder gets the same voice; the note comes once."""
    for name in ("a.wav", "b.wav"):
        (tmp_path / "in" / "spk1").mkdir(parents=True, exist_ok=True)
        shutil.copy(SPEECH, tmp_path / "in" / "spk1" / name)
    shutil.copy(VCTK / "p225" / "p225_003.wav", tmp_path / "in" / "spk2.wav")
    key = tmp_path / "anon.key"
    assert run_cli(["keygen", "--anon", "-o", key, "-q"]).returncode == 0
    proc = run_cli(["anonymize", tmp_path / "in", "--speaker-from", "dir", "-k", key, "--out-dir", tmp_path / "out",
                    "-j", "1"])
    assert proc.returncode == 0, proc.stderr
    out = {Path(r["audio_filepath"]).stem: r for r in records(proc.stdout.decode())}
    assert out["a"]["speaker"] == out["b"]["speaker"] != out["spk2"]["speaker"]
    assert (tmp_path / "out" / "spk1" / "a.wav").read_bytes() == (tmp_path / "out" / "spk1" / "b.wav").read_bytes()
    assert "spk2" not in proc.stderr.decode()  # spk2.wav's parent is the root: named "in"

    # without names each recording is its own speaker: said once, and -q silences it
    proc = run_cli(["anonymize", tmp_path / "in", "-k", key, "--out-dir", tmp_path / "each", "-j", "1"])
    assert proc.returncode == 0 and proc.stderr.decode().count("no speaker id") == 1
    assert (tmp_path / "each" / "spk1" / "a.wav").read_bytes() != (tmp_path / "each" / "spk1" / "b.wav").read_bytes()
    proc = run_cli(["anonymize", tmp_path / "in", "-k", key, "--out-dir", tmp_path / "quiet", "-j", "1", "-q"])
    assert proc.returncode == 0 and proc.stderr == b""


@pytest.mark.slow
def test_a_rerun_with_other_speakers_does_not_reuse_outputs(tmp_path):
    (tmp_path / "in" / "spk1").mkdir(parents=True)
    shutil.copy(SPEECH, tmp_path / "in" / "spk1" / "a.wav")
    key = tmp_path / "anon.key"
    assert run_cli(["keygen", "--anon", "-o", key, "-q"]).returncode == 0
    args = ["anonymize", tmp_path / "in", "-k", key, "--out-dir", tmp_path / "out", "-j", "1", "-q"]
    first = run_cli(args)
    assert first.returncode == 0 and run_cli(args).stdout == first.stdout  # the same run resumes
    again = run_cli([*args, "--speaker-from", "dir"])
    assert again.returncode == 1 and b"output already exists" in again.stderr  # not the other voice's output


@pytest.mark.parametrize("command", [pytest.param(["anonymize"], marks=pytest.mark.slow), ["noise", "--epsilon", "50"]])
@pytest.mark.parametrize("name", ["out.mp3", pytest.param("noext", marks=pytest.mark.slow)])
def test_an_output_name_audio_cannot_be_written_as_is_refused(command, name, tmp_path):
    proc = run_cli([command[0], SPEECH, *command[1:], "-o", tmp_path / name, "-q"])
    assert proc.returncode == 2 and b"cannot write audio with" in proc.stderr and b".flac" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    proc = run_cli([command[0], SPEECH, *command[1:], "-o", tmp_path / "out.FLAC", "-q"])
    assert proc.returncode == 0 and (tmp_path / "out.FLAC").read_bytes()[:4] == b"fLaC"


def test_no_color_means_no_escape_codes_on_a_terminal():
    """no-color.org: with NO_COLOR set, help and errors on a terminal carry no colour and no bold either."""
    for args in (["scan", "--help"], ["scan", "--no-such-option"]):
        _, styled = run_on_terminal(args, answers=[], env={"TERM": "xterm-256color"})
        _, plain = run_on_terminal(args, answers=[], env={"TERM": "xterm-256color", "NO_COLOR": "1"})
        assert "\x1b[" in styled and "\x1b[" not in plain
        assert "Usage: " in plain


@pytest.mark.parametrize("words, expected", [
    ("privspeech anonymize --method ", ["world", "mcadams", "revoice"]),
    pytest.param("privspeech anonymize --strength b", ["balanced"], marks=pytest.mark.slow),
    pytest.param("privspeech anonymize --f0-method ", ["dio", "harvest", "rapt"], marks=pytest.mark.slow),
    pytest.param("privspeech noise --unit ", ["sample", "window:"], marks=pytest.mark.slow),
    ("privspeech scan --speaker-from ", ["dir", "regex:"]),
    pytest.param("privspeech evaluate --level ", ["speaker", "utterance"], marks=pytest.mark.slow),
])
def test_the_shell_completes_choice_values(words, expected):
    program = Path(sys.executable).parent / "privspeech"
    env = {**os.environ, "_PRIVSPEECH_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}
    proc = subprocess.run([program], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split() == expected, proc.stderr


def test_debug_shows_the_traceback_for_that_call_only(tmp_path, cli):
    args = ["encrypt", "-r", "not-a-recipient", str(SPEECH), "-o", str(tmp_path / "x.age")]
    plain = run_cli(args)
    assert plain.returncode == 2 and b"Traceback" not in plain.stderr and len(plain.stderr.splitlines()) == 1
    debug = run_cli(["--debug", *args])
    assert debug.returncode != 0 and b"UsageError: recipient 1 given with -r" in debug.stderr
    with pytest.raises(UsageError):  # in this process: the flag stays with the call
        cli(["--debug", *args])
    assert "PRIVSPEECH_DEBUG" not in os.environ and cli(args).exit_code == 2
    assert not (tmp_path / "x.age").exists()
