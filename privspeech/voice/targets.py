"""Keyed pseudo-speakers: target voices drawn from HMAC-SHA256 over a speaker or utterance id.

The draws are uniform over ranges taken from adult population statistics, so pseudo-speakers spread
across the space of real voices instead of clustering:

- Mean speaking F0: about 120 Hz for men and 210 Hz for women, each with a standard deviation of
  roughly 20-25 Hz (Titze 1994, *Principles of Voice Production*; Traunmueller & Eriksson 1995,
  "The frequency range of the voice fundamental in the speech of male and female adults").
  The low range below is the male mean +-1.5 SD, the high range the female one.
- F0 spread within read speech: roughly 2 to 4 semitones standard deviation (same sources).
- Vocal-tract length: about 17 cm for men and 14.5 cm for women (Fitch & Giedd 1999, MRI), which
  puts female formants about 17 % above male ones on average (Peterson & Barney 1952; Hillenbrand
  et al. 1995); with individual tract lengths varying by roughly +-8 %, the ratio between a given woman
  and a given man spans about 1.05 to 1.35. The warp factor (target formants over source formants) is
  drawn from that band, which also spreads the conversions one speaker gets under different keys
  (measurements: docs/experiments.md).
- Spectral tilt: a small change of at most 1.5 dB per octave, within the spread of glottal source
  tilt between speakers.

Each id gets two keyed candidates, one low-voiced and one high-voiced, and a keyed fair coin between two kinds of
move away from the measured source voice, judged against the gender-typical boundary (159 Hz, the geometric mean of
the two population means). A cross target is the candidate on the other side, its F0 kept at least a minimum
distance from the source's (pushed the nearer way that stays within 90-260 Hz). A same-side target is the candidate
on the source's side moved toward the boundary, up from a low voice and down from a high one, by at least
SAME_SIDE_MIN_SEMITONES. Formants move the way F0 moves, a same-side target's by a factor from its own band
(20-40 %). Because every value is drawn per id, the transform differs from speaker to speaker.

The coin does not hide which side the source was on: a move of 8 semitones toward the boundary carries most voices
across it, so the output reveals the speaker's gender, inverted (measurements: docs/experiments.md).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, replace

from ..keys import SecretKey

LOW_F0_HZ = (90.0, 150.0)
HIGH_F0_HZ = (170.0, 260.0)
F0_SPREAD_SEMITONES = (2.0, 4.0)
FORMANT_SCALE = (1.05, 1.35)  # high-voiced target over a low-voiced source; its inverse the other way
# A same-side target moves formants by at least 20 % (beyond the +-8 % spread of tract length within a gender) and
# F0 by at least 8 semitones, toward the other side (tuning of these bands: docs/experiments.md).
SAME_SIDE_FORMANT_SCALE = (1.2, 1.4)
SAME_SIDE_MIN_SEMITONES = 8.0
CROSS_PROBABILITY = 0.5
TILT_DB_PER_OCTAVE = 1.5
MCADAMS_ALPHA = (0.5, 0.9)
TIMBRE_TERMS = 8  # cosine terms of the keyed long-term spectral shape, up to 8 kHz
BOUNDARY_HZ = math.sqrt(120.0 * 210.0)  # between the male and female population means


@dataclass(frozen=True)
class Target:
    """One pseudo-speaker for the WORLD conversion (secret: never written to a manifest).

    Attributes
    ----------
    f0_mean_hz : float
        Geometric mean F0 of the target voice.
    f0_spread : float
        Standard deviation of log F0 (natural log) of the target voice.
    formant_scale : float
        Factor applied to formant frequencies (above 1 shortens the vocal tract).
    tilt_db_per_octave : float
        Change of spectral slope, in dB per octave around 1 kHz.
    """

    f0_mean_hz: float
    f0_spread: float
    formant_scale: float
    tilt_db_per_octave: float
    timbre: tuple[float, ...] = ()


@dataclass(frozen=True)
class Candidates:
    """The keyed low-voiced and high-voiced targets for one id, and which one to use with no voiced input."""

    low: Target
    high: Target
    default_high: bool
    cross: bool = True
    same_side_scale: float = SAME_SIDE_FORMANT_SCALE[0]

    def choose(self, source_f0_hz: float | None, *, min_semitones: float) -> Target:
        """The candidate across :data:`BOUNDARY_HZ` from the source (`cross`) or on its side, its formants moved in
        the direction its F0 moved.

        A cross target's mean F0 is at least `min_semitones` from the source's. A same-side target moves toward
        the other side (up from a low voice, down from a high one) by at least :data:`SAME_SIDE_MIN_SEMITONES`.
        """
        if source_f0_hz is None:
            return self.high if self.default_high else self.low
        low_source = source_f0_hz < BOUNDARY_HZ
        drawn = self.high if low_source == self.cross else self.low
        if not self.cross:
            step = 2.0 ** (max(min_semitones, SAME_SIDE_MIN_SEMITONES) / 12.0)
            if low_source:
                return replace(drawn, f0_mean_hz=max(drawn.f0_mean_hz, source_f0_hz * step),
                               formant_scale=self.same_side_scale)
            return replace(drawn, f0_mean_hz=min(drawn.f0_mean_hz, source_f0_hz / step),
                           formant_scale=1.0 / self.same_side_scale)
        f0 = drawn.f0_mean_hz
        if abs(semitones(f0, source_f0_hz)) < min_semitones:
            up = f0 >= source_f0_hz
            pushed = [source_f0_hz * 2.0 ** (s * min_semitones / 12.0) for s in ((1, -1) if up else (-1, 1))]
            inside = [p for p in pushed if LOW_F0_HZ[0] <= p <= HIGH_F0_HZ[1]]
            f0 = (inside or pushed)[0]
        magnitude = max(drawn.formant_scale, 1.0 / drawn.formant_scale)
        return replace(drawn, f0_mean_hz=f0, formant_scale=magnitude if f0 >= source_f0_hz else 1.0 / magnitude)


def semitones(f_hz: float, ref_hz: float) -> float:
    """Interval from `ref_hz` to `f_hz` in semitones."""
    return 12.0 * math.log2(f_hz / ref_hz)


def uniforms(key: SecretKey, label: str, message: str, count: int) -> list[float]:
    """`count` independent keyed uniforms in [0, 1), 53 bits each, from HMAC-SHA256 in counter mode."""
    out: list[float] = []
    block = 0
    while len(out) < count:
        digest = key.prf(label, f"{block}\x00{message}")
        out.extend((word >> 11) / float(1 << 53) for word in struct.unpack(">4Q", digest))
        block += 1
    return out[:count]


def _between(u: float, lo: float, hi: float, *, log: bool = False) -> float:
    if log:
        return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    return lo + u * (hi - lo)


def _ident_message(level: str, ident: str) -> str:
    return f"{level}\x00{ident}"


def world_candidates(key: SecretKey, *, level: str, ident: str) -> Candidates:
    """The two keyed WORLD targets for a speaker (``level="speaker"``) or utterance id."""
    u = uniforms(key, "voice/world/v1", _ident_message(level, ident), 11 + 2 * TIMBRE_TERMS)
    spread = [_between(x, *F0_SPREAD_SEMITONES) * math.log(2.0) / 12.0 for x in u[2:4]]
    scale = [_between(x, *FORMANT_SCALE, log=True) for x in u[4:6]]
    tilt = [(2.0 * x - 1.0) * TILT_DB_PER_OCTAVE for x in u[6:8]]
    timbre = [tuple(2.0 * x - 1.0 for x in u[9 + i * TIMBRE_TERMS : 9 + (i + 1) * TIMBRE_TERMS]) for i in (0, 1)]
    low = Target(_between(u[0], *LOW_F0_HZ, log=True), spread[0], 1.0 / scale[0], tilt[0], timbre[0])
    high = Target(_between(u[1], *HIGH_F0_HZ, log=True), spread[1], scale[1], tilt[1], timbre[1])
    extra = 9 + 2 * TIMBRE_TERMS
    return Candidates(low, high, default_high=u[8] >= 0.5, cross=u[extra] < CROSS_PROBABILITY,
                      same_side_scale=_between(u[extra + 1], *SAME_SIDE_FORMANT_SCALE, log=True))


def mcadams_alpha(key: SecretKey, *, level: str, ident: str) -> float:
    """The keyed McAdams coefficient for an id, uniform in [0.5, 0.9] (VoicePrivacy 2020 B2 range)."""
    (u,) = uniforms(key, "voice/mcadams/v1", _ident_message(level, ident), 1)
    return _between(u, *MCADAMS_ALPHA)
