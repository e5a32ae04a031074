"""The `hard` evaluation set: speech degraded the ways real recordings are, one slice per degradation.

Built at run time from the shared corpus, deterministically (the same bytes every time, on one platform):
LibriSpeech speakers beyond the `mixed` set's impostors and the back-end's cohort, each recording of at least
8 s cut at its quietest 20 ms near the middle into an enrollment and a trial half (as in the `halves` set), the
speakers dealt out to the slices in corpus order (half women, half men), and both halves of a speaker degraded
the same way with the same drawn settings (one session, one channel):

- ``telephone``: band-limited to 300-3400 Hz, resampled to 8 kHz and passed through G.711 mu-law (8 bits);
- ``babble``: four other LibriSpeech speakers talking at once, 5-15 dB below the speech (SNR of the whole file);
- ``reverb``: convolved with an impulse response of a direct path and an exponentially decaying noise tail,
  RT60 0.3-0.8 s, direct-to-reverberant ratio 0-10 dB (a room a few metres from the microphone);
- ``quiet``: at -35 dBFS RMS, written as 16-bit PCM (so the quantisation noise is the file's own);
- ``clipped``: amplified until 1-5 % of the samples pass full scale, and clipped there;
- ``fsdd``: the six FSDD speakers (8 kHz digits, ten files each) as they are.

Utterance ids are ``SLICE/...`` so every figure can be split by slice. The random draws come from NumPy
generators seeded by each speaker's id: a benchmark's reproducibility, nothing that protects anyone.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.signal
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]

from privspeech.evaluate import pairs  # noqa: E402
from privspeech.voice.stream import quietest_point  # noqa: E402

SLICES = ("telephone", "babble", "reverb", "quiet", "clipped", "fsdd")
DEGRADED = SLICES[:-1]
SKIP = 80  # LibriSpeech speakers 0-19 are the mixed set's impostors (and the babble talkers), 20-79 the cohort
MIN_SECONDS = 8.0
BABBLE_TALKERS = 4
MU = 255.0


def build(corpus: Path, workdir: Path, *, per_slice: int = 24, skip: int = SKIP) -> list[pairs.Utterance]:
    """Write the hard set's files into `workdir` and return its utterances (ids ``SLICE/...``).

    Parameters
    ----------
    corpus : Path
        The shared corpus (``speakers.tsv``, ``librispeech-train-clean-100/``, ``fsdd-concat/``).
    workdir : Path
        Where the degraded files go (created if needed).
    per_slice : int
        Speakers per degraded slice (even: half women, half men).
    skip : int
        LibriSpeech speakers (in corpus order) kept out: the `mixed` set's and the cohort's; the first 20 of them
        (at most) are the babble talkers.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    genders = _genders(corpus)
    libri = _librispeech(corpus, genders)
    babble_pool = [pairs.load(u.original)[0] for u in libri[:min(20, skip)]]
    out: list[pairs.Utterance] = []
    for name, u, half, part, sr in clean_halves(corpus, per_slice=per_slice, skip=skip):
        if half == "a":  # both halves of a speaker share one drawn degradation
            degrade = _Degradation(name, np.random.default_rng(_seed(f"{name}/{u.speaker}")), babble_pool)
        z, zsr = degrade(part, sr)
        path = workdir / f"{name}-{u.speaker}_{half}.wav"
        sf.write(path, z, zsr, subtype="PCM_16")
        out.append(pairs.Utterance(utterance_id(name, u, half), u.speaker, str(path), gender=u.gender))
    for u in pairs.from_folder(corpus / "fsdd-concat", genders=genders):
        out.append(pairs.Utterance(f"fsdd/{u.id}", u.speaker, u.original, gender=u.gender))
    return out


def clean_halves(corpus: Path, *, per_slice: int = 24, skip: int = SKIP):
    """The degraded slices' LibriSpeech halves before degradation, in the set's order: (slice, recording, half
    'a' or 'b', samples, rate)."""
    for name, speakers in zip(DEGRADED, _deal(_librispeech(corpus, _genders(corpus))[skip:], per_slice)):
        for u in speakers:
            y, sr = pairs.load(u.original)
            for half, part in zip("ab", split(y, sr)):
                yield name, u, half, part, sr


def utterance_id(name: str, recording: pairs.Utterance, half: str) -> str:
    return f"{name}/{recording.id}#{half}"


def _genders(corpus: Path) -> dict[str, str]:
    return {r["speaker"]: r["gender"] for r in corpus_rows(corpus)}


def _librispeech(corpus: Path, genders: dict[str, str]) -> list[pairs.Utterance]:
    return pairs.from_folder(corpus / "librispeech-train-clean-100", genders=genders, pattern="*.flac")


def slice_of(utterance_id: str) -> str:
    return utterance_id.split("/", 1)[0]


def split(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """A recording cut at its quietest 20 ms within 1 s of the middle: (enrollment half, trial half)."""
    lo = len(y) // 2 - sr
    cut = lo + quietest_point(np.square(y[lo:lo + 2 * sr]), int(0.02 * sr))
    return y[:cut], y[cut:]


def corpus_rows(corpus: Path) -> list[dict[str, str]]:
    """The rows of the corpus's speakers.tsv (path, speaker, gender, corpus, duration_s, sample_rate, transcript)."""
    with open(corpus / "speakers.tsv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _deal(recordings: Sequence[pairs.Utterance], per_slice: int) -> list[list[pairs.Utterance]]:
    """Long-enough recordings dealt to the degraded slices in corpus order, `per_slice // 2` of each gender."""
    want = {"F": per_slice // 2, "M": per_slice - per_slice // 2}
    queues: dict[str, list[pairs.Utterance]] = {"F": [], "M": []}
    for u in recordings:
        if u.gender in queues and sf.info(u.original).duration >= MIN_SECONDS:
            queues[u.gender].append(u)
    slices = []
    for i in range(len(DEGRADED)):
        chosen = [u for g in ("F", "M") for u in queues[g][i * want[g]:(i + 1) * want[g]]]
        if len(chosen) < per_slice:
            raise ValueError(f"the corpus has too few LibriSpeech speakers for {per_slice} per slice")
        slices.append(chosen)
    return slices


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class _Degradation:
    """One speaker's degradation: the settings are drawn once, so both halves share them."""

    def __init__(self, name: str, rng: np.random.Generator, babble_pool: Sequence[np.ndarray]):
        self.name, self.rng = name, rng
        self.snr_db = rng.uniform(5.0, 15.0)
        self.rt60 = rng.uniform(0.3, 0.8)
        self.drr_db = rng.uniform(0.0, 10.0)
        self.clipped_share = rng.uniform(0.01, 0.05)
        picks = rng.choice(len(babble_pool), size=BABBLE_TALKERS, replace=False)
        self.talkers = [babble_pool[i] for i in picks]

    def __call__(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        return getattr(self, "_" + self.name)(y, sr)

    def _telephone(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        band = scipy.signal.butter(6, (300.0, 3400.0), btype="bandpass", fs=sr, output="sos")
        narrow = scipy.signal.resample_poly(scipy.signal.sosfilt(band, y), 8000, sr)
        narrow *= 10 ** (-20 / 20) / _rms(narrow)  # -20 dBFS, a nominal telephone level
        return mu_law(_fit(narrow)), 8000

    def _babble(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        noise = np.zeros_like(y)
        for talker in self.talkers:
            start = int(self.rng.integers(0, max(1, len(talker) - len(y))))
            part = np.resize(talker[start:], len(y))
            noise += part / _rms(part)
        noise *= _rms(y) / _rms(noise) * 10 ** (-self.snr_db / 20)
        return _fit(y + noise), sr

    def _reverb(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        t = np.arange(int(self.rt60 * sr)) / sr
        response = self.rng.standard_normal(t.size) * 10 ** (-3.0 * t / self.rt60)
        response *= 10 ** (-self.drr_db / 20) / np.sqrt(np.sum(np.square(response[1:])))
        response[0] = 1.0  # the direct path
        wet = scipy.signal.fftconvolve(y, response)[:len(y)]
        return _fit(wet * _rms(y) / _rms(wet)), sr

    def _quiet(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        return y * 10 ** (-35 / 20) / _rms(y), sr

    def _clipped(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        level = np.quantile(np.abs(y), 1.0 - self.clipped_share)
        return np.clip(y / level, -1.0, 32767 / 32768), sr


def mu_law(x: np.ndarray) -> np.ndarray:
    """A G.711-style mu-law round trip: compand, quantise to 8 bits, expand (values in [-1, 1])."""
    x = np.clip(x, -1.0, 1.0)
    code = np.round(np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU) * 127.0)
    c = code / 127.0
    return np.sign(c) * np.expm1(np.abs(c) * np.log1p(MU)) / MU


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y)))) or 1e-12


def _fit(y: np.ndarray) -> np.ndarray:
    """Scaled down just enough that no sample passes full scale."""
    peak = float(np.max(np.abs(y)))
    return y * (0.99 / peak) if peak > 0.99 else y
