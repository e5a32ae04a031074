"""The run's environment (HTTPie style): standard streams, whether they are terminals, verbosity, messages.

One Env is built per command from the real streams and passed down; tests build their own.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

from .errors import PrivspeechError, redact


@dataclass
class Env:
    """Standard streams and user preferences for one run."""

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    debug: bool = False
    program: str = "privspeech"

    @property
    def stdin_is_tty(self) -> bool:
        return _isatty(self.stdin)

    @property
    def stdout_is_tty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stderr_is_tty(self) -> bool:
        return _isatty(self.stderr)

    @property
    def show_progress(self) -> bool:
        """Progress bars only on a terminal, never with --quiet."""
        return self.stderr_is_tty and not self.quiet

    def console(self):
        """A rich Console on stderr; with NO_COLOR set it writes no escape codes at all (no colour, no bold)."""
        from rich.console import Console

        plain = "NO_COLOR" in os.environ
        return Console(file=self.stderr, highlight=False, no_color=plain or None, color_system=None if plain else "auto")

    def info(self, message: str) -> None:
        """A summary or note for people; silenced by --quiet."""
        if not self.quiet:
            self._line(message)

    def warn(self, message: str) -> None:
        """A warning; shown even with --quiet (it may matter for privacy or data)."""
        self._line(f"{self.program}: warning: {message}")

    def error(self, exc: PrivspeechError) -> None:
        """One line: the error and its hint."""
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        self._line(f"{self.program}: error: {exc.message}{hint}")

    def _line(self, text: str) -> None:
        try:
            self.stderr.write(redact(text).replace("\n", " ") + "\n")
            self.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass


def silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
