"""Anonymization speed on corpus speech next to `sox in.wav out.wav pitch -300`, and long-input memory.

Usage: python benchmarks/anonymize.py [CORPUS_FOLDER] [--files N] [--long SECONDS] [--method world|mcadams|revoice]
       [--f0-method rapt|dio|harvest] [--strength light|balanced|strong]

Prints, per method, the real-time factor per core (CPU seconds of the process and of the children it waited for,
such as world's forked RAPT calls, / seconds of audio, BLAS pinned to one thread) over the files, and the same for sox on the same files (the cheap reference).
Targets: world <= 0.05, mcadams <= 0.03, revoice <= 0.6 (recognition and synthesis; timed only when named with
--method, after its models are loaded by the warm-up call). `--long 3600` streams an hour of corpus speech (the
files repeated) through the method's block-wise converter in 64k-frame blocks into a WAV file, as the CLI does,
and prints the peak resident memory (target under 1 GiB; revoice's under 1.5 GiB) and the real-time factor.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import soundfile as sf  # noqa: E402

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

from privspeech.keys import generate  # noqa: E402
from privspeech.voice import anonymize, open_stream  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "corpus" / "vctk"


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_now() -> float:
    """CPU seconds of this process and of its children waited for."""
    return time.process_time() + child_cpu()


def speed(files: list[Path], method: str, **settings) -> tuple[float, float]:
    """(CPU seconds, audio seconds) of in-process anonymization over `files`, after one warm-up call."""
    key = generate()
    y, sr = sf.read(files[0])
    anonymize(y[: sr // 2], sr=sr, key=key, speaker="warm-up", method=method, **settings)  # imports, numba cache
    cpu = audio = 0.0
    for path in files:
        y, sr = sf.read(path)
        start = cpu_now()
        anonymize(y, sr=sr, key=key, speaker=path.parent.name, method=method, **settings)
        cpu += cpu_now() - start
        audio += y.shape[0] / sr
    return cpu, audio


def sox_speed(files: list[Path]) -> tuple[float, float]:
    audio = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        before = child_cpu()
        for path in files:
            subprocess.run(["sox", str(path), f"{tmp}/out.wav", "pitch", "-300"], check=True)
            audio += sf.info(path).duration
        return child_cpu() - before, audio


def long_run(files: list[Path], seconds: float, method: str) -> None:
    """Stream `seconds` of speech through the method's converter into a WAV file; print peak RSS and speed."""
    sr = sf.info(files[0]).samplerate
    key = generate()
    stream = open_stream(sr=sr, channels=1, key=key, speaker="long", utterance="long", level="speaker",
                         method=method)
    total = int(seconds * sr)
    fed = written = 0
    start = cpu_now()
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, sf.SoundFile(f"{tmp}/long.wav", "w", sr, 1, "PCM_16") as out:
        while fed < total:
            for path in files:
                with sf.SoundFile(path) as snd:
                    for block in snd.blocks(blocksize=65536, dtype="float32"):
                        block = block[: total - fed]
                        if block.size == 0:
                            break
                        fed += block.shape[0]
                        chunk = stream.process(block)
                        out.write(chunk)
                        written += chunk.shape[0]
                if fed >= total:
                    break
        chunk = stream.flush()
        out.write(chunk)
        written += chunk.shape[0]
    cpu = cpu_now() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    assert written == fed == total, (written, fed, total)
    print(f"long input, {method}: {seconds / 60:.1f} min in {cpu:.1f} CPU s (RTF {cpu / seconds:.4f}, wall "
          f"{time.perf_counter() - wall:.1f} s), {getattr(stream, 'chunks', None) or len(stream.cuts) + 1} "
          f"segments, peak RSS {peak_mib:.0f} MiB (target < {1536 if method == 'revoice' else 1024})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--files", type=int, default=40, help="how many files to time (default 40)")
    parser.add_argument("--long", type=float, metavar="SECONDS", help="also stream this much speech, e.g. 3600")
    parser.add_argument("--method", choices=["world", "mcadams", "revoice"], help="only this method")
    parser.add_argument("--f0-method", help="world's F0 estimator (default: WorldSettings')")
    parser.add_argument("--strength", help="world's strength preset (default: WorldSettings')")
    args = parser.parse_args()
    if (args.f0_method or args.strength) and args.method in ("mcadams", "revoice"):
        parser.error("--f0-method and --strength apply to world only")
    world_settings = {name: value for name, value in (("f0_method", args.f0_method), ("strength", args.strength))
                      if value}
    files = sorted(p for p in args.corpus.rglob("*") if p.suffix in (".wav", ".flac"))[: args.files]
    if args.long:
        long_run(files, args.long, args.method or "world")
        return
    cpu, audio = sox_speed(files)
    print(f"{len(files)} files, {audio:.1f} s of audio at {sf.info(files[0]).samplerate} Hz")
    print(f"  sox pitch -300   RTF {cpu / audio:.4f} per core")
    targets = {"world": 0.05, "mcadams": 0.03, "revoice": 0.6}
    for method in [args.method] if args.method else ["world", "mcadams"]:
        cpu, audio = speed(files, method, **(world_settings if method == "world" else {}))
        label = f"{method} ({', '.join(world_settings.values())})" if world_settings and method == "world" else method
        print(f"  {label:<16} RTF {cpu / audio:.4f} per core (target <= {targets[method]})")


if __name__ == "__main__":
    main()
