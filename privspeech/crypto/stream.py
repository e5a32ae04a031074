"""Streaming age encryption and decryption (pyrage's ``encrypt_io``/``decrypt_io``), files written atomically.

Memory stays flat for any file size with recipients and identities: rage works through 64 KiB chunks
and privspeech through a few 2 MiB blocks. Passphrase mode works in memory (see :mod:`.passphrase`).
Decrypted files are created 0600 and appear only once every chunk has been authenticated, so a failure
anywhere leaves no plaintext behind.

Speed: rage encrypts in the calling thread, holding the GIL; worker threads write the output and hash
it (and the input, when its sha256 is checked) on the second core. While a stream runs, the interpreter's
switch interval is lowered to 0.2 ms (and then restored) so they get the GIL promptly.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import select
import signal
import stat
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyrage

from ..errors import DataError, from_os_error, IOFailure, UsageError, WrongKey
from ..fsutil import atomic_write
from . import header as _header
from . import passphrase as _passphrase
from .types import Identity, Recipient


@dataclass(frozen=True)
class Written:
    """What an encryption or decryption wrote: the sha256 (hex) and size of the output bytes (the sha256 None when
    the output was not to be hashed), and the sha256 of the input bytes when they were hashed."""

    sha256: str | None
    size: int
    input_sha256: str | None = None


# Measured on 512 MiB in /dev/shm: 1 MiB blocks 10% slower, 4 MiB no faster and 15 MiB more peak RSS.
_BLOCK = 2 << 20  # bytes per read from the source and per write to the sink (rage moves 8-64 KiB at a time)
_IN_FLIGHT = 3  # input blocks queued for hashing, and output buffers (filled in turn, reused): flat memory
_SWITCH_INTERVAL = 2e-4  # seconds a worker waits at most for the GIL rage's thread holds (Python's default: 5 ms)
_ASYNC_SIGNALS = signal.valid_signals() - {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL}


def _blocking_fd(reader: Any) -> int | None:
    """The file descriptor behind `reader` when a read from it may wait for data (pipe, FIFO, terminal)."""
    try:
        fd = reader.fileno()
        return None if stat.S_ISREG(os.fstat(fd).st_mode) else fd
    except (AttributeError, OSError, ValueError):  # no file descriptor (io.UnsupportedOperation is both)
        return None


def _wait_readable(poller: select.poll) -> None:
    """Wait until the polled descriptor has data or is at its end, running the handlers of signals received
    at least every 50 ms (Ctrl-C raises KeyboardInterrupt here).

    A blocking read would not do: Python 3.11 runs a signal's handler when its evaluation loop next looks,
    and a signal that arrives while the calling thread hands the GIL to a worker on its way into ``read``
    would wait for the read to return, which on a quiet pipe may be never. ``pthread_sigmask`` runs the
    handlers of signals received; blocking no signal changes nothing else.
    """
    while True:
        signal.pthread_sigmask(signal.SIG_BLOCK, ())
        if poller.poll(50):
            return


class _PromptSwitches:
    """Holds the interpreter's switch interval at :data:`_SWITCH_INTERVAL` or less while at least one stream
    runs (threads may run several), and puts the previous value back after the last."""

    def __init__(self):
        self._lock = threading.Lock()
        self._streams = 0
        self._previous = sys.getswitchinterval()

    def acquire(self) -> None:
        with self._lock:
            if not self._streams:
                self._previous = sys.getswitchinterval()
                sys.setswitchinterval(min(self._previous, _SWITCH_INTERVAL))
            self._streams += 1

    def release(self) -> None:
        with self._lock:
            self._streams -= 1
            if not self._streams:
                sys.setswitchinterval(self._previous)


_prompt_switches = _PromptSwitches()


class _Worker:
    """A thread that writes blocks to `sink` (if any) and adds them to `digest` (if any), in order, while rage works
    on the next ones.

    rage holds the GIL while it encrypts; hashlib and file writes release it on large buffers, so this
    thread runs on the second core. The first exception it meets is kept in `error` (later blocks are
    dropped) for the calling thread to raise.
    """

    def __init__(self, digest: Any | None, sink: BinaryIO | None = None):
        self.digest, self._sink = digest, sink
        self._jobs: queue.Queue = queue.Queue(_IN_FLIGHT)
        self.error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="privspeech-crypto-io", daemon=True)
        # Started with signals blocked, so Ctrl-C lands on the calling thread and interrupts a blocking read
        # there (a signal taken by this thread would leave the caller waiting on a quiet pipe).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
        try:
            self._thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            data, done = job
            if self.error is None:
                try:
                    if self._sink is not None:
                        self._sink.write(data)
                    if self.digest is not None:
                        self.digest.update(data)
                except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                    self.error = exc
            if done is not None:
                done()

    def submit(self, data: bytes | memoryview, done: Callable[[], None] | None = None) -> None:
        """Queue `data` (unchanged until `done` is called, after it was written and hashed); waits while the
        queue is full. Raises the error the worker met, if any."""
        if self.error is not None:
            raise self.error
        self._jobs.put((data, done))

    def close(self) -> None:
        """Wait until every queued block is done. Once only: called again after Ctrl-C interrupted the wait
        (a sink that takes no data, such as a stalled pipe), it lets the thread go."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._thread.join()


class _Tap:
    """The reader and writer pyrage calls back into.

    rage asks for 8 KiB and hands over 8-64 KiB at a time; a Python call per piece is cheap, a system
    call or a hash update per piece is not. So the source is read in blocks of up to :data:`_BLOCK`
    (``read1``: what a pipe holds is used at once) and rage's reads are served from them; the output
    is gathered into buffers of the same size, reused in turn. Worker threads write and hash the output
    blocks and hash the input blocks (when the input's sha256 is to be checked) beside the cipher.
    The first exception raised on either side is kept: pyrage flattens exceptions into strings, and
    Ctrl-C and disk errors must survive as themselves.
    """

    def __init__(self, reader: Any, writer: BinaryIO, names: tuple[str, str], input_sha256: str | None = None,
                 hash_input: bool = False, hash_output: bool = True):
        self._read = getattr(reader, "read1", reader.read)
        fd = _blocking_fd(reader)
        self._poller = None if fd is None else select.poll()
        if self._poller is not None:
            self._poller.register(fd, select.POLLIN)
        self._names = names
        self._expected_input = input_sha256
        self._block, self._offset = b"", 0
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()  # output buffers the worker is done with
        self._buffers = 0
        self._buffer, self._filled = bytearray(), 0
        self.size = 0
        self.error: BaseException | None = None
        self._writing = False
        self._output = _Worker(hashlib.sha256() if hash_output else None, writer)
        self._input = _Worker(hashlib.sha256()) if input_sha256 or hash_input else None
        _prompt_switches.acquire()
        self._switching = True

    def _keep(self, exc: BaseException, writing: bool) -> None:
        if self.error is None:
            self.error, self._writing = exc, writing

    def read(self, size: int) -> bytes:
        """Up to `size` bytes of the source (fewer at the end of a block); b"" at its end."""
        if self._offset >= len(self._block):
            try:
                if self._poller is not None:
                    _wait_readable(self._poller)
                self._block, self._offset = self._read(_BLOCK), 0
                if self._input is not None and self._block:
                    self._input.submit(self._block)
            except BaseException as exc:
                self._keep(exc, writing=False)
                raise
        start = self._offset
        self._offset += size
        return self._block[start:self._offset]

    def write(self, data: bytes) -> int:
        """Copy `data` into the output buffers, handing each full one to the output worker."""
        rest = memoryview(data)
        while rest:
            if self._filled == len(self._buffer):
                self.flush()
                self._buffer = self._free_buffer()
            piece = rest[:len(self._buffer) - self._filled]
            self._buffer[self._filled:self._filled + len(piece)] = piece
            self._filled += len(piece)
            rest = rest[len(piece):]
        self.size += len(data)
        return len(data)

    def _free_buffer(self) -> bytearray:
        """A new output buffer while there are fewer than :data:`_IN_FLIGHT`, then one the worker is done with
        (waiting for it)."""
        if self._buffers < _IN_FLIGHT:
            self._buffers += 1
            return bytearray(_BLOCK)
        try:
            return self._free.get()
        except BaseException as exc:
            self._keep(exc, writing=True)
            raise

    def flush(self) -> None:
        """Hand what is gathered to the output worker (rage hands over only authenticated plaintext)."""
        if not self._filled or self.error is not None:
            return
        buffer, filled = self._buffer, self._filled
        self._buffer, self._filled = bytearray(), 0
        try:
            self._output.submit(memoryview(buffer)[:filled], lambda: self._free.put(buffer))
        except BaseException as exc:
            self._keep(exc, writing=True)
            raise

    def close(self) -> None:
        """Wait for the workers to finish the blocks handed to them (idempotent); keep the error met in
        writing, if any."""
        try:
            for worker in (self._output, self._input):
                if worker is not None:
                    worker.close()
        except BaseException as exc:
            self._keep(exc, writing=False)
            raise
        finally:
            if self._switching:
                self._switching = False
                _prompt_switches.release()
        if self._output.error is not None:
            self._keep(self._output.error, writing=True)

    def finish(self) -> Written:
        """Write what is pending; the output's sha256 and size. Refuses an input whose bytes did not match the
        expected sha256 (checked in the same pass that read them, so the output is never published)."""
        self.flush()
        self.close()
        if self.error is not None:
            self.reraise()
        read = self._input.digest.hexdigest() if self._input is not None else None
        if self._expected_input and read != self._expected_input:
            raise DataError(f"{self._names[0]}: file changed since its manifest record was written "
                            f"(sha256 mismatch)", hint="rescan it with privspeech scan")
        digest = self._output.digest
        return Written(digest.hexdigest() if digest is not None else None, self.size, read)

    def reraise(self) -> None:
        """Raise the kept exception, if any, OSErrors translated and naming the input or the output (a closed
        stdout stays a BrokenPipeError: it ends the run, not the record)."""
        if isinstance(self.error, OSError) and not isinstance(self.error, BrokenPipeError):
            raise from_os_error(self.error, self._names[self._writing], writing=self._writing) from None
        if self.error is not None:
            raise self.error


def encrypt_stream(reader: BinaryIO, writer: BinaryIO, *, recipients: Sequence[Recipient] = (),
                   passphrase: _passphrase.Passphrase | None = None, armor: bool = False,
                   name: str = "<stdin>", out_name: str = "<stdout>", input_sha256: str | None = None,
                   hash_input: bool = False, hash_output: bool = True) -> Written:
    """Encrypt what `reader` yields to `recipients` (or a passphrase) and write the age file to `writer`.

    Parameters
    ----------
    reader, writer : binary file objects
        Plaintext source and ciphertext sink.
    recipients : sequence of pyrage recipients
        From :func:`privspeech.crypto.recipients.parse` (or ``collect(...).parsed()``); exclusive with
        `passphrase`.
    passphrase : str, bytes or callable, optional
        Encrypt with scrypt instead, in memory (at most ``passphrase.MAX_BYTES``).
    armor : bool
        Write the ASCII armor (PEM-like text) instead of binary.
    name, out_name : str
        The input's and the output's names in error messages.
    input_sha256 : str, optional
        The plaintext's expected sha256 (from its manifest record): a mismatch raises DATAERR at the end.
    hash_input : bool
        Hash the plaintext as it is read (``Written.input_sha256``), also without an expected value.
    hash_output : bool
        Hash the ciphertext (``Written.sha256``); false saves that time when no record will carry the sha256.

    Returns
    -------
    Written
        sha256 and size of the ciphertext, and the plaintext's sha256 when it was hashed.
    """
    if bool(recipients) == (passphrase is not None):
        raise UsageError("encrypt to recipients or with a passphrase, not both and not neither")
    tap = _Tap(reader, writer, (name, out_name), input_sha256, hash_input, hash_output)
    try:
        if passphrase is not None:
            data = _passphrase.read_limited(tap, name)
            tap.write(_passphrase.encrypt(data, passphrase, armor=armor))
        else:
            pyrage.encrypt_io(tap, tap, list(recipients), armored=armor)
        return tap.finish()
    except (pyrage.EncryptError, OSError) as exc:
        tap.close()
        tap.reraise()
        if str(exc).startswith("KeyboardInterrupt"):  # Ctrl-C taken on entry to a callback, before its try
            raise KeyboardInterrupt from None
        raise IOFailure(f"{name}: encryption failed: {exc}") from None
    finally:
        tap.close()


def decrypt_stream(reader: BinaryIO, writer: BinaryIO, *, identities: Sequence[Identity] = (),
                   passphrase: _passphrase.Passphrase | None = None, name: str = "<stdin>",
                   out_name: str = "<stdout>", hash_output: bool = True) -> Written:
    """Decrypt the age file `reader` yields and write the plaintext to `writer`, chunk by chunk.

    A file encrypted with a passphrase needs `passphrase` (called only then, when it is a function);
    any other needs `identities`. The plaintext's sha256 is ``Written.sha256`` unless `hash_output` is false.
    `writer` may have received part of the plaintext when this raises: use :func:`decrypt_file` for all or
    nothing.

    Raises
    ------
    WrongKey, DataError
        When no identity or passphrase opens the file; when it is malformed, tampered with or truncated (the message names the layer that failed: armor, header, MAC or payload).
    """
    info, rewound = _header.inspect(reader, name)
    tap = _Tap(rewound, writer, (name, out_name), hash_output=hash_output)
    try:
        if info.passphrase:
            if passphrase is None:
                raise WrongKey(f"{name}: encrypted with a passphrase", hint="give the passphrase (prompt, "
                               "--passphrase-fd or --passphrase-file)")
            ciphertext = _passphrase.read_limited(tap, name)
            tap.write(pyrage.passphrase.decrypt(ciphertext, _passphrase.resolve(passphrase)))
        else:
            if not identities and info.stanza_types:  # with no header found, let rage say what is wrong
                kinds = ", ".join(sorted(set(info.stanza_types))) or "unknown"
                raise WrongKey(f"{name}: encrypted to recipients ({kinds}), but no identity was given",
                               hint="give the identity file with -i")
            pyrage.decrypt_io(tap, tap, list(identities))
        return tap.finish()
    except (pyrage.DecryptError, OSError) as exc:
        with contextlib.suppress(OSError):  # kept by the tap; reraise() reports it
            tap.flush()  # release the authenticated prefix, as age does when streaming
        tap.close()
        tap.reraise()
        raise _header.failure(_header.classify(exc), name, str(exc).splitlines()[0]) from None
    finally:
        tap.close()


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
