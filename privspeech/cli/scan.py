"""`privspeech scan`: describe audio files as manifest records."""

from typing import Annotated, Optional

import typer

from ..console import Env
from ..errors import NotFound
from . import run as runs
from .command import command
from .options import Inputs, KeyFile, RunOptions, SpeakerFrom, record_stage


@command
@record_stage(writes=False)
def scan(
    env: Env,
    run: RunOptions,
    paths: Inputs = None,
    speaker_from: SpeakerFrom = None,
    retain: Annotated[Optional[str], typer.Option(
        "--retain", metavar="DURATION", help="Set expires_at this long after the scan (90d, 12h, P90D).")] = None,
    retain_from_mtime: Annotated[bool, typer.Option(
        "--retain-from-mtime", help="Count --retain from each file's modification time instead.")] = False,
    key_file: KeyFile = None,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Follow symbolic links.")] = False,
):
    """Walk files and folders for audio and print one manifest record per file.

    Each record has id, path, duration, sample rate, channels, sha256 and created_at. With --key-file it also
    carries a keyed HMAC of the original (never a bare hash), so later stages can prove provenance without
    revealing the source. Hidden and non-audio files are skipped with a count on stderr.

    Example: privspeech scan calls/ --retain 90d --speaker-from dir > calls/manifest.jsonl
    """
    from .. import keys
    from ..inputs import WalkStats, collect
    from ..stages import Stage
    from ..stages.scan import ScanSettings, SpeakerRule, scan_record
    from ..timeutil import parse_duration

    cluster = runs.cluster(run)
    key = None
    if key_file is not None:
        key = runs.secret(keys.load_key_file, str(key_file), env, remote=cluster is not None)
    settings = ScanSettings(speaker_from=SpeakerRule.parse(speaker_from) if speaker_from else None,
                            retain=parse_duration(retain) if retain else None,
                            retain_from_mtime=retain_from_mtime, key=key)
    stats = WalkStats()
    items = collect(paths or [], env, skip_invalid=run.skip_invalid, follow_symlinks=follow_symlinks, stats=stats)
    status = runs.run(Stage("scan", scan_record, settings, io_bound=True), env, run, items, cluster=cluster)
    if stats.summary():
        env.info(f"scan: {stats.summary()}")
    for root in stats.roots_without_audio:
        env.warn(f"{root}: no audio files found")
    if stats.items == 0 and status == 0:
        raise NotFound("no audio files found", hint="privspeech looks for .wav, .flac, .ogg and other "
                       "audio suffixes; hidden files are skipped")
    return status
