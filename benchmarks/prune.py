"""Benchmark `prune` against `find ROOT -type f -mtime +N -delete` on identical trees.

    python benchmarks/prune.py [--files 100000] [--per-dir 1000] [--tmp DIR]

Builds identical trees of small files, half of them with a modification time 100 days ago, then deletes the
old half with find and with privspeech's prune (by age, every safety check on: descriptor walk, statx re-check
of folder and file identity and mount before each unlinkat, JSONL actions to a file, audit log with intent lines
fsynced before each batch of 64 deletions, lock). A third
tree has no old files but a manifest with one record per file, half expired, pruned by expiry. Each
deletion run happens in its own process (so peak memory is its own) after a sync; times are wall-clock
seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OLD_DAYS = 100
PAYLOAD = b"RIFF" + bytes(60)


def build(root: Path, files: int, per_dir: int, *, manifest: bool) -> None:
    """`files` small files in folders of `per_dir`; odd ones old (by mtime) or expired (by record)."""
    old = time.time() - OLD_DAYS * 86400
    lines = []
    order = list(range(files))
    random.Random(0).shuffle(order)  # creation (inode) order unlike name order, as in a real dataset
    for folder_index in range(-(-files // per_dir)):
        (root / f"spk{folder_index:04d}").mkdir(parents=True)
    for i in order:
        folder = root / f"spk{i // per_dir:04d}"
        path = folder / f"{i:07d}.wav"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, PAYLOAD)
        os.close(fd)
        if manifest:
            expires = "2020-01-01T00:00:00Z" if i % 2 else "2099-01-01T00:00:00Z"
            lines.append(json.dumps({"audio_filepath": f"{folder.name}/{path.name}", "id": str(i),
                                     "privspeech": {"v": 1, "ops": [], "expires_at": expires, "hold": False}}))
        elif i % 2:
            os.utime(path, (old, old))
    if manifest:
        (root / "manifest.jsonl").write_text("\n".join(sorted(lines)) + "\n")


def count_files(root: Path) -> int:
    return sum(len([n for n in names if not n.endswith(".jsonl")]) for top, _, names in os.walk(root)
               if ".privspeech" not in top)


def child(root: str, by_age: bool) -> None:
    """Run one prune in this process and print seconds, counts and peak memory as JSON."""
    from privspeech.retention import Policy, prune
    from privspeech.timeutil import parse_duration

    policy = Policy(older_than=parse_duration("30d")) if by_age else Policy()
    with open(os.path.join(os.path.dirname(root), "actions.jsonl"), "w") as out:
        started = time.perf_counter()
        summary = prune(root, policy, emit=lambda line: out.write(line + "\n"))
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "deleted": summary.counts["deleted", "file"], "status": int(summary.status),
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_prune(root: Path, *, by_age: bool) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(root)] + (["--by-age"] if by_age else []),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--per-dir", type=int, default=1000)
    parser.add_argument("--tmp", default=None, help="where to build the trees (same filesystem for all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--by-age", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.by_age)
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from privspeech.managed import mark

    work = Path(tempfile.mkdtemp(prefix="prune-bench-", dir=args.tmp))
    try:
        trees = {name: work / name / "ds" for name in ("find", "age", "expiry")}
        started = time.perf_counter()
        for name, root in trees.items():
            build(root, args.files, args.per_dir, manifest=name == "expiry")
            if name != "find":
                mark(root)
        os.sync()  # every deletion run meets files on disk, as a nightly prune of old recordings does
        print(f"built 3 trees of {args.files} files in {time.perf_counter() - started:.1f} s under {work}")
        half = args.files // 2

        started = time.perf_counter()
        subprocess.run(["find", str(trees["find"]), "-type", "f", "-mtime", "+30", "-delete"], check=True)
        find_s = time.perf_counter() - started
        assert count_files(trees["find"]) == args.files - half
        os.sync()  # write back find's deletions before timing the next run

        age = run_prune(trees["age"], by_age=True)
        assert age["deleted"] == half and age["status"] == 0, age
        assert sorted(os.listdir(trees["age"] / "spk0000")) == sorted(os.listdir(trees["find"] / "spk0000"))
        assert count_files(trees["age"]) == args.files - half
        os.sync()

        expiry = run_prune(trees["expiry"], by_age=False)
        assert expiry["deleted"] == half and expiry["status"] == 0, expiry
        assert count_files(trees["expiry"]) == args.files - half

        rate = lambda seconds: half / seconds  # noqa: E731
        print(f"{'method':<44} {'seconds':>8} {'deleted/s':>10} {'vs find':>8} {'peak MB':>8}")
        print(f"{'find -type f -mtime +30 -delete':<44} {find_s:8.2f} {rate(find_s):10.0f} {1:8.2f} {'':>8}")
        for label, result in (("privspeech prune --older-than 30d", age),
                              ("privspeech prune (manifest expiry, 1 record/file)", expiry)):
            print(f"{label:<44} {result['seconds']:8.2f} {rate(result['seconds']):10.0f} "
                  f"{find_s / result['seconds']:8.2f} {result['max_rss_mb']:8.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
