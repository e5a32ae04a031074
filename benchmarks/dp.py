"""Throughput and memory of the exact lattice samplers, next to numpy's (unsafe) float samplers in the same run,
and of the `privspeech noise` command end to end on long files.

Usage: python benchmarks/dp.py [--samples 20000000] [--repeat 3] [--cli-samples 48000000,115200000]
                               [--cli-only] [--dir DIR] [--compare CHECKOUT]
Pins the process to one CPU. For several scales, draws SAMPLES values with privspeech's discrete Laplace
and discrete Gaussian (ChaCha20 generator, chunked) and with numpy's default_rng().laplace / .normal, and
prints the best of REPEAT runs in million samples per CPU second (and per wall second); then the peak
traced memory (tracemalloc) of drawing all samples chunk by chunk, which must not grow with SAMPLES; then
`add_noise` on corpus speech. Targets (CPU time): Laplace >= 10 M/s, Gaussian >= 5 M/s.

Then, for each size in --cli-samples, builds a 16 kHz int16 WAV of that many samples (the 16 kHz speech in
sample_audio/, repeated) in DIR and runs `privspeech noise FILE --epsilon 8 --unit window:160 -o OUT` in a
process of its own (not pinned), printing wall seconds, samples per wall second (start-up, hashing and the
atomic write included) and the peak RSS; with --compare, the same command from another checkout (e.g. an
older commit from `git archive`) runs right after, for before/after figures under the same conditions.
Targets: >= 10 M samples/s on 48 M samples; peak RSS < 300 MiB on a 2-hour file (115.2 M samples).
Exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crypto import timed  # noqa: E402 (benchmarks/crypto.py: GNU time's figures of one run)
from privspeech.dp.audio_noise import add_noise  # noqa: E402
from privspeech.dp.samplers import CHUNK, DiscreteGaussian, DiscreteLaplace  # noqa: E402

LAPLACE_SCALES = [3.0, 65535 / 8, 160 * 65535 / 8]  # small; one int16 sample at epsilon 8; window:160 at 8
GAUSSIAN_SIGMA2 = [10.0, 65535**2 / 16, 160 * 65535**2 / 16]  # small; one sample at rho 8; window:160 at rho 8
TARGETS = {"discrete-laplace": 10.0, "discrete-gaussian": 5.0}
CLI_RATE_TARGET = 10.0  # M samples per wall second, end to end, on files of at least CLI_RATE_SAMPLES
CLI_RATE_SAMPLES = 48_000_000
CLI_RSS_TARGET = 300.0  # MiB
RATE = 16000


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


def long_speech(path: Path, samples: int) -> None:
    """A 16 kHz int16 mono WAV of `samples` samples: the 16 kHz speech of sample_audio/, repeated."""
    speech = np.concatenate([sf.read(p, dtype="int16")[0] for p in sorted((REPO / "sample_audio").rglob("*"))
                             if p.suffix in (".wav", ".flac") and sf.info(p).samplerate == RATE])
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as out:
        written = 0
        while written < samples:
            piece = speech[:samples - written]
            out.write(piece)
            written += piece.size


def noise_cli(src: Path, dest: Path, checkout: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of `privspeech noise` (from `checkout`) on `src`."""
    cmd = [sys.executable, "-m", "privspeech", "noise", str(src), "--epsilon", "8", "--unit", "window:160",
           "-o", str(dest), "--force", "-q"]
    return timed(cmd, src.parent, env=dict(os.environ, PYTHONPATH=str(checkout)))  # cwd: not a checkout


def cli_runs(sizes: list[int], folder: str | None, compare: Path | None) -> list[str]:
    """Time the noise command on a long file of each size; returns the targets missed."""
    missed = []
    checkouts = [("this checkout", REPO)] + ([(f"--compare {compare}", compare)] if compare else [])
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        print(f"\nprivspeech noise --epsilon 8 --unit window:160 -o OUT on 16 kHz int16 speech, in {tmp}:")
        print(f"{'samples':>13}{'minutes':>8}  {'checkout':<40}{'wall s':>8}{'CPU s':>7}{'M/s':>7}{'peak RSS MiB':>14}")
        for samples in sizes:
            src = Path(tmp) / f"long-{samples}.wav"
            long_speech(src, samples)
            for label, checkout in checkouts:
                wall, cpu, rss = noise_cli(src, Path(tmp) / "out.wav", checkout)
                rate = samples / wall / 1e6
                print(f"{samples:>13,}{samples / RATE / 60:>8.0f}  {label:<40}{wall:>8.1f}{cpu:>7.1f}{rate:>7.1f}"
                      f"{rss:>14.0f}")
                if checkout is REPO and samples >= CLI_RATE_SAMPLES and rate < CLI_RATE_TARGET:
                    missed.append(f"noise CLI on {samples:,} samples: {rate:.1f} M/s < {CLI_RATE_TARGET} M/s")
                if checkout is REPO and rss >= CLI_RSS_TARGET:
                    missed.append(f"noise CLI on {samples:,} samples: peak RSS {rss:.0f} MiB >= {CLI_RSS_TARGET} MiB")
            src.unlink()
    return missed


def samplers(n: int, repeat: int) -> list[str]:
    """The sampler and add_noise figures, pinned to one CPU; returns the targets missed."""
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        return _samplers(n, repeat)
    finally:
        os.sched_setaffinity(0, cpus)


def _samplers(n: int, repeat: int) -> list[str]:
    unsafe = np.random.default_rng()
    missed = []
    print(f"{n:,} samples per run, best of {repeat}, one CPU; chunk {CHUNK:,} samples")
    print("M/s: million samples per CPU second (wall-clock figure in brackets)")
    print(f"{'sampler':<20}{'scale / sigma^2':>16}{'setup ms':>10}{'M/s':>16}{'numpy M/s':>16}{'ratio':>7}")
    for cls, params, numpy_draw in ((DiscreteLaplace, LAPLACE_SCALES, lambda p, k: unsafe.laplace(0, p, k)),
                                    (DiscreteGaussian, GAUSSIAN_SIGMA2, lambda p, k: unsafe.normal(0, p**0.5, k))):
        for p in params:
            start = time.perf_counter()
            sampler = cls(p)
            setup = (time.perf_counter() - start) * 1e3
            ours, ours_wall = best_rate(sampler.sample, n, repeat)
            theirs, theirs_wall = best_rate(lambda k: numpy_draw(p, k), n, repeat)
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
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cli-samples", default=f"{CLI_RATE_SAMPLES},{120 * 60 * RATE}",
                        help="comma-separated lengths of the files the noise command runs on")
    parser.add_argument("--cli-only", action="store_true", help="only the noise command runs")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the long files go (default /dev/shm: in memory, the disk left out)")
    parser.add_argument("--compare", type=Path, help="another privspeech checkout whose noise command runs too")
    args = parser.parse_args()
    sizes = [int(n) for n in args.cli_samples.split(",") if n]
    missed = [] if args.cli_only else samplers(args.samples, args.repeat)
    missed += cli_runs(sizes, args.dir, args.compare)
    for line in missed:
        print("MISSED:", line)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
