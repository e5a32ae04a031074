"""Speaker-verification attacks on anonymized speech and how their results are scored.

- reference: original enrollment, original trials (how well the encoder tells these speakers apart);
- ignorant: original enrollment, released anonymized trials;
- lazy-informed: the attacker anonymizes the enrollment with the same method and settings but a key of
  their own; trials are the released anonymized audio;
- semi-informed: lazy-informed scored through a back-end trained on attacker-anonymized speech of other
  speakers (:mod:`privspeech.evaluate.backend`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import DataError, UsageError
from ..manifest import Record
from . import metrics
from .metrics import Labelled

Anonymizer = Callable[..., np.ndarray]
"""``anonymize(y, *, sr, key, speaker, utterance) -> np.ndarray`` of the same shape."""

DET_POINTS = 200


def voice_anonymizer(method: str = "world", level: str = "speaker", *, dp_epsilon: float | None = None,
                     dp: dict[str, Any] | None = None, **settings: Any) -> Anonymizer:
    """privspeech's own anonymization with a fixed method, level and settings; the key is given per call.

    With `dp_epsilon`, the intonation is also released under DP as ``anonymize --dp-epsilon`` does (`dp`:
    further :class:`privspeech.voice.dp_intonation.DPSettings`), each call drawing fresh noise.
    """
    from .. import voice

    voice.describe(method, level, **settings)  # validates before any audio is processed
    if dp_epsilon is None:
        return functools.partial(voice.anonymize, method=method, level=level, **settings)
    from ..voice.dp_intonation import DPSettings

    if method != "world":
        raise UsageError(f"DP intonation needs --method world, not {method}")
    DPSettings(epsilon=dp_epsilon, **(dp or {}))
    return functools.partial(_anonymize_dp, method=method, epsilon=dp_epsilon, level=level, dp=dp, **settings)


def _anonymize_dp(y: np.ndarray, *, method: str, **kwargs: Any) -> np.ndarray:
    """`method` is always world: it is a keyword so that :func:`describe` names it."""
    from ..voice.dp_intonation import anonymize_dp

    return anonymize_dp(y, **kwargs)[0]


def world_resynthesis(y: np.ndarray, *, sr: int, f0_method: str = "dio", key: Any = None, speaker: str | None = None,
                      utterance: str | None = None) -> np.ndarray:
    """WORLD analysis and synthesis with nothing converted: the reference for what the analysis alone costs.

    `y` is mono, shape (n,). The analysis is the `world` method's with its default settings but `f0_method`; the
    output is level-matched on active speech and peak-limited as ``anonymize``'s is, and has the input's length.
    The whole signal is analysed in one pass (``anonymize`` works in 30 s segments). The key and ids are accepted
    and ignored, so this is an :data:`Anonymizer` (``functools.partial(world_resynthesis, f0_method="harvest")``).
    """
    from ..voice.loudness import limit_peaks, match_gain
    from ..voice.world import MIN_SECONDS, WorldSettings, analyse
    from ..voice.worldlib import pyworld

    settings = WorldSettings(f0_method=f0_method)
    x = np.zeros(max(len(y), int(MIN_SECONDS * sr)))
    x[:len(y)] = y
    params = analyse(x, sr=sr, settings=settings)
    z = pyworld.synthesize(params.f0, params.sp, params.ap, sr, settings.frame_period)
    out = np.zeros(len(y))
    out[:min(len(y), len(z))] = z[:len(y)]
    return limit_peaks(out * match_gain(y, out, sr=sr), sr=sr, ceiling=max(1.0, float(np.abs(y).max(initial=0.0))))


DP_SETTINGS = ("segment_seconds", "n_coeffs", "clip_octaves", "grid_bits")


def _configuration(record: Record) -> tuple:
    """Method, level, settings and DP intonation release of a record's last ``anonymize`` op."""
    ops = record.privspeech.ops
    last = max((i for i, op in enumerate(ops) if op.get("op") == "anonymize"), default=None)
    if last is None:
        raise DataError(f"{record.audio_filepath}: no 'anonymize' entry in its privspeech.ops",
                        hint="informed attacks need to know how the audio was anonymized")
    op = ops[last]
    dp = next((o for o in ops[last + 1:] if o.get("op") == "dp-intonation"), None)
    dp_config = None if dp is None else (dp.get("epsilon"), tuple((k, (dp.get("params") or {}).get(k))
                                                                   for k in DP_SETTINGS))
    return op.get("method"), op.get("level"), tuple(sorted((op.get("settings") or {}).items())), dp_config


def anonymizer_from_records(records: Iterable[Record]) -> Anonymizer:
    """The anonymizer an anonymized manifest was made with, read from its last ``anonymize`` op and the
    ``dp-intonation`` op after it, if any.

    Every record must name the same method, level, settings and DP release; the key is never in the manifest,
    which is exactly the lazy-informed attacker's position.
    """
    configs = {_configuration(record) for record in records}
    if len(configs) != 1:
        raise DataError("the anonymized records were made with different settings (or there are none)",
                        hint="evaluate one anonymization configuration at a time")
    method, level, settings, dp = configs.pop()
    if dp is None:
        return voice_anonymizer(method, level, **dict(settings))
    epsilon, dp_settings = dp
    return voice_anonymizer(method, level, dp_epsilon=epsilon, dp=dict(dp_settings), **dict(settings))


def describe(anonymizer: Anonymizer | None) -> dict[str, Any] | None:
    """The non-secret configuration of an anonymizer, for the report."""
    if anonymizer is None:
        return None
    if isinstance(anonymizer, functools.partial):
        return {"function": f"{anonymizer.func.__module__}.{anonymizer.func.__qualname__}", **anonymizer.keywords}
    return {"function": f"{getattr(anonymizer, '__module__', '?')}.{getattr(anonymizer, '__qualname__', '?')}"}


@dataclass
class Score:
    """One attack's EER with its speaker-bootstrap interval and trial counts."""

    eer: float
    ci_low: float | None  # None below MIN_INTERVAL_SPEAKERS
    ci_high: float | None
    n_target: int
    n_nontarget: int
    n_speakers: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class AttackResult:
    """An attack's overall score, its DET curve, and its score per gender and per group (trials within one)."""

    name: str
    score: Score
    far: np.ndarray
    frr: np.ndarray
    by_gender: dict[str, Score] = field(default_factory=dict)
    by_group: dict[str, Score] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        keep = np.unique(np.round(np.linspace(0, len(self.far) - 1, DET_POINTS)).astype(int))
        return {"name": self.name, **self.score.to_dict(),
                "by_gender": {g: s.to_dict() for g, s in self.by_gender.items()},
                "by_group": {g: s.to_dict() for g, s in self.by_group.items()},
                "det": {"far": np.round(self.far[keep], 6).tolist(), "frr": np.round(self.frr[keep], 6).tolist()}}


# With two speakers every resample that has both trial kinds is the sample itself, so a bootstrap "interval" would
# be a point: no interval is given below three.
MIN_INTERVAL_SPEAKERS = 3


def _score(trials: metrics.Trials, *, n_resamples: int, confidence: float, seed: int) -> Score:
    speakers = np.unique(np.concatenate((trials.enroll_speakers, trials.test_speakers)))
    low = high = None
    if len(speakers) >= MIN_INTERVAL_SPEAKERS:
        low, high, _ = metrics.bootstrap_eer(trials, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return Score(metrics.eer(trials.scores, trials.target), low, high, trials.n_target, trials.n_nontarget,
                 len(speakers))


def scores_by(label: Callable[[Labelled], np.ndarray], enroll: Labelled, test: Labelled | None = None, *,
              n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, Score]:
    """The attack scored separately on the trials within each value of a label (both sides carrying it).

    `label` gives a set's labels, e.g. ``lambda s: s.genders``; '' (unknown) is never scored, nor is a value whose
    trials lack target or non-target pairs.
    """
    out = {}
    for value in sorted(set(label(enroll)) - {""}):
        sub_enroll = enroll.subset(label(enroll) == value)
        sub_test = None if test is None else test.subset(label(test) == value)
        sub = metrics.make_trials(sub_enroll, sub_test)
        if sub.target.any() and not sub.target.all():
            out[value] = _score(sub, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return out


def attack(name: str, enroll: Labelled, test: Labelled | None = None, *, n_resamples: int = 1000,
           confidence: float = 0.95, seed: int = 0) -> AttackResult:
    """Score one attack: trials between `enroll` and `test` (or within `enroll`), overall, per gender (same-gender
    trials) and per group (trials within a group): see :func:`scores_by`."""
    options = dict(n_resamples=n_resamples, confidence=confidence, seed=seed)
    trials = metrics.make_trials(enroll, test)
    far, frr = metrics.det_curve(trials.scores, trials.target)
    return AttackResult(name, _score(trials, **options), far, frr,
                        by_gender=scores_by(lambda s: s.genders, enroll, test, **options),
                        by_group=scores_by(lambda s: s.groups, enroll, test, **options))
