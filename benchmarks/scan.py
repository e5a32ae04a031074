"""Scan throughput on the shared corpus next to `sha256sum` over the same files, measured in one run.

Usage: python benchmarks/scan.py [CORPUS] [--repeat N] [--scale N ...]
Prints files/s and MB/s for `sha256sum`, `privspeech scan -j 1` and `privspeech scan -j <cores>`, and the ratio
of the parallel scan to sha256sum (the target is at least 0.8). The page cache is warmed first, so all three
read from memory. `--scale 10` also measures a tree of 10 hard-linked copies of the corpus, where the
interpreter's fixed start-up cost (about 0.15 s, which sha256sum does not pay) weighs less. privspeech runs with
its bytecode cached, as an installed tool does (pip compiles it at install; PYTHONDONTWRITEBYTECODE is lifted for
these runs, and the first one writes the cache).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIO = {".wav", ".flac"}


CACHED_BYTECODE = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def best_of(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CACHED_BYTECODE)
        times.append(time.perf_counter() - start)
    return min(times)


def replicate(corpus: Path, copies: int, into: Path) -> Path:
    """A tree of `copies` hard-linked copies of the corpus's audio (same bytes, no extra disk)."""
    for i in range(copies):
        for src in corpus.rglob("*"):
            if src.suffix in AUDIO:
                dest = into / f"copy{i}" / src.relative_to(corpus)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(src, dest)
    return into


def measure(root: str, repeat: int) -> None:
    files = sorted(str(p) for p in Path(root).rglob("*") if p.suffix in AUDIO)
    size_mb = sum(os.path.getsize(f) for f in files) / 1e6
    cores = len(os.sched_getaffinity(0))
    subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    rows = [("sha256sum", best_of(["sha256sum", *files], repeat))]
    scan = [sys.executable, "-m", "privspeech", "scan", "-q", root]
    rows.append(("privspeech scan -j 1", best_of(scan + ["-j", "1"], repeat)))
    rows.append((f"privspeech scan -j {cores}", best_of(scan + ["-j", str(cores)], repeat)))
    print(f"{len(files)} files, {size_mb:.1f} MB, {cores} cores, best of {repeat}")
    print(f"{'tool':<24}{'seconds':>9}{'files/s':>10}{'MB/s':>9}")
    for name, secs in rows:
        print(f"{name:<24}{secs:>9.3f}{len(files) / secs:>10.0f}{size_mb / secs:>9.1f}")
    print(f"parallel scan / sha256sum speed: {rows[0][1] / rows[2][1]:.2f}x (target >= 0.8x)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpus"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scale", type=int, nargs="*", default=[1, 10])
    args = parser.parse_args()
    for copies in args.scale:
        if copies == 1:
            measure(args.corpus, args.repeat)
            continue
        with tempfile.TemporaryDirectory(dir=REPO.parent) as tmp:
            measure(str(replicate(Path(args.corpus), copies, Path(tmp))), args.repeat)


if __name__ == "__main__":
    main()
