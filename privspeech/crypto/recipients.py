"""Recipients: X25519 (`age1...`), `ssh-ed25519` and `ssh-rsa` public keys, and recipients files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Union

import pyrage

from ..errors import ExitStatus, PrivspeechError, from_os_error

Recipient = Union[pyrage.x25519.Recipient, pyrage.ssh.Recipient]
_SSH_TYPES = ("ssh-ed25519", "ssh-rsa")
_SUPPORTED = "age1... (X25519), ssh-ed25519 or ssh-rsa public keys"


def parse(text: str, *, where: str | None = None) -> Recipient:
    """One recipient from its text form; `where` names it in errors (e.g. ``team.txt line 3``)."""
    text = text.strip()
    where = where or f"recipient {text[:40]!r}"
    kind = text.split(" ", 1)[0]
    try:
        if kind in _SSH_TYPES:
            return pyrage.ssh.Recipient.from_str(text)
        if text.startswith("age1") and " " not in text:
            return pyrage.x25519.Recipient.from_str(text)
    except pyrage.RecipientError as exc:
        raise PrivspeechError(f"{where}: not a valid {kind if kind in _SSH_TYPES else 'age'} recipient ({exc})",
                              hint=_hint(text), status=ExitStatus.USAGE) from None
    raise PrivspeechError(f"{where}: unsupported recipient type {kind[:24]!r}", hint=f"use {_SUPPORTED}",
                          status=ExitStatus.USAGE)


def _hint(text: str) -> str:
    if text.startswith("age1") and text[4:].find("1") > 0:
        return "post-quantum (age1pq1...), tag and plugin recipients are not supported by pyrage; use " + _SUPPORTED
    return f"check for a truncated or mistyped key; privspeech accepts {_SUPPORTED}"


def parse_file(path: str | os.PathLike) -> list[Recipient]:
    """The recipients in a recipients file: one per line; blank lines and lines starting with `#` are
    ignored (as age does, an indented `#` is an error)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise PrivspeechError(f"{path}: not a text file of recipients", status=ExitStatus.DATAERR) from None
    except OSError as exc:
        raise from_os_error(exc, f"recipients file {path}") from None
    found = [parse(line, where=f"{path} line {number}") for number, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.startswith("#")]
    if not found:
        raise PrivspeechError(f"{path}: no recipients in the file", hint="add one recipient per line",
                              status=ExitStatus.USAGE)
    return found


def collect(texts: Iterable[str] = (), files: Iterable[str | os.PathLike] = ()) -> list[Recipient]:
    """Recipients given one by one (`-r`) and in recipients files (`-R`), in that order; at least one."""
    found = [parse(text) for text in texts]
    for path in files:
        found.extend(parse_file(path))
    if not found:
        raise PrivspeechError("no recipients given", hint="give -r RECIPIENT or -R FILE, or -p for a passphrase",
                              status=ExitStatus.USAGE)
    return found
