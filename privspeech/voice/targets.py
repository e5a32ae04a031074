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
  drawn from that band: the wider band also spreads the conversions one speaker gets under different
  keys (lazy-informed EER on VCTK: about 20 % with 1.10-1.25, 26 % with 1.05-1.35, three runs each).
- Spectral tilt: a small change of at most 1.5 dB per octave, within the spread of glottal source
  tilt between speakers.

Each speaker gets two keyed candidates, one low-voiced and one high-voiced; the conversion takes the
one across the gender-typical boundary from the measured source voice (159 Hz, the geometric mean of
the two population means) and then enforces a minimum F0 distance. Because every value is drawn per id, the transform differs from
speaker to speaker: an attacker who converts their own enrollment audio with another key gets a
different pseudo-speaker.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from ..keys import SecretKey

LOW_F0_HZ = (90.0, 150.0)
HIGH_F0_HZ = (170.0, 260.0)
F0_SPREAD_SEMITONES = (2.0, 4.0)
FORMANT_SCALE = (1.05, 1.35)  # high-voiced target over a low-voiced source; its inverse the other way
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

    def choose(self, source_f0_hz: float | None, *, min_semitones: float) -> Target:
        """The candidate across :data:`BOUNDARY_HZ` from the source, at least `min_semitones` from its F0."""
        if source_f0_hz is None:
            return self.high if self.default_high else self.low
        target = self.high if source_f0_hz < BOUNDARY_HZ else self.low
        sign = 1.0 if target is self.high else -1.0
        gap = semitones(target.f0_mean_hz, source_f0_hz) * sign
        if gap < min_semitones:
            f0 = source_f0_hz * 2.0 ** (sign * min_semitones / 12.0)
            target = Target(f0, target.f0_spread, target.formant_scale, target.tilt_db_per_octave, target.timbre)
        return target


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
    u = uniforms(key, "voice/world/v1", _ident_message(level, ident), 9 + 2 * TIMBRE_TERMS)
    spread = [_between(x, *F0_SPREAD_SEMITONES) * math.log(2.0) / 12.0 for x in u[2:4]]
    scale = [_between(x, *FORMANT_SCALE, log=True) for x in u[4:6]]
    tilt = [(2.0 * x - 1.0) * TILT_DB_PER_OCTAVE for x in u[6:8]]
    timbre = [tuple(2.0 * x - 1.0 for x in u[9 + i * TIMBRE_TERMS : 9 + (i + 1) * TIMBRE_TERMS]) for i in (0, 1)]
    low = Target(_between(u[0], *LOW_F0_HZ, log=True), spread[0], 1.0 / scale[0], tilt[0], timbre[0])
    high = Target(_between(u[1], *HIGH_F0_HZ, log=True), spread[1], scale[1], tilt[1], timbre[1])
    return Candidates(low, high, default_high=u[8] >= 0.5)


def mcadams_alpha(key: SecretKey, *, level: str, ident: str) -> float:
    """The keyed McAdams coefficient for an id, uniform in [0.5, 0.9] (VoicePrivacy 2020 B2 range)."""
    (u,) = uniforms(key, "voice/mcadams/v1", _ident_message(level, ident), 1)
    return _between(u, *MCADAMS_ALPHA)
