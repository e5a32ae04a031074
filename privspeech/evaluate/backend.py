"""The semi-informed attacker's scoring back-end: LDA trained on attacker-anonymized speech, then cosine."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import DataError, UsageError
from .deps import need
from .metrics import Labelled, length_norm


@dataclass(frozen=True)
class LDA:
    """Length-normalise, centre, project on the most speaker-discriminant directions (scikit-learn's
    LinearDiscriminantAnalysis, eigen solver with shrinkage), length-normalise again.

    Attributes
    ----------
    mean : np.ndarray, shape (d,)
    projection : np.ndarray, shape (d, k)
    """

    mean: np.ndarray
    projection: np.ndarray

    @classmethod
    def fit(cls, data: Labelled, *, dim: int | None = None, shrinkage: float = 1e-3) -> "LDA":
        """Train on labelled embeddings (at least two speakers, some with two or more utterances).

        Parameters
        ----------
        data : Labelled
            Training embeddings, shape (n, d), from speakers disjoint from the test speakers.
        dim : int, optional
            Output dimension, at most min(speakers - 1, d); default that maximum.
        shrinkage : float
            In [0, 1]: how far the covariances are pulled towards a multiple of the identity, which keeps the
            within-speaker one invertible when there are few utterances per speaker.
        """
        speakers, counts = np.unique(data.speakers, return_counts=True)
        if len(speakers) < 2 or counts.max() < 2:
            raise DataError("the back-end needs training speech from two or more speakers, with several "
                            "utterances for some of them")
        x = length_norm(data.vectors)
        limit = min(len(speakers) - 1, x.shape[1])
        dim = limit if dim is None else dim
        if not 1 <= dim <= limit:
            raise UsageError(f"LDA dimension must be between 1 and {limit}, not {dim}")
        model = need("sklearn.discriminant_analysis").LinearDiscriminantAnalysis(
            solver="eigen", shrinkage=shrinkage, n_components=dim)
        with warnings.catch_warnings():  # a speaker with one utterance adds nothing to the within-speaker covariance
            warnings.filterwarnings("ignore", "Only one sample available")
            model.fit(x, data.speakers)
        # the eigen solver's transform is x @ scalings_, uncentred: centre here so that cosines are about the mean
        return cls(x.mean(axis=0), model.scalings_[:, :dim])

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project embeddings, shape (n, d) -> (n, k), unit length."""
        return length_norm((length_norm(vectors) - self.mean) @ self.projection)

    def apply(self, data: Labelled) -> Labelled:
        return data.with_vectors(self.transform(data.vectors))
