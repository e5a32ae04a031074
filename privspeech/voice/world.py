"""Voice conversion to a keyed pseudo-speaker by WORLD analysis and synthesis (pyworld).

Analysis: F0 by RAPT through pysptk (or dio + stonemask, or harvest), spectral envelope by cheaptrick, aperiodicity
by d4c on every second frame (it is smooth in time; this halves its cost) interpolated to all frames.
Conversion: F0 mapped in the log domain onto the target's mean and spread, unvoiced frames kept
unvoiced; the source's long-term envelope shape (its mean log envelope minus a 3 kHz smoothing of it)
replaced by a keyed smooth shape, weighted toward the bands below 700 Hz and above 3.6 kHz (its cuts above 2.8 kHz
limited to 6 dB), the whole change optionally soft-limited (`timbre_limit_db`); envelope and aperiodicity warped by
the same VTLN map; a spectral tilt on the envelope. With `fallback` (strength light), per-recording checks limit the
timbre change of noisy or narrowband recordings and give a gentler target to a conversion that lost its voicing.
The timbre replacement is what defeats an attacker who converts their own
enrollment audio (measurements: docs/experiments.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import PrivspeechError, UsageError
from . import worldlib
from .worldlib import pyworld
from .filters import gaussian
from .loudness import SILENCE_RMS, frame_rms, match_gain
from .targets import Candidates, Target
from .warp import apply_warp, tilt_gains, vtln_warp

# Bump whenever the same key and input would give different output; never reuse a name (withdrawn ones are listed
# in docs/experiments.md).
VERSION = "world-8"
F0_METHODS = ("dio", "harvest", "rapt")
RAPT_RANGE_HZ = (60.0, 500.0)  # RAPT's F0 search range
RAPT_DELAY_S = 0.007  # SPTK's RAPT frame i describes time i * hop + 7 ms (docs/experiments.md)
MIN_VOICED_SECONDS = 0.3  # voiced speech needed before the source voice is judged and the target fixed
DEFAULT_SPREAD = 3.0 * math.log(2.0) / 12.0  # log-F0 spread assumed while too few frames are voiced
MIN_SPREAD = 0.5 * math.log(2.0) / 12.0
MIN_SECONDS = 0.1  # shorter segments are zero-padded for the analysis
D4C_CHECK_MIN_RATE = 16000  # D4C's voicing check needs the band up to 7.9 kHz (from 15.8 kHz on)
# Long-term envelope detail finer than this is the speaker's own, and is removed (tuning: docs/experiments.md).
TIMBRE_SMOOTH_HZ = 3000.0
# Weights on the keyed shape, piecewise linear in log frequency between the corners: heavy below 700 Hz and above
# 3.6 kHz, light over 1.2-2.8 kHz where the second formant carries most of the words (see WorldSettings.timbre_db).
TIMBRE_BAND_HZ = (700.0, 1200.0, 2800.0, 3600.0)
TIMBRE_BAND_WEIGHTS = (2.0, 0.4, 1.6)
# Above 2.8 kHz (fully from 4 kHz) the keyed shape's cuts are soft-limited to 6 dB, its boosts left alone: deep
# cuts there take out fricatives (figures: docs/experiments.md).
HF_CUT_HZ = 2800.0
HF_CUT_LIMIT_DB = 6.0


STRENGTHS = ("light", "balanced", "strong")
# The settings each strength stands for; a setting given explicitly wins. Figures: README (--strength).
PRESETS = {
    "light": {"timbre_db": 8.0, "timbre_limit_db": None, "fallback": True},
    "balanced": {"timbre_db": 8.0, "timbre_limit_db": None, "fallback": False},
    "strong": {"timbre_db": 10.0, "timbre_limit_db": None, "fallback": False},
}
# The per-recording check (WorldSettings.fallback): once the target is fixed, the F0 tracker runs on that segment's
# output; if more than this share of the frames voiced in the source came out unvoiced, the conversion broke the
# voice (heard as whisper or noise, and the recognizer loses the words), and the recording gets a gentler target.
FALLBACK_LOST_VOICING = 0.5
FALLBACK_FORMANT_POWER = 0.5  # the gentler target's formant move: the drawn factor to this power
FALLBACK_TIMBRE_LIMIT_DB = 3.0  # ... and its timbre offset soft-limited to this many dB
# A recording judged degraded when its target is fixed (noisy: the loud frames, 95th percentile of 20 ms RMS, less
# than DEGRADED_SNR_DB above the quietest, its 2nd percentile, where clean speech has pauses and closures; or
# narrowband: no speech energy above 4 kHz, as through a telephone line) has its timbre offset soft-limited to
# DEGRADED_TIMBRE_LIMIT_DB: large offsets cost the most words on such recordings.
DEGRADED_SNR_DB = 20.0
NARROWBAND_HZ = 4000.0
NARROWBAND_DROP_DB = 45.0  # voiced envelope above NARROWBAND_HZ this far below the 300-3400 Hz band: narrowband
DEGRADED_TIMBRE_LIMIT_DB = 6.0


class _FromStrength:
    """Default of a setting the strength preset decides."""

    def __repr__(self) -> str:
        return "FROM_STRENGTH"


FROM_STRENGTH = _FromStrength()


@dataclass(frozen=True)
class WorldSettings:
    """Non-secret settings of the WORLD method (they go to the manifest).

    Attributes
    ----------
    strength : {"light", "balanced", "strong"}
        The preset (:data:`PRESETS`) that decides `timbre_db`, `timbre_limit_db` and `fallback` unless they are
        given: balanced is world-7's conversion (with RAPT), light adds the per-recording checks (more words on
        degraded recordings, a voice nearer the speaker's own on those), strong a larger keyed timbre.
    f0_method : {"dio", "harvest", "rapt"}
        F0 estimator: RAPT (Talkin 1995, SPTK's through pysptk; the default since world-8): as fast as dio, far
        fewer octave errors on telephone speech and fewer voicing errors in babble and reverberation (the survey
        of the hard set is in docs/experiments.md); dio + stonemask; or harvest (robust, about 5x the time).
    frame_period : float
        Analysis hop in milliseconds (5 ms keeps more words than 10: docs/experiments.md).
    intonation : float
        Scale on the target's F0 spread: 1 keeps the drawn spread, 0 flattens to a monotone.
    tilt : bool
        Apply the drawn spectral-tilt change.
    min_f0_distance : float
        Minimum distance in semitones between the source's mean F0 and the target's (same-side targets
        keep at least :data:`~privspeech.voice.targets.SAME_SIDE_MIN_SEMITONES`).
    timbre_db : float
        Expected RMS (dB over frequency) of the keyed long-term spectral shape that replaces the source's own,
        before its band weights (:data:`TIMBRE_BAND_WEIGHTS`); the strength preset decides it (tuning:
        docs/experiments.md).
    timbre_limit_db : float, optional
        Soft limit (tanh), in dB either way at every frequency, on the whole timbre offset: the source's own
        long-term shape taken out plus the keyed shape put in. None: no limit. Large offsets (the keyed shape's
        band weights reach about 16 dB RMS below 700 Hz, and the source's shape is largest below 300 Hz) cost words
        on noisy, reverberant, band-limited and quiet speech (docs/experiments.md).
    fallback : bool
        Check each recording (each channel) once, on the segment where its target is fixed: a noisy or
        narrowband recording (:func:`degraded`) gets its timbre offset soft-limited to
        :data:`DEGRADED_TIMBRE_LIMIT_DB`, and a conversion whose voice lost its voicing
        (:data:`FALLBACK_LOST_VOICING`) is redone with a gentler target (formant move and timbre offset reduced,
        the same F0). Costs one more F0 analysis of that segment, and its conversion again when the second check
        fires.
    """

    strength: str = "balanced"
    f0_method: str = "rapt"
    frame_period: float = 5.0
    intonation: float = 1.0
    tilt: bool = True
    min_f0_distance: float = 8.0
    timbre_db: float = FROM_STRENGTH  # type: ignore[assignment]
    timbre_limit_db: float | None = FROM_STRENGTH  # type: ignore[assignment]
    fallback: bool = FROM_STRENGTH  # type: ignore[assignment]

    def __post_init__(self):
        if self.strength not in STRENGTHS:
            raise _usage(f"strength must be one of {', '.join(STRENGTHS)}, got {self.strength!r}")
        for name, value in PRESETS[self.strength].items():
            if getattr(self, name) is FROM_STRENGTH:
                object.__setattr__(self, name, value)
        if self.f0_method not in F0_METHODS:
            raise _usage(f"f0_method must be one of {', '.join(F0_METHODS)}, got {self.f0_method!r}")
        if not 1.0 <= self.frame_period <= 20.0:
            raise _usage(f"frame_period must be between 1 and 20 ms, got {self.frame_period}")
        if not 0.0 <= self.intonation <= 2.0:
            raise _usage(f"intonation must be between 0 and 2, got {self.intonation}")
        if not 0.0 <= self.timbre_db <= 15.0:
            raise _usage(f"timbre_db must be between 0 and 15 dB, got {self.timbre_db}")
        if not 0.0 <= self.min_f0_distance <= 12.0:
            raise _usage(f"min_f0_distance must be between 0 and 12 semitones, got {self.min_f0_distance}")
        if self.timbre_limit_db is not None and not 1.0 <= self.timbre_limit_db <= 30.0:
            raise _usage(f"timbre_limit_db must be between 1 and 30 dB, got {self.timbre_limit_db}")
        if not isinstance(self.fallback, bool):
            raise _usage(f"fallback must be true or false, got {self.fallback!r}")


def _usage(message: str) -> PrivspeechError:
    return UsageError(message)


@dataclass(frozen=True)
class Analysis:
    """WORLD parameters of a signal: F0 (frames,), envelope and aperiodicity (frames, bins)."""

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray


def track_f0(x: np.ndarray, *, sr: int, settings: WorldSettings) -> np.ndarray:
    """F0 in Hz (0 where unvoiced) of a mono float64 signal, shape (n,), by `settings.f0_method`, one value per
    frame of WORLD's hop: shape (int(1000 * n / sr / frame_period) + 1,)."""
    fp = settings.frame_period
    if settings.f0_method == "harvest":
        return pyworld.harvest(x, sr, frame_period=fp)[0]
    if settings.f0_method == "rapt":
        return _rapt(x, sr=sr, frame_period=fp)
    # allowed_range 0.1 (WORLD's default; a stricter 0.05 lost words: docs/experiments.md)
    f0, t = pyworld.dio(x, sr, frame_period=fp, speed=max(1, sr // 4000), allowed_range=0.1)
    return pyworld.stonemask(x, f0, t, sr)


def _rapt(x: np.ndarray, *, sr: int, frame_period: float) -> np.ndarray:
    """RAPT's F0 on WORLD's frame grid (each WORLD frame takes the RAPT frame nearest in time, RAPT's frames being
    :data:`RAPT_DELAY_S` late). Inputs shorter than 0.1 s are zero-padded: SPTK refuses them, and says so on the
    process's stderr."""
    frames = int(1000 * len(x) / sr / frame_period) + 1
    hop = max(1, round(frame_period * sr / 1000))
    padded = np.zeros(max(len(x), int(0.1 * sr)), np.float32)
    padded[:len(x)] = x * 32767.0  # SPTK expects 16-bit sample values
    f0 = worldlib.rapt(padded, sr, hopsize=hop, min_hz=RAPT_RANGE_HZ[0], max_hz=RAPT_RANGE_HZ[1])
    times = np.arange(frames) * frame_period / 1000 - RAPT_DELAY_S
    at = np.clip(np.rint(times * sr / hop).astype(np.intp), 0, len(f0) - 1)
    return f0[at].astype(np.float64)


def analyse(x: np.ndarray, *, sr: int, settings: WorldSettings, f0: np.ndarray | None = None) -> Analysis:
    """WORLD analysis of a mono float64 signal, shape (n,); `f0` (as :func:`track_f0` returns it) replaces the
    settings' F0 estimator."""
    if f0 is None:
        f0 = track_f0(x, sr=sr, settings=settings)
    t = np.arange(len(f0)) * settings.frame_period / 1000.0
    sp = pyworld.cheaptrick(x, f0, t, sr)
    # D4C's own voicing check compares band powers up to 7.9 kHz. Below 15.8 kHz that band lies past Nyquist,
    # and WORLD reads it from uninitialised memory: the check's verdict then changed from run to run (about 1
    # run in 20 at 8 kHz turned some or all frames aperiodic, i.e. whispered). There the F0 estimator alone decides
    # voicing: no value of the check is at or below -inf.
    ap_half = pyworld.d4c(x, np.ascontiguousarray(f0[::2]), np.ascontiguousarray(t[::2]), sr,
                          fft_size=(sp.shape[1] - 1) * 2, threshold=0.85 if sr >= D4C_CHECK_MIN_RATE else -math.inf)
    ap = np.empty_like(sp)
    ap[::2] = ap_half
    edge = np.concatenate([ap_half, ap_half[-1:]])  # the last odd frame may have no right neighbour
    half = len(f0) // 2
    ap[1::2] = 0.5 * (edge[:half] + edge[1 : half + 1])
    return Analysis(f0, sp, ap)


def degraded(x: np.ndarray, params: Analysis, first: int, last: int, *, sr: int) -> bool:
    """Whether a stretch of recording `x` (mono, shape (n,)), analysed as frames `first:last` of `params`, is noisy
    (:data:`DEGRADED_SNR_DB`) or narrowband (:data:`NARROWBAND_DROP_DB`)."""
    rms = frame_rms(x, sr=sr)
    rms = rms[rms > SILENCE_RMS]
    if rms.size >= 10:
        loud, quiet = np.percentile(rms, [95.0, 2.0])
        if 20.0 * math.log10(loud / quiet) < DEGRADED_SNR_DB:
            return True
    if sr <= 2 * NARROWBAND_HZ:
        return True
    voiced = params.f0[first:last] > 0
    if not voiced.any():
        return False
    f = np.linspace(0.0, sr / 2.0, params.sp.shape[1])
    power = params.sp[first:last][voiced].mean(axis=0)
    above = power[(f >= NARROWBAND_HZ + 500.0) & (f <= min(7000.0, sr / 2.0))]
    band = power[(f >= 300.0) & (f <= 3400.0)]
    return above.size > 0 and 10.0 * math.log10(above.mean() / band.mean()) < -NARROWBAND_DROP_DB


def keyed_timbre(target: Target, f: np.ndarray, timbre_db: float) -> np.ndarray:
    """The target's long-term spectral shape as log-power offsets at frequencies `f` (Hz): a sum of its keyed cosine
    terms up to 8 kHz with an expected RMS of `timbre_db` dB, weighted by band (:data:`TIMBRE_BAND_WEIGHTS`), its
    cuts above :data:`HF_CUT_HZ` soft-limited to :data:`HF_CUT_LIMIT_DB`."""
    u = np.minimum(f, 8000.0) / 8000.0
    keyed = sum(a * np.cos(np.pi * (k + 1) * u) for k, a in enumerate(target.timbre))
    keyed /= math.sqrt(max(len(target.timbre), 1) / 6.0)  # expected RMS over frequency 1 (uniform terms)
    low, mid, high = TIMBRE_BAND_WEIGHTS
    weights = np.interp(np.log(np.maximum(f, 1.0)), np.log(TIMBRE_BAND_HZ), [low, mid, mid, high])
    shape = keyed * weights * timbre_db * math.log(10.0) / 10.0
    limit = HF_CUT_LIMIT_DB * math.log(10.0) / 10.0
    limited = np.where(shape < 0.0, -limit * np.tanh(-shape / limit), shape)
    above = np.clip(2.0 * np.log2(np.maximum(f, 1.0) / HF_CUT_HZ), 0.0, 1.0)
    return shape + above * (limited - shape)


def map_f0(f0: np.ndarray, *, source_mean: float, source_spread: float, target: Target,
           intonation: float = 1.0) -> np.ndarray:
    """Map voiced F0 in the log domain: ``exp((log f0 - mu_s) / sigma_s * sigma_t + mu_t)``; 0 stays 0.

    Parameters
    ----------
    f0 : np.ndarray, shape (frames,)
        F0 in Hz, 0 where unvoiced.
    source_mean, source_spread : float
        Mean and standard deviation of the source's log F0 (natural log of Hz).
    target : Target
        The pseudo-speaker.
    intonation : float
        Scale on the target spread (0 gives a monotone at the target mean).

    Returns
    -------
    np.ndarray, shape (frames,)
    """
    out = np.zeros_like(f0)
    voiced = f0 > 0
    z = (np.log(f0[voiced]) - source_mean) / max(source_spread, MIN_SPREAD)
    out[voiced] = np.exp(z * target.f0_spread * intonation + math.log(target.f0_mean_hz))
    return out


class WorldVoice:
    """The WORLD conversion of one channel of one recording, segment by segment.

    The source's log-F0 statistics accumulate over the segments seen so far, and the target is fixed
    at the first segment with enough voiced frames, so a long recording keeps one voice throughout.
    """

    def __init__(self, candidates: Candidates, *, sr: int, settings: WorldSettings):
        self.candidates = candidates
        self.sr = sr
        self.settings = settings
        self._env_sum: np.ndarray | None = None
        self._env_count = 0
        self._sum = self._sum_sq = 0.0
        self._count = 0
        self._target: Target | None = None
        self._timbre_limit_db = settings.timbre_limit_db
        self.fell_back = False  # the per-recording check gave this voice the gentler target
        self.degraded = False  # ... or judged the recording noisy or narrowband, and limited the timbre offset
        self._warps: dict[tuple[int, Target], tuple] = {}
        # optional ``hook(f0, core_frames, target) -> f0`` replacing map_f0, e.g. the DP intonation release of
        # privspeech.voice.dp_intonation; it sees the segment's F0 and the slice of frames in its core
        self.f0_hook = None
        hop = settings.frame_period * sr / 1000.0
        self._min_voiced = math.ceil(MIN_VOICED_SECONDS * 1000.0 / settings.frame_period)
        self.grid = int(hop) if hop == int(hop) else 1

    @property
    def target(self) -> Target | None:
        """The chosen target, once enough speech has been seen."""
        return self._target

    def _update_stats(self, f0: np.ndarray) -> tuple[float, float]:
        logs = np.log(f0[f0 > 0])
        self._sum += float(logs.sum())
        self._sum_sq += float(np.square(logs).sum())
        self._count += logs.size
        if self._count == 0:
            return 0.0, DEFAULT_SPREAD
        mean = self._sum / self._count
        if self._count < self._min_voiced:
            return mean, DEFAULT_SPREAD
        return mean, math.sqrt(max(self._sum_sq / self._count - mean * mean, 0.0))

    def _choose(self, mean: float) -> Target:
        if self._target is not None:
            return self._target
        source_hz = math.exp(mean) if self._count else None
        target = self.candidates.choose(source_hz, min_semitones=self.settings.min_f0_distance)
        if self._count >= self._min_voiced:
            self._target = target
        return target

    def _spectral_maps(self, n_bins: int, target: Target):
        cached = self._warps.get((n_bins, target))
        if cached is None:
            warp = vtln_warp(n_bins, sr=self.sr, scale=target.formant_scale)
            gains = tilt_gains(n_bins, sr=self.sr, db_per_octave=target.tilt_db_per_octave) \
                if self.settings.tilt else None
            cached = self._warps[(n_bins, target)] = (warp, gains)
        return cached

    def _timbre_offset(self, params: Analysis, first: int, last: int, target: Target) -> np.ndarray:
        """Log-power offset (bins,): the source's long-term envelope detail out, the target's keyed shape in."""
        voiced = params.f0[first:last] > 0
        logs = np.log(params.sp[first:last][voiced])
        if self._env_sum is None:
            self._env_sum = np.zeros(params.sp.shape[1])
        self._env_sum += logs.sum(axis=0)
        self._env_count += logs.shape[0]
        n_bins = params.sp.shape[1]
        f = np.linspace(0.0, self.sr / 2.0, n_bins)
        shape = np.zeros(n_bins)
        if self._env_count:
            mean = self._env_sum / self._env_count
            sigma = TIMBRE_SMOOTH_HZ / (f[1] - f[0])
            shape = mean - gaussian(mean, sigma)
        offset = shape - keyed_timbre(target, f, self.settings.timbre_db)
        if self._timbre_limit_db is None:
            return offset
        limit = self._timbre_limit_db * math.log(10.0) / 10.0
        return limit * np.tanh(offset / limit)

    def _envelope(self, params: Analysis, first: int, last: int, target: Target, warp, gains) -> np.ndarray:
        """The converted spectral envelope: the keyed timbre in place of the source's, warped, tilted."""
        sp = np.exp(np.log(params.sp) - self._timbre_offset(params, first, last, target))
        sp = apply_warp(sp, warp)
        if gains is not None:
            sp *= gains
        return sp

    def _aperiodicity(self, ap: np.ndarray, warp) -> np.ndarray:
        """The source's own aperiodicity, warped with the envelope (a keyed change of breathiness did not hide the
        speaker better: see docs/experiments.md)."""
        return np.clip(apply_warp(ap, warp), 0.0, 1.0)

    def convert(self, x: np.ndarray, core: slice) -> np.ndarray:
        """Convert a mono segment, shape (n,); `core` is the part not shared with neighbouring segments.

        Only frames in `core` update the source statistics. Returns float64, shape (n,).
        """
        n = x.shape[0]
        padded = np.zeros(max(n, int(MIN_SECONDS * self.sr)))
        padded[:n] = x
        params = analyse(padded, sr=self.sr, settings=self.settings)
        hop = self.settings.frame_period * self.sr / 1000.0
        first, last = int(math.ceil(core.start / hop)), int(math.ceil(min(core.stop, n) / hop))
        mean, spread = self._update_stats(params.f0[first:last])
        checking = self._target is None and self.settings.fallback
        saved = (None if self._env_sum is None else self._env_sum.copy(), self._env_count) if checking else None
        target = self._choose(mean)
        checking = checking and self._target is not None  # the target was fixed in this segment: check it once
        if checking and degraded(x[core], params, first, last, sr=self.sr):
            self._limit_timbre(DEGRADED_TIMBRE_LIMIT_DB)
            self.degraded = True
        if self.f0_hook is not None:
            f0 = self.f0_hook(params.f0, slice(first, last), target)
        else:
            f0 = map_f0(params.f0, source_mean=mean, source_spread=spread, target=target,
                        intonation=self.settings.intonation)
        np.minimum(f0, 0.45 * self.sr, out=f0)
        y = self._synthesize(params, f0, first, last, target)
        if checking and self._lost_voicing(x, params.f0[first:last], y, first, last) > FALLBACK_LOST_VOICING:
            # the same F0 target (and so the same F0, which a DP hook released once), a smaller move of the rest
            self._target = target = replace(target, formant_scale=target.formant_scale ** FALLBACK_FORMANT_POWER)
            self._limit_timbre(FALLBACK_TIMBRE_LIMIT_DB)
            self._env_sum, self._env_count = saved  # the segment's envelope statistics are taken again
            self.fell_back = True
            y = self._synthesize(params, f0, first, last, target)
        out = np.zeros(n)
        m = min(n, y.shape[0])
        out[:m] = y[:m]
        return out

    def _limit_timbre(self, db: float) -> None:
        """Soft-limit this voice's timbre offset to `db` from now on (never loosen a tighter limit)."""
        self._timbre_limit_db = db if self._timbre_limit_db is None else min(self._timbre_limit_db, db)

    def _synthesize(self, params: Analysis, f0: np.ndarray, first: int, last: int, target: Target) -> np.ndarray:
        """WORLD synthesis with the converted F0 `f0` and the envelope and aperiodicity converted to `target`."""
        warp, gains = self._spectral_maps(params.sp.shape[1], target)
        sp = self._envelope(params, first, last, target, warp, gains)
        ap = self._aperiodicity(params.ap, warp)
        return pyworld.synthesize(f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), self.sr,
                                  self.settings.frame_period)

    def _lost_voicing(self, x: np.ndarray, source_f0: np.ndarray, y: np.ndarray, first: int, last: int) -> float:
        """Share of the core's frames voiced in the source `x` that the F0 tracker finds unvoiced in the output `y`
        (brought to the source's loudness first, as the stream does: trackers judge voicing by level too)."""
        voiced = source_f0 > 0
        if not voiced.any():
            return 0.0
        y = y[:x.shape[0]] * match_gain(x, y[:x.shape[0]], sr=self.sr)
        heard = track_f0(y, sr=self.sr, settings=self.settings)[first:last] > 0
        m = min(len(heard), len(voiced))
        return float((voiced[:m] & ~heard[:m]).sum() / voiced.sum())
