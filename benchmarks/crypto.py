"""age encryption and decryption throughput and peak memory: privspeech next to the `age` CLI, in one run.

Usage: python benchmarks/crypto.py [--size-mib 512] [--repeat 3] [--dir DIR]
Builds a SIZE MiB file of corpus speech (concatenated VCTK recordings) and an X25519 identity, then runs,
each in its own process timed by /usr/bin/time: `age -e -r`, privspeech's encrypt_file, `age -d -i` and
privspeech's decrypt_file (with atomic 0600 output, fsync and the ciphertext/plaintext sha256 included),
and bare pyrage.encrypt_file/decrypt_file (Rust I/O, no hash) as the floor any pyrage-based tool stands on.
Prints the best wall time of each, MiB/s, privspeech/age speed ratios (target >= 0.8x) and the peak RSS
of each run (target < 64 MiB). The page cache is warmed first. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VCTK = REPO.parent / "shared" / "corpus" / "vctk"
sys.path.insert(0, str(REPO))

CHILD = """
import sys
import pyrage
from privspeech import crypto
mode, src, dest, key = sys.argv[1:5]
if mode == "encrypt":
    crypto.encrypt_file(src, dest, recipients=[crypto.recipients.parse(key)], force=True)
elif mode == "decrypt":
    crypto.decrypt_file(src, dest, identities=crypto.load_identity_file(key)[0], force=True)
elif mode == "rage-encrypt":  # pyrage alone, Rust file I/O, no hash, no atomic write: the floor
    pyrage.encrypt_file(src, dest, [crypto.recipients.parse(key)])
else:
    pyrage.decrypt_file(src, dest, crypto.load_identity_file(key)[0])
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of `cmd`, measured by GNU time."""
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], check=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seconds, kib = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kib) / 1024


def build_input(path: Path, size_mib: int) -> None:
    speech = b"".join(p.read_bytes() for p in sorted(VCTK.rglob("*.wav")))
    remaining = size_mib << 20
    with path.open("wb") as fh:
        while remaining:
            piece = speech[:remaining]
            fh.write(piece)
            remaining -= len(piece)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the files go (default /dev/shm: in memory, so the disk and privspeech's "
                             "fsync, which age -o does not do, are left out and the ciphers are compared)")
    args = parser.parse_args()
    for tool in ("age", "/usr/bin/time"):
        if not shutil.which(tool):
            sys.exit(f"needs {tool}: apt-get install age time")
    from privspeech import crypto

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        plain, key = tmp / "speech.raw", tmp / "me.key"
        build_input(plain, args.size_mib)
        recipient = crypto.write_identity_file(key)
        subprocess.run(["cat", str(plain)], stdout=subprocess.DEVNULL, check=True)
        ours = [sys.executable, "-c", CHILD]
        runs = {
            "age encrypt": ["age", "-e", "-r", recipient, "-o", str(tmp / "age.age"), str(plain)],
            "privspeech encrypt": [*ours, "encrypt", str(plain), str(tmp / "ours.age"), recipient],
            "pyrage encrypt_file": [*ours, "rage-encrypt", str(plain), str(tmp / "rage.age"), recipient],
            "age decrypt": ["age", "-d", "-i", str(key), "-o", str(tmp / "age.out"), str(tmp / "ours.age")],
            "privspeech decrypt": [*ours, "decrypt", str(tmp / "age.age"), str(tmp / "ours.out"), str(key)],
            "pyrage decrypt_file": [*ours, "rage-decrypt", str(tmp / "age.age"), str(tmp / "rage.out"), str(key)],
        }
        best = {name: (float("inf"), 0.0) for name in runs}
        for _ in range(args.repeat):  # interleaved, so a busy neighbour slows every tool alike
            for name, cmd in runs.items():
                seconds, peak = timed(cmd)
                best[name] = (min(best[name][0], seconds), max(best[name][1], peak))
        for out in ("age.out", "ours.out", "rage.out"):
            assert subprocess.run(["cmp", "-s", str(plain), str(tmp / out)]).returncode == 0, f"{out} differs"

    print(f"{args.size_mib} MiB of speech, best of {args.repeat} (wall time includes process start-up)")
    print(f"{'run':<20}{'seconds':>9}{'MiB/s':>9}{'peak RSS MiB':>14}")
    for name, (seconds, peak) in best.items():
        print(f"{name:<20}{seconds:>9.2f}{args.size_mib / seconds:>9.0f}{peak:>14.1f}")
    ok = True
    for op in ("encrypt", "decrypt"):
        ratio = best[f"age {op}"][0] / best[f"privspeech {op}"][0]
        ok &= ratio >= 0.8
        floor = best[f"age {op}"][0] / best[f"pyrage {op}_file"][0]
        print(f"privspeech/age {op} speed: {ratio:.2f}x (target >= 0.8x; bare pyrage/age: {floor:.2f}x)")
    peak = max(best[f"privspeech {op}"][1] for op in ("encrypt", "decrypt"))
    ok &= peak < 64
    print(f"privspeech peak RSS: {peak:.1f} MiB (target < 64 MiB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
