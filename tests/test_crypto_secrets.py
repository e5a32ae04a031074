"""No key material in any message: every error path of keygen, encrypt, decrypt and the keyed commands, driven
through the real CLI, with stderr and stdout scanned for key prefixes and for any piece of the secrets involved."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pyrage
import pytest

from conftest import SAMPLES

SPEECH = SAMPLES / "p225" / "p225_003.wav"
PASSPHRASE = "Correct horse 7Qz battery staple"
WRONG_PASSPHRASE = "Wrong pony 4Kx stapler battery"
PREFIXES = ("AGE-SECRET-KEY-", "AGE-PLUGIN-", "privspeech-key-v1", "-----BEGIN OPENSSH PRIVATE KEY",
            "b3BlbnNzaC1rZXktdjE")  # the last: base64 of "openssh-key-v1", how every OpenSSH key body starts
WINDOW = 8  # no run of this many characters of a secret may appear


def _make(args) -> str:
    """Run a privspeech command in-process that must succeed: its stdout."""
    from typer.testing import CliRunner

    from privspeech.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def secret_line(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict:
    """Real keys of every kind in one folder, the secrets they hold, and ciphertexts to fail on. The ones protected
    by a passphrase (scrypt: seconds to make and to try) are added by protected_keys, for the cases that use them."""
    folder = tmp_path_factory.mktemp("keys")
    paths = {name: folder / name for name in ("id.key", "other.key", "anon.key", "pass.txt", "wrong.txt", "ssh",
                                              "ssh-locked", "sealed.age")}
    paths["pass.txt"].write_text(PASSPHRASE + "\n")
    paths["wrong.txt"].write_text(WRONG_PASSPHRASE + "\n")
    for name in ("pass.txt", "wrong.txt"):
        paths[name].chmod(0o600)
    recipient = _make(["keygen", "-o", paths["id.key"]])
    _make(["keygen", "-o", paths["other.key"]])
    _make(["keygen", "--anon", "-o", paths["anon.key"]])
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", paths["ssh"]], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", paths["ssh-locked"]], check=True)
    _make(["encrypt", "-r", recipient, "-o", paths["sealed.age"], SPEECH])

    ssh_body = "".join(paths["ssh"].read_text().splitlines()[1:-1])
    secrets = [secret_line(paths["id.key"]), secret_line(paths["other.key"]), secret_line(paths["anon.key"]),
               ssh_body, PASSPHRASE, WRONG_PASSPHRASE]
    damaged = {
        "broken.key": secret_line(paths["id.key"])[:-3] + "QQQ\n",  # a secret key with a bad checksum
        "anon-bad.key": secret_line(paths["anon.key"])[:-2] + "zz\n",  # not hex
        "anon-short.key": secret_line(paths["anon.key"])[:-8] + "\n",
        "ssh-truncated": paths["ssh"].read_text()[:200] + "\n-----END OPENSSH PRIVATE KEY-----\n",
        "mixed.txt": f"# team\n{recipient}\n{secret_line(paths['other.key'])}\n",
        "pass-latin1.txt": None,
    }
    for name, text in damaged.items():
        paths[name] = folder / name
        if text is None:
            paths[name].write_bytes(PASSPHRASE.encode() + b"\xe9\xff\n")
        else:
            paths[name].write_text(text)
        paths[name].chmod(0o600)
    sealed = paths["sealed.age"].read_bytes()
    paths["truncated.age"] = folder / "truncated.age"
    paths["truncated.age"].write_bytes(sealed[:-1000])
    paths["tampered.age"] = folder / "tampered.age"
    mac = sealed.index(b"\n--- ") + 6  # a character of the header's MAC
    paths["tampered.age"].write_bytes(sealed[:mac] + (b"A" if sealed[mac:mac + 1] != b"A" else b"B") + sealed[mac + 1:])
    paths["recipient"] = recipient
    paths["id.key.secret"] = secret_line(paths["id.key"])
    paths["anon.key.secret"] = secret_line(paths["anon.key"])
    paths["ssh.text"] = paths["ssh"].read_text()
    return {"paths": paths, "secrets": secrets}


@pytest.fixture(scope="module")
def protected_keys(keys) -> dict:
    """`keys` and an identity file protected by PASSPHRASE, a file sealed with PASSPHRASE, and the protected
    identity's secret among the secrets."""
    paths = dict(keys["paths"])
    folder = paths["id.key"].parent
    paths["protected.key"], paths["sealed-pass.age"] = folder / "protected.key", folder / "sealed-pass.age"
    _make(["keygen", "-o", paths["protected.key"], "--passphrase-file", paths["pass.txt"]])
    _make(["encrypt", "-p", "--passphrase-file", paths["pass.txt"], "-o", paths["sealed-pass.age"], SPEECH])
    inner = pyrage.passphrase.decrypt(paths["protected.key"].read_bytes(), PASSPHRASE).decode()
    protected = next(line for line in inner.splitlines() if line.startswith("AGE-"))
    return {"paths": paths, "secrets": [*keys["secrets"], protected]}


# (name, arguments with {placeholders}, exit status, words the message must contain)
CASES = [
    ("encrypt -r age secret key", ["encrypt", "-r", "{id.key.secret}", "-o", "{out}", SPEECH], 2,
     "recipient 1 given with -r: this is a secret key"),
    ("encrypt -r lower-case secret key", ["encrypt", "-r", "{id.key.secret.lower}", "-o", "{out}", SPEECH], 2,
     "recipient 1 given with -r"),
    ("encrypt -r privspeech key", ["encrypt", "-r", "{anon.key.secret}", "-o", "{out}", SPEECH], 2,
     "privspeech secret key"),
    ("encrypt -r ssh private key text", ["encrypt", "-r", "{ssh.text}", "-o", "{out}", SPEECH], 2,
     "this is a private key"),
    ("encrypt -r second of two", ["encrypt", "-r", "{recipient}", "-r", "{id.key.secret}", "-o", "{out}", SPEECH],
     2, "recipient 2 given with -r"),
    ("encrypt -r damaged recipient", ["encrypt", "-r", "{recipient.damaged}", "-o", "{out}", SPEECH], 2,
     "not a valid age recipient"),
    ("encrypt -R identity file", ["encrypt", "-R", "{id.key}", "-o", "{out}", SPEECH], 2, "id.key line 3"),
    ("encrypt -R privspeech key file", ["encrypt", "-R", "{anon.key}", "-o", "{out}", SPEECH], 2, "anon.key line 2"),
    ("encrypt -R ssh private key", ["encrypt", "-R", "{ssh}", "-o", "{out}", SPEECH], 2, "ssh line 1"),
    ("encrypt -R protected identity", ["encrypt", "-R", "{protected.key}", "-o", "{out}", SPEECH], 2,
     "protected.key line 1"),
    ("encrypt -R secret among recipients", ["encrypt", "-R", "{mixed.txt}", "-o", "{out}", SPEECH], 2,
     "mixed.txt line 3: this is a secret key"),
    ("encrypt --verify with the wrong identity", ["encrypt", "-r", "{recipient}", "--verify", "-i", "{other.key}",
                                                  "-o", "{out}", SPEECH], 77, "does not open the new ciphertext"),
    ("encrypt -p with a non-UTF-8 passphrase", ["encrypt", "-p", "--passphrase-file", "{pass-latin1.txt}", "-o",
                                                "{out}", SPEECH], 65, "not valid UTF-8"),
    ("decrypt -i secret given as a path", ["decrypt", "-i", "{id.key.secret}", "-o", "{out}", "{sealed.age}"], 66,
     "no such file"),
    ("decrypt -i privspeech key", ["decrypt", "-i", "{anon.key}", "-o", "{out}", "{sealed.age}"], 65,
     "anon.key line 2: not an X25519 identity"),
    ("decrypt -i damaged identity", ["decrypt", "-i", "{broken.key}", "-o", "{out}", "{sealed.age}"], 65,
     "broken.key line 1: malformed X25519 identity"),
    ("decrypt -i damaged ssh key", ["decrypt", "-i", "{ssh-truncated}", "-o", "{out}", "{sealed.age}"], 65,
     "unusable ssh private key"),
    ("decrypt -i locked ssh key", ["decrypt", "-i", "{ssh-locked}", "-o", "{out}", "{sealed.age}"], 65,
     "passphrase-protected ssh private key"),
    ("decrypt -i protected identity, wrong passphrase", ["decrypt", "-i", "{protected.key}", "--passphrase-file",
                                                         "{wrong.txt}", "-o", "{out}", "{sealed.age}"], 77,
     "protected.key: no identity or passphrase"),
    ("decrypt -i wrong identity", ["decrypt", "-i", "{other.key}", "-o", "{out}", "{sealed.age}"], 77,
     "no identity or passphrase"),
    ("decrypt truncated file", ["decrypt", "-i", "{id.key}", "-o", "{out}", "{truncated.age}"], 65, "truncated"),
    ("decrypt tampered header", ["decrypt", "-i", "{id.key}", "-o", "{out}", "{tampered.age}"], 65,
     "tampered.age: the header was tampered with"),
    ("decrypt wrong passphrase", ["decrypt", "--passphrase-file", "{wrong.txt}", "-o", "{out}",
                                  "{sealed-pass.age}"], 77, "no identity or passphrase"),
    ("decrypt passphrase file with identity-only file", ["decrypt", "--passphrase-file", "{pass.txt}", "-o", "{out}",
                                                          "{sealed.age}"], 77, "no identity was given"),
    ("keygen over an existing key", ["keygen", "-o", "{id.key}"], 73, "id.key: already exists"),
    ("keygen -p with a non-UTF-8 passphrase", ["keygen", "-o", "{out}", "--passphrase-file", "{pass-latin1.txt}"],
     65, "not valid UTF-8"),
    ("anonymize -k age identity", ["anonymize", "-k", "{id.key}", "-o", "{out}", SPEECH], 65,
     "id.key: not a privspeech key file"),
    ("anonymize -k damaged key", ["anonymize", "-k", "{anon-bad.key}", "-o", "{out}", SPEECH], 65,
     "anon-bad.key: not a privspeech key file"),
    ("scan -k short key", ["scan", "-k", "{anon-short.key}", SPEECH], 65, "anon-short.key: not a privspeech key"),
    ("scan -k secret given as a path", ["scan", "-k", "{anon.key.secret}", SPEECH], 66, "no such file"),
]


def _fill(arg, paths: dict, out: Path) -> str:
    if not isinstance(arg, str) or not arg.startswith("{"):
        return str(arg)
    name = arg.strip("{}")
    if name == "out":
        return str(out)
    if name == "id.key.secret.lower":
        return paths["id.key.secret"].lower()
    if name == "recipient.damaged":
        return paths["recipient"][:-4] + "qqqq"
    return str(paths[name])


def leaks(text: str, secrets: list[str]) -> list[str]:
    """The key prefixes and the WINDOW-long pieces of `secrets` found in `text`."""
    found = [p for p in PREFIXES if p.lower() in text.lower()]
    for secret in secrets:
        body = re.sub(r"^(AGE-SECRET-KEY-1|privspeech-key-v1:)", "", secret)
        found += [body[i:i + WINDOW] for i in range(len(body) - WINDOW + 1) if body[i:i + WINDOW] in text]
    return found


def _uses_protected_keys(args) -> bool:
    return any(arg in ("{protected.key}", "{sealed-pass.age}") for arg in args)


# the cases on passphrase-protected files are slow (scrypt); the rest run in the quick run too
@pytest.mark.parametrize("name, args, status, words", [
    pytest.param(*case, id=case[0], marks=pytest.mark.slow if _uses_protected_keys(case[1]) else ()) for case in CASES])
def test_no_key_material_in_any_message(keys, request, tmp_path, cli, name, args, status, words):
    if _uses_protected_keys(args):
        keys = request.getfixturevalue("protected_keys")
    out = tmp_path / "out"
    result = cli([_fill(a, keys["paths"], out) for a in args])
    assert result.exit_code == status, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert [line.startswith("privspeech: error: ") for line in result.stderr.splitlines()].count(True) == 1
    assert leaks(result.stderr + result.stdout, keys["secrets"]) == [], result.stderr
    if args[0] == "decrypt":
        assert not out.exists()  # and no plaintext left behind


def test_leak_scan_finds_what_it_looks_for(keys):
    """The scanner itself: a message quoting 8 characters of a secret, or a prefix, is caught."""
    secret = keys["paths"]["id.key.secret"]
    assert leaks(f"bad recipient {secret[20:28]!r}", keys["secrets"])
    assert leaks("type 'AGE-SECRET-KEY-1'", keys["secrets"])
    assert leaks(f"x {PASSPHRASE[5:13]} y", keys["secrets"])
    assert not leaks("id.key line 3: this is a secret key (an age identity), not a recipient", keys["secrets"])
