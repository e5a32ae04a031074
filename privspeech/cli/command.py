"""What makes a function a privspeech command: one Env per invocation, and errors, Ctrl-C, SIGTERM and a closed
stdout turned into one line on stderr and the documented exit status."""

import functools
import os
import signal
from typing import Callable

import typer

from ..console import Env
from ..errors import ExitStatus, Interrupted, PrivspeechError
from .options import Quiet, with_options

DEBUG_ENV = "PRIVSPEECH_DEBUG"
DEBUG_META = "privspeech.debug"


def command(function: Callable) -> Callable:
    """Give `function` the --quiet option and call it with ``env=`` the invocation's Env; end the process with the
    status it returns, or the one its error stands for."""

    @functools.wraps(function)
    def guarded(env: Env, **kwargs):
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            status = function(env=env, **kwargs)
        except PrivspeechError as exc:
            if env.debug:
                raise
            env.error(exc)
            raise typer.Exit(int(exc.status)) from None
        except KeyboardInterrupt:
            env.error(Interrupted("interrupted"))
            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
        except BrokenPipeError:  # stdout closed before all output was delivered: a quiet stop, as SIGPIPE would
            from ..console import silence_stdout

            silence_stdout()
            raise typer.Exit(int(ExitStatus.BROKEN_PIPE)) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
        raise typer.Exit(int(status or 0))

    return with_options({"quiet": Quiet, "context": typer.Context}, into="env", build=_env)(guarded)


def _env(quiet: bool = False, context: typer.Context | None = None) -> Env:
    """The invocation's Env: tracebacks with `privspeech --debug` (which the root command notes in the context's
    meta, shared by its subcommands) or PRIVSPEECH_DEBUG set."""
    debug = bool(context is not None and context.meta.get(DEBUG_META)) or bool(os.environ.get(DEBUG_ENV))
    return Env(quiet=quiet, debug=debug)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
