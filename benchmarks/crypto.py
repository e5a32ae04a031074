"""age encryption and decryption throughput and peak memory: privspeech next to the `age` CLI, in one run.

Usage: python benchmarks/crypto.py [--size-mib 512] [--repeat 3] [--dir DIR] [--compare CHECKOUT]
Builds a SIZE MiB file of corpus speech (concatenated VCTK recordings) and an X25519 identity, then runs,
each in its own process timed by /usr/bin/time, interleaved so a busy neighbour slows every tool alike:
- `age -e -r` and `age -d -i` (the Go reference; `-o` without fsync);
- privspeech's encrypt_file and decrypt_file (atomic 0600 output with fsync, output sha256 included);
- encrypt_stream with the input's manifest sha256 checked in the same pass (what the CLI does for
  manifest records) and the `privspeech encrypt`/`decrypt` commands themselves (start-up included), with
  `-o FILE` (no record printed, so the output is not hashed) and with `--emit-manifest` (the record, with the
  output's sha256);
- bare pyrage.encrypt_file/decrypt_file (Rust I/O, no hash, no atomic write): the floor any pyrage-based
  tool stands on, so the ratio it gets is the best privspeech can get;
- pyrage's own streaming encrypt_io/decrypt_io between two open Python files (no hash, no atomic write, no
  fsync): what a script using pyrage directly would do;
- with --compare, encrypt_file/decrypt_file and the commands of another privspeech checkout (e.g. an older
  commit from `git archive`), for before/after figures under the same conditions.
Prints the best wall time of each, MiB/s, CPU seconds (user + system, all threads: above the wall time
means two cores worked), privspeech/age speed ratios (target >= 0.8x), the commands' wall time over
pyrage's streaming functions' (median of the per-round ratios, process start included in both; target
<= 1.3x) and the peak RSS of each run (target < 64 MiB). The page cache is warmed first. Exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
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
from privspeech.fsutil import atomic_write
mode, src, dest, key = sys.argv[1:5]
if mode == "encrypt":
    crypto.encrypt_file(src, dest, recipients=[crypto.recipients.parse(key)], force=True)
elif mode == "encrypt-checked":  # the input's sha256 (from its manifest record) checked in the same pass
    with open(src, "rb") as reader, atomic_write(dest, force=True) as writer:
        crypto.encrypt_stream(reader, writer, recipients=[crypto.recipients.parse(key)], input_sha256=sys.argv[5])
elif mode == "decrypt":
    crypto.decrypt_file(src, dest, identities=crypto.load_identity_file(key)[0], force=True)
elif mode == "rage-encrypt":  # pyrage alone, Rust file I/O, no hash, no atomic write: the floor
    pyrage.encrypt_file(src, dest, [crypto.recipients.parse(key)])
elif mode == "rage-decrypt":
    pyrage.decrypt_file(src, dest, crypto.load_identity_file(key)[0])
elif mode == "rage-encrypt-io":  # pyrage's streaming functions between Python files
    with open(src, "rb") as reader, open(dest, "wb") as writer:
        pyrage.encrypt_io(reader, writer, [crypto.recipients.parse(key)])
else:
    with open(src, "rb") as reader, open(dest, "wb") as writer:
        pyrage.decrypt_io(reader, writer, crypto.load_identity_file(key)[0])
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one run of `cmd`, measured by GNU time.
    Run in `cwd` (not the checkout: `python -c` would import privspeech from there, whatever PYTHONPATH says)."""
    result = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", *cmd], check=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    seconds, user, system, kib = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), float(user) + float(system), int(kib) / 1024


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
    parser.add_argument("--compare", type=Path, help="another privspeech checkout to time in the same run")
    args = parser.parse_args()
    for tool in ("age", "/usr/bin/time"):
        if not shutil.which(tool):
            sys.exit(f"needs {tool}: apt-get install age time")
    from privspeech import crypto

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        plain, key = tmp / "speech.raw", tmp / "me.key"
        build_input(plain, args.size_mib)
        recipient = crypto.write_identity_file(key)
        subprocess.run(["cat", str(plain)], stdout=subprocess.DEVNULL, check=True)
        with plain.open("rb") as fh:
            sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
        ours = [sys.executable, "-c", CHILD]
        cli = [sys.executable, "-m", "privspeech"]
        runs = {
            "age encrypt": ["age", "-e", "-r", recipient, "-o", str(tmp / "age.age"), str(plain)],
            "privspeech encrypt": [*ours, "encrypt", str(plain), str(tmp / "ours.age"), recipient],
            "privspeech encrypt +check": [*ours, "encrypt-checked", str(plain), str(tmp / "checked.age"), recipient,
                                          sha256],
            "privspeech encrypt (cli)": [*cli, "encrypt", "-q", "-f", "-r", recipient, "-o", str(tmp / "cli.age"),
                                         str(plain)],
            "privspeech encrypt (cli, record)": [*cli, "encrypt", "-q", "-f", "--emit-manifest", "-r", recipient, "-o",
                                                 str(tmp / "cli-record.age"), str(plain)],
            "pyrage encrypt_file": [*ours, "rage-encrypt", str(plain), str(tmp / "rage.age"), recipient],
            "pyrage encrypt_io": [*ours, "rage-encrypt-io", str(plain), str(tmp / "rage-io.age"), recipient],
            "age decrypt": ["age", "-d", "-i", str(key), "-o", str(tmp / "age.out"), str(tmp / "ours.age")],
            "privspeech decrypt": [*ours, "decrypt", str(tmp / "age.age"), str(tmp / "ours.out"), str(key)],
            "privspeech decrypt (cli)": [*cli, "decrypt", "-q", "-f", "-i", str(key), "-o", str(tmp / "cli.out"),
                                         str(tmp / "age.age")],
            "privspeech decrypt (cli, record)": [*cli, "decrypt", "-q", "-f", "--emit-manifest", "-i", str(key), "-o",
                                                 str(tmp / "cli-record.out"), str(tmp / "age.age")],
            "pyrage decrypt_file": [*ours, "rage-decrypt", str(tmp / "age.age"), str(tmp / "rage.out"), str(key)],
            "pyrage decrypt_io": [*ours, "rage-decrypt-io", str(tmp / "age.age"), str(tmp / "rage-io.out"), str(key)],
        }
        envs: dict[str, dict[str, str]] = {}
        if args.compare:
            compared = {**os.environ, "PYTHONPATH": str(args.compare.resolve())}
            for op, src, dest, secret in (("encrypt", plain, "old.age", recipient),
                                          ("decrypt", tmp / "age.age", "old.out", str(key))):
                name = f"{args.compare.name} {op}"
                runs[name] = [*ours, op, str(src), str(tmp / dest), secret]
                envs[name] = compared
            for op in ("encrypt", "decrypt"):
                name = f"{args.compare.name} {op} (cli)"
                runs[name] = [part.replace("/cli.", "/old-cli.") for part in runs[f"privspeech {op} (cli)"]]
                envs[name] = compared
        measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, cmd in runs.items():
                measured[name].append(timed(cmd, tmp, envs.get(name)))
        best = {name: (*min(m)[:2], max(peak for *_, peak in m)) for name, m in measured.items()}
        outputs = ["age.out", "ours.out", "cli.out", "cli-record.out", "rage.out", "rage-io.out"] + (
            ["old.out", "old-cli.out"] if args.compare else [])
        for out in outputs:
            same = subprocess.run(["cmp", "-s", str(plain), str(tmp / out)], check=False).returncode == 0
            assert same, f"{out} differs"

    print(f"{args.size_mib} MiB of speech, best of {args.repeat} (wall time includes process start-up); "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs")
    print(f"{'run':<34}{'seconds':>8}{'MiB/s':>7}{'CPU s':>7}{'peak RSS MiB':>14}")
    for name, (seconds, cpu, peak) in best.items():
        print(f"{name:<34}{seconds:>8.2f}{args.size_mib / seconds:>7.0f}{cpu:>7.2f}{peak:>14.1f}")
    ok = True
    for op in ("encrypt", "decrypt"):
        ratios = {name.removeprefix(f"privspeech {op}").strip() or "library": best[f"age {op}"][0] / wall
                  for name, (wall, _, _) in best.items() if name.startswith(f"privspeech {op}")}
        ok &= ratios["library"] >= 0.8
        floor = best[f"age {op}"][0] / best[f"pyrage {op}_file"][0]
        shown = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items())
        print(f"privspeech/age {op} speed: {shown} (target >= 0.8x; bare pyrage/age: {floor:.2f}x)")
    for op in ("encrypt", "decrypt"):
        names = [f"privspeech {op} (cli)", f"privspeech {op} (cli, record)"]
        for name in names + ([f"{args.compare.name} {op} (cli)"] if args.compare else []):
            ratio = statistics.median(command[0] / rage[0]
                                      for command, rage in zip(measured[name], measured[f"pyrage {op}_io"]))
            print(f"{name} / pyrage {op}_io wall time: {ratio:.2f}x (target <= 1.3x)")
            ok &= ratio <= 1.3 or name != names[0]
    peak = max(best[f"privspeech {op}"][2] for op in ("encrypt", "decrypt"))
    ok &= peak < 64
    command = max(best[f"privspeech {op} (cli)"][2] for op in ("encrypt", "decrypt"))
    print(f"privspeech peak RSS: {peak:.1f} MiB (target < 64 MiB; the command: {command:.1f} MiB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
