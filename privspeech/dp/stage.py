"""The `noise` stage: each record's audio released under event-level DP, block by block, with its ledger entry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import audio
from ..manifest import Record
from ..task import Task
from ..transform import output_record, verify_input
from .audio_noise import NoiseStream
from .rng import SecureRandom
from .samplers import CHUNK

# PCM subtypes noised on their integer grid: the sample type read (24-bit audio comes on the 32-bit grid)
PCM = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32"}
BLOCK_FRAMES = 16 * CHUNK  # frames per block: a multiple of CHUNK, so the noise is drawn as for the whole file


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
    """Read the task's audio block by block, add calibrated lattice noise, write it atomically, append the
    ledger entry.

    PCM files (16, 24, 32 bit) are noised on their integer sample grid and written back in their subtype
    (24-bit audio on the 32-bit grid, whose low bits the write drops: post-processing); other formats are
    noised as floats on the ``2**-grid_bits`` grid. Memory stays bounded by the block size.
    """
    verify_input(task.record)
    rng = None
    if settings.seed is not None:
        rng = SecureRandom(f"{settings.seed}/{task.record.id or task.record.audio_filepath}")
    with audio.open_input(task.record.audio_filepath) as reader:
        info = reader.info
        dtype = PCM.get(info.subtype, "float64")
        stream = NoiseStream(np.dtype(dtype), info.channels, epsilon=settings.epsilon, delta=settings.delta,
                             rho=settings.rho, mechanism=settings.mechanism, unit=settings.unit,
                             grid_bits=settings.grid_bits, rng=rng)
        with audio.open_output(task.dest, sample_rate=info.sample_rate, channels=info.channels,
                               subtype=info.subtype, force=task.force) as (snd, result):
            for block in reader.blocks(BLOCK_FRAMES, dtype=dtype):
                snd.write(stream.process(block))
    for message in reader.warnings:
        task.warn(message)
    return output_record(task, sha256=result.sha256, info=reader.info, op="noise", **stream.entry)
