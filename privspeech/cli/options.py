"""The options commands share, and decorators that add a group of them to a command.

Only typer is imported here, so `privspeech --help` stays instant; the library loads inside commands.
"""

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

PANEL_PREPARE = "Prepare"
PANEL_PROTECT = "Protect"
PANEL_SECURE = "Encrypt"
PANEL_KEEP = "Retain"
PANEL_MEASURE = "Measure"
PANEL_CLUSTER = "Many machines (Dask)"
SCHEDULER_ENV = "PRIVSPEECH_SCHEDULER"


def choice(*names: str, metavar: str, **kwargs):
    """A typer.Option whose values the shell completes: METAVAR's alternatives (``a|b|prefix:ARG``)."""
    values = [value.split(":")[0] + ":" if ":" in value else value for value in metavar.split("|")]
    return typer.Option(*names, metavar=metavar, **kwargs,
                        autocompletion=lambda incomplete: [v for v in values if v.startswith(incomplete)])


def _jobs(*names: str):
    return Annotated[Optional[int], typer.Option(
        *names, min=1, help="Records processed in parallel processes [default: the usable cores].", show_default=False)]


Inputs = Annotated[Optional[list[str]], typer.Argument(
    help="Audio files, folders or .jsonl manifests; none or '-' reads a manifest (or audio) from stdin.",
    show_default=False)]
OutDir = Annotated[Optional[Path], typer.Option(
    "--out-dir", help="Write outputs under DIR, mirroring the inputs' layout.", file_okay=False)]
Output = Annotated[Optional[str], typer.Option(
    "--output", "-o", help="Write the one output to FILE ('-' for stdout).", metavar="FILE")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
Jobs = _jobs("--jobs", "-j")
AgeJobs = _jobs("--jobs")  # encrypt and decrypt: age's -j names a plugin
FailFast = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failing record.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr (warnings stay).")]
SkipInvalid = Annotated[bool, typer.Option("--skip-invalid", help="Skip bad manifest lines instead of stopping.")]
Shard = Annotated[Optional[str], typer.Option(
    "--shard", metavar="I/N", help="Process only the I-th of N interleaved parts of the input.")]
EmitManifest = Annotated[bool, typer.Option(
    "--emit-manifest", help="With -o FILE, also print the manifest record on stdout.")]
SpeakerFrom = Annotated[Optional[str], choice(
    "--speaker-from", metavar="dir|regex:PATTERN",
    help="Name the speaker of each record that has none after its parent folder, or the first group of PATTERN "
         "in its path.", show_default=False)]
KeyFile = Annotated[Optional[Path], typer.Option(
    "--key-file", "-k", help="Secret key file (privspeech keygen --anon).", dir_okay=False)]
Scheduler = Annotated[Optional[str], typer.Option(
    "--scheduler", metavar="ADDRESS", envvar=SCHEDULER_ENV, show_envvar=True, rich_help_panel=PANEL_CLUSTER,
    help="Run the records on the workers of a Dask cluster: its scheduler's tcp:// or tls:// address, or 'local' "
         "to start one on this machine (--jobs workers). Workers read inputs and keys and write outputs at the paths "
         "given here, so all must see the same files (a shared filesystem). Needs the dask extra.",
    show_default=False)]
TlsCaFile = Annotated[Optional[Path], typer.Option(
    "--tls-ca-file", metavar="PEM", rich_help_panel=PANEL_CLUSTER, dir_okay=False,
    help="tls:// scheduler: the CA certificate(s) the cluster's certificates are checked against.")]
TlsCert = Annotated[Optional[Path], typer.Option(
    "--tls-cert", metavar="PEM", rich_help_panel=PANEL_CLUSTER, dir_okay=False,
    help="tls:// scheduler: this client's certificate.")]
TlsKey = Annotated[Optional[Path], typer.Option(
    "--tls-key", metavar="PEM", rich_help_panel=PANEL_CLUSTER, dir_okay=False,
    help="tls:// scheduler: this client's private key.")]


@dataclass(frozen=True)
class RunOptions:
    """The options of a record stage's run: where outputs go (for stages that write files), how records are run."""

    jobs: Optional[int] = None
    fail_fast: bool = False
    skip_invalid: bool = False
    shard: Optional[str] = None
    scheduler: Optional[str] = None
    tls_ca_file: Optional[Path] = None
    tls_cert: Optional[Path] = None
    tls_key: Optional[Path] = None
    out_dir: Optional[Path] = None
    output: Optional[str] = None
    force: bool = False
    emit_manifest: bool = False


_OUTPUT_OPTIONS = {"out_dir": OutDir, "output": Output, "force": Force, "emit_manifest": EmitManifest}
_RUN_OPTIONS = {"jobs": Jobs, "fail_fast": FailFast, "skip_invalid": SkipInvalid, "shard": Shard,
                "scheduler": Scheduler, "tls_ca_file": TlsCaFile, "tls_cert": TlsCert, "tls_key": TlsKey}


def record_stage(*, writes: bool = True, jobs: Any = Jobs) -> Callable:
    """Give a command the run options of a record stage (and the output options, if it `writes` files); it gets
    them as one `run: RunOptions` argument."""
    options = {**(_OUTPUT_OPTIONS if writes else {}), **_RUN_OPTIONS, "jobs": jobs}
    return with_options(options, into="run", build=RunOptions)


def with_options(options: dict[str, Any], *, into: str, build: Callable[..., Any]) -> Callable:
    """Add `options` (name: Annotated type; defaults from `build`'s fields) after a command's own parameters, and
    call it with ``into=build(**their values)`` in their place."""
    defaults = inspect.signature(build).parameters

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.name != into]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=defaults[name].default,
                                   annotation=annotation) for name, annotation in options.items()]

        @functools.wraps(command)
        def wrapper(**kwargs):
            group = build(**{name: kwargs.pop(name) for name in options if name in kwargs})
            return command(**kwargs, **{into: group})

        wrapper.__signature__ = signature.replace(parameters=own + added)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + added}
        return wrapper

    return decorate
