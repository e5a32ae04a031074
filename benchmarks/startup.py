"""Start-up time of `privspeech anonymize FILE -o OUT` next to the conversion's own time, for one short file.

Usage: python benchmarks/startup.py [--file WAV] [--repeat 7] [--method world|mcadams] [--compare CHECKOUT]

Runs, interleaved so a busy neighbour slows each alike, every one in its own process:
- `python -c pass` (the interpreter alone) and `privspeech --help`;
- `python -m privspeech anonymize FILE -o OUT -k KEY -f -q --level utterance --method M`: the whole command,
  start-up included;
- a process that runs that same command twice in-process (typer's click command, not a shell) and times the
  second run: the command's own work (options, key, input, conversion, atomic output) with every module
  already imported.
Start-up is the whole command's wall time less the in-process run's; the figures are medians over the repeats
(wall seconds, and CPU seconds of the process and the children it waited for, such as world's RAPT fork).
With --compare, the anonymize runs are repeated with another privspeech checkout (e.g. an older commit from
`git archive`) for before/after figures in the same run.
Target: start-up within 0.5 s. The default file is sample_audio/p225/p225_003.wav (6.0 s, 16 kHz).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "sample_audio" / "p225" / "p225_003.wav"

IN_PROCESS = """
import resource, sys, time
from typer.main import get_command
from privspeech.cli.app import app

def cpu():
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))

command = get_command(app)
args = sys.argv[1:]
assert command.main(args, prog_name="privspeech", standalone_mode=False) == 0  # warm-up: imports, caches
wall, used = time.perf_counter(), cpu()
assert command.main(args, prog_name="privspeech", standalone_mode=False) == 0
print(time.perf_counter() - wall, cpu() - used)
"""


def timed(cmd: list[str], cwd: str, env: dict[str, str] | None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, children waited for included) of one run of `cmd`.
    Run in `cwd` (not the checkout: `python -c` would import privspeech from there, whatever PYTHONPATH says)."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=cwd, env=env)
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def in_process(cmd: list[str], cwd: str, env: dict[str, str] | None) -> tuple[float, float]:
    """Wall and CPU seconds of the command's second in-process run."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd, env=env).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--method", choices=["world", "mcadams"], action="append",
                        help="the method(s) to time (default: both)")
    parser.add_argument("--compare", type=Path, help="another privspeech checkout to time in the same run")
    args = parser.parse_args()
    import soundfile as sf

    seconds = sf.info(args.file).duration
    py = sys.executable
    methods = args.method or ["world", "mcadams"]
    checkouts = {"": None}
    if args.compare:
        checkouts[f" ({args.compare.name})"] = {**os.environ, "PYTHONPATH": str(args.compare.resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([py, "-m", "privspeech", "keygen", "--anon", "-o", f"{tmp}/anon.key"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        runs: dict[str, tuple] = {"python -c pass": (timed, [py, "-c", "pass"], None),
                                  "privspeech --help": (timed, [py, "-m", "privspeech", "--help"], None)}
        for method in methods:
            command = ["anonymize", str(args.file.resolve()), "-o", f"{tmp}/out.wav", "-k", f"{tmp}/anon.key", "-f",
                       "-q", "--level", "utterance", "--method", method]
            for label, env in checkouts.items():
                runs[f"anonymize {method}{label}"] = (timed, [py, "-m", "privspeech", *command], env)
                runs[f"  in-process {method}{label}"] = (in_process, [py, "-c", IN_PROCESS, *command], env)
        measured: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, (measure, cmd, env) in runs.items():
                measured[name].append(measure(cmd, tmp, env))
    median = {name: (statistics.median(w for w, _ in m), statistics.median(c for _, c in m))
              for name, m in measured.items()}
    print(f"{args.file.name} ({seconds:.1f} s), medians of {args.repeat}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'run':<28}{'wall s':>8}{'CPU s':>8}")
    for name, (wall, cpu) in median.items():
        print(f"{name:<28}{wall:>8.3f}{cpu:>8.3f}")
    for method in methods:
        for label in checkouts:
            whole, own = median[f"anonymize {method}{label}"], median[f"  in-process {method}{label}"]
            print(f"start-up of anonymize {method}{label}: {whole[0] - own[0]:.3f} s wall, {whole[1] - own[1]:.3f} s "
                  f"CPU (target <= 0.5 s); the command's own {own[0]:.3f} s wall, {own[1]:.3f} s CPU")


if __name__ == "__main__":
    main()
