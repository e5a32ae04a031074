"""DP intonation for the anonymizer: an F0 contour's shape released under local DP per utterance.

What a converted voice still carries of the source speaker is largely the intonation contour. It is
reduced to a few coefficients per segment and only those are released: the contour in octaves
relative to its own voiced mean (the mean, which identifies a speaker, is replaced by the target's),
interpolated over unvoiced frames, cut into segments of ``segment`` frames, each transformed by the
orthonormal DCT-II; the first ``n_coeffs`` coefficients (divided by ``sqrt(segment)``: octave
amplitudes) are clipped to ``±clip`` octave and rounded to a ``2**-grid_bits`` octave grid whose end
points are ``±clip``. Two utterances can differ in every coefficient, so the L1 sensitivity is
``segments * n_coeffs * 2 * clip`` (in grid steps) and the lattice Laplace makes the release
epsilon-DP for the unit "one utterance". Clipping the noisy coefficients and rebuilding the contour
are post-processing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from ..errors import DataError, UsageError
from .calibration import check_positive
from .mechanisms import calibrate
from .rng import SecureRandom


@dataclass
class DPIntonation:
    """The released contour and its ledger entry.

    Attributes
    ----------
    f0 : np.ndarray, shape (frames,)
        Hz on the source's voiced frames, 0 elsewhere.
    entry : dict or None
        Ledger fields for ``record.with_op("anonymize", dp=entry)`` or an op of its own; None when the
        utterance has no voiced frame (nothing released).
    noise_std_octaves : float
        Standard deviation of the noise on each coefficient, in octaves.
    """

    f0: np.ndarray
    entry: dict[str, Any] | None
    noise_std_octaves: float


def dp_intonation(f0: np.ndarray, *, epsilon: float, target_mean_hz: float, segment: int = 200, n_coeffs: int = 2,
                  clip: float = 0.25, grid_bits: int = 7, rng: SecureRandom | None = None) -> DPIntonation:
    """Release the shape of an F0 contour with the lattice Laplace, local DP per utterance.

    Parameters
    ----------
    f0 : np.ndarray, shape (frames,)
        F0 in Hz per frame, 0 (or NaN) for unvoiced frames, e.g. from ``pyworld.harvest``.
    epsilon : float
        Budget for the whole utterance.
    target_mean_hz : float
        Mean F0 of the output (the pseudo-speaker's, never the source's).
    segment : int
        Frames per segment (200 frames = 1 s at WORLD's 5 ms period).
    n_coeffs : int
        DCT coefficients kept per segment (1..segment).
    clip : float
        Clipping range of each coefficient, in octaves.
    grid_bits : int
        Coefficients are rounded to a ``2**-grid_bits`` octave grid (1..16); ``clip * 2**grid_bits`` must be whole.
    rng : SecureRandom, optional
        Defaults to a fresh generator keyed from ``os.urandom``.
    """
    check_positive(epsilon, "epsilon")
    check_positive(target_mean_hz, "target mean F0")
    check_positive(clip, "clip")
    for name, value, high in (("segment", segment, 10**6), ("n_coeffs", n_coeffs, segment),
                              ("grid_bits", grid_bits, 16)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise UsageError(f"{name} must be an integer from 1 to {high}, not {value!r}")
    steps = clip * 2**grid_bits
    if steps != int(steps):
        raise UsageError(f"clip {clip} is not a whole number of 2^-{grid_bits} octave steps")
    limit = int(steps)
    f0 = np.asarray(f0, dtype=np.float64)
    if f0.ndim != 1 or np.isinf(f0).any() or (f0 < 0).any():
        raise DataError("F0 must be a 1-D array of frequencies >= 0 (0 or NaN when unvoiced)")
    voiced = np.nan_to_num(f0) > 0
    if not voiced.any():
        return DPIntonation(np.zeros_like(f0), None, 0.0)
    frames = f0.size
    octaves = np.log2(f0[voiced])
    contour = np.interp(np.arange(frames), np.flatnonzero(voiced), octaves - octaves.mean())
    segments = math.ceil(frames / segment)
    padded = np.pad(contour, (0, segments * segment - frames), mode="edge").reshape(segments, segment)
    amplitude = scipy.fft.dct(padded, norm="ortho", axis=1)[:, :n_coeffs] / math.sqrt(segment)
    kept = np.rint(np.clip(amplitude, -clip, clip) * 2**grid_bits).astype(np.int64)
    sensitivity = segments * n_coeffs * 2 * limit
    mech = calibrate(mechanism="laplace", l1=sensitivity, l2_squared=sensitivity**2, epsilon=epsilon, rng=rng)
    noisy = np.clip(kept + mech.sampler.sample(kept.size).reshape(kept.shape), -limit, limit)
    coefficients = np.zeros((segments, segment))
    coefficients[:, :n_coeffs] = noisy * 2.0**-grid_bits * math.sqrt(segment)
    released = scipy.fft.idct(coefficients, norm="ortho", axis=1).reshape(-1)[:frames]
    out = np.where(voiced, target_mean_hz * np.exp2(released), 0.0)
    entry = {**mech.fields, "unit": "utterance", "lattice": f"2^-{grid_bits} octave",
             "sensitivity_bound": (f"{segments} segment(s) x {n_coeffs} DCT coefficient(s), each clipped to "
                                   f"±{clip:g} octave: each moves at most {2 * limit} steps"),
             "params": {"segment": segment, "n_coeffs": n_coeffs, "clip_octaves": clip, "segments": segments}}
    return DPIntonation(out, entry, math.sqrt(mech.sampler.variance) * 2.0**-grid_bits)
