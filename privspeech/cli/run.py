"""A record stage's run from the command line: its options checked, secrets loaded for here or for a cluster, the
runner called with the progress bars."""

from pathlib import Path

from ..errors import UsageError
from .options import RunOptions


def cluster(run: RunOptions):
    """The Dask cluster --scheduler names (its options checked), or None to run on this machine."""
    if not run.scheduler:
        if run.tls_ca_file or run.tls_cert or run.tls_key:
            raise UsageError("--tls-ca-file, --tls-cert and --tls-key apply with --scheduler")
        return None
    from ..executors_dask import Cluster

    found = Cluster(run.scheduler, workers=run.jobs, tls_ca_file=run.tls_ca_file and str(run.tls_ca_file),
                    tls_cert=run.tls_cert and str(run.tls_cert), tls_key=run.tls_key and str(run.tls_key))
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


def warn_seeded(env, what: str) -> None:
    """The warning every --seed gets."""
    env.warn(f"--seed makes the {what} reproducible: the output is NOT PRIVATE (for tests only)")


def run(stage, env, run: RunOptions, items, *, cluster=None) -> int:
    """Run `stage` over `items` (on `cluster`, if given) with the run's options; returns the exit status."""
    from ..pipeline import Runner, Execution, default_jobs, parse_shard
    from ..placement import Placement
    from .progress import Bars

    if stage.naming is not None:
        if run.out_dir is not None and run.output is not None:
            raise UsageError("--out-dir and --output exclude each other")
        if run.out_dir is None and run.output is None:
            raise UsageError("no output given", hint="write to a folder with --out-dir DIR or one file with -o FILE")
        if run.output == "-" and run.emit_manifest:
            raise UsageError("-o - puts audio on stdout, so no manifest can go there")
    warning = cluster.warning() if cluster is not None else None
    if warning:
        env.warn(warning)
    if run.output is not None:
        items = _single(items)
    placement = Placement(out_dir=Path(run.out_dir) if run.out_dir is not None else None, out_file=run.output,
                          force=run.force, emit_manifest=run.output is None or run.emit_manifest)
    settings = Execution(jobs=run.jobs or default_jobs(), fail_fast=run.fail_fast,
                           shard=parse_shard(run.shard) if run.shard else None, cluster=cluster)
    if run.output is not None:
        settings = Execution(jobs=1, fail_fast=True, cluster=cluster)
    with Bars(env) as progress:
        summary = Runner(stage, placement, settings, env, progress).run(items)
    env.info(f"{stage.name}: {summary.describe()}")
    if run.output is not None and summary.error_status is not None:
        return summary.error_status  # single-file mode: the error's own status
    return summary.status


def _single(items):
    """-o FILE takes exactly one input."""
    items = list(items)
    if len(items) != 1:
        raise UsageError(f"-o FILE takes exactly one input, got {len(items)}",
                         hint="use --out-dir DIR for several inputs")
    return items
