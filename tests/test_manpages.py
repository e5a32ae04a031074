"""The committed man pages are exactly what the CLI definition renders."""

from pathlib import Path

from privspeech.cli import manpage

MAN = Path(__file__).resolve().parents[1] / "man"


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
