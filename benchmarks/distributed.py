"""Anonymize on a local pool (--jobs 2) against two local Dask workers (--scheduler), and Dask's cost per record.

Usage: python benchmarks/distributed.py [--corpus DIR] [--files 50] [--repeat 3] [--noop 2000]

Runs `privspeech anonymize -k KEY --out-dir ...` over the same files (the corpus's 40 vctk recordings, then its
LibriSpeech ones in order: 50 by default) with `--jobs 2`, then with `--scheduler` against a `dask scheduler` and two `dask worker --nthreads 1` processes
started here on 127.0.0.1, and prints for each the records/s (best of --repeat) and the CPU seconds per second of
audio of every process involved (the command and its pool, or the command, the scheduler and the workers). The
goal: the cluster within 15 % of the pool's records/s. Then it maps a no-op over --noop items through the Dask
executor (the window, ordering and gathering privspeech adds included) and prints the wall time and the
scheduler's CPU time per record: the scheduler is one process, so its CPU time per record bounds what any number
of workers can do. Results go to benchmarks/results/distributed-<commit>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This file's name would shadow the distributed package when run as a script: its folder leaves the path.
sys.path[:] = [str(REPO / "tests")] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import psutil  # noqa: E402
import soundfile as sf  # noqa: E402

from dask_cluster import DaskCluster  # noqa: E402
from privspeech.executors_dask import Cluster, Dask  # noqa: E402

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(procs: list[subprocess.Popen]) -> float:
    """CPU seconds so far of running processes (the cluster's, which this script does not wait for)."""
    return sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs)


def anonymize(files: list[Path], key: Path, out: Path, extra: list[str], cluster_procs: list) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `privspeech anonymize` run into the fresh folder `out`."""
    cpu0, busy0, start = children_cpu(), process_cpu(cluster_procs), time.perf_counter()
    subprocess.run([sys.executable, "-m", "privspeech", "anonymize", "-q", "-k", str(key), "--out-dir", str(out),
                    *map(str, files), *extra], check=True, stdout=subprocess.DEVNULL, env=ENV)
    wall = time.perf_counter() - start
    return wall, children_cpu() - cpu0 + process_cpu(cluster_procs) - busy0


def noop(n: int) -> int:
    return n


def overhead(cluster: DaskCluster, n: int) -> dict:
    """Wall and scheduler CPU seconds per record of a no-op mapped through the Dask executor."""
    executor = Dask(Cluster(cluster.address))
    results = executor.map(noop, range(n))
    next(results)  # connected, first record back
    cpu0, start = process_cpu([cluster.scheduler]), time.perf_counter()
    assert sum(1 for _ in results) == n - 1
    wall = time.perf_counter() - start
    return {"records": n - 1, "wall_ms_per_record": 1000 * wall / (n - 1),
            "scheduler_cpu_ms_per_record": 1000 * (process_cpu([cluster.scheduler]) - cpu0) / (n - 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--noop", type=int, default=2000)
    args = parser.parse_args()
    files = [*sorted((args.corpus / "vctk").rglob("*.wav")),
             *sorted((args.corpus / "librispeech-train-clean-100").rglob("*.flac"))][: args.files]
    audio = sum(sf.info(f).duration for f in files)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    print(f"{len(files)} files, {audio:.0f} s of audio, {len(os.sched_getaffinity(0))} cores, best of {args.repeat}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "privspeech", "keygen", "--anon", "-o", str(tmp / "anon.key")],
                       check=True, capture_output=True, env=ENV)
        cluster = DaskCluster(tmp / "dask", workers=2)
        try:
            procs = [cluster.scheduler, *cluster.workers]
            for name, extra, busy in [("--jobs 2", ["--jobs", "2"], []),
                                      ("two Dask workers", ["--scheduler", cluster.address], procs)]:
                runs = [anonymize(files, tmp / "anon.key", tmp / f"out{i}-{len(rows)}", extra, busy)
                        for i in range(args.repeat)]
                wall, cpu = min(runs)
                rows[name] = {"wall_s": wall, "records_per_s": len(files) / wall, "cpu_s_per_audio_s": cpu / audio}
            rows["overhead"] = overhead(cluster, args.noop)
        finally:
            cluster.close()
    print(f"{'run':<20}{'seconds':>9}{'records/s':>11}{'CPU s / audio s':>17}")
    for name in ("--jobs 2", "two Dask workers"):
        row = rows[name]
        print(f"{name:<20}{row['wall_s']:>9.2f}{row['records_per_s']:>11.2f}{row['cpu_s_per_audio_s']:>17.4f}")
    ratio = rows["two Dask workers"]["records_per_s"] / rows["--jobs 2"]["records_per_s"]
    print(f"cluster / pool records/s: {ratio:.2f} (goal >= 0.85)")
    over = rows["overhead"]
    print(f"Dask per record ({over['records']} no-op calls): {over['wall_ms_per_record']:.2f} ms wall, "
          f"{over['scheduler_cpu_ms_per_record']:.2f} ms of scheduler CPU")
    out = REPO / "benchmarks" / "results" / f"distributed-{commit}.json"
    out.write_text(json.dumps({"commit": commit, "files": len(files), "audio_s": audio,
                               "cores": len(os.sched_getaffinity(0)), "runs": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
