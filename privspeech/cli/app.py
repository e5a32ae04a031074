"""The `privspeech` command: a Typer app whose subcommands live one per module in this package."""

import os
from typing import Annotated, Optional

import typer

from .. import __version__
from . import anonymize, budget, decrypt, encrypt, evaluate, init, keygen, keyring, noise, prune, scan, stats
from .command import DEBUG_META
from .options import PANEL_KEEP, PANEL_MEASURE, PANEL_PREPARE, PANEL_PROTECT, PANEL_SECURE

app = typer.Typer(
    name="privspeech",
    help="Audio privacy toolkit: de-identify, add differentially private noise to, encrypt and expire speech "
         "recordings. Subcommands read audio files, folders or JSONL manifests and print manifests on stdout, "
         "so they compose into shell pipelines.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit status: 0 done, 1 some records failed, 2 usage, 65 bad data, 66 no input, 73 cannot create "
           "output, 74 I/O error, 75 locked, 77 permission or wrong key, 130 interrupted, 141 stdout closed before all "
           "output was delivered.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"privspeech {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    context: typer.Context,
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (for bug reports).")] = False,
) -> None:
    """Audio privacy toolkit for speech recordings."""
    context.meta[DEBUG_META] = debug


app.command(rich_help_panel=PANEL_PREPARE)(scan.scan)
app.command(rich_help_panel=PANEL_PROTECT)(anonymize.anonymize)
app.command(rich_help_panel=PANEL_PROTECT)(noise.noise)
app.command(rich_help_panel=PANEL_MEASURE)(stats.stats)
app.command(rich_help_panel=PANEL_MEASURE)(budget.budget)
app.command(rich_help_panel=PANEL_MEASURE)(evaluate.evaluate)
app.command(rich_help_panel=PANEL_SECURE)(keygen.keygen)
app.command(rich_help_panel=PANEL_SECURE)(encrypt.encrypt)
app.command(rich_help_panel=PANEL_SECURE)(decrypt.decrypt)
app.add_typer(keyring.app, rich_help_panel=PANEL_SECURE)
app.command(rich_help_panel=PANEL_KEEP)(init.init)
app.command(rich_help_panel=PANEL_KEEP)(prune.prune)


def main() -> None:
    if "NO_COLOR" in os.environ:  # no-color.org; rich's own NO_COLOR support drops colours but keeps bold
        from typer import rich_utils

        rich_utils.COLOR_SYSTEM = None
    app()
