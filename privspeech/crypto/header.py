"""A look at an age file's header before rage reads it, and the translation of rage's errors.

rage does the parsing, the key unwrapping and the STREAM decryption. This module only reads the header
ahead (without consuming it) to enforce three rules of the age spec that rage 0.11 (pyrage 1.4) does not:
whitespace is allowed before an armored file; every stanza body ends with a line shorter than 64
columns; and an scrypt work factor above :data:`MAX_WORK_FACTOR` is refused before scrypt allocates
2**N KiB of memory (rage would try 8 GiB for a work factor of 23 and abort the process).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import DataError, PrivspeechError, WrongKey

MAGIC = b"age-encryption.org/"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
MAX_WORK_FACTOR = 22  # the Go age default: 2**22 * 1 KiB of scrypt memory is 4 GiB
_LOOKAHEAD = 1 << 20  # a header larger than this is left to rage alone
_WHITESPACE = b" \t\r\n"
_BODY_COLUMNS = 64

# Failure kinds, lowest layer first (the age testkit's `expect` values), with the words users see.
ARMOR, HEADER, NO_MATCH, HMAC, PAYLOAD = "armor failure", "header failure", "no match", "HMAC failure", \
    "payload failure"
_PHRASES = {
    ARMOR: "malformed ASCII armor",
    HEADER: "not a valid age file (malformed header)",
    NO_MATCH: "no identity or passphrase given can open this file",
    HMAC: "the header was tampered with (header MAC mismatch)",
    PAYLOAD: "the encrypted data is corrupt, tampered with or truncated",
}


@dataclass(frozen=True)
class Header:
    """What the look-ahead learned: the recipient stanza types (empty when no header was found)."""

    stanza_types: tuple[str, ...]

    @property
    def passphrase(self) -> bool:
        """True when the file is encrypted with a passphrase (an scrypt stanza)."""
        return "scrypt" in self.stanza_types


class Rewound:
    """A reader that returns `head` first and then the rest of `stream` (what pyrage reads from)."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self._head = memoryview(head)
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size is None or size < 0:
            data = bytes(self._head) + self._stream.read()
            self._head = memoryview(b"")
            return data
        data = bytes(self._head[:size])
        self._head = self._head[size:]
        return data

    def fileno(self) -> int:
        """The file descriptor of `stream` (raises when it has none)."""
        return self._stream.fileno()

    def read1(self, size: int = -1) -> bytes:
        """Like :meth:`read`, with at most one read from `stream` (``read1`` when it has one): a pipe's data
        is returned as it comes, and a blocking read starts only when no data is left."""
        if self._head:
            return self.read(size)
        return getattr(self._stream, "read1", self._stream.read)(size)


def inspect(stream: BinaryIO, name: str) -> tuple[Header, Rewound]:
    """Read ahead through the header of the age file in `stream` and check it.

    Returns the header facts and a reader that yields the whole file again (less any whitespace
    before an armor). Raises DataError for the rule violations described above.
    """
    head = b""
    while len(head) < _LOOKAHEAD:
        chunk = stream.read(8192)
        if not chunk:
            break
        head += chunk
        if _header_bytes(head.lstrip(_WHITESPACE)) is not None or not _could_be_age(head.lstrip(_WHITESPACE)):
            break
    stripped = head.lstrip(_WHITESPACE)
    if stripped.startswith(ARMOR_BEGIN):
        head = stripped
    elif not stripped.startswith(MAGIC) and (stripped[:5] == b"-----" or ARMOR_BEGIN in stripped):
        raise failure(ARMOR, name, "the file does not start with -----BEGIN AGE ENCRYPTED FILE-----")
    header = _header_bytes(head)
    types = _check(header, name) if header is not None else ()
    return Header(stanza_types=types), Rewound(head, stream)


def _could_be_age(head: bytes) -> bool:
    return any(head[:len(prefix)] == prefix[:len(head)] for prefix in (MAGIC, ARMOR_BEGIN))


def _header_bytes(head: bytes) -> bytes | None:
    """The header up to its MAC line, decoding the armor if there is one; None until it is all there."""
    if head.startswith(ARMOR_BEGIN):
        decoded = b""
        for line in head[len(ARMOR_BEGIN):].splitlines()[1:]:
            try:
                decoded += binascii.a2b_base64(line.strip())
            except binascii.Error:
                return None  # bad armor: rage reports it
            if b"\n--- " in decoded:
                break
        head = decoded
    end = head.find(b"\n--- ")
    return head[:end + 1] if head.startswith(MAGIC) and end >= 0 else None


_WORK_FACTOR = re.compile(rb"[1-9][0-9]{0,2}")


def _check(header: bytes, name: str) -> tuple[str, ...]:
    types = []
    in_body = False
    for line in header.split(b"\n")[1:-1]:
        if line.startswith(b"-> "):
            if in_body:
                raise failure(HEADER, name, "stanza ended without a short line")
            args = line[3:].split(b" ")
            types.append(args[0].decode("ascii", "replace"))
            if args[0] == b"scrypt" and len(args) == 3 and _WORK_FACTOR.fullmatch(args[2]) \
                    and int(args[2]) > MAX_WORK_FACTOR:
                raise failure(HEADER, name, f"scrypt work factor {int(args[2])} is above the limit "
                                            f"{MAX_WORK_FACTOR}")
            in_body = True
        elif in_body and len(line) < _BODY_COLUMNS:
            in_body = False
    if in_body:
        raise failure(HEADER, name, "stanza ended without a short line")
    return tuple(types)


def failure(kind: str, name: str, detail: str) -> PrivspeechError:
    """The user-facing error for a decryption failure of `kind` (one of the constants above)."""
    if kind == NO_MATCH:
        return WrongKey(f"{name}: {_PHRASES[kind]}", hint="check the identity file (-i) or the passphrase; "
                        "otherwise the file is for someone else's key, or its header is damaged")
    return DataError(f"{name}: {_PHRASES[kind]}: {detail}", hint="the file is damaged or was altered; get an "
                     "intact copy")


def classify(exc: Exception) -> str:
    """The failure kind of an error pyrage raised while decrypting."""
    text = str(exc)
    if "armor" in text or "DecodeError" in text:
        return ARMOR
    if "No matching keys" in text or text == "Decryption failed":  # the latter: scrypt with a wrong passphrase
        return NO_MATCH
    if "Header MAC" in text:
        return HMAC
    if type(exc).__name__ == "DecryptError":  # raised while the header is read
        return HEADER
    return PAYLOAD  # OSError from the STREAM reader: bad tag, truncation, trailing data
