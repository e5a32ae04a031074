"""The `noise` stage: each record's audio released under event-level DP, with its ledger entry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import audio
from ..manifest import Record
from ..pipeline import Task
from ..transform import output_record, verify_input
from .audio_noise import add_noise
from .rng import SecureRandom

# PCM subtypes noised on their integer grid: the dtype read and the full-scale factor of soundfile's floats
PCM = {"PCM_16": (np.int16, 2.0**15), "PCM_24": (np.int32, 2.0**31), "PCM_32": (np.int32, 2.0**31)}


@dataclass(frozen=True)
class NoiseSettings:
    """The `noise` options. `seed` (tests only) derives a reproducible, NOT PRIVATE stream per record."""

    mechanism: str = "laplace"
    unit: str = "sample"
    epsilon: float | None = None
    delta: float | None = None
    rho: float | None = None
    grid_bits: int = 15
    seed: str | None = None


def noise_record(task: Task, *, settings: NoiseSettings) -> Record:
    """Read the task's audio, add calibrated lattice noise, write it atomically, append the ledger entry.

    PCM files (16, 24, 32 bit) are noised on their integer sample grid and written back in their subtype
    (24-bit audio on the 32-bit grid, whose low bits the write drops: post-processing); other formats are
    noised as floats on the ``2**-grid_bits`` grid.
    """
    verify_input(task.record)
    loaded = audio.read(task.record.audio_filepath)
    for message in loaded.warnings:
        task.warn(message)
    data = loaded.data
    if loaded.info.subtype in PCM:
        dtype, full_scale = PCM[loaded.info.subtype]
        data = np.rint(data * full_scale).astype(dtype)
    rng = None
    if settings.seed is not None:
        rng = SecureRandom(f"{settings.seed}/{task.record.id or task.record.audio_filepath}")
    result = add_noise(data, epsilon=settings.epsilon, delta=settings.delta, rho=settings.rho,
                       mechanism=settings.mechanism, unit=settings.unit, grid_bits=settings.grid_bits, rng=rng)
    sha = audio.write(task.dest, result.audio, sample_rate=loaded.info.sample_rate, subtype=loaded.info.subtype,
                      force=task.force)
    info = dataclasses.replace(loaded.info, frames=data.shape[0])
    return output_record(task, sha256=sha, info=info, op="noise", **result.entry)
