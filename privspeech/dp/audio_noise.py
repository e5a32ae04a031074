"""Event-level DP noise on audio samples, on the integer lattice.

Two recordings are neighbours when they differ only in one window of ``W`` consecutive frames (all
channels); ``unit='sample'`` is ``W = 1``. PCM audio is noised on its integer sample grid; float audio
is first clipped to [-1, 1] (this bounds the sensitivity) and rounded to the grid of step ``2**-k``,
where ±1 are grid points, so one sample moves at most ``2**(k+1)`` steps, rounding included. Clipping
the noisy output to the valid range is post-processing and costs no privacy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError, UsageError
from .mechanisms import Mechanism, calibrate
from .rng import SecureRandom
from .samplers import CHUNK

PCM_RANGES = {np.dtype(np.int16): (-2**15, 2**15 - 1), np.dtype(np.int32): (-2**31, 2**31 - 1)}
FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
GRID_BITS = 15


@dataclass
class NoisedAudio:
    """The released signal and what was done to it.

    Attributes
    ----------
    audio : np.ndarray
        Same shape and dtype as the input.
    entry : dict
        Ledger fields for ``record.with_op("noise", **entry)``.
    snr_db : float
        Measured: input power over the power of (output - input), both on the lattice, clipping included.
        It depends on the private input and is not covered by the guarantee: show it to the operator,
        do not publish it.
    expected_snr_db : float
        Input power over the calibrated noise variance (what the SNR is before clipping, on average).
    """

    audio: np.ndarray
    entry: dict[str, Any]
    snr_db: float
    expected_snr_db: float


def parse_unit(unit: str) -> int:
    """The window length W in frames for ``'sample'`` (1) or ``'window:W'``."""
    if unit == "sample":
        return 1
    name, _, value = str(unit).partition(":")
    if name == "window" and value.isdigit() and int(value) > 0:
        return int(value)
    raise UsageError(f"unknown privacy unit {unit!r}", hint="use 'sample' or 'window:W' with W >= 1 frames")


def add_noise(y: np.ndarray, *, epsilon: float | None = None, delta: float | None = None, rho: float | None = None,
              mechanism: str = "laplace", unit: str = "sample", grid_bits: int = GRID_BITS,
              rng: SecureRandom | None = None) -> NoisedAudio:
    """Release audio under event-level DP with lattice Laplace or Gaussian noise.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, channels)
        int16 or int32 PCM, or float32/float64 in [-1, 1] (clipped to it).
    epsilon, delta, rho : float, optional
        The budget: see :func:`privspeech.dp.mechanisms.calibrate`.
    mechanism : {'laplace', 'gaussian'}
    unit : str
        ``'sample'`` or ``'window:W'``: what two neighbouring recordings differ in.
    grid_bits : int
        ``k`` of the ``2**-k`` grid for float audio (1..24).
    rng : SecureRandom, optional
        Defaults to a fresh generator keyed from ``os.urandom``.

    Returns
    -------
    NoisedAudio
    """
    if not isinstance(y, np.ndarray) or y.ndim not in (1, 2) or y.size == 0:
        raise DataError("audio must be a non-empty array of shape (n,) or (n, channels)")
    stream = NoiseStream(y.dtype, 1 if y.ndim == 1 else y.shape[1], epsilon=epsilon, delta=delta, rho=rho,
                         mechanism=mechanism, unit=unit, grid_bits=grid_bits, rng=rng)
    out = stream.process(y)
    return NoisedAudio(out, stream.entry, stream.snr_db, stream.expected_snr_db)


class NoiseStream:
    """:func:`add_noise` block by block, in memory bounded by the block size.

    The noise is drawn in chunks of :data:`~privspeech.dp.samplers.CHUNK` samples of each block (flattened,
    channels interleaved), so blocks that all hold a multiple of CHUNK samples, but the last, get exactly the
    noise :func:`add_noise` gives the whole signal from the same generator. Other block sizes get noise as
    strong, just not the same draws. Parameters are those of :func:`add_noise`, with the sample type and the
    channel count instead of the signal.
    """

    def __init__(self, dtype: np.dtype, channels: int, *, epsilon: float | None = None, delta: float | None = None,
                 rho: float | None = None, mechanism: str = "laplace", unit: str = "sample",
                 grid_bits: int = GRID_BITS, rng: SecureRandom | None = None):
        self.dtype = np.dtype(dtype)
        self.channels = channels
        self.mechanism, self.entry = noise_mechanism(self.dtype, channels, epsilon=epsilon, delta=delta, rho=rho,
                                                     mechanism=mechanism, unit=unit, grid_bits=grid_bits, rng=rng)
        self._low, self._high = _range(self.dtype, grid_bits)
        self._float = self.dtype in FLOAT_TYPES
        self._scale, self._step = 2.0 ** grid_bits, 2.0 ** -grid_bits
        self.samples = 0
        self._signal_power = self._error_power = 0.0

    def process(self, block: np.ndarray) -> np.ndarray:
        """The released block: same shape and dtype as `block`, shape (n,) or (n, channels)."""
        width = 1 if block.ndim == 1 else block.shape[1]
        if block.dtype != self.dtype or block.ndim not in (1, 2) or width != self.channels:
            raise DataError(f"audio block of {block.dtype} with shape {block.shape} does not match the stream "
                            f"({self.dtype}, {self.channels} channel(s))")
        if self._float and not np.isfinite(block).all():
            raise DataError("audio holds NaN or infinite samples")
        flat = block.reshape(-1)
        out = np.empty_like(flat)
        for start, noise in zip(range(0, flat.size, CHUNK), self.mechanism.sampler.chunks(flat.size)):
            part = flat[start:start + CHUNK]
            if self._float:
                clean = np.rint(np.clip(part.astype(np.float64), -1.0, 1.0) * self._scale).astype(np.int64)
            else:
                clean = part.astype(np.int64)
            released = np.clip(clean + noise, self._low, self._high)
            out[start:start + CHUNK] = released * self._step if self._float else released
            self._signal_power += float(np.square(clean, dtype=np.float64).sum())  # not np.dot: no BLAS threads
            self._error_power += float(np.square(released - clean, dtype=np.float64).sum())
        self.samples += flat.size
        return out.reshape(block.shape)

    def flush(self) -> np.ndarray:
        """Nothing: each block is released whole."""
        return np.empty((0, self.channels), self.dtype)

    @property
    def snr_db(self) -> float:
        """Measured so far (see :class:`NoisedAudio`): not covered by the guarantee, not for publication."""
        return _db(self._signal_power, self._error_power)

    @property
    def expected_snr_db(self) -> float:
        """Input power so far over the calibrated noise variance."""
        return _db(self._signal_power / max(self.samples, 1), self.mechanism.sampler.variance)


def noise_mechanism(dtype: np.dtype, channels: int, *, epsilon: float | None = None, delta: float | None = None,
                    rho: float | None = None, mechanism: str = "laplace", unit: str = "sample",
                    grid_bits: int = GRID_BITS, rng: SecureRandom | None = None) -> tuple[Mechanism, dict[str, Any]]:
    """The calibrated mechanism and ledger entry for audio of `dtype` and `channels` (no audio needed).

    Parameters are those of :func:`add_noise`.
    """
    window = parse_unit(unit)
    dtype = np.dtype(dtype)
    low, high = _range(dtype, grid_bits)
    if dtype in PCM_RANGES:
        lattice = f"{dtype.name} sample grid"
        bound = f"the {dtype.name} range: one sample moves at most {high - low} steps"
    else:
        lattice = f"2^-{grid_bits} grid on [-1, 1]"
        bound = (f"input clipped to [-1, 1] and rounded to the 2^-{grid_bits} grid (±1 are grid points, so rounding "
                 f"adds nothing): one sample moves at most {high - low} steps")
    span, count = high - low, window * channels
    mech = calibrate(mechanism=mechanism, l1=count * span, l2_squared=count * span * span, epsilon=epsilon,
                     delta=delta, rho=rho, rng=rng)
    entry = {**mech.fields, "unit": unit if window > 1 else "sample", "window": window, "channels": channels,
             "sensitivity_bound": f"{count} sample value(s) per unit; {bound}", "lattice": lattice}
    return mech, entry


def _range(dtype: np.dtype, grid_bits: int) -> tuple[int, int]:
    """The lattice's lowest and highest points for audio of `dtype`."""
    if dtype in PCM_RANGES:
        return PCM_RANGES[dtype]
    if dtype not in FLOAT_TYPES:
        raise DataError(f"unsupported sample type {dtype}", hint="use int16, int32, float32 or float64 audio")
    if isinstance(grid_bits, bool) or not isinstance(grid_bits, int) or not 1 <= grid_bits <= 24:
        raise UsageError(f"grid bits must be an integer from 1 to 24, not {grid_bits!r}")
    return -2**grid_bits, 2**grid_bits


def _db(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)
