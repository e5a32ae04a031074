"""Passphrases: reading them from a file descriptor or a file (never argv), and age's scrypt mode.

pyrage exposes scrypt only on whole byte strings, so passphrase encryption and decryption hold the
file in memory; they are meant for identity files and small recordings and refuse files above
:data:`MAX_BYTES`. scrypt itself needs 2**N KiB of memory for work factor N (256 MiB at age's default 18).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable, Union

import pyrage

from ..errors import DataError, from_os_error, PrivspeechError, UsageError
from ..fsutil import check_private

MAX_BYTES = 64 << 20
_MAX_LINE = 4096

Passphrase = Union[str, bytes, Callable[[], Union[str, bytes]]]
"""A passphrase, or a function that asks for one (called only when one is needed, e.g. a prompt)."""


def resolve(passphrase: Passphrase) -> str:
    """The passphrase as text, calling it first when it is a function; refuses an empty one."""
    value = passphrase() if callable(passphrase) else passphrase
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError("the passphrase is not valid UTF-8") from None
    if not value:
        raise UsageError("empty passphrase", hint="give a non-empty passphrase")
    return value


def _first_line(data: bytes) -> str:
    return resolve(data.split(b"\n", 1)[0].removesuffix(b"\r"))


def read_fd(fd: int) -> str:
    """The first line of what file descriptor `fd` carries (read up to the first newline or EOF), then closed."""
    data = b""
    try:
        while b"\n" not in data and len(data) < _MAX_LINE:
            chunk = os.read(fd, _MAX_LINE)
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise from_os_error(exc, f"passphrase file descriptor {fd}") from None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    return _first_line(data)


def read_file(path: str | os.PathLike) -> tuple[str, list[str]]:
    """The first line of the file at `path`, and warnings when others can read it."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_LINE)
    except OSError as exc:
        raise from_os_error(exc, f"passphrase file {path}") from None
    return _first_line(data), check_private(path, "passphrase file")


def read_limited(stream: BinaryIO, name: str) -> bytes:
    """All of `stream`, refusing more than :data:`MAX_BYTES`."""
    parts, size = [], 0
    while size <= MAX_BYTES:
        chunk = stream.read(MAX_BYTES + 1 - size)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
    raise DataError(f"{name}: too large for passphrase mode (over {MAX_BYTES >> 20} MiB)",
                    hint="pyrage encrypts with a passphrase only in memory: use recipients "
                         "(-r/-R, identity files) for large files, or the age command")


def encrypt(data: bytes, passphrase: Passphrase, *, armor: bool = False) -> bytes:
    """`data` encrypted to a passphrase (age's scrypt recipient), as `age -p` does."""
    return pyrage.passphrase.encrypt(data, resolve(passphrase), armored=armor)


def prompt(*, confirm: bool = False) -> str:
    """Ask for a passphrase on the controlling terminal (/dev/tty, so stdin stays free for a manifest), as age does;
    never falls back to reading stdin."""
    import getpass
    import warnings

    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        raise _no_terminal() from None
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)  # getpass's echoing stdin fallback
        try:
            value = resolve(getpass.getpass("Passphrase: "))
            if confirm and getpass.getpass("Confirm passphrase: ") != value:
                raise UsageError("the passphrases differ", hint="type the same passphrase twice")
        except (OSError, getpass.GetPassWarning):
            raise _no_terminal() from None
        except EOFError:
            raise UsageError("no passphrase was typed (end of input at the prompt)") from None
    return value


def _no_terminal() -> PrivspeechError:
    return UsageError("no terminal to ask for the passphrase on", hint="use --passphrase-fd N or "
                      "--passphrase-file PATH")
