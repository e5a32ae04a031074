"""`privspeech anonymize`: convert speech to keyed pseudo-speakers (WORLD) or the McAdams baseline."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import common


@common.handles_errors
def anonymize(
    paths: common.Inputs = None,
    key_file: common.KeyFile = None,
    method: Annotated[str, typer.Option(
        "--method", "-m", metavar="world|mcadams",
        help="WORLD voice conversion to a keyed pseudo-speaker, or the VoicePrivacy B2 McAdams baseline.")] = "world",
    level: Annotated[str, typer.Option(
        "--level", metavar="speaker|utterance",
        help="One pseudo-speaker per speaker (needs speaker ids), or a new one per recording.")] = "speaker",
    f0_method: Annotated[Optional[str], typer.Option(
        "--f0-method", metavar="dio|harvest", help="world: F0 estimator (harvest is more robust, ~10x slower).",
        show_default=False)] = None,
    intonation: Annotated[Optional[float], typer.Option(
        "--intonation", metavar="X", help="world: scale on the target's pitch spread (0 flattens) [default: 1].",
        show_default=False)] = None,
    keep_speaker_ids: Annotated[bool, typer.Option(
        "--keep-speaker-ids", help="Keep the records' speaker ids instead of replacing them by keyed pseudonyms.")]
        = False,
    out_dir: common.OutDir = None,
    output: common.Output = None,
    force: common.Force = False,
    emit_manifest: common.EmitManifest = False,
    jobs: common.Jobs = None,
    fail_fast: common.FailFast = False,
    skip_invalid: common.SkipInvalid = False,
    shard: common.Shard = None,
    quiet: common.Quiet = False,
):
    """Convert each recording's voice to a pseudo-speaker drawn from a secret key.

    The pseudo-speaker (pitch, vocal-tract length, timbre) is drawn with HMAC-SHA256 of the key and the
    speaker id (or, with --level utterance, the recording's id), so one speaker keeps one voice across
    recordings. Length, timing, intonation shape and loudness are kept. Each record's ops gain the method,
    level, settings, algorithm version and the key's fingerprint; never the key or the drawn voice. How well
    this hides the speaker is an empirical claim: measure it with privspeech evaluate.

    Example: privspeech scan calls/ --speaker-from dir | privspeech anonymize -k anon.key --out-dir anon/
    """
    import functools

    from .. import keys
    from ..console import Env
    from ..inputs import collect
    from ..pipeline import Stage
    from ..voice.stage import AnonymizeSettings, anonymize_record

    env = Env(quiet=quiet)
    options = tuple(sorted((name, value) for name, value in
                           (("f0_method", f0_method), ("intonation", intonation)) if value is not None))
    if options and method != "world":
        raise common.PrivspeechError(f"--{options[0][0].replace('_', '-')} applies to --method world only",
                                     status=common.ExitStatus.USAGE)
    if key_file is not None:
        key, warnings = keys.load_key_file(key_file)
        for message in warnings:
            env.warn(message)
    else:
        key = keys.ephemeral()
        env.warn("no --key-file: a fresh key is drawn for this run, so its outputs cannot be linked to any other "
                 "run's (create a reusable key with: privspeech keygen --anon -o anon.key)")
    settings = AnonymizeSettings(key=key, method=method, level=level, keep_speaker_ids=keep_speaker_ids,
                                 options=options)
    params = settings.params()  # validates method, level and settings before any input is read
    items = collect(paths or [], env, skip_invalid=skip_invalid)
    stage = Stage("anonymize", functools.partial(anonymize_record, settings=settings), suffix=".wav", params=params)
    return common.run(stage, paths, out_dir=out_dir, output=output, force=force, jobs=jobs, fail_fast=fail_fast,
                      quiet=quiet, shard=shard, emit_manifest=emit_manifest, items=items)
