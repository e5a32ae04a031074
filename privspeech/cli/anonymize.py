"""`privspeech anonymize`: convert speech to keyed pseudo-speakers (WORLD) or the McAdams baseline."""

from typing import Annotated, Optional

import typer

from ..console import Env
from ..errors import UsageError
from . import run as runs
from .command import command
from .noise import MaxEpsilon, Seed
from .options import Inputs, KeyFile, RunOptions, SpeakerFrom, choice, record_stage


@command
@record_stage()
def anonymize(
    env: Env,
    run: RunOptions,
    paths: Inputs = None,
    key_file: KeyFile = None,
    method: Annotated[str, choice(
        "--method", "-m", metavar="world|mcadams|revoice",
        help="WORLD voice conversion to a keyed pseudo-speaker, the VoicePrivacy B2 McAdams baseline, or revoice: "
             "the words recognised and spoken again by a keyed synthetic voice (English; the revoice extra and "
             "espeak-ng).")] = "world",
    level: Annotated[str, choice(
        "--level", metavar="speaker|utterance",
        help="One pseudo-speaker per speaker (needs speaker ids), or a new one per recording.")] = "speaker",
    strength: Annotated[Optional[str], choice(
        "--strength", metavar="light|balanced|strong",
        help="world: the trade-off preset: light keeps the most words, strong hides the speaker best (measured "
             "figures of each in the README) [default: balanced].", show_default=False)] = None,
    f0_method: Annotated[Optional[str], choice(
        "--f0-method", metavar="dio|harvest|rapt",
        help="world: F0 estimator: rapt (Talkin's RAPT, SPTK's; robust in noise, reverberation and telephone "
             "audio), dio (as fast, more octave and voicing errors) or harvest (robust, ~5x the time) "
             "[default: rapt].",
        show_default=False)] = None,
    intonation: Annotated[Optional[float], typer.Option(
        "--intonation", metavar="X", help="world: scale on the target's pitch spread (0 flattens) [default: 1].",
        show_default=False)] = None,
    dp_epsilon: Annotated[Optional[float], typer.Option(
        "--dp-epsilon", metavar="EPS",
        help="world: release the intonation contour under EPS-differential privacy per utterance (local DP, "
             "lattice Laplace on a few clipped contour coefficients per second); covers the intonation only, "
             "not duration, timing, the voiced/unvoiced pattern or the converted voice. Adds a ledger entry.",
        show_default=False)] = None,
    max_epsilon: MaxEpsilon = None,
    seed: Seed = None,
    speaker_from: SpeakerFrom = None,
    keep_speaker_ids: Annotated[bool, typer.Option(
        "--keep-speaker-ids", help="Keep the records' speaker ids instead of replacing them by keyed pseudonyms.")]
        = False,
):
    """Convert each recording's voice to a pseudo-speaker drawn from a secret key.

    The pseudo-speaker (pitch, vocal-tract length, timbre) is drawn with HMAC-SHA256 of the key and the
    speaker id (or, with --level utterance, the recording's id), so one speaker keeps one voice across
    recordings. Length, timing, intonation shape and loudness are kept. Each record's ops gain the method,
    level, settings, algorithm version and the key's fingerprint; never the key or the drawn voice. How well
    this hides the speaker is an empirical claim: measure it with privspeech evaluate.

    With --dp-epsilon the pitch contour of the output is a differentially private release of the source's
    (unit: one utterance; a long file processed in segments, and every channel, share that one epsilon).
    Each record's ops also gain a DP ledger entry. privspeech budget adds up the releases on one source
    recording (two runs on one recording cost twice, whatever pseudonyms they drew) and reports a speaker's
    largest recording total: a guarantee for one utterance, not for all of a speaker's recordings together.
    With --max-epsilon a run that would take any speaker's unit-utterance total past the budget is refused
    (exit 65) before any output. With a persistent key, each record also keeps a keyed pseudonym of its
    source speaker (privspeech.source.speaker) that the ledger is kept by.

    Example: privspeech anonymize calls/ --speaker-from dir -k anon.key --out-dir anon/ > anon/manifest.jsonl
    """
    import dataclasses

    from .. import keys
    from ..inputs import collect
    from ..stages import WAV, Stage
    from ..stages.anonymize import AnonymizeSettings, anonymize_record
    from ..stages.scan import SpeakerRule

    cluster = runs.cluster(run)
    options = tuple(sorted((name, value) for name, value in
                           (("strength", strength), ("f0_method", f0_method), ("intonation", intonation))
                           if value is not None))
    world_only = [name for name, _ in options] + ["dp_epsilon"] * (dp_epsilon is not None)
    if world_only and method != "world":
        raise UsageError(f"--{world_only[0].replace('_', '-')} applies to --method world only")
    for name, value in (("max_epsilon", max_epsilon), ("seed", seed)):
        if value is not None and dp_epsilon is None:
            raise UsageError(f"--{name.replace('_', '-')} applies with --dp-epsilon only")
    dp = None
    if dp_epsilon is not None:
        from ..voice.dp_intonation import DPSettings

        dp = DPSettings(epsilon=dp_epsilon)
    if key_file is not None:
        key = runs.secret(keys.load_key_file, str(key_file), env, remote=cluster is not None)
    elif cluster is not None:
        raise UsageError("--scheduler needs --key-file: a key drawn for this run would have to travel to "
                         "the workers", hint="create a key with: privspeech keygen --anon -o anon.key")
    else:
        key = keys.ephemeral()
        env.warn("no --key-file: a fresh key is drawn for this run, so its outputs cannot be linked to any other "
                 "run's (create a reusable key with: privspeech keygen --anon -o anon.key)")
    settings = AnonymizeSettings(key=key, method=method, level=level, keep_speaker_ids=keep_speaker_ids,
                                 options=options, dp=dp, seed=seed)  # checks them before any input is read
    rule = SpeakerRule.parse(speaker_from) if speaker_from else None
    items = (dataclasses.replace(item, record=rule.fill(item.record)) if rule else item
             for item in collect(paths or [], env, skip_invalid=run.skip_invalid))
    if level == "speaker":
        items = _note_unnamed_speakers(items, env)
    if dp is not None:
        from ..dp import accounting
        from ..dp.guarantee import describe
        from ..dp.mechanisms import REPORT_DELTA

        entry = dp.summary(private=seed is None)
        if max_epsilon is not None:
            items = list(items)
            accounting.Ledger(item.record for item in items).check_run(
                entry, max_epsilon=max_epsilon, delta=REPORT_DELTA,
                hint="lower --dp-epsilon, or leave this speaker's records out")
        if seed is not None:
            runs.warn_seeded(env, "DP noise")
        env.info(describe(entry))
    return runs.run(Stage("anonymize", anonymize_record, settings, naming=WAV), env, run, items, cluster=cluster)


def _note_unnamed_speakers(items, env):
    """Pass `items` through, saying once that records without a speaker are each their own speaker."""
    noted = False
    for item in items:
        if not noted and not item.record.speaker:
            noted = True
            name = "stdin" if item.record.audio_filepath == "-" else item.record.audio_filepath
            env.info(f"{name}: no speaker id, so each such recording is its own speaker (name "
                     f"speakers with --speaker-from dir|regex:PATTERN, here or in privspeech scan)")
        yield item
