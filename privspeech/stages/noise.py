"""The `noise` stage: each record's audio released under event-level DP, block by block, with its ledger entry."""

from __future__ import annotations

from dataclasses import dataclass

from ..dp.audio_noise import NoiseStream
from ..dp.samplers import CHUNK
from ..manifest import Record
from ..task import Task
from . import Settings
from .records import output_record, seeded_rng, transcode

# PCM subtypes noised on their integer grid: the sample type read (24-bit audio comes on the 32-bit grid)
PCM = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32"}
BLOCK_FRAMES = 16 * CHUNK  # frames per block: a multiple of CHUNK, so the noise is drawn as for the whole file


@dataclass(frozen=True)
class NoiseSettings(Settings):
    """The `noise` options. `seed` (tests only) derives a reproducible, NOT PRIVATE stream per record."""

    mechanism: str = "laplace"
    unit: str = "sample"
    epsilon: float | None = None
    delta: float | None = None
    rho: float | None = None
    grid_bits: int = 15
    seed: str | None = None


def noise_record(task: Task, settings: NoiseSettings) -> Record:
    """Add calibrated lattice noise to the task's audio, written atomically, with the ledger entry.

    PCM files (16, 24, 32 bit) are noised on their integer sample grid and written back in their subtype
    (24-bit audio on the 32-bit grid, whose low bits the write drops: post-processing); other formats are
    noised as floats on the ``2**-grid_bits`` grid.
    """
    def stream(info):
        return NoiseStream(PCM.get(info.subtype, "float64"), info.channels, epsilon=settings.epsilon,
                           delta=settings.delta, rho=settings.rho, mechanism=settings.mechanism, unit=settings.unit,
                           grid_bits=settings.grid_bits, rng=seeded_rng(settings.seed, task.record))

    noised, sha256, info = transcode(task, stream, block_frames=BLOCK_FRAMES,
                                     dtype=lambda info: PCM.get(info.subtype, "float64"))
    return output_record(task, sha256=sha256, audio=info, op="noise", **noised.entry)
