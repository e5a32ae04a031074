"""Identities (private keys): X25519 identity files as `age-keygen` writes them, passphrase-protected
identity files (an identity file encrypted with scrypt, as ``age-keygen | age -p -a`` makes), and
unencrypted OpenSSH private keys (ssh-ed25519, ssh-rsa)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable

import pyrage

from .. import timeutil
from ..errors import DataError, from_os_error, PrivspeechError, UsageError, WrongKey
from ..fsutil import check_private, write_bytes
from . import header as _header
from . import passphrase as _passphrase
from .stream import decrypt_stream
from .types import Identity

_MAX_FILE = 1 << 20
_X25519 = "AGE-SECRET-KEY-1"


def generate() -> pyrage.x25519.Identity:
    """A fresh X25519 identity from the operating system's CSPRNG (through rage)."""
    return pyrage.x25519.Identity.generate()


def recipient(identity: pyrage.x25519.Identity) -> str:
    """The public recipient (``age1...``) of an X25519 identity."""
    return str(identity.to_public())


def identity_text(identity: pyrage.x25519.Identity) -> bytes:
    """An identity file's contents, as `age-keygen` writes them."""
    return (f"# created: {timeutil.format_ts(timeutil.now())}\n"
            f"# public key: {recipient(identity)}\n"
            f"{identity}\n").encode("ascii")


def write_identity_file(path: str | os.PathLike, identity: pyrage.x25519.Identity | None = None, *,
                        passphrase: _passphrase.Passphrase | None = None) -> str:
    """Create an identity file (mode 0600, never overwriting) and return its recipient.

    With `passphrase` the file is the identity file encrypted with scrypt in ASCII armor, which
    ``age -d`` opens and ``age -i`` accepts (it asks for the passphrase).
    """
    identity = identity or generate()
    data = identity_text(identity)
    write_bytes(path, protect(data, passphrase) if passphrase is not None else data, force=False, private=True)
    return recipient(identity)


def protect(data: bytes, passphrase: _passphrase.Passphrase) -> bytes:
    """An identity file's contents encrypted with a passphrase, in ASCII armor (what `age -p -a` writes)."""
    return _passphrase.encrypt(data, passphrase, armor=True)


def load_identity_file(path: str | os.PathLike, *,
                       passphrase: _passphrase.Passphrase | None = None) -> tuple[list[Identity], list[str]]:
    """The identities in an identity file, and warnings (a file that group or others can read).

    Accepts age identity files (``AGE-SECRET-KEY-1...`` lines, ``#`` comments), the same encrypted with
    a passphrase (`passphrase` is then needed; a function is called only in that case), and unencrypted
    OpenSSH private keys.
    """
    path = Path(path)
    name = f"identity file {path}"
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_FILE + 1)
    except OSError as exc:
        raise from_os_error(exc, name) from None
    if len(data) > _MAX_FILE:
        raise _bad(name, "too large for an identity file")
    warnings = check_private(path, "identity file")
    stripped = data.lstrip()
    if stripped.startswith((_header.MAGIC, _header.ARMOR_BEGIN)):
        if passphrase is None:
            raise WrongKey(f"{name} is protected by a passphrase", hint="give the passphrase (prompt, "
                           "--passphrase-fd or --passphrase-file)")
        plain = io.BytesIO()
        decrypt_stream(io.BytesIO(data), plain, passphrase=passphrase, name=name, out_name=name)
        data = plain.getvalue()
    if b"PRIVATE KEY-----" in data:
        return [_ssh(data, name)], warnings
    return _age_identities(data, name), warnings


def _ssh(data: bytes, name: str) -> pyrage.ssh.Identity:
    try:
        return pyrage.ssh.Identity.from_buffer(data)
    except pyrage.IdentityError as exc:  # its text is not passed on: errors never quote key material
        if "decrypted" in str(exc):
            problem, hint = ("passphrase-protected ssh private key", "pyrage cannot open passphrase-protected ssh "
                             "keys; use an age identity (privspeech keygen)")
        else:
            problem, hint = ("unusable ssh private key (damaged, or not an OpenSSH ed25519 or rsa key)",
                             "privspeech reads unencrypted OpenSSH ed25519 and rsa keys")
        raise DataError(f"{name}: {problem}", hint=hint) from None


def _age_identities(data: bytes, name: str) -> list[Identity]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(name, "not a text file") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(_X25519):  # never echo the line: it may be a secret
            raise _bad(f"{name} line {number}", "not an X25519 identity (an age secret key line); post-quantum and "
                       "plugin identities are not supported by pyrage")
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise _bad(f"{name} line {number}", "malformed X25519 identity (bad encoding or checksum)") from None
    if not found:
        raise _bad(name, "no identities in the file")
    return found


def _bad(where: str, what: str) -> PrivspeechError:
    return DataError(f"{where}: {what}", hint="an identity file holds age secret keys, one per line, as "
                     "privspeech keygen or age-keygen write them")


def load_identities(paths: Iterable[str | os.PathLike], *,
                    passphrase: _passphrase.Passphrase | None = None) -> tuple[list[Identity], list[str]]:
    """The identities of several identity files (`-i`, repeatable), and their warnings; at least one."""
    found: list[Identity] = []
    warnings: list[str] = []
    for path in paths:
        identities, more = load_identity_file(path, passphrase=passphrase)
        found.extend(identities)
        warnings.extend(more)
    if not found:
        raise UsageError("no identity given", hint="give -i IDENTITY_FILE")
    return found, warnings
