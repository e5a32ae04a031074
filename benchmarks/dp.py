"""Throughput and memory of the exact lattice samplers, next to numpy's (unsafe) float samplers in the same run.

Usage: python benchmarks/dp.py [--samples 20000000] [--repeat 3]
Pins the process to one CPU. For several scales, draws SAMPLES values with privspeech's discrete Laplace
and discrete Gaussian (ChaCha20 generator, chunked) and with numpy's default_rng().laplace / .normal, and
prints the best of REPEAT runs in million samples per CPU second (and per wall second); then the peak
traced memory (tracemalloc) of drawing all samples chunk by chunk, which must not grow with SAMPLES; then
`add_noise` on corpus speech. Targets (CPU time): Laplace >= 10 M/s, Gaussian >= 5 M/s. Exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from privspeech.dp.audio_noise import add_noise  # noqa: E402
from privspeech.dp.samplers import CHUNK, DiscreteGaussian, DiscreteLaplace  # noqa: E402

LAPLACE_SCALES = [3.0, 65535 / 8, 160 * 65535 / 8]  # small; one int16 sample at epsilon 8; window:160 at 8
GAUSSIAN_SIGMA2 = [10.0, 65535**2 / 16, 160 * 65535**2 / 16]  # small; one sample at rho 8; window:160 at rho 8
TARGETS = {"discrete-laplace": 10.0, "discrete-gaussian": 5.0}


def best_rate(draw, n: int, repeat: int) -> tuple[float, float]:
    """Million samples per CPU second and per wall second, best of `repeat` runs of draw(n).

    CPU time is the figure for "one core" on a shared machine: wall time also counts waiting for the CPU.
    """
    cpu = wall = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        draw(n)
        cpu = min(cpu, time.process_time() - start_cpu)
        wall = min(wall, time.perf_counter() - start)
    return n / cpu / 1e6, n / wall / 1e6


def chunked_peak(sampler, n: int) -> int:
    tracemalloc.start()
    try:
        for _ in sampler.chunks(n):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    n = args.samples
    unsafe = np.random.default_rng()
    missed = []
    print(f"{n:,} samples per run, best of {args.repeat}, one CPU; chunk {CHUNK:,} samples")
    print("M/s: million samples per CPU second (wall-clock figure in brackets)")
    print(f"{'sampler':<20}{'scale / sigma^2':>16}{'setup ms':>10}{'M/s':>16}{'numpy M/s':>16}{'ratio':>7}")
    for cls, params, numpy_draw in ((DiscreteLaplace, LAPLACE_SCALES, lambda p, k: unsafe.laplace(0, p, k)),
                                    (DiscreteGaussian, GAUSSIAN_SIGMA2, lambda p, k: unsafe.normal(0, p**0.5, k))):
        for p in params:
            start = time.perf_counter()
            sampler = cls(p)
            setup = (time.perf_counter() - start) * 1e3
            ours, ours_wall = best_rate(sampler.sample, n, args.repeat)
            theirs, theirs_wall = best_rate(lambda k: numpy_draw(p, k), n, args.repeat)
            print(f"{sampler.name:<20}{p:>16.6g}{setup:>10.1f}{ours:>8.1f} ({ours_wall:4.1f}){theirs:>8.1f} "
                  f"({theirs_wall:4.1f}){ours / theirs:>7.2f}")
            if ours < TARGETS[sampler.name]:
                missed.append(f"{sampler.name} at {p:g}: {ours:.1f} M/s < {TARGETS[sampler.name]} M/s")
    print("\npeak traced memory while drawing chunk by chunk (the output of each chunk discarded):")
    for sampler in (DiscreteLaplace(65535 / 8), DiscreteGaussian(65535**2 / 16)):
        peaks = [chunked_peak(sampler, k) for k in (n // 20, n)]
        print(f"  {sampler.name:<20} {n // 20:>12,} samples: {peaks[0] / 2**20:6.1f} MiB   "
              f"{n:>12,} samples: {peaks[1] / 2**20:6.1f} MiB   (all {n:,} as int64: {n * 8 / 2**20:.0f} MiB)")
        if peaks[1] > 1.2 * peaks[0] + 2**20:
            missed.append(f"{sampler.name}: memory grows with the number of samples")
    speech = np.concatenate([sf.read(p, dtype="int16")[0] for p in sorted((REPO.parent / "shared" / "corpus" /
                                                                           "vctk").rglob("*.wav"))])
    for mechanism, budget in (("laplace", {"epsilon": 8.0}), ("gaussian", {"rho": 8.0})):
        start = time.process_time()
        out = add_noise(speech, mechanism=mechanism, unit="window:160", **budget)
        seconds = time.process_time() - start
        print(f"\nadd_noise {mechanism} window:160 on {speech.size / 16000:.0f} s of VCTK int16 speech: "
              f"{speech.size / seconds / 1e6:.1f} M samples per CPU second, "
              f"{speech.size / 16000 / seconds:.0f}x real time, "
              f"SNR {out.snr_db:.1f} dB (calibrated {out.expected_snr_db:.1f} dB)")
    for line in missed:
        print("MISSED:", line)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
