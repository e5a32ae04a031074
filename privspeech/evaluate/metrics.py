"""Verification trials from labelled embeddings, cosine scoring, EER, DET points and a bootstrap over speakers.

No model is needed to score or measure: numpy, and scikit-learn's ``det_curve`` for the operating points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import DataError, UsageError
from .deps import need


@dataclass(frozen=True)
class Labelled:
    """Embeddings with their labels.

    Attributes
    ----------
    vectors : np.ndarray, shape (n, d)
    speakers : np.ndarray of str, shape (n,)
    utterances : np.ndarray of str, shape (n,)
        Utterance ids; an utterance is never trialled against itself (or its own anonymized version).
    genders : np.ndarray of str, shape (n,)
        'F', 'M' or '' when unknown.
    groups : np.ndarray of str, shape (n,)
        Any other label the trials are also scored by (e.g. a benchmark's slice), '' when none.
    """

    vectors: np.ndarray
    speakers: np.ndarray
    utterances: np.ndarray
    genders: np.ndarray
    groups: np.ndarray

    @classmethod
    def build(cls, vectors, speakers, utterances, genders=None, groups=None) -> "Labelled":
        vectors = np.asarray(vectors, dtype=np.float64)
        n = len(vectors)
        if vectors.ndim != 2:
            raise DataError(f"embeddings must have shape (n, d), got {vectors.shape}")
        genders = [""] * n if genders is None else genders
        groups = [""] * n if groups is None else groups
        labels = [np.asarray(list(x), dtype=str) for x in (speakers, utterances, genders, groups)]
        if any(len(x) != n for x in labels):
            raise DataError("embeddings and labels differ in length")
        return cls(vectors, *labels)

    def __len__(self) -> int:
        return len(self.vectors)

    def subset(self, mask: np.ndarray) -> "Labelled":
        return Labelled(self.vectors[mask], self.speakers[mask], self.utterances[mask], self.genders[mask],
                        self.groups[mask])

    def with_vectors(self, vectors: np.ndarray) -> "Labelled":
        return replace(self, vectors=np.asarray(vectors, dtype=np.float64))


@dataclass(frozen=True)
class Trials:
    """Scored verification trials: shape (m,) arrays of score, target flag and the two speakers."""

    scores: np.ndarray
    target: np.ndarray
    enroll_speakers: np.ndarray
    test_speakers: np.ndarray

    @property
    def n_target(self) -> int:
        return int(self.target.sum())

    @property
    def n_nontarget(self) -> int:
        return int((~self.target).sum())


def length_norm(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, shape (n, d)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def make_trials(enroll: Labelled, test: Labelled | None = None) -> Trials:
    """Cosine-scored trials.

    With one set, every unordered pair of distinct utterances (the original-vs-original reference). With two
    sets, every (enroll, test) pair whose utterance ids differ. Same speaker means a target trial.
    """
    if test is None:
        rows, cols = np.triu_indices(len(enroll), 1)
        test = enroll
    else:
        rows, cols = np.nonzero(enroll.utterances[:, None] != test.utterances[None, :])
    if enroll.vectors.shape[1:] != test.vectors.shape[1:]:
        raise DataError("enrollment and test embeddings differ in dimension")
    scores = np.einsum("ij,ij->i", length_norm(enroll.vectors)[rows], length_norm(test.vectors)[cols])
    return Trials(scores, enroll.speakers[rows] == test.speakers[cols], enroll.speakers[rows], test.speakers[cols])


def _check(scores: np.ndarray, target: np.ndarray) -> None:
    if scores.shape != target.shape or scores.ndim != 1:
        raise DataError("scores and target flags must be 1-D arrays of one length")
    if not np.isfinite(scores).all():
        raise DataError("scores must be finite")
    if target.all() or not target.any():
        raise DataError("an error rate needs both target and non-target trials",
                        hint="evaluate at least two speakers, one with two or more utterances")


def _det(scores: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None):
    far, frr, _ = need("sklearn.metrics").det_curve(target, scores, sample_weight=weights)
    return far, frr


def _crossing(far: np.ndarray, frr: np.ndarray) -> float:
    """EER by linear interpolation between the two operating points where FRR - FAR changes sign."""
    diff = frr - far  # rises to >= 0: the first point has FRR 0, the last FAR 0
    k = int(np.argmax(diff >= 0))
    if k == 0 or diff[k] == 0:
        return float(frr[k])
    alpha = -diff[k - 1] / (diff[k] - diff[k - 1])
    return float(frr[k - 1] + alpha * (frr[k] - frr[k - 1]))


def eer(scores: np.ndarray, target: np.ndarray, *, weights: np.ndarray | None = None) -> float:
    """Equal error rate, exact up to linear interpolation on the ROC.

    Parameters
    ----------
    scores : np.ndarray, shape (m,)
        Higher means more likely the same speaker.
    target : np.ndarray of bool, shape (m,)
    weights : np.ndarray, shape (m,), optional
        Non-negative trial multiplicities (the speaker bootstrap uses them).

    Returns
    -------
    float
        In [0, 1].
    """
    scores, target = np.asarray(scores, dtype=np.float64), np.asarray(target, dtype=bool)
    _check(scores, target)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != scores.shape or not (weights >= 0).all() or not (
                weights[target].any() and weights[~target].any()):
            raise DataError("weights must be non-negative, one per trial, and give both target and "
                            "non-target trials some weight")
    return _crossing(*_det(scores, target, weights))


def det_curve(scores: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Operating points at each distinct threshold (scikit-learn's ``det_curve``), from the highest threshold with
    no false rejection to the lowest with no false acceptance: the points a DET plot can show.

    Returns
    -------
    far, frr : np.ndarray, shape (k,)
        False-acceptance rates (non-increasing) and false-rejection rates (non-decreasing).
    """
    scores, target = np.asarray(scores, dtype=np.float64), np.asarray(target, dtype=bool)
    _check(scores, target)
    return _det(scores, target)


def bootstrap_eer(trials: Trials, *, n_resamples: int = 1000, confidence: float = 0.95,
                  seed: int = 0) -> tuple[float, float, int]:
    """Percentile confidence interval of the EER, resampling speakers with replacement.

    A resample draws the speakers with replacement; a trial counts once per drawn copy of its enrollment
    speaker times each drawn copy of its test speaker. Resamples without both trial kinds are dropped (which
    ``scipy.stats.bootstrap`` cannot do: one such resample makes its interval NaN).

    Returns
    -------
    low, high : float
    used : int
        How many resamples had both target and non-target trials.
    """
    if n_resamples < 1 or not 0 < confidence < 1:
        raise UsageError("need n_resamples >= 1 and 0 < confidence < 1")
    _check(trials.scores, trials.target)
    speakers, index = np.unique(np.concatenate((trials.enroll_speakers, trials.test_speakers)), return_inverse=True)
    enroll_idx, test_idx = np.split(index, 2)
    target = trials.target
    rng = np.random.default_rng(seed)  # a statistics bootstrap, not privacy-protecting
    values, known = [], {}  # few speakers draw the same resample often: each distinct one is scored once
    for _ in range(n_resamples):
        counts = np.bincount(rng.integers(0, len(speakers), len(speakers)), minlength=len(speakers)).astype(float)
        w = counts[enroll_idx] * counts[test_idx]
        if w[target].any() and w[~target].any():
            if counts.tobytes() not in known:
                known[counts.tobytes()] = _crossing(*_det(trials.scores, target, w))
            values.append(known[counts.tobytes()])
    if not values:
        raise DataError("no bootstrap resample had both target and non-target trials",
                        hint="evaluate more speakers")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high), len(values)
