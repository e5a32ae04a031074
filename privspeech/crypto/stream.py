"""Streaming age encryption and decryption (pyrage's ``encrypt_io``/``decrypt_io``), files written atomically.

Memory stays flat for any file size with recipients and identities: rage works through 64 KiB chunks.
Passphrase mode works in memory (see :mod:`.passphrase`). Decrypted files are created 0600 and appear
only once every chunk has been authenticated, so a failure anywhere leaves no plaintext behind.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Sequence

import pyrage

from ..errors import ExitStatus, PrivspeechError, from_os_error
from ..fsutil import atomic_write
from . import header as _header
from . import passphrase as _passphrase

if TYPE_CHECKING:
    from .identities import Identity
    from .recipients import Recipient


@dataclass(frozen=True)
class Written:
    """What an encryption or decryption wrote: the sha256 (hex) and size of the output bytes."""

    sha256: str
    size: int


class _Tap:
    """The reader and writer pyrage calls back into.

    Output is gathered into 1 MiB blocks before it is written and hashed (pyrage hands over 8 KiB at a
    time; one write per 8 KiB costs more than the cipher). The first exception raised on either side is
    kept: pyrage's encrypt_io flattens exceptions into strings, and Ctrl-C and disk errors must survive
    as themselves.
    """

    _BLOCK = 1 << 20

    def __init__(self, reader: Any, writer: BinaryIO, names: tuple[str, str], input_sha256: str | None = None):
        self._reader, self._writer = reader, writer
        self._names = names
        self._hash = hashlib.sha256()
        self._expected_input = input_sha256
        self._input_hash = hashlib.sha256() if input_sha256 else None
        self._pending = bytearray()
        self.size = 0
        self.error: BaseException | None = None
        self._writing = False

    def _keep(self, exc: BaseException, writing: bool) -> None:
        if self.error is None:
            self.error, self._writing = exc, writing

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._reader.read(size)
        except BaseException as exc:
            self._keep(exc, writing=False)
            raise
        if self._input_hash is not None:
            self._input_hash.update(data)
        return data

    def write(self, data: bytes) -> int:
        self._pending += data
        self.size += len(data)
        if len(self._pending) >= self._BLOCK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        """Write and hash what is pending (rage hands over only authenticated plaintext)."""
        if not self._pending or self.error is not None:
            return
        try:
            self._writer.write(self._pending)
        except BaseException as exc:
            self._keep(exc, writing=True)
            raise
        self._hash.update(self._pending)
        self._pending.clear()

    def finish(self) -> Written:
        """Write what is pending; the output's sha256 and size. Refuses an input whose bytes did not match the
        expected sha256 (checked in the same pass that read them, so the output is never published)."""
        self.flush()
        if self._input_hash is not None and self._input_hash.hexdigest() != self._expected_input:
            raise PrivspeechError(f"{self._names[0]}: file changed since its manifest record was written "
                                  f"(sha256 mismatch)", hint="rescan it with privspeech scan",
                                  status=ExitStatus.DATAERR)
        return Written(self._hash.hexdigest(), self.size)

    def reraise(self) -> None:
        """Raise the kept exception, if any, OSErrors translated and naming the input or the output."""
        if isinstance(self.error, OSError):
            raise from_os_error(self.error, self._names[self._writing], writing=self._writing) from None
        if self.error is not None:
            raise self.error


def encrypt_stream(reader: BinaryIO, writer: BinaryIO, *, recipients: Sequence[Recipient] = (),
                   passphrase: _passphrase.Passphrase | None = None, armor: bool = False,
                   name: str = "<stdin>", out_name: str = "<stdout>", input_sha256: str | None = None) -> Written:
    """Encrypt what `reader` yields to `recipients` (or a passphrase) and write the age file to `writer`.

    Parameters
    ----------
    reader, writer : binary file objects
        Plaintext source and ciphertext sink.
    recipients : sequence of pyrage recipients
        From :func:`privspeech.crypto.recipients.collect`; exclusive with `passphrase`.
    passphrase : str, bytes or callable, optional
        Encrypt with scrypt instead, in memory (at most ``passphrase.MAX_BYTES``).
    armor : bool
        Write the ASCII armor (PEM-like text) instead of binary.
    name, out_name : str
        The input's and the output's names in error messages.
    input_sha256 : str, optional
        The plaintext's expected sha256 (from its manifest record): a mismatch raises DATAERR at the end.

    Returns
    -------
    Written
        sha256 and size of the ciphertext.
    """
    if bool(recipients) == (passphrase is not None):
        raise PrivspeechError("encrypt to recipients or with a passphrase, not both and not neither",
                              status=ExitStatus.USAGE)
    tap = _Tap(reader, writer, (name, out_name), input_sha256)
    try:
        if passphrase is not None:
            data = _passphrase.read_limited(tap, name)
            tap.write(_passphrase.encrypt(data, passphrase, armor=armor))
        else:
            pyrage.encrypt_io(tap, tap, list(recipients), armored=armor)
        return tap.finish()
    except (pyrage.EncryptError, OSError) as exc:
        tap.reraise()
        raise PrivspeechError(f"{name}: encryption failed: {exc}", status=ExitStatus.IOERR) from None


def decrypt_stream(reader: BinaryIO, writer: BinaryIO, *, identities: Sequence[Identity] = (),
                   passphrase: _passphrase.Passphrase | None = None, name: str = "<stdin>",
                   out_name: str = "<stdout>") -> Written:
    """Decrypt the age file `reader` yields and write the plaintext to `writer`, chunk by chunk.

    A file encrypted with a passphrase needs `passphrase` (called only then, when it is a function);
    any other needs `identities`. `writer` may have received part of the plaintext when this raises:
    use :func:`decrypt_file` for all or nothing.

    Raises
    ------
    PrivspeechError
        NOPERM when no identity or passphrase opens the file; DATAERR when it is malformed, tampered
        with or truncated (the message names the layer that failed: armor, header, MAC or payload).
    """
    info, rewound = _header.inspect(reader, name)
    tap = _Tap(rewound, writer, (name, out_name))
    try:
        if info.passphrase:
            if passphrase is None:
                raise PrivspeechError(f"{name}: encrypted with a passphrase", hint="give the passphrase (prompt, "
                                      "--passphrase-fd or --passphrase-file)", status=ExitStatus.NOPERM)
            ciphertext = _passphrase.read_limited(tap, name)
            tap.write(pyrage.passphrase.decrypt(ciphertext, _passphrase.resolve(passphrase)))
        else:
            if not identities and info.stanza_types:  # with no header found, let rage say what is wrong
                kinds = ", ".join(sorted(set(info.stanza_types))) or "unknown"
                raise PrivspeechError(f"{name}: encrypted to recipients ({kinds}), but no identity was given",
                                      hint="give the identity file with -i", status=ExitStatus.NOPERM)
            pyrage.decrypt_io(tap, tap, list(identities))
        return tap.finish()
    except (pyrage.DecryptError, OSError) as exc:
        try:
            tap.flush()  # release the authenticated prefix, as age does when streaming
        except OSError:
            pass  # kept by the tap; reraise() reports it
        tap.reraise()
        raise _header.failure(_header.classify(exc), name, str(exc).splitlines()[0]) from None


def encrypt_file(src: str | os.PathLike, dest: str | os.PathLike, *, recipients: Sequence[Recipient] = (),
                 passphrase: _passphrase.Passphrase | None = None, armor: bool = False,
                 force: bool = False) -> Written:
    """Encrypt the file `src` to `dest` (see :func:`encrypt_stream`); `dest` appears complete or not at all."""
    with _open(src) as reader, atomic_write(dest, force=force) as writer:
        return encrypt_stream(reader, writer, recipients=recipients, passphrase=passphrase, armor=armor,
                              name=str(src), out_name=str(dest))


def decrypt_file(src: str | os.PathLike, dest: str | os.PathLike, *, identities: Sequence[Identity] = (),
                 passphrase: _passphrase.Passphrase | None = None, force: bool = False) -> Written:
    """Decrypt the age file `src` to `dest`, mode 0600, all or nothing (see :func:`decrypt_stream`).

    Returns the sha256 and size of the plaintext.
    """
    with _open(src) as reader, atomic_write(dest, force=force, private=True) as writer:
        return decrypt_stream(reader, writer, identities=identities, passphrase=passphrase, name=str(src),
                              out_name=str(dest))


def _open(path: str | os.PathLike) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise from_os_error(exc, str(path)) from None


def op_fields(*, recipients: int, armor: bool = False, passphrase: bool = False) -> dict[str, Any]:
    """The fields of the manifest's ``encrypt`` ops entry: the format and how many recipients, never who.

    Use as ``record.with_op("encrypt", **op_fields(recipients=2))``.
    """
    fields: dict[str, Any] = {"format": "age", "recipients": recipients, "armor": armor}
    if passphrase:
        fields["passphrase"] = True
    return fields
