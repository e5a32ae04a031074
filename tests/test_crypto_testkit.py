"""Every vector of the C2SP age testkit (tests/data/age-testkit) through privspeech's decrypt path.

Each vector must give its expected result: success with the payload's sha256, or a failure of the
right kind (NOPERM for "no match", DATAERR naming the failed layer otherwise) with no plaintext file
left behind. Vectors for recipient types pyrage 1.4 lacks (post-quantum ML-KEM hybrid) are skipped.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest

from privspeech.crypto import decrypt_file, decrypt_stream
from privspeech.errors import ExitStatus, PrivspeechError

from conftest import DATA

TESTKIT = DATA / "age-testkit"

# The words privspeech's error message uses for each layer (see privspeech.crypto.header).
LAYER_WORDS = {
    "armor failure": "malformed ASCII armor",
    "header failure": "malformed header",
    "HMAC failure": "header MAC mismatch",
    "payload failure": "corrupt, tampered with or truncated",
}


@dataclass
class Vector:
    name: str
    expect: str
    payload: str | None
    identities: list[str]
    passphrases: list[str]
    body: bytes


def load(path: Path) -> Vector:
    raw = path.read_bytes()
    head, body = raw.split(b"\n\n", 1)
    fields: dict[str, list[str]] = {}
    for line in head.decode("ascii").split("\n"):
        key, value = line.split(": ", 1)
        fields.setdefault(key, []).append(value)
    if fields.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return Vector(path.name, fields["expect"][0], fields.get("payload", [None])[0], fields.get("identity", []),
                  fields.get("passphrase", []), body)


def vectors() -> list:
    assert TESTKIT.is_dir(), "tests/data/age-testkit is missing"
    params = []
    for path in sorted(TESTKIT.iterdir()):
        if "." in path.name:
            continue
        vector = load(path)
        if any(key.startswith("AGE-SECRET-KEY-PQ-") for key in vector.identities):
            params.append(pytest.param(vector, id=f"{path.name}-unsupported-mlkem768x25519-in-pyrage-1.4",
                                       marks=pytest.mark.skip(reason="pyrage 1.4 has no mlkem768x25519 identity")))
        else:
            params.append(pytest.param(vector, id=path.name))
    return params


def open_args(vector: Vector) -> dict:
    assert len(vector.passphrases) <= 1 or vector.expect != "success"
    return {"identities": [pyrage.x25519.Identity.from_str(key) for key in vector.identities],
            "passphrase": vector.passphrases[0] if vector.passphrases else None}


@pytest.mark.parametrize("vector", vectors())
def test_testkit_vector(vector: Vector, tmp_path: Path):
    src = tmp_path / "file.age"
    src.write_bytes(vector.body)
    dest = tmp_path / "plain"
    if vector.expect == "success":
        written = decrypt_file(src, dest, **open_args(vector))
        assert hashlib.sha256(dest.read_bytes()).hexdigest() == vector.payload == written.sha256
        assert dest.stat().st_mode & 0o777 == 0o600
        return
    with pytest.raises(PrivspeechError) as caught:
        decrypt_file(src, dest, **open_args(vector))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.age"], "plaintext left behind"
    if vector.expect == "no match":
        assert caught.value.status == ExitStatus.NOPERM, str(caught.value)
    else:
        assert caught.value.status == ExitStatus.DATAERR, str(caught.value)
        assert LAYER_WORDS[vector.expect] in str(caught.value)


@pytest.mark.parametrize("vector", [v for v in vectors() if v.values[0].expect == "payload failure"
                                    and not v.marks])
def test_testkit_released_plaintext(vector: Vector):
    """What the streaming API released before a payload failure is exactly the authenticated prefix."""
    released = io.BytesIO()
    with pytest.raises(PrivspeechError):
        decrypt_stream(io.BytesIO(vector.body), released, **open_args(vector))
    assert hashlib.sha256(released.getvalue()).hexdigest() == vector.payload
