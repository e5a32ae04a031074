"""The semi-informed attacker's scoring back-end: LDA trained on attacker-anonymized speech, then cosine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..errors import ExitStatus, PrivspeechError
from .metrics import Labelled, length_norm


@dataclass(frozen=True)
class LDA:
    """Length-normalise, centre, project on the most speaker-discriminant directions, length-normalise again.

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
            Added to the within-speaker covariance's diagonal (relative to its mean variance) to keep it
            invertible when there are few utterances per speaker.
        """
        speakers, index, counts = np.unique(data.speakers, return_inverse=True, return_counts=True)
        if len(speakers) < 2 or counts.max() < 2:
            raise PrivspeechError("the back-end needs training speech from two or more speakers, with several "
                                  "utterances for some of them", status=ExitStatus.DATAERR)
        x = length_norm(data.vectors)
        limit = min(len(speakers) - 1, x.shape[1])
        dim = limit if dim is None else dim
        if not 1 <= dim <= limit:
            raise PrivspeechError(f"LDA dimension must be between 1 and {limit}, not {dim}", status=ExitStatus.USAGE)
        mean = x.mean(axis=0)
        centres = np.zeros((len(speakers), x.shape[1]))
        np.add.at(centres, index, x)
        centres /= counts[:, None]
        within = x - centres[index]
        sw = within.T @ within / len(x)
        between = (centres - mean) * np.sqrt(counts)[:, None]
        sb = between.T @ between / len(x)
        sw += shrinkage * np.trace(sw) / len(sw) * np.eye(len(sw))
        _, vectors = scipy.linalg.eigh(sb, sw)  # ascending eigenvalues
        return cls(mean, vectors[:, ::-1][:, :dim])

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project embeddings, shape (n, d) -> (n, k), unit length."""
        return length_norm((length_norm(vectors) - self.mean) @ self.projection)

    def apply(self, data: Labelled) -> Labelled:
        return data.with_vectors(self.transform(data.vectors))
