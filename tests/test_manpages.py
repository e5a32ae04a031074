"""The committed man pages are exactly what the CLI definition renders, and their synopses match what it takes."""

import os

from privspeech.cli import manpage
from privspeech.managed import mark
from privspeech.errors import ExitStatus

from conftest import REPO

MAN = REPO / "man"


def test_committed_man_pages_are_up_to_date():
    rendered = manpage.pages()
    committed = {p.name: p.read_text(encoding="utf-8") for p in MAN.glob("*.1")}
    stale = sorted(name for name in rendered if committed.get(name) != rendered[name])
    extra = sorted(set(committed) - set(rendered))
    assert not stale and not extra, (f"man pages out of date: {stale + extra}; "
                                     f"run: python -m privspeech.cli.manpage man")


def test_every_subcommand_has_a_page_with_exit_status():
    from typer.main import get_command

    from privspeech.cli.app import app

    names = get_command(app).commands
    for name in names:
        page = (MAN / f"privspeech-{name}.1").read_text()
        assert ".SH EXIT STATUS" in page and "\\fB130\\fR" in page
    assert all(f"privspeech\\-{name}" in (MAN / "privspeech.1").read_text() for name in names)


def test_synopsis_gives_each_argument_as_the_command_takes_it(tmp_path, cli):
    """init takes exactly one ROOT and prune at most one (none with --keyring; a second is a usage error); the inputs
    of a stage are optional and repeatable."""
    rendered = manpage.pages()
    assert "\\fBprivspeech prune\\fR [\\fIOPTIONS\\fR] [\\fIROOT\\fR]\n" in rendered["privspeech-prune.1"]
    assert "\\fBprivspeech init\\fR [\\fIOPTIONS\\fR] \\fIROOT\\fR\n" in rendered["privspeech-init.1"]
    assert "\\fBprivspeech scan\\fR [\\fIOPTIONS\\fR] [\\fIPATHS\\fR...]\n" in rendered["privspeech-scan.1"]
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        mark(root)
        (root / "old.wav").write_bytes(b"RIFF")
        os.utime(root / "old.wav", (0, 0))
    result = cli(["prune", *roots, "--older-than", "30d"])
    assert result.exit_code == ExitStatus.USAGE and "unexpected extra argument" in result.stderr
    assert all((root / "old.wav").exists() for root in roots)
