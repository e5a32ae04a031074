"""The one exception type privspeech raises for user-facing errors, and the exit statuses (sysexits)."""

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
    """A user-facing error: a one-line message, an optional hint and the exit status.

    Parameters
    ----------
    message : str
        What went wrong, naming the path or value concerned.
    hint : str, optional
        What the user can do about it.
    status : ExitStatus
        The exit status the CLI ends with.
    """

    def __init__(self, message: str, *, hint: str | None = None, status: ExitStatus = ExitStatus.DATAERR):
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint else hint
        self.status = ExitStatus(status)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # keep message, hint and status across process boundaries
        return (_rebuild, (self.message, self.hint, int(self.status)))


def redact(text: str) -> str:
    """`text` with anything that looks like key material replaced by :data:`REDACTED` (a safety net: messages
    are written never to quote a key in the first place)."""
    return _SECRET.sub(REDACTED, text)


def _rebuild(message: str, hint: str | None, status: int) -> PrivspeechError:
    return PrivspeechError(message, hint=hint, status=ExitStatus(status))


def from_os_error(exc: OSError, what: str, *, writing: bool = False) -> PrivspeechError:
    """Translate an OSError on `what` into a PrivspeechError with the sysexits status that fits."""
    import errno

    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR) and not writing:
        return PrivspeechError(f"{what}: no such file or folder", hint="check the path", status=ExitStatus.NOINPUT)
    if exc.errno in (errno.EACCES, errno.EPERM):
        status = ExitStatus.CANTCREAT if writing else ExitStatus.NOPERM
        return PrivspeechError(f"{what}: permission denied", hint="check the file's owner and mode", status=status)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return PrivspeechError(f"cannot write {what}: {reason}", hint="free space on that filesystem (or raise the "
                               "quota), or write somewhere else, and run again", status=ExitStatus.IOERR)
    if exc.errno == errno.EISDIR and not writing:
        return PrivspeechError(f"{what}: is a folder, not a file", status=ExitStatus.DATAERR)
    if writing:
        return PrivspeechError(f"cannot write {what}: {reason}", hint="check that the folder exists and is writable",
                               status=ExitStatus.CANTCREAT)
    return PrivspeechError(f"{what}: {reason}", status=ExitStatus.IOERR)
