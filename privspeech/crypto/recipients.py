"""Recipients: X25519 (`age1...`), `ssh-ed25519` and `ssh-rsa` public keys, and recipients files.

Errors name where a recipient came from (``-r`` and its position, or the file and line) and what is wrong,
never its text: a secret key given by mistake must not end up in a terminal scrollback or a cron log.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pyrage

from ..errors import DataError, from_os_error, UsageError
from .types import Recipient

_SSH_TYPES = ("ssh-ed25519", "ssh-rsa")
_SUPPORTED = "age1... (X25519), ssh-ed25519 or ssh-rsa public keys"
_PUBLIC_TYPE = re.compile(r"(ssh-[a-z0-9]+|ecdsa-sha2-nistp[0-9]+|sk-[a-z0-9-]+@openssh\.com)")  # safe to name
_PUBLIC_KEY_HINT = ("give the public key instead: the age1... line privspeech keygen prints (age-keygen -y FILE "
                    "shows it again), or the .pub file of an ssh key")


def parse(text: str, *, where: str = "recipient") -> Recipient:
    """One recipient from its text form; `where` names it in errors (e.g. ``team.txt line 3``)."""
    text = text.strip()
    kind = text.split(" ", 1)[0]
    try:
        if kind in _SSH_TYPES:
            return pyrage.ssh.Recipient.from_str(text)
        if text.startswith("age1") and " " not in text:
            return pyrage.x25519.Recipient.from_str(text)
    except pyrage.RecipientError:
        what = kind if kind in _SSH_TYPES else "age"
        raise UsageError(f"{where}: not a valid {what} recipient (bad encoding, checksum or key data)",
                         hint=_hint(text)) from None
    problem, hint = _unsupported(text, kind)
    raise UsageError(f"{where}: {problem}", hint=hint)


def _unsupported(text: str, kind: str) -> tuple[str, str]:
    """What is wrong with a recipient of no supported type, and a hint, in words that quote none of it."""
    upper = text.upper()
    if upper.startswith(("AGE-SECRET-KEY-", "AGE-PLUGIN-")):
        return "this is a secret key (an age identity), not a recipient", _PUBLIC_KEY_HINT
    if "PRIVATE KEY" in upper:
        return "this is a private key, not a recipient", _PUBLIC_KEY_HINT
    if text.startswith("privspeech-key-v1:"):
        return ("this is a privspeech secret key (keygen --anon, for anonymization), not a recipient",
                "encrypt to an age identity's public key: privspeech keygen -o FILE prints one")
    if not text:
        return "empty recipient", f"use {_SUPPORTED}"
    if _PUBLIC_TYPE.fullmatch(kind):
        return f"unsupported recipient type {kind!r}", f"use {_SUPPORTED}"
    return "unsupported recipient type (not age1..., ssh-ed25519 or ssh-rsa)", f"use {_SUPPORTED}"


def _hint(text: str) -> str:
    if text.startswith("age1") and text[4:].find("1") > 0:
        return "post-quantum (age1pq1...), tag and plugin recipients are not supported by pyrage; use " + _SUPPORTED
    return f"check for a truncated or mistyped key; privspeech accepts {_SUPPORTED}"


def parse_file(path: str | os.PathLike) -> list[Recipient]:
    """The recipients in a recipients file: one per line; blank lines and lines starting with `#` are
    ignored (as age does, an indented `#` is an error)."""
    return [parse(text, where=where) for where, text in _file_lines(path)]


def _file_lines(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(where, text) of each recipient line in a recipients file; at least one."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file of recipients") from None
    except OSError as exc:
        raise from_os_error(exc, f"recipients file {path}") from None
    found = [(f"{path} line {number}", line) for number, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.startswith("#")]
    if not found:
        raise UsageError(f"{path}: no recipients in the file", hint="add one recipient per line")
    return found


@dataclass(frozen=True)
class Recipients:
    """Checked recipients by their text forms, parsed where they are used (once per process). Unlike pyrage's
    recipient objects they pickle, so a cluster's tasks can carry them (they are public keys)."""

    texts: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.texts)

    def parsed(self) -> list[Recipient]:
        return _parsed(self.texts)


@functools.lru_cache(maxsize=8)
def _parsed(texts: tuple[str, ...]) -> list[Recipient]:
    return [parse(text) for text in texts]


def collect(texts: Iterable[str] = (), files: Iterable[str | os.PathLike] = ()) -> Recipients:
    """Recipients given one by one (`-r`) and in recipients files (`-R`), in that order, checked; at least one."""
    found = [(f"recipient {number} given with -r", text) for number, text in enumerate(texts, 1)]
    for path in files:
        found.extend(_file_lines(path))
    if not found:
        raise UsageError("no recipients given", hint="give -r RECIPIENT or -R FILE, or -p for a passphrase")
    for where, text in found:
        parse(text, where=where)
    return Recipients(tuple(text.strip() for _, text in found))
