"""Secret keys for keyed operations (pseudo-speakers, pseudonyms, source HMACs).

A key file holds 32 random bytes as one line ``privspeech-key-v1:<64 hex digits>`` (comments with `#`).
Every use derives its own sub-key with HMAC-SHA256 and a purpose label, so one key file serves
anonymization and source hashing without the two uses ever sharing a value.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError, from_os_error, PrivspeechError
from .fsutil import check_private, write_bytes

PREFIX = "privspeech-key-v1:"
KEY_BYTES = 32


@dataclass(frozen=True)
class SecretKey:
    """A 32-byte secret with labelled derivations. `ephemeral` marks a key drawn for one run only."""

    material: bytes
    ephemeral: bool = False

    def __repr__(self) -> str:  # never print the secret
        return f"SecretKey(fingerprint={self.fingerprint!r}, ephemeral={self.ephemeral})"

    def prf(self, label: str, message: bytes | str) -> bytes:
        """HMAC-SHA256 under the sub-key for `label`: a keyed pseudo-random function."""
        if isinstance(message, str):
            message = message.encode("utf-8")
        subkey = hmac.new(self.material, b"privspeech/" + label.encode("ascii"), hashlib.sha256).digest()
        return hmac.new(subkey, message, hashlib.sha256).digest()

    def hasher(self, label: str) -> "hmac.HMAC":
        """An incremental HMAC-SHA256 under the sub-key for `label` (for hashing whole files)."""
        subkey = hmac.new(self.material, b"privspeech/" + label.encode("ascii"), hashlib.sha256).digest()
        return hmac.new(subkey, digestmod=hashlib.sha256)

    @property
    def fingerprint(self) -> str:
        """A public identifier of the key (safe for manifests): 16 hex digits of a keyed hash."""
        if self.ephemeral:
            return "ephemeral"
        return self.prf("fingerprint", b"").hex()[:16]

    def pseudonym(self, namespace: str, value: str, *, prefix: str = "spk-") -> str:
        """A stable keyed pseudonym for `value` (e.g. a speaker id), 12 hex digits."""
        return prefix + self.prf(f"pseudonym/{namespace}", value).hex()[:12]


def generate() -> SecretKey:
    """A fresh key from the operating system's CSPRNG."""
    return SecretKey(secrets.token_bytes(KEY_BYTES))


def ephemeral() -> SecretKey:
    """A fresh key for one run; its outputs cannot be linked to any other run's."""
    return SecretKey(secrets.token_bytes(KEY_BYTES), ephemeral=True)


def serialize(key: SecretKey) -> bytes:
    """The key file's contents."""
    return (f"# privspeech secret key: keep it private; anyone holding it can link pseudonyms\n"
            f"{PREFIX}{key.material.hex()}\n").encode("ascii")


def write_key_file(path: str | os.PathLike, key: SecretKey) -> None:
    """Create a key file, mode 0600, never overwriting an existing one."""
    write_bytes(path, serialize(key), force=False, private=True)


def load_key_file(path: str | os.PathLike) -> tuple[SecretKey, list[str]]:
    """Read a key file; returns the key and warnings (e.g. loose permissions)."""
    path = Path(path)
    try:
        text = path.read_text("ascii")
    except UnicodeDecodeError:
        raise _bad(path) from None
    except OSError as exc:
        raise from_os_error(exc, f"key file {path}") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1 or not lines[0].startswith(PREFIX):
        raise _bad(path)
    try:
        material = bytes.fromhex(lines[0][len(PREFIX):])
    except ValueError:
        raise _bad(path) from None
    if len(material) != KEY_BYTES:
        raise _bad(path)
    return SecretKey(material), check_private(path, "key file")


def _bad(path: Path) -> PrivspeechError:
    return DataError(f"{path}: not a privspeech key file",
                     hint="create one with: privspeech keygen --anon -o FILE")
