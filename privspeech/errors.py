"""privspeech's user-facing errors, one class per meaning, and the exit statuses (sysexits) they end a run with."""

from __future__ import annotations

import enum
import re

# Key material that may reach a message by mistake (a secret key given as a recipient or a path, a library's
# error text): age identities and plugin identities, privspeech keys, PEM private keys and OpenSSH key bodies.
_SECRET = re.compile(r"AGE-SECRET-KEY-[0-9A-Z-]*|AGE-PLUGIN-[0-9A-Z-]*|privspeech-key-v1:[0-9a-f]*"
                     r"|-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|$)"
                     r"|b3BlbnNzaC1rZXktdjE[0-9A-Za-z+/=]*", re.IGNORECASE | re.DOTALL)
REDACTED = "[secret key redacted]"


class ExitStatus(enum.IntEnum):
    """Process exit statuses, following sysexits(3)."""

    OK = 0
    FAILED = 1  # finished, but some records failed
    USAGE = 2  # bad option or argument
    DATAERR = 65  # bad input data: not audio, corrupt file, malformed manifest line
    NOINPUT = 66  # input not found
    SOFTWARE = 70  # internal error: a library or helper process privspeech runs failed
    CANTCREAT = 73  # cannot create output
    IOERR = 74  # I/O error
    TEMPFAIL = 75  # temporary failure: lock held by another run
    NOPERM = 77  # permission denied; wrong key
    INTERRUPTED = 130  # Ctrl-C
    BROKEN_PIPE = 141  # stdout was closed before all output was delivered (128 + SIGPIPE, as the shell reports)


class PrivspeechError(Exception):
    """The root of privspeech's user-facing errors: a one-line message naming the path or value concerned, an
    optional hint (what the user can do about it) and, by its class, the exit status the CLI ends with. Raise the
    subclass that says what went wrong."""

    status = ExitStatus.SOFTWARE

    def __init__(self, message: str, *, hint: str | None = None):
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint else hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # keep message and hint across process boundaries (the class carries the status)
        return (_rebuild, (type(self), self.message, self.hint))

    def reworded(self, message: str, hint: str | None = None) -> PrivspeechError:
        """The same kind of error with another message (and hint, else this one's)."""
        return type(self)(message, hint=self.hint if hint is None else hint)


class UsageError(PrivspeechError):
    """A bad option, argument or combination of them."""

    status = ExitStatus.USAGE


class DataError(PrivspeechError):
    """Bad input data: not audio, a corrupt file, a malformed manifest line, a file changed since its record."""

    status = ExitStatus.DATAERR


class NotFound(PrivspeechError):
    """An input that does not exist (or that a cluster's worker cannot see)."""

    status = ExitStatus.NOINPUT


class InternalError(PrivspeechError):
    """A bug, or a library or helper process privspeech runs that failed."""

    status = ExitStatus.SOFTWARE


class CannotWrite(PrivspeechError):
    """An output that cannot be created."""

    status = ExitStatus.CANTCREAT


class IOFailure(PrivspeechError):
    """Reading or writing failed part-way: a full disk, an I/O error, a check of written bytes that failed."""

    status = ExitStatus.IOERR


class TryAgain(PrivspeechError):
    """A temporary obstacle: a lock another run holds, a cluster that cannot be reached."""

    status = ExitStatus.TEMPFAIL


class NotPermitted(PrivspeechError):
    """Permission denied: a file's mode or owner, a manifest not trusted to name files to delete."""

    status = ExitStatus.NOPERM


class WrongKey(NotPermitted):
    """No key, identity or passphrase given opens the file."""


class Interrupted(PrivspeechError):
    """Ctrl-C or SIGTERM."""

    status = ExitStatus.INTERRUPTED


def redact(text: str) -> str:
    """`text` with anything that looks like key material replaced by :data:`REDACTED` (a safety net: messages
    are written never to quote a key in the first place)."""
    return _SECRET.sub(REDACTED, text)


def _rebuild(cls: type[PrivspeechError], message: str, hint: str | None) -> PrivspeechError:
    return cls(message, hint=hint)


def from_os_error(exc: OSError, what: str, *, writing: bool = False) -> PrivspeechError:
    """Translate an OSError on `what` into the PrivspeechError subclass that fits."""
    import errno

    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR) and not writing:
        return NotFound(f"{what}: no such file or folder", hint="check the path")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (CannotWrite if writing else NotPermitted)(f"{what}: permission denied",
                                                          hint="check the file's owner and mode")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return IOFailure(f"cannot write {what}: {reason}", hint="free space on that filesystem (or raise the quota), "
                         "or write somewhere else, and run again")
    if exc.errno == errno.EISDIR and not writing:
        return DataError(f"{what}: is a folder, not a file")
    if writing:
        return CannotWrite(f"cannot write {what}: {reason}", hint="check that the folder exists and is writable")
    return IOFailure(f"{what}: {reason}")
