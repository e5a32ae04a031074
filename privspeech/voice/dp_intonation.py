"""DP intonation in the WORLD conversion: the converted voice's F0 contour is a local-DP release of the source's.

The unit is one utterance (one recording, all its channels). Per channel, the source's log-F0 contour,
normalised to its own voiced mean, is reduced to ``n_coeffs`` clipped DCT coefficients per
``segment_seconds`` and released with the lattice Laplace (:func:`privspeech.dp.contour.dp_intonation`);
the output contour is rebuilt from the release alone (interpolated, lightly smoothed and scaled to the
pseudo-speaker's mean and spread: post-processing). Not covered: everything else the conversion keeps of
the source, i.e. duration and timing, the voiced/unvoiced pattern, the choice of pseudo-speaker (which
looks at the source's mean F0) and the converted spectral envelope.

Composition. However a recording is processed it is one utterance with one epsilon. Every channel and,
for long files, every stream segment (:class:`privspeech.voice.stream.VoiceStream` converts about 30 s
at a time) is a separate release, so the epsilon is split among them in proportion to their DCT
segments: every coefficient gets the noise a single release of the whole recording would get. The split
is planned from the recording's length before any audio is read, as an upper bound on the DCT segments
the releases can need; a release beyond the plan is refused, so the releases never add up to more than
epsilon, which is what the ledger entry charges.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..dp.calibration import check_positive
from ..dp.contour import dp_intonation
from ..dp.mechanisms import calibrate
from ..dp.rng import SecureRandom, resolve
from ..errors import InternalError, UsageError
from ..keys import SecretKey
from .filters import gaussian
from .stream import SEARCH_SECONDS, SEGMENT_SECONDS, VoiceStream, check_signal
from .targets import Target

SMOOTH_SECONDS = 0.03  # Gaussian smoothing of the rebuilt contour: removes steps at segment joins


@dataclass(frozen=True)
class DPSettings:
    """The DP intonation release (non-secret; goes to the ledger).

    Attributes
    ----------
    epsilon : float
        Budget for one utterance (all channels, whole length).
    segment_seconds : float
        Length of speech each group of ``n_coeffs`` coefficients describes.
    n_coeffs : int
        DCT coefficients released per segment (1 keeps each segment's level, 2 also its slope, ...).
    clip_octaves : float
        Each coefficient is clipped to this many octaves either way: the sensitivity.
    grid_bits : int
        Coefficients live on a ``2**-grid_bits`` octave lattice.
    """

    epsilon: float
    segment_seconds: float = 1.0
    n_coeffs: int = 2
    clip_octaves: float = 0.25
    grid_bits: int = 7

    def __post_init__(self):
        check_positive(self.epsilon, "--dp-epsilon")
        if not 0.05 <= self.segment_seconds <= 10.0:
            raise UsageError(f"segment_seconds must be between 0.05 and 10, got {self.segment_seconds}")
        # dp_intonation validates the rest first thing: a bad setting fails before any audio is read
        dp_intonation(np.zeros(1), epsilon=self.epsilon, target_mean_hz=1.0, segment=10**6, n_coeffs=self.n_coeffs,
                      clip=self.clip_octaves, grid_bits=self.grid_bits)

    @property
    def steps(self) -> int:
        """The clipping range in lattice steps."""
        return int(self.clip_octaves * 2**self.grid_bits)

    def summary(self, *, private: bool) -> dict[str, Any]:
        """The guarantee as a ledger-shaped entry before any audio is read (each record's own entry states
        its total sensitivity, which grows with its length)."""
        return {"mechanism": "discrete-laplace", "unit": "utterance", "epsilon": float(self.epsilon), "delta": 0.0,
                "sensitivity": {"l1 per segment": 2 * self.n_coeffs * self.steps},
                "lattice": f"2^-{self.grid_bits} octave", "private": private,
                "sensitivity_bound": f"per {self.segment_seconds:g} s of speech, {self.n_coeffs} DCT coefficient(s) "
                                     f"of the log-F0 contour, each clipped to ±{self.clip_octaves:g} octave"}


class IntonationBudget:
    """One utterance's DP intonation: the planned split of epsilon, the releases, and the ledger entry.

    Parameters
    ----------
    settings : DPSettings
    n_samples : int
        The recording's length (known before reading, e.g. from ``soundfile.info``).
    sr : int
    channels : int
    frame_period : float
        WORLD's analysis hop in ms (the F0 frames the releases see).
    stream_segment_seconds : float
        The segment length of the :class:`VoiceStream` that converts the recording.
    rng : SecureRandom, optional
        One generator for all the utterance's releases; default: keyed from ``os.urandom``.
    """

    def __init__(self, settings: DPSettings, *, n_samples: int, sr: int, channels: int, frame_period: float,
                 stream_segment_seconds: float = SEGMENT_SECONDS, rng: SecureRandom | None = None):
        self.settings = settings
        self.rng = resolve(rng)
        hop = frame_period * sr / 1000.0
        self.segment_frames = max(1, round(settings.segment_seconds * 1000.0 / frame_period))
        if settings.n_coeffs > self.segment_frames:
            raise UsageError(f"n_coeffs {settings.n_coeffs} exceeds the {self.segment_frames} frames of a "
                             f"segment", hint="use longer segments or fewer coefficients")
        # cores of the stream partition the frames [0, ceil(n / hop)); every core but the last is at least
        # (segment - search) samples long; each core may end in a partial DCT segment
        cores = 1 + max(n_samples, 0) // (int(stream_segment_seconds * sr) - int(SEARCH_SECONDS * sr))
        frames = math.ceil(max(n_samples, 1) / hop) + (0 if cores == 1 or hop == int(hop) else cores)
        self.per_channel = math.ceil(frames / self.segment_frames) + cores - 1
        self.planned = channels * self.per_channel
        self.released = 0
        self.releases = 0
        self._l1 = self.planned * settings.n_coeffs * 2 * settings.steps
        self._mech = calibrate(mechanism="laplace", l1=self._l1, l2_squared=self._l1**2, epsilon=settings.epsilon,
                               rng=self.rng)

    def release(self, f0: np.ndarray) -> np.ndarray | None:
        """Release one contour, shape (frames,) in Hz (0 unvoiced); the released log2 contour on its voiced
        frames (octaves about their mean), or None when no frame is voiced (nothing released)."""
        voiced = f0 > 0
        if not voiced.any():
            return None
        needed = math.ceil(f0.size / self.segment_frames)
        if self.released + needed > self.planned:
            raise InternalError(f"DP intonation: {self.released + needed} segments exceed the planned "
                                f"{self.planned}; nothing over the budget is released",
                                hint="this is a bug: report it")
        s = self.settings
        out = dp_intonation(f0, epsilon=s.epsilon * needed / self.planned, target_mean_hz=1.0,
                            segment=self.segment_frames, n_coeffs=s.n_coeffs, clip=s.clip_octaves,
                            grid_bits=s.grid_bits, rng=self.rng)
        self.released += needed
        self.releases += 1
        return np.log2(out.f0[voiced])

    def entry(self) -> dict[str, Any]:
        """The ledger entry (``op`` added by the caller): the same shape as ``privspeech noise`` writes."""
        s = self.settings
        return {**self._mech.fields, "unit": "utterance", "lattice": f"2^-{s.grid_bits} octave",
                "sensitivity_bound": (
                    f"at most {self.planned} segment(s) of {s.segment_seconds:g} s over all channels x "
                    f"{s.n_coeffs} DCT coefficient(s) of the mean-normalised log-F0 contour, each clipped to "
                    f"±{s.clip_octaves:g} octave: each moves at most {2 * s.steps} steps"),
                "params": {**{k: v for k, v in asdict(s).items() if k != "epsilon"}, "planned_segments": self.planned,
                           "released_segments": self.released, "releases": self.releases}}


class IntonationHook:
    """A WORLD ``f0_hook`` for one channel: F0 from the DP release, scaled to the pseudo-speaker.

    Voiced frames of the segment's core take the released contour; the rest of the segment (context
    shared with neighbours) is extended from it. Voicing follows the source (not covered by the DP).
    """

    def __init__(self, budget: IntonationBudget, *, intonation: float, frame_period: float):
        self.budget = budget
        self.intonation = intonation
        self.sigma = SMOOTH_SECONDS * 1000.0 / frame_period

    def __call__(self, f0: np.ndarray, core: slice, target: Target) -> np.ndarray:
        out = np.zeros_like(f0)
        voiced = f0 > 0
        core_f0 = f0[core]
        released = self.budget.release(core_f0)
        if released is None or not voiced.any():
            out[voiced] = target.f0_mean_hz
            return out
        frames = np.arange(f0.size)
        at = frames[core][core_f0 > 0]
        contour = gaussian(np.interp(frames, at, released), self.sigma)
        values = contour[at]
        spread = values.std()
        z = (contour - values.mean()) / spread if spread > 1e-9 else np.zeros_like(contour)
        out[voiced] = np.exp(math.log(target.f0_mean_hz) + z[voiced] * target.f0_spread * self.intonation)
        return out


def dp_stream(*, settings: DPSettings, n_samples: int, sr: int, channels: int, key: SecretKey,
              speaker: str | None = None, utterance: str | None = None, level: str = "speaker",
              rng: SecureRandom | None = None, **world_settings: Any) -> tuple[VoiceStream, IntonationBudget]:
    """A WORLD :class:`VoiceStream` whose intonation is the DP release, and the utterance's budget.

    `n_samples` must be the recording's true length: the split of epsilon is planned from it.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
        raise UsageError(f"n_samples must be a whole number >= 0, got {n_samples!r}")
    stream = VoiceStream(sr=sr, channels=channels, key=key, speaker=speaker, utterance=utterance, method="world",
                         level=level, segment_seconds=SEGMENT_SECONDS, **world_settings)
    fp = stream.settings.frame_period
    budget = IntonationBudget(settings, n_samples=int(n_samples), sr=stream.sr, channels=stream.channels,
                              frame_period=fp, rng=rng)
    for voice in stream.voices:
        voice.f0_hook = IntonationHook(budget, intonation=stream.settings.intonation, frame_period=fp)
    return stream, budget


def anonymize_dp(y: np.ndarray, *, sr: int, key: SecretKey, epsilon: float, speaker: str | None = None,
                 utterance: str | None = None, level: str = "speaker", rng: SecureRandom | None = None,
                 dp: dict[str, Any] | None = None, **settings: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`privspeech.voice.anonymize` (WORLD) with the intonation released under epsilon-DP per utterance.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, channels)
        Float samples in [-1, 1].
    sr, key, speaker, utterance, level, **settings
        As for :func:`privspeech.voice.anonymize` with ``method="world"``.
    epsilon : float
        The utterance's budget.
    rng : SecureRandom, optional
        Default: keyed from ``os.urandom``; a seeded one (tests only) marks the entry not private.
    dp : dict, optional
        Further :class:`DPSettings` (``segment_seconds``, ``n_coeffs``, ``clip_octaves``, ``grid_bits``).

    Returns
    -------
    y : np.ndarray, same shape and dtype as the input
    entry : dict
        The ledger entry for the record's ``ops`` (see :meth:`IntonationBudget.entry`).
    """
    check_signal(y)
    unknown = sorted(set(dp or {}) - {"segment_seconds", "n_coeffs", "clip_octaves", "grid_bits"})
    if unknown:
        raise UsageError(f"unknown DP intonation setting: {', '.join(unknown)}")
    stream, budget = dp_stream(settings=DPSettings(epsilon=epsilon, **(dp or {})), n_samples=y.shape[0], sr=sr,
                               channels=1 if y.ndim == 1 else y.shape[1], key=key, speaker=speaker,
                               utterance=utterance, level=level, rng=rng, **settings)
    out = np.concatenate([stream.process(y), stream.flush()])
    return out, budget.entry()
