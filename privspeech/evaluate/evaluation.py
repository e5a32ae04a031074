"""The whole evaluation: embeddings, the four attacks, utility figures, timings, as one report."""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import DataError, NotFound, UsageError
from ..executors import Progress, Sequential, reported
from ..keys import SecretKey, generate
from . import attacks, preservation
from .backend import LDA
from .embeddings import Embedder, resample
from .metrics import Labelled
from .pairs import Utterance, load


@dataclass(frozen=True)
class Settings:
    """What the evaluation does besides the attacks it always runs.

    Attributes
    ----------
    n_resamples, confidence, seed
        The speaker bootstrap (the seed makes the interval reproducible; it protects nothing).
    lda_dim : int, optional
        Back-end dimension (default: speakers - 1, at most 256).
    segment_s : float
        Cohort recordings are cut into segments this long, so one recording per speaker still gives the
        back-end several utterances per speaker.
    asr_model : str, optional
        faster-whisper model name or folder; None skips the transcript figures.
    pitch : bool
        Compare the pitch contours (harvest on both signals: about 0.2 CPU seconds per second of audio each).
    duration_tolerance_s : float
    """

    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    lda_dim: int | None = None
    segment_s: float = 4.0
    asr_model: str | None = None
    pitch: bool = True
    duration_tolerance_s: float = 0.02


@dataclass
class Report:
    """Every figure of one evaluation; ``to_dict()`` is the JSON report. `not_run` names each attack left out and
    why."""

    attacks: list[attacks.AttackResult]
    utility: dict[str, Any]
    counts: dict[str, int]
    settings: dict[str, Any]
    timings_s: dict[str, float]
    per_utterance: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)

    def attack(self, name: str) -> attacks.AttackResult:
        return next(a for a in self.attacks if a.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"attacks": [a.to_dict() for a in self.attacks], "utility": self.utility, "counts": self.counts,
                "settings": self.settings, "timings_s": self.timings_s, "per_utterance": self.per_utterance,
                "warnings": self.warnings, "not_run": self.not_run}


@dataclass
class OriginalMeasures:
    """Measurements of original recordings that no anonymization changes, by file: harvest F0 contours, and
    transcripts by (recognizer, file). Give one to several evaluations of the same recordings (other methods or
    keys) so that each original is analysed and transcribed once."""

    contours: dict[str, np.ndarray] = field(default_factory=dict)
    transcripts: dict[tuple[str, str], str] = field(default_factory=dict)


Signal = tuple[np.ndarray, int]


class _Clock:
    """Seconds spent per stage: ``with clock("embed"): ...``."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spent[name] = round(self.spent.get(name, 0.0) + time.perf_counter() - start, 3)


def _embed(embedder: Embedder, signals: Sequence[Signal], rows: Sequence[tuple[str, ...]]) -> Labelled:
    """Embeddings labelled by rows of (speaker, utterance id, gender[, group])."""
    vectors = np.stack([embedder.embed(y, sr=sr) for y, sr in signals])
    return Labelled.build(vectors, *zip(*rows))


def _segments(y: np.ndarray, sr: int, seconds: float) -> list[np.ndarray]:
    size = int(seconds * sr)
    count = max(1, len(y) // size)
    return [y[i * size:(i + 1) * size] if i < count - 1 else y[i * size:] for i in range(count)]


def _check(utterances: Sequence[Utterance], anonymizer, cohort: Sequence[Utterance]) -> None:
    if not utterances:
        raise NotFound("nothing to evaluate")
    if len({u.speaker for u in utterances}) < 2:
        raise DataError("the attacks need at least two speakers")
    if anonymizer is None and any(u.anonymized is None for u in utterances):
        raise UsageError("some utterances have no anonymized version and no anonymizer was given")
    overlap = {u.speaker for u in cohort} & {u.speaker for u in utterances}
    if overlap:
        raise UsageError(f"cohort speakers must differ from the evaluated ones (shared: {sorted(overlap)[:3]})")


def _each(name: str, fn: Callable, items: Sequence, progress: Progress) -> list:
    """fn over `items`, in order, reporting progress; one at a time, in this process, which holds the models."""
    return [value for _, value in reported(Sequential().map(fn, items), progress, name, len(items))]


def _audio(utterances, anonymizer, owner_key, attacker_key, clock, progress):
    """Originals, released versions (loaded, or anonymized here) and the attacker's own anonymized enrollment."""
    def one(u: Utterance) -> tuple[Signal, Signal, Signal | None]:
        with clock("load"):
            y, sr = load(u.original)
            if u.anonymized is not None:
                z, zsr = load(u.anonymized)
                released = resample(z, zsr, sr)
        with clock("anonymize"):
            if u.anonymized is None:
                released = anonymizer(y, sr=sr, key=owner_key, speaker=u.speaker, utterance=u.id)
            enroll = None
            if anonymizer is not None:
                enroll = (anonymizer(y, sr=sr, key=attacker_key, speaker=u.speaker, utterance=u.id), sr)
        return (y, sr), (released, sr), enroll

    originals, released, enroll = zip(*_each("audio", one, utterances, progress))
    return list(originals), list(released), [e for e in enroll if e is not None]


def _backend(cohort, anonymizer, attacker_key, embedder, settings, clock, progress) -> tuple[LDA, int]:
    """The semi-informed attacker's LDA, trained on cohort speech they anonymized with their own key."""
    def one(u: Utterance) -> list[Signal]:
        with clock("load"):
            y, sr = load(u.original)
        with clock("anonymize"):
            z = anonymizer(y, sr=sr, key=attacker_key, speaker=u.speaker, utterance=u.id)
        return [(segment, sr) for segment in _segments(z, sr, settings.segment_s)]

    signals, rows = [], []
    for u, segments in zip(cohort, _each("cohort", one, cohort, progress)):
        signals += segments
        rows += [(u.speaker, f"{u.id}#{j}", u.gender) for j in range(len(segments))]
    with clock("embed"):
        training = _embed(embedder, signals, rows)
    with clock("score"):
        return LDA.fit(training, dim=settings.lda_dim), len(signals)


def _pitch(utterances, originals, released, memo, clock, progress) -> list[preservation.PitchAgreement]:
    """Each released version's harvest F0 contour against its original's (the original's taken from `memo`)."""
    def one(job: tuple[Utterance, Signal, Signal]) -> preservation.PitchAgreement:
        u, (y, sr), (z, _) = job
        source = memo.contours.get(u.original)
        if source is None:
            source = memo.contours[u.original] = preservation.f0_contour(y, sr=sr)
        return preservation.compare_contours(source, preservation.f0_contour(z, sr=sr))

    with clock("pitch"):
        return _each("pitch", one, list(zip(utterances, originals, released)), progress)


def _transcribe(utterances, originals, released, transcriber, memo, clock, progress) -> list[tuple[str, str]]:
    """(original, released) transcripts of every utterance, the original's taken from `memo`."""
    def one(job: tuple[Utterance, Signal, Signal]) -> tuple[str, str]:
        u, (y, sr), (z, _) = job
        known = (transcriber.model_name, u.original)
        if known not in memo.transcripts:
            memo.transcripts[known] = transcriber.transcribe(y, sr=sr)
        return memo.transcripts[known], transcriber.transcribe(z, sr=sr)

    with clock("asr"):
        return _each("asr", one, list(zip(utterances, originals, released)), progress)


def _asr_figures(utterances, heard, disagreements) -> dict[str, Any]:
    """Word disagreement between the transcripts of original and anonymized speech (over all their words, and per
    utterance capped at 100 %), and WER of both against `text`. The transcripts stay out of the report: they are
    what was said."""
    from . import asr

    corpus, used = asr.word_error_rate([a for a, _ in heard], [b for _, b in heard])
    texts = [(u.text, a, b) for u, (a, b) in zip(utterances, heard) if u.text]
    wer_original, n_text = asr.word_error_rate([t[0] for t in texts], [t[1] for t in texts])
    wer_released, _ = asr.word_error_rate([t[0] for t in texts], [t[2] for t in texts])
    return {"word_disagreement": corpus, "disagreement_utterances": used,
            "per_utterance": preservation.summarize_disagreement(disagreements), "wer_original": wer_original,
            "wer_anonymized": wer_released, "reference_utterances": n_text}


def _figures(chosen, utterances, pitch, heard, disagreements) -> dict[str, Any]:
    """Pitch and word figures (those measured) over the utterances at the indices `chosen`."""
    figures: dict[str, Any] = {}
    if pitch is not None:
        figures["pitch"] = preservation.summarize_pitch([pitch[i] for i in chosen])
    if heard is not None:
        figures["asr"] = _asr_figures([utterances[i] for i in chosen], [heard[i] for i in chosen],
                                      [disagreements[i] for i in chosen])
    return figures


def _finite(value: float) -> float | None:
    return round(value, 4) if np.isfinite(value) else None


def _utility(utterances, originals, released, transcriber, memo, settings, clock, progress):
    """The utility figures, pooled and per group (when utterances have one), and the per-utterance rows."""
    pitch = _pitch(utterances, originals, released, memo, clock, progress) if settings.pitch else None
    heard = disagreements = None
    if transcriber is not None:
        from . import asr

        heard = _transcribe(utterances, originals, released, transcriber, memo, clock, progress)
        with clock("asr"):
            disagreements = [asr.word_error_rate([a], [b])[0] for a, b in heard]
    durations = ([len(y) / sr for y, sr in originals], [len(z) / sr for z, sr in released])
    figures = _figures(range(len(utterances)), utterances, pitch, heard, disagreements)
    figures["duration"] = preservation.duration_check(*durations, tolerance_s=settings.duration_tolerance_s)
    if heard is not None:
        figures["asr"] = {"model": transcriber.model_name, **figures["asr"]}
    groups: dict[str, list[int]] = {}
    for i, u in enumerate(utterances):
        if u.group:
            groups.setdefault(u.group, []).append(i)
    if groups:
        figures["by_group"] = {g: {"utterances": len(chosen), **_figures(chosen, utterances, pitch, heard,
                                                                        disagreements)}
                               for g, chosen in sorted(groups.items())}
    rows = [{"id": u.id, "speaker": u.speaker, "gender": u.gender, "group": u.group, "duration_diff_s": round(b - a, 4)}
            for u, a, b in zip(utterances, *durations)]
    for row, p in zip(rows, pitch or ()):
        row.update(pitch_correlation=_finite(p.correlation),
                   pitch_correlation_without_gross=_finite(p.correlation_without_gross),
                   pitch_gross_errors=p.gross_errors, pitch_frames=p.frames)
    for row, value in zip(rows, disagreements or ()):
        row["word_disagreement"] = None if value is None else round(value, 4)
    return figures, rows


def evaluate(utterances: Sequence[Utterance], *, anonymizer: attacks.Anonymizer | None = None,
             cohort: Sequence[Utterance] = (), key: SecretKey | None = None, settings: Settings = Settings(),
             progress: Progress | None = None, attacker_key: SecretKey | None = None,
             measured: OriginalMeasures | None = None) -> Report:
    """Run the attacks and utility measures over paired utterances.

    Parameters
    ----------
    utterances
        The evaluated recordings. Those without an ``anonymized`` path are anonymized here with
        `anonymizer` and `key` (a fresh key when None): the released set of this run.
    anonymizer
        The method under test, ``anonymize(y, *, sr, key, speaker, utterance)``. Without it only the
        reference and ignorant attacks run (plus utility).
    cohort
        Recordings of speakers disjoint from the evaluated ones (only their ``original`` and ``speaker``
        are used), anonymized with the attacker's key to train the semi-informed back-end.
    key
        The data owner's key for utterances anonymized here (a fresh key when None).
    attacker_key
        The informed attackers' own key (a fresh key when None); a fixed pair of keys makes two runs comparable.
    progress
        Called as ``progress(stage, done, total)``.
    measured
        Measurements of the originals kept from earlier evaluations of the same recordings; this one adds to it.
    """
    _check(utterances, anonymizer, cohort)
    progress = progress or (lambda *args: None)
    clock, warnings = _Clock(), []
    attacker_key = attacker_key or generate()
    rows = [(u.speaker, u.id, u.gender, u.group) for u in utterances]
    transcriber = None
    if settings.asr_model is not None:  # load first: a missing model fails in seconds, not after the attacks
        from . import asr

        with clock("asr"):
            transcriber = asr.Transcriber(settings.asr_model)
    originals, released, enroll = _audio(utterances, anonymizer, key or generate(), attacker_key, clock, progress)

    embedder = Embedder()
    with clock("embed"):
        original_set = _embed(embedder, originals, rows)
        released_set = _embed(embedder, released, rows)
        lazy_set = _embed(embedder, enroll, rows) if enroll else None
    options = dict(n_resamples=settings.n_resamples, confidence=settings.confidence, seed=settings.seed)
    with clock("score"):
        results = [attacks.attack("original", original_set, **options),
                   attacks.attack("ignorant", original_set, released_set, **options)]
        if lazy_set is not None:
            results.append(attacks.attack("lazy-informed", lazy_set, released_set, **options))
    cohort_counts, not_run = {"cohort_speakers": 0, "cohort_segments": 0}, {}
    if lazy_set is None:
        not_run = dict.fromkeys(("lazy-informed", "semi-informed"), "no anonymizer: the method is not known")
        if cohort:
            warnings.append("a cohort was given but no anonymizer: the semi-informed attack needs both")
    elif cohort:
        lda, segments = _backend(cohort, anonymizer, attacker_key, embedder, settings, clock, progress)
        with clock("score"):
            results.append(attacks.attack("semi-informed", lda.apply(lazy_set), lda.apply(released_set), **options))
        cohort_counts = {"cohort_speakers": len({u.speaker for u in cohort}), "cohort_segments": segments}
    else:
        not_run["semi-informed"] = "no cohort: its back-end is trained on other speakers"

    figures, per_utterance = _utility(utterances, originals, released, transcriber, measured or OriginalMeasures(),
                                      settings, clock, progress)
    counts = {"utterances": len(utterances), "speakers": len({u.speaker for u in utterances}),
              "audio_s": round(sum(len(y) / sr for y, sr in originals), 3),
              "anonymized_here": sum(u.anonymized is None for u in utterances), **cohort_counts}
    clock.spent["total_excluding_anonymize"] = round(sum(v for k, v in clock.spent.items() if k != "anonymize"), 3)
    described = {**asdict(settings), "anonymizer": attacks.describe(anonymizer)}
    return Report(results, figures, counts, described, clock.spent, per_utterance, warnings, not_run)
