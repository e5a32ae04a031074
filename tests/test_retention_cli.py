"""`privspeech init` and `privspeech prune` through the real CLI: streams, exit statuses, the lock, max runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from privspeech.errors import ExitStatus
from privspeech.retention import Policy, execute, make_plan, open_root
from privspeech.retention.lock import hold_lock

from conftest import records, run_cli
from test_retention_rules import FUTURE, PAST, listing, make_root, put, record, write_manifest

HOLDER = """
import sys, time
from privspeech.retention import open_root
from privspeech.retention.lock import hold_lock
with open_root(sys.argv[1]) as root, hold_lock(root):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def dataset(tmp_path):
    root = make_root(tmp_path)
    put(root, "spk/a.wav")
    put(root, "spk/b.wav")
    put(root, "loose.wav", age_days=60)
    write_manifest(root / "m.jsonl", [record("spk/a.wav", PAST), record("spk/b.wav", FUTURE)])
    return root


@pytest.mark.slow
def test_init_marks_a_folder_that_prune_then_accepts(tmp_path):
    root = tmp_path / "new"
    refused = run_cli(["prune", root])
    assert refused.returncode == ExitStatus.NOINPUT
    root.mkdir()
    refused = run_cli(["prune", root])
    assert refused.returncode == ExitStatus.USAGE and b"privspeech init" in refused.stderr
    done = run_cli(["init", root])
    assert done.returncode == 0 and done.stdout == b"" and (root / ".privspeech/root.json").is_file()
    assert run_cli(["init", root]).returncode == 0  # idempotent
    ok = run_cli(["prune", root])
    assert ok.returncode == 0 and ok.stdout == b"" and b"nothing to do" in ok.stderr


def test_prune_prints_jsonl_actions_and_a_summary(tmp_path):
    root = dataset(tmp_path)
    dry = run_cli(["prune", root, "-n", "--older-than", "30d"])
    assert dry.returncode == 0, dry.stderr
    planned = records(dry.stdout.decode())
    assert [(a["action"], a["kind"], a["path"]) for a in planned] == [
        ("would-delete", "file", "loose.wav"), ("would-delete", "file", "spk/a.wav"),
        ("would-delete", "record", "m.jsonl")]
    assert b"prune (dry run): would delete 2 files, 1 record" in dry.stderr
    real = run_cli(["prune", root, "--older-than", "30d", "--protect", "loose.*"])
    assert real.returncode == 0
    done = records(real.stdout.decode())
    assert [(a["action"], a["path"]) for a in done] == [("kept", "loose.wav"), ("deleted", "spk/a.wav"),
                                                        ("deleted", "m.jsonl")]
    assert b"prune: deleted 1 file, 1 record" in real.stderr and b"kept 1 file" in real.stderr
    quiet = run_cli(["prune", root, "-q"])
    assert quiet.returncode == 0 and quiet.stderr == b""


@pytest.mark.parametrize("args, status, message", [
    (["--older-than", "soon"], ExitStatus.USAGE, b"not a duration"),
    (["--max-runtime", "-1h"], ExitStatus.USAGE, b"not a duration"),
    (["--manifest", "missing.jsonl"], ExitStatus.NOINPUT, b"no such file"),
    (["--wait", "-1"], ExitStatus.USAGE, b""),
])
def test_bad_options(tmp_path, args, status, message):
    root = dataset(tmp_path)
    result = run_cli(["prune", root, *args], cwd=root)
    assert result.returncode == status and message in result.stderr
    assert (root / "spk/a.wav").exists()


def test_a_bad_manifest_line_and_an_undeletable_file_exit_1(tmp_path):
    """Behaviour changed (issue 21): a bad manifest line is exit 1 and the rest of ROOT is pruned (it was 65)."""
    root = dataset(tmp_path)
    (root / "broken.jsonl").write_text("{\n")
    result = run_cli(["prune", root])
    assert result.returncode == ExitStatus.FAILED and b"broken.jsonl:1: not a valid record" in result.stderr
    assert b"Traceback" not in result.stderr and not (root / "spk/a.wav").exists()
    (root / "broken.jsonl").unlink()
    write_manifest(root / "m.jsonl", [record("../../escape.wav", PAST)])
    result = run_cli(["prune", root])
    assert result.returncode == ExitStatus.FAILED and b"warning: some files could not be deleted" in result.stderr
    assert records(result.stdout.decode())[0]["action"] == "error"


@pytest.mark.slow
def test_a_second_run_fails_at_once_or_waits_for_the_lock(tmp_path):
    root = dataset(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), "1.5"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        started = time.monotonic()
        busy = run_cli(["prune", root])
        assert busy.returncode == ExitStatus.TEMPFAIL and time.monotonic() - started < 1.4
        assert f"pid {holder.pid}".encode() in busy.stderr and b"--wait" in busy.stderr
        assert (root / "spk/a.wav").exists()
        waited = run_cli(["prune", root, "--wait", "20"])
        assert waited.returncode == 0, waited.stderr
        assert holder.poll() == 0 and not (root / "spk/a.wav").exists()
    finally:
        holder.kill()
        holder.wait()


def test_two_real_runs_at_once_delete_each_file_exactly_once(tmp_path):
    root = make_root(tmp_path)
    for i in range(300):
        put(root, f"spk{i % 5}/{i:03d}.wav", age_days=60)
    procs = [subprocess.Popen([sys.executable, "-m", "privspeech", "prune", str(root), "--older-than", "30d",
                               "--wait", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    deleted = [a["path"] for out, _ in outs for a in records(out.decode()) if a["action"] == "deleted"]
    assert len(deleted) == len(set(deleted)) == 300 and listing(root) == {}
    begins = [json.loads(line) for line in (root / ".privspeech/audit.jsonl").read_text().splitlines()]
    events = [e["event"] for e in begins if e.get("event") in ("begin", "end")]
    assert events == ["begin", "end", "begin", "end"]  # never interleaved


def test_max_runtime_stops_cleanly_between_deletions(tmp_path):
    root = dataset(tmp_path)
    before = listing(root)
    with open_root(root) as handle:
        plan = make_plan(handle, Policy())
        summary = execute(handle, plan, deadline=time.monotonic())
    assert [(a.action, a.detail) for a in plan.actions] == [
        ("skipped", "--max-runtime reached"),
        ("skipped", "--max-runtime reached before all its files were deleted; the record stays")]
    assert summary.status == ExitStatus.TEMPFAIL and summary.stopped and listing(root) == before
    result = run_cli(["prune", root, "--max-runtime", "0.000000001s"])
    assert result.returncode == ExitStatus.TEMPFAIL and b"max-runtime" in result.stderr
    assert listing(root) == before


def test_lock_is_released_when_the_holder_dies(tmp_path):
    root = dataset(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), "60"], stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"locked\n"
    holder.kill()
    holder.wait()
    with open_root(root) as handle, hold_lock(handle):
        assert os.stat(root / ".privspeech/prune.lock").st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_a_closed_stdout_does_not_stop_the_deletions(tmp_path):
    root = make_root(tmp_path)
    for i in range(1000):
        put(root, f"spk{i % 4}/{i:04d}.wav", age_days=60)
    done = subprocess.run(f"{sys.executable} -m privspeech prune {root} --older-than 30d | head -n 1",
                          shell=True, capture_output=True, timeout=120)
    assert json.loads(done.stdout)["action"] == "deleted" and b"Traceback" not in done.stderr
    assert listing(root) == {}
    end = json.loads((root / ".privspeech/audit.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["counts"] == {"deleted file": 1000}
