"""`privspeech scan`: describe audio files as manifest records."""

from typing import Annotated, Optional

import typer

from ..errors import NotFound
from . import common


@common.handles_errors
def scan(
    paths: common.Inputs = None,
    speaker_from: common.SpeakerFrom = None,
    retain: Annotated[Optional[str], typer.Option(
        "--retain", metavar="DURATION", help="Set expires_at this long after the scan (90d, 12h, P90D).")] = None,
    retain_from_mtime: Annotated[bool, typer.Option(
        "--retain-from-mtime", help="Count --retain from each file's modification time instead.")] = False,
    key_file: common.KeyFile = None,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Follow symbolic links.")] = False,
    jobs: common.Jobs = None,
    fail_fast: common.FailFast = False,
    skip_invalid: common.SkipInvalid = False,
    shard: common.Shard = None,
    quiet: common.Quiet = False,
    scheduler: common.Scheduler = None,
    tls_ca_file: common.TlsCaFile = None,
    tls_cert: common.TlsCert = None,
    tls_key: common.TlsKey = None,
):
    """Walk files and folders for audio and print one manifest record per file.

    Each record has id, path, duration, sample rate, channels, sha256 and created_at. With --key-file it also
    carries a keyed HMAC of the original (never a bare hash), so later stages can prove provenance without
    revealing the source. Hidden and non-audio files are skipped with a count on stderr.

    Example: privspeech scan calls/ --retain 90d --speaker-from dir > calls/manifest.jsonl
    """
    import functools

    from .. import keys
    from ..console import Env
    from ..inputs import WalkStats, collect
    from ..task import Stage
    from ..scan import ScanSettings, SpeakerRule, scan_record
    from ..timeutil import parse_duration

    env = Env(quiet=quiet)
    cluster = common.cluster(scheduler, jobs, tls_ca_file, tls_cert, tls_key)
    key = None
    if key_file is not None:
        key = common.secret(keys.load_key_file, str(key_file), env, remote=cluster is not None)
    settings = ScanSettings(speaker_from=SpeakerRule.parse(speaker_from) if speaker_from else None,
                            retain=parse_duration(retain) if retain else None,
                            retain_from_mtime=retain_from_mtime, key=key)
    stats = WalkStats()
    items = collect(paths or [], env, skip_invalid=skip_invalid, follow_symlinks=follow_symlinks, stats=stats)
    stage = Stage("scan", functools.partial(scan_record, settings=settings), io_bound=True)
    status = common.run(stage, paths, jobs=jobs, fail_fast=fail_fast, quiet=quiet, shard=shard, items=items,
                        cluster=cluster)
    if stats.summary():
        env.info(f"scan: {stats.summary()}")
    for root in stats.roots_without_audio:
        env.warn(f"{root}: no audio files found")
    if stats.items == 0 and status == 0:
        raise NotFound("no audio files found", hint="privspeech looks for .wav, .flac, .ogg and other "
                       "audio suffixes; hidden files are skipped")
    return status
