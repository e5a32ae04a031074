"""Man pages generated from the Typer app, so they never drift from the CLI.

`python -m privspeech.cli.manpage man/` rewrites `man/privspeech.1` and `man/privspeech-<command>.1`;
a test fails when the committed pages differ from what this module renders.
"""

import re
import sys
from pathlib import Path

import typer.main

from .. import __version__

EXIT_STATUS = [
    ("0", "Done (also: nothing to do)."),
    ("1", "Finished, but some records failed; each failure is reported on stderr with its path."),
    ("2", "Usage error: a bad option or argument."),
    ("65", "Bad input data: not audio, a corrupt file, a malformed manifest line, a budget exceeded."),
    ("66", "Input not found."),
    ("70", "Internal error: a library or helper process privspeech runs failed (please report it)."),
    ("73", "Cannot create output (it exists without --force, or the folder is not writable)."),
    ("74", "I/O error."),
    ("75", "Temporary failure: a lock is held by another run, or --max-runtime ran out; run again later."),
    ("77", "Permission denied, or the wrong key."),
    ("130", "Interrupted (SIGINT or SIGTERM); no partial output is left behind."),
]


def _esc(text: str) -> str:
    """Escape text for roff: backslashes, leading dots/quotes, and hyphens in options."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + ln) if ln.startswith((".", "'")) else ln for ln in text.splitlines())


def _paragraphs(text: str) -> str:
    out = []
    for para in re.split(r"\n\s*\n", (text or "").strip()):
        if para.strip():
            out.append(".PP\n" + _esc(" ".join(line.strip() for line in para.splitlines())))
    return "\n".join(out)


def _option(param) -> str:
    names = ", ".join(f"\\fB{_esc(o)}\\fR" for o in list(param.opts) + list(param.secondary_opts))
    if not getattr(param, "is_flag", False) and param.metavar:
        names += f" \\fI{_esc(param.metavar)}\\fR"
    elif not getattr(param, "is_flag", False):
        names += f" \\fI{_esc(param.name.upper())}\\fR"
    help_text = _esc(" ".join((param.help or "").split()))
    default = param.default
    if default not in (None, False, (), []) and getattr(param, "show_default", True) is not False:
        help_text += f" [default: {_esc(str(default))}]"
    return f".TP\n{names}\n{help_text}"


def _argument(param) -> str:
    """An argument as the command takes it: ROOT, [ROOT], PATHS... or [PATHS...]."""
    text = f"\\fI{_esc(param.metavar or param.name.upper())}\\fR" + ("..." if param.nargs == -1 else "")
    return text if param.required else f"[{text}]"


def render(name: str, command, *, summary: str, subcommands=None) -> str:
    """One man page in roff."""
    lines = [f'.TH "{name.upper()}" "1" "" "privspeech {__version__}" "privspeech manual"',
             ".SH NAME", f"{_esc(name)} \\- {_esc(summary)}", ".SH SYNOPSIS"]
    args = " ".join(_argument(p) for p in command.params if type(p).__name__.endswith("Argument"))
    lines.append(f"\\fB{_esc(name.replace('-', ' '))}\\fR [\\fIOPTIONS\\fR] {args}".rstrip())
    lines += [".SH DESCRIPTION", _paragraphs(command.help)]
    if subcommands:
        lines.append(".SH COMMANDS")
        for sub_name, sub in subcommands:
            lines += [f".TP\n\\fB{_esc(name)}\\-{_esc(sub_name)}\\fR(1)", _esc(_first_line(sub.help))]
    options = [p for p in command.params if not type(p).__name__.endswith("Argument")]
    if options:
        lines.append(".SH OPTIONS")
        lines += [_option(p) for p in options]
    lines.append(".SH EXIT STATUS")
    lines += [f".TP\n\\fB{code}\\fR\n{_esc(text)}" for code, text in EXIT_STATUS]
    lines += [".SH ENVIRONMENT", ".TP\n\\fBNO_COLOR\\fR\nDisables colour on stderr.",
              ".TP\n\\fBPRIVSPEECH_DEBUG\\fR\nShows tracebacks for errors (for bug reports)."]
    lines += [f".TP\n\\fB{_esc(p.envvar)}\\fR\nThe default of \\fB{_esc(p.opts[0])}\\fR." for p in options if p.envvar]
    parent = name.rsplit("-", 1)[0]
    see_also = [f"{parent}(1)"] if subcommands is None else [f"{name}-{n}(1)" for n, _ in subcommands]
    lines += [".SH SEE ALSO", _esc(", ".join(see_also))]
    return "\n".join(line for line in lines if line) + "\n"


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def pages() -> dict[str, str]:
    """File name -> roff text for the main page and every subcommand."""
    from .app import app

    out: dict[str, str] = {}
    _render_all("privspeech", typer.main.get_command(app), "audio privacy toolkit for speech recordings", out)
    return out


def _render_all(name: str, command, summary: str, out: dict[str, str]) -> None:
    """The page of `command` and, for a group, of each of its subcommands, into `out`."""
    subs = sorted(command.commands.items()) if hasattr(command, "commands") else None
    out[f"{name}.1"] = render(name, command, summary=summary, subcommands=subs)
    for sub_name, sub in subs or ():
        _render_all(f"{name}-{sub_name}", sub, _first_line(sub.help), out)


def write(folder: Path) -> list[Path]:
    """Write every page into `folder`, removing pages of commands that no longer exist."""
    folder.mkdir(parents=True, exist_ok=True)
    rendered = pages()
    for stale in folder.glob("privspeech*.1"):
        if stale.name not in rendered:
            stale.unlink()
    written = []
    for file_name, text in rendered.items():
        path = folder / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for page in write(Path(sys.argv[1] if len(sys.argv) > 1 else "man")):
        print(page)
