"""What every subcommand shares: option definitions, error handling and the call into the pipeline.

Only typer is imported here, so `privspeech --help` stays instant; the library loads inside commands.
"""

import functools
import os
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ExitStatus, Interrupted, PrivspeechError, UsageError

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


Inputs = Annotated[Optional[list[str]], typer.Argument(
    help="Audio files, folders or .jsonl manifests; none or '-' reads a manifest (or audio) from stdin.",
    show_default=False)]
OutDir = Annotated[Optional[Path], typer.Option(
    "--out-dir", help="Write outputs under DIR, mirroring the inputs' layout.", file_okay=False)]
Output = Annotated[Optional[str], typer.Option(
    "--output", "-o", help="Write the one output to FILE ('-' for stdout).", metavar="FILE")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
def _jobs(*names: str):
    return Annotated[Optional[int], typer.Option(
        *names, min=1, help="Records processed in parallel processes [default: the usable cores].", show_default=False)]


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

DEBUG_ENV = "PRIVSPEECH_DEBUG"


def handles_errors(command):
    """Turn PrivspeechError, Ctrl-C and SIGTERM into one line on stderr and the exit status, and a closed stdout
    into a quiet exit 141."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from ..console import Env

        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        env = Env(quiet=bool(kwargs.get("quiet")), debug=bool(os.environ.get(DEBUG_ENV)))
        try:
            status = command(*args, **kwargs)
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

    return wrapper


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def cluster(scheduler, jobs, tls_ca_file=None, tls_cert=None, tls_key=None):
    """The Dask cluster --scheduler names (its options checked), or None to run on this machine."""
    if not scheduler:
        if tls_ca_file or tls_cert or tls_key:
            raise UsageError("--tls-ca-file, --tls-cert and --tls-key apply with --scheduler")
        return None
    from ..executors_dask import Cluster

    found = Cluster(scheduler, workers=jobs, tls_ca_file=tls_ca_file and str(tls_ca_file),
                    tls_cert=tls_cert and str(tls_cert), tls_key=tls_key and str(tls_key))
    found.check()
    return found


def secret(load, files, env, *, remote: bool, passphrase=None):
    """The secret ``load(files)`` returns (a key, identities, a passphrase), checked here with its warnings shown;
    for a cluster (`remote`), a reference that the workers load the files through, so the secret never enters a
    task (`passphrase`, for files protected by one, is then a reference too)."""
    from ..secretref import SecretFile

    value, warnings = load(files) if passphrase is None else load(files, passphrase=passphrase)
    for message in warnings:
        env.warn(message)
    return SecretFile(load, files, passphrase) if remote else value


def run(stage, paths, *, out_dir=None, output=None, force=False, jobs=None, fail_fast=False, quiet=False,
        skip_invalid=False, shard=None, emit_manifest=False, follow_symlinks=False, items=None, cluster=None):
    """Check placement options, collect inputs and run `stage` (on `cluster`, if given); returns the exit
    status."""
    from ..console import Env
    from ..inputs import collect
    from ..pipeline import RunOptions, Runner, default_jobs, parse_shard
    from ..placement import Placement
    from .progress import Bars

    env = Env(quiet=quiet, debug=bool(os.environ.get(DEBUG_ENV)))
    if stage.suffix is not None:
        if out_dir is not None and output is not None:
            raise UsageError("--out-dir and --output exclude each other")
        if out_dir is None and output is None:
            raise UsageError("no output given",
                             hint="write to a folder with --out-dir DIR or one file with -o FILE")
        if output == "-" and emit_manifest:
            raise UsageError("-o - puts audio on stdout, so no manifest can go there")
    warning = cluster.warning() if cluster is not None else None
    if warning:
        env.warn(warning)
    if items is None:
        items = collect(paths or [], env, skip_invalid=skip_invalid, follow_symlinks=follow_symlinks)
    if output is not None:
        items = _single(items)
    placement = Placement(out_dir=Path(out_dir) if out_dir is not None else None, out_file=output, force=force,
                          emit_manifest=output is None or emit_manifest)
    options = RunOptions(jobs=jobs or default_jobs(), fail_fast=fail_fast,
                         shard=parse_shard(shard) if shard else None, cluster=cluster)
    if output is not None:
        options = RunOptions(jobs=1, fail_fast=True, cluster=cluster)
    with Bars(env) as progress:
        summary = Runner(stage, placement, options, env, progress).run(items)
    env.info(f"{stage.name}: {summary.describe()}")
    if output is not None and summary.error_status is not None:
        return summary.error_status  # single-file mode: the error's own status
    return summary.status


def _single(items):
    """-o FILE takes exactly one input."""
    items = list(items)
    if len(items) != 1:
        raise UsageError(f"-o FILE takes exactly one input, got {len(items)}",
                         hint="use --out-dir DIR for several inputs")
    return items
