"""The whole evaluation: embeddings, the four attacks, utility figures, timings, as one report."""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ExitStatus, PrivspeechError
from ..keys import SecretKey, generate
from . import attacks, utility
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
    duration_tolerance_s : float
    """

    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    lda_dim: int | None = None
    segment_s: float = 4.0
    asr_model: str | None = None
    duration_tolerance_s: float = 0.02


@dataclass
class Report:
    """Every figure of one evaluation; ``to_dict()`` is the JSON report."""

    attacks: list[attacks.AttackResult]
    utility: dict[str, Any]
    counts: dict[str, int]
    settings: dict[str, Any]
    timings_s: dict[str, float]
    per_utterance: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def attack(self, name: str) -> attacks.AttackResult:
        return next(a for a in self.attacks if a.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"attacks": [a.to_dict() for a in self.attacks], "utility": self.utility, "counts": self.counts,
                "settings": self.settings, "timings_s": self.timings_s, "per_utterance": self.per_utterance,
                "warnings": self.warnings}


Progress = Callable[[str, int, int], Any]
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


def _embed(embedder: Embedder, signals: Sequence[Signal], rows: Sequence[tuple[str, str, str]]) -> Labelled:
    vectors = np.stack([embedder.embed(y, sr=sr) for y, sr in signals])
    return Labelled.build(vectors, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def _segments(y: np.ndarray, sr: int, seconds: float) -> list[np.ndarray]:
    size = int(seconds * sr)
    count = max(1, len(y) // size)
    return [y[i * size:(i + 1) * size] if i < count - 1 else y[i * size:] for i in range(count)]


def _check(utterances: Sequence[Utterance], anonymizer, cohort: Sequence[Utterance]) -> None:
    if not utterances:
        raise PrivspeechError("nothing to evaluate", status=ExitStatus.NOINPUT)
    if len({u.speaker for u in utterances}) < 2:
        raise PrivspeechError("the attacks need at least two speakers", status=ExitStatus.DATAERR)
    if anonymizer is None and any(u.anonymized is None for u in utterances):
        raise PrivspeechError("some utterances have no anonymized version and no anonymizer was given",
                              status=ExitStatus.USAGE)
    overlap = {u.speaker for u in cohort} & {u.speaker for u in utterances}
    if overlap:
        raise PrivspeechError(f"cohort speakers must differ from the evaluated ones (shared: {sorted(overlap)[:3]})",
                              status=ExitStatus.USAGE)


def _audio(utterances, anonymizer, owner_key, attacker_key, clock, progress):
    """Originals, released versions (loaded, or anonymized here) and the attacker's own anonymized enrollment."""
    originals, released, enroll = [], [], []
    for i, u in enumerate(utterances):
        with clock("load"):
            y, sr = load(u.original)
            originals.append((y, sr))
            if u.anonymized is not None:
                z, zsr = load(u.anonymized)
                released.append((resample(z, zsr, sr), sr))
        with clock("anonymize"):
            if u.anonymized is None:
                released.append((anonymizer(y, sr=sr, key=owner_key, speaker=u.speaker, utterance=u.id), sr))
            if anonymizer is not None:
                enroll.append((anonymizer(y, sr=sr, key=attacker_key, speaker=u.speaker, utterance=u.id), sr))
        progress("audio", i + 1, len(utterances))
    return originals, released, enroll


def _backend(cohort, anonymizer, attacker_key, embedder, settings, clock, progress) -> tuple[LDA, int]:
    """The semi-informed attacker's LDA, trained on cohort speech they anonymized with their own key."""
    signals, rows = [], []
    for i, u in enumerate(cohort):
        with clock("load"):
            y, sr = load(u.original)
        with clock("anonymize"):
            z = anonymizer(y, sr=sr, key=attacker_key, speaker=u.speaker, utterance=u.id)
        for j, segment in enumerate(_segments(z, sr, settings.segment_s)):
            signals.append((segment, sr))
            rows.append((u.speaker, f"{u.id}#{j}", u.gender))
        progress("cohort", i + 1, len(cohort))
    with clock("embed"):
        training = _embed(embedder, signals, rows)
    with clock("score"):
        return LDA.fit(training, dim=settings.lda_dim), len(signals)


def _utility(utterances, originals, released, settings, clock, progress):
    """Pitch-contour and duration figures, and the per-utterance rows of the report."""
    with clock("pitch"):
        pitch = []
        for i, ((y, sr), (z, _)) in enumerate(zip(originals, released)):
            pitch.append(utility.pitch_correlation(y, z, sr=sr))
            progress("pitch", i + 1, len(utterances))
    durations = ([len(y) / sr for y, sr in originals], [len(z) / sr for z, sr in released])
    figures: dict[str, Any] = {
        "pitch_correlation": utility.summarize(pitch),
        "duration": utility.duration_check(*durations, tolerance_s=settings.duration_tolerance_s)}
    rows = [{"id": u.id, "speaker": u.speaker, "gender": u.gender,
             "pitch_correlation": round(p, 4) if np.isfinite(p) else None, "duration_diff_s": round(b - a, 4)}
            for u, p, a, b in zip(utterances, pitch, *durations)]
    return figures, rows


def _transcripts(utterances, originals, released, transcriber, rows, clock, progress) -> dict[str, Any]:
    """Word disagreement between transcripts of original and anonymized speech, and WER against `text`.

    The transcripts themselves stay out of the report: they are what was said.
    """
    from . import asr

    with clock("asr"):
        heard_original, heard_released = [], []
        for i, ((y, sr), (z, _)) in enumerate(zip(originals, released)):
            heard_original.append(transcriber.transcribe(y, sr=sr))
            heard_released.append(transcriber.transcribe(z, sr=sr))
            progress("asr", i + 1, len(utterances))
        disagreement, used = asr.word_error_rate(heard_original, heard_released)
        texts = [(u.text, a, b) for u, a, b in zip(utterances, heard_original, heard_released) if u.text]
        wer_original, n_text = asr.word_error_rate([t[0] for t in texts], [t[1] for t in texts])
        wer_released, _ = asr.word_error_rate([t[0] for t in texts], [t[2] for t in texts])
        for row, a, b in zip(rows, heard_original, heard_released):
            row["word_disagreement"] = asr.word_error_rate([a], [b])[0]
    return {"model": transcriber.model_name, "word_disagreement": disagreement, "disagreement_utterances": used,
            "wer_original": wer_original, "wer_anonymized": wer_released, "reference_utterances": n_text}


def evaluate(utterances: Sequence[Utterance], *, anonymizer: attacks.Anonymizer | None = None,
             cohort: Sequence[Utterance] = (), key: SecretKey | None = None, settings: Settings = Settings(),
             progress: Progress | None = None, attacker_key: SecretKey | None = None) -> Report:
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
    """
    _check(utterances, anonymizer, cohort)
    progress = progress or (lambda *args: None)
    clock, warnings = _Clock(), []
    attacker_key = attacker_key or generate()
    rows = [(u.speaker, u.id, u.gender) for u in utterances]
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
    cohort_counts = {"cohort_speakers": 0, "cohort_segments": 0}
    if cohort and lazy_set is not None:
        lda, segments = _backend(cohort, anonymizer, attacker_key, embedder, settings, clock, progress)
        with clock("score"):
            results.append(attacks.attack("semi-informed", lda.apply(lazy_set), lda.apply(released_set), **options))
        cohort_counts = {"cohort_speakers": len({u.speaker for u in cohort}), "cohort_segments": segments}
    elif cohort:
        warnings.append("a cohort was given but no anonymizer: the semi-informed attack needs both")

    figures, per_utterance = _utility(utterances, originals, released, settings, clock, progress)
    if transcriber is not None:
        figures["asr"] = _transcripts(utterances, originals, released, transcriber, per_utterance, clock, progress)
    counts = {"utterances": len(utterances), "speakers": len({u.speaker for u in utterances}),
              "audio_s": round(sum(len(y) / sr for y, sr in originals), 3),
              "anonymized_here": sum(u.anonymized is None for u in utterances), **cohort_counts}
    clock.spent["total_excluding_anonymize"] = round(sum(v for k, v in clock.spent.items() if k != "anonymize"), 3)
    described = {**asdict(settings), "anonymizer": attacks.describe(anonymizer)}
    return Report(results, figures, counts, described, clock.spent, per_utterance, warnings)
