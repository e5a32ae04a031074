"""`prune` under faults and hostile input (issue 21, items 3, 4, 5 and 7), as a user and an attacker hit them:
bind mounts, manifests written by someone else, bad manifests and deep trees, kill -9, and manifests that
other processes append to while prune rewrites them."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from privspeech.errors import ExitStatus
from privspeech.manifest import dumps
from privspeech.retention import Policy, execute, make_plan, open_root
from privspeech.retention.rewrite import Redo, redo_name
from privspeech.timeutil import parse_duration

from conftest import NOBODY, records, run_cli
from test_retention_rules import FUTURE, PAST, make_root, record, run, write_manifest

OLD = Policy(older_than=parse_duration("30d"))


def touch(root: Path, rel: str, *, age_days: float | None = None, data: bytes = b"RIFF" + bytes(60)) -> Path:
    """A small file at ROOT/rel; optionally with an old modification time."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age_days is not None:
        moment = time.time() - age_days * 86400
        os.utime(path, (moment, moment))
    return path


def needs_root_and(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (to act as another user or mount)")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def cli_actions(result: subprocess.CompletedProcess) -> list[dict]:
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    return records(result.stdout.decode())


# --- item 3: bind mounts ---------------------------------------------------------------------------------------

BIND_SCRIPT = """
import sys
import privspeech.retention.statx as statx
if sys.argv[2] == "fdinfo":
    statx._statx = None  # as on a kernel without statx: mount ids of folders from /proc/self/fdinfo
from privspeech.cli.app import app
app(["prune", sys.argv[1], "--older-than", "30d", "--prune-empty-dirs"], prog_name="privspeech")
"""


@pytest.mark.parametrize("mount_ids", ["statx", "fdinfo"])
def test_a_bind_mount_inside_root_is_never_entered(tmp_path, mount_ids):
    """A folder of the same filesystem bind-mounted inside ROOT (in a private mount namespace) keeps its files."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -m (root in a mount namespace)")
    outside = tmp_path / "outside"
    victim = touch(outside, "victim.wav", age_days=400)
    secret = touch(outside, "secret.wav", age_days=400)
    root = make_root(tmp_path)
    touch(root, "old.wav", age_days=400)
    (root / "b").mkdir()
    touch(root, "f.wav", age_days=400)  # a file bind mount lands on this name
    write_manifest(root / "m.jsonl", [record("b/victim.wav", PAST)])
    shell = ('mount --bind "$1/outside" "$1/ds/b" && mount --bind "$1/outside/secret.wav" "$1/ds/f.wav" && '
             f'{sys.executable} -c "$2" "$1/ds" "$3"; echo "status $?"')
    done = subprocess.run(["unshare", "-m", "sh", "-c", shell, "sh", str(tmp_path), BIND_SCRIPT, mount_ids],
                          capture_output=True, timeout=60)
    *lines, status = done.stdout.decode().splitlines()
    actions = cli_actions(subprocess.CompletedProcess([], 0, "\n".join(lines).encode(), done.stderr))
    assert victim.exists() and secret.exists() and status == "status 1", done.stderr
    assert sorted(os.listdir(outside)) == ["secret.wav", "victim.wav"]
    by_path = {a["path"]: a for a in actions}
    assert by_path["old.wav"]["action"] == "deleted"
    assert by_path["m.jsonl"]["action"] == "error" and "b on the way is on another filesystem or mount" in \
        by_path["m.jsonl"]["detail"]
    if mount_ids == "statx":  # the file bind mount is known from the walk on: never planned
        assert "f.wav" not in by_path
    else:  # without statx a file mount point is found when unlinking it fails
        assert by_path["f.wav"]["action"] == "error"


# --- item 4: whose manifests count ------------------------------------------------------------------------------

def test_a_manifest_from_an_unprivileged_user_in_a_world_writable_folder_is_not_obeyed(public_tmp):
    """nobody drops a manifest into a sticky world-writable folder naming a root-only file: root's prune skips it."""
    needs_root_and("setpriv")
    root = make_root(public_tmp)
    secret = touch(root, "secret/key.wav")
    secret.chmod(0o600)
    (root / "drop").mkdir()
    (root / "drop").chmod(0o1777)
    own = touch(root, "drop/own.wav", age_days=60)
    os.chown(own, NOBODY, NOBODY)
    evil = "".join(dumps(r) for r in [record("../secret/key.wav", PAST), record("own.wav", FUTURE)])
    dropped = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "sh", "-c",
                              'cat > "$1"', "sh", str(root / "drop/evil.jsonl")], input=evil.encode())
    assert dropped.returncode == 0 and (root / "drop/evil.jsonl").stat().st_uid == NOBODY
    result = run_cli(["prune", root, "--older-than", "30d"])
    actions = cli_actions(result)
    assert secret.exists() and result.returncode == ExitStatus.OK
    assert actions == [
        {"action": "skipped", "kind": "manifest", "path": "drop/evil.jsonl", "reason": {"rule": "untrusted-manifest"},
         "detail": f"owned by uid {NOBODY}, not by you (uid 0) or root"},
        {"action": "deleted", "kind": "file", "path": "drop/own.wav", "size": 64,  # its records name nothing
         "reason": actions[1]["reason"]}]
    assert actions[1]["reason"]["rule"] == "older-than"
    assert b"warning: drop/evil.jsonl: manifest skipped: owned by uid 65534" in result.stderr
    named = run_cli(["prune", root, "--manifest", root / "drop/evil.jsonl"])  # named explicitly: an error
    assert named.returncode == ExitStatus.FAILED and cli_actions(named)[0]["action"] == "error"
    assert secret.exists() and (root / "drop/evil.jsonl").exists()


@pytest.mark.parametrize("where, mode, why", [
    ("m.jsonl", 0o666, "writable by group and others (mode 0666)"),
    ("m.jsonl", 0o620, "writable by group (mode 0620)"),
    ("sub", 0o777, "folder sub is writable by group and others (mode 0777)"),
    ("sub", 0o1757, "folder sub is writable by others (mode 1757)"),
    (".", 0o775, "folder ROOT is writable by group (mode 0775)"),
])
def test_manifests_writable_by_others_or_in_folders_writable_by_others_are_skipped(tmp_path, where, mode, why):
    root = make_root(tmp_path)
    touch(root, "sub/a.wav")
    manifest = write_manifest(root / "sub/m.jsonl", [record("a.wav", PAST)])
    os.chmod(root / "sub" / where if where == "m.jsonl" else root / where, mode)
    actions, summary = run(root)
    assert actions == [{"action": "skipped", "kind": "manifest", "path": "sub/m.jsonl",
                        "reason": {"rule": "untrusted-manifest"}, "detail": why}]
    assert (root / "sub/a.wav").exists() and summary.status == ExitStatus.OK
    assert summary.warnings == [f"sub/m.jsonl: manifest skipped: {why}"] and manifest.exists()


def test_records_never_name_prunes_own_files_and_age_never_deletes_them(tmp_path):
    """--audit-log inside ROOT (a *.jsonl, yet no manifest); a hard link of the lock inside ROOT; temporary and
    redo files: all stay."""
    root = make_root(tmp_path)
    log = touch(root, "logs/audit.jsonl", age_days=90, data=b"")
    run_cli(["prune", root, "--audit-log", log])  # creates .privspeech/prune.lock
    os.link(root / ".privspeech/prune.lock", root / "logs/lock-link")
    for rel in ("logs/lock-link", "logs/audit.jsonl", "x.wav.privspeech-tmp", ".gone.jsonl.privspeech-rewrite"):
        if not (root / rel).exists():
            touch(root, rel)
        os.utime(root / rel, (0, 0))
    touch(root, "a.wav")
    write_manifest(root / "m.jsonl", [
        record("a.wav", PAST, sidecars=["logs/audit.jsonl"]),
        record("a.wav", PAST, sidecars=["logs/lock-link"]),
        record("a.wav", PAST, sidecars=[".gone.jsonl.privspeech-rewrite"]),
    ])
    result = run_cli(["prune", root, "--older-than", "30d", "--audit-log", log])
    actions = cli_actions(result)
    details = [a["detail"] for a in actions]
    assert [a["action"] for a in actions] == ["error"] * 3 and result.returncode == ExitStatus.FAILED
    assert "logs/audit.jsonl is prune's audit log" in details[0]
    assert "logs/lock-link is prune's lock file" in details[1]
    assert "is a manifest's redo file" in details[2]
    for rel in ("a.wav", "logs/lock-link", "logs/audit.jsonl", "x.wav.privspeech-tmp",
                ".gone.jsonl.privspeech-rewrite"):
        assert (root / rel).exists(), rel
    assert any(json.loads(line).get("event") == "end" for line in log.read_text().splitlines())


def make_deep(root: Path, depth: int) -> None:
    """A chain of `depth` nested folders d/d/d/..., made by descriptor (the path is longer than PATH_MAX allows)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            if level in (4, depth - 1):
                os.close(os.open("old.wav", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
                os.utime("old.wav", (0, 0), dir_fd=fd)
    finally:
        os.close(fd)


@pytest.mark.slow
def test_an_unparsable_manifest_and_a_1100_deep_tree_fail_only_their_part(public_tmp):
    """Through the CLI, with at most 512 open descriptors: exit 1, one error line each, the rest of ROOT pruned."""
    root = make_root(public_tmp)
    touch(root, "calls/a.wav")
    touch(root, "loose.wav", age_days=60)
    write_manifest(root / "calls/manifest.jsonl", [record("a.wav", PAST)])
    touch(root, "notes/notes.jsonl", data=b"\xff\xfe meeting notes, not JSON\n")
    touch(root, "notes/old.wav", age_days=60)
    make_deep(root, 1100)
    result = subprocess.run(f"ulimit -n 512 && exec {sys.executable} -m privspeech prune {root} --older-than 30d",
                            shell=True, capture_output=True, timeout=300)
    actions = cli_actions(result)
    assert result.returncode == ExitStatus.FAILED
    deep = "/".join(["d"] * 201)
    assert [(a["action"], a["kind"], a["path"]) for a in actions] == [
        ("error", "dir", deep),
        ("error", "line", "notes/notes.jsonl"),
        ("deleted", "file", "calls/a.wav"),
        ("deleted", "file", "d/d/d/d/d/old.wav"),
        ("deleted", "file", "loose.wav"),
        ("skipped", "file", "notes/old.wav"),
        ("deleted", "record", "calls/manifest.jsonl")]
    assert "more than 200 folders below ROOT: not entered" in actions[0]["detail"]
    assert actions[1]["reason"] == {"rule": "bad-line", "line": 1} and "not UTF-8" in actions[1]["detail"]
    assert b"notes/notes.jsonl:1: not a valid record: not UTF-8 text" in result.stderr
    bottom = os.open(root, os.O_RDONLY)
    for _ in range(1100):
        bottom, parent = os.open("d", os.O_RDONLY, dir_fd=bottom), bottom
        os.close(parent)
    assert os.listdir(bottom) == ["old.wav"]  # below the limit: untouched
    os.close(bottom)


# --- item 5: the audit log names every deletion before it happens -----------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_a_random_moment_leaves_every_missing_file_named_by_an_intent(tmp_path, seed):
    root = make_root(tmp_path)
    files = [f"spk{i % 10}/{i:05d}.wav" for i in range(5000)]
    for rel in files:
        touch(root, rel, age_days=60)
    log = root / ".privspeech/audit.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "privspeech", "prune", str(root), "--older-than", "30d"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None and (not log.exists() or b'"intent"' not in log.read_bytes()):
            time.sleep(0.002)
        time.sleep(random.Random(seed).uniform(0, 0.06))  # deleting 5,000 files takes longer
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "prune finished before the kill"
    missing = {rel for rel in files if not (root / rel).exists()}
    intents = set()
    for line in log.read_bytes().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # an outcome line cut by the kill
            continue
        if entry.get("event") == "intent":
            intents.add(entry["path"])
    assert missing <= intents, f"seed {seed}: {len(missing - intents)} files gone without an intent line"
    print(f"seed {seed}: killed with {len(missing)} of {len(files)} files deleted, {len(intents)} announced")
    rerun = run_cli(["prune", root, "--older-than", "30d"])  # a rerun finishes the job
    assert rerun.returncode == 0 and not any((root / rel).exists() for rel in files)


# --- item 7: rewriting a manifest that others append to ----------------------------------------------------------

APPENDER = """
import os, sys, time
path, stop, ready = sys.argv[1], sys.argv[2], sys.argv[3]
n = 0
while n < 20 or not os.path.exists(stop):
    with open(path, "a") as fh:  # open, append one line, close: as `privspeech scan ... >> m.jsonl` runs do
        fh.write('{"audio_filepath": "new/%04d.wav", "privspeech": {"expires_at": "2099-01-01T00:00:00Z"}}\\n' % n)
    n += 1
    if n == 1:
        open(ready, "w").close()
    time.sleep(0.002)
print(n)
"""


def expired_manifest(root: Path, count: int) -> Path:
    lines = []
    for i in range(count):
        touch(root, f"spk/{i:04d}.wav")
        lines.append(record(f"spk/{i:04d}.wav", PAST if i % 2 else FUTURE))
    return write_manifest(root / "m.jsonl", lines)


@pytest.mark.slow
def test_a_real_appender_loses_no_line_while_prune_rewrites(tmp_path):
    root = make_root(tmp_path)
    manifest = expired_manifest(root, 2000)
    stop, ready = tmp_path / "stop", tmp_path / "ready"
    appender = subprocess.Popen([sys.executable, "-c", APPENDER, str(manifest), str(stop), str(ready)],
                                stdout=subprocess.PIPE, text=True)
    while not ready.exists():
        time.sleep(0.001)
    results = [run_cli(["prune", root])]
    stop.touch()
    written = int(appender.communicate(timeout=60)[0])
    while '"expires_at": "2020' in manifest.read_text() and len(results) < 5:  # in use at that instant: run again
        results.append(run_cli(["prune", root]))
    print(f"{written} lines appended during {len(results)} prune runs")
    assert all(r.returncode == 0 and b"Traceback" not in r.stderr for r in results)
    paths = [json.loads(line)["audio_filepath"] for line in manifest.read_text().splitlines()]
    assert [p for p in paths if p.startswith("new/")] == [f"new/{n:04d}.wav" for n in range(written)]
    assert [p for p in paths if p.startswith("spk/")] == [f"spk/{i:04d}.wav" for i in range(0, 2000, 2)]
    assert written >= 20 and not list(root.glob(".*.privspeech-*"))


WRITER = """
import sys
with open(sys.argv[1], "a") as fh:  # held open for the whole job, as `privspeech scan ... >> m.jsonl` does
    for line in sys.stdin:
        fh.write(line)
        fh.flush()
        print("written", flush=True)
"""


def test_a_writer_holding_the_manifest_open_loses_nothing_and_the_rewrite_waits(tmp_path):
    root = make_root(tmp_path)
    manifest = expired_manifest(root, 10)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(manifest)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    new = [dumps(record(f"new/{n}.wav", FUTURE)) for n in range(3)]
    writer.stdin.write(new[0])
    writer.stdin.flush()
    assert writer.stdout.readline() == "written\n"
    result = run_cli(["prune", root])
    actions = cli_actions(result)
    assert result.returncode == ExitStatus.OK
    assert [(a["action"], a["kind"]) for a in actions] == [("deleted", "file")] * 5 + [("skipped", "record")] * 5
    assert "open in another process" in actions[-1]["detail"] and not (root / "spk/0001.wav").exists()
    assert b"m.jsonl: not rewritten now, it is open in another process" in result.stderr
    for line in new[1:]:
        writer.stdin.write(line)
        writer.stdin.flush()
        assert writer.stdout.readline() == "written\n"
    writer.stdin.close()
    assert writer.wait(timeout=30) == 0
    assert len(manifest.read_text().splitlines()) == 13  # nothing lost
    later = cli_actions(run_cli(["prune", root]))
    assert [a["action"] for a in later] == ["skipped"] * 5 + ["deleted"] * 5  # already absent; lines dropped
    paths = [json.loads(line)["audio_filepath"] for line in manifest.read_text().splitlines()]
    assert paths == [f"spk/{i:04d}.wav" for i in range(0, 10, 2)] + [f"new/{n}.wav" for n in range(3)]


def interrupted(old: bytes, new: bytes, state: str) -> bytes:
    """The manifest's bytes when a rewrite from `old` to `new` was killed in `state` (see retention/rewrite.py)."""
    cut = len(new)
    marked = old[:cut] + b"\0" + old[cut + 1:]
    return {"redo written": old, "marker written": marked, "half written": new[:cut // 2] + marked[cut // 2:],
            "new text written": new + marked[cut:], "truncated": new}[state]


@pytest.mark.slow
@pytest.mark.parametrize("appended", [False, True])
@pytest.mark.parametrize("state", ["redo written", "marker written", "half written", "new text written",
                                   "truncated"])
def test_a_rewrite_killed_in_any_state_is_finished_by_the_next_run(tmp_path, state, appended):
    root = make_root(tmp_path)
    lines = [dumps(record(f"{name}.wav", when)).encode() for name, when in
             [("a", PAST), ("b", FUTURE), ("c", PAST), ("d", FUTURE)]]
    touch(root, "b.wav")
    touch(root, "d.wav")  # a.wav and c.wav were deleted before the kill
    old, new = b"".join(lines), lines[1] + lines[3]
    manifest = root / "m.jsonl"
    later = dumps(record("e.wav", FUTURE)).encode() if appended else b""  # appended after the kill
    manifest.write_bytes(interrupted(old, new, state) + later)
    manifest.chmod(0o640)
    (root / redo_name("m.jsonl")).write_bytes(Redo.dump(manifest.stat().st_ino, old, new, 0))
    (root / redo_name("m.jsonl")).chmod(0o600)
    dry = run_cli(["prune", root, "--dry-run"])
    assert dry.returncode == 0 and (root / redo_name("m.jsonl")).exists()  # a dry run only reads
    result = run_cli(["prune", root])
    assert cli_actions(dry) == [dict(a, action="would-delete" if a["action"] == "deleted" else a["action"])
                                for a in cli_actions(result)]
    assert result.returncode == 0, result.stderr
    assert manifest.read_bytes() == new + later and not (root / redo_name("m.jsonl")).exists()
    assert manifest.stat().st_mode & 0o777 == 0o640


def test_a_redo_file_prune_did_not_write_is_reported_and_the_manifest_left_alone(tmp_path):
    root = make_root(tmp_path)
    touch(root, "sub/old.wav", age_days=60)
    manifest = write_manifest(root / "sub/m.jsonl", [record("a.wav", PAST)])
    (root / "sub" / redo_name("m.jsonl")).write_bytes(b"garbage\n")
    actions, summary = run(root, OLD)
    assert [(a["action"], a["kind"], a["path"]) for a in actions] == [
        ("error", "manifest", "sub/m.jsonl"), ("skipped", "file", "sub/old.wav")]
    assert "is not one prune wrote" in actions[0]["detail"] and summary.status == ExitStatus.FAILED
    assert len(manifest.read_text().splitlines()) == 1


def test_without_leases_the_rewrite_falls_back_to_a_checked_rename_keeping_owner_group_and_mode(tmp_path,
                                                                                              monkeypatch):
    import fcntl

    root = make_root(tmp_path)
    touch(root, "a.wav")
    manifest = write_manifest(root / "m.jsonl", [record("a.wav", PAST), record("b.wav", FUTURE)])
    manifest.chmod(0o640)
    group = NOBODY if os.geteuid() == 0 else os.getegid()
    os.chown(manifest, -1, group)
    real = fcntl.fcntl

    def no_leases(fd, cmd, arg=0):  # as on NFS
        if cmd == fcntl.F_SETLEASE:
            raise OSError(22, "Invalid argument")
        return real(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", no_leases)
    with open_root(root) as handle:
        plan = make_plan(handle, Policy())
        with manifest.open("a") as fh:
            fh.write(dumps(record("new.wav", FUTURE)))
        summary = execute(handle, plan)
    assert summary.status == ExitStatus.OK
    assert [json.loads(t)["audio_filepath"] for t in manifest.read_text().splitlines()] == ["b.wav", "new.wav"]
    st = manifest.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (os.geteuid(), group, 0o640)


def test_an_in_place_rewrite_keeps_inode_owner_group_and_mode(tmp_path):
    root = make_root(tmp_path)
    touch(root, "a.wav")
    manifest = write_manifest(root / "m.jsonl", [record("a.wav", PAST), record("b.wav", FUTURE)])
    group = NOBODY if os.geteuid() == 0 else os.getegid()
    os.chown(manifest, -1, group)
    manifest.chmod(0o604)
    before = manifest.stat()
    actions, summary = run(root)
    after = manifest.stat()
    assert [a["action"] for a in actions] == ["deleted", "deleted"] and summary.status == ExitStatus.OK
    assert (after.st_ino, after.st_uid, after.st_gid, after.st_mode) == \
        (before.st_ino, before.st_uid, before.st_gid, before.st_mode)


def test_folders_an_unprivileged_prune_cannot_read_or_search_are_errors_not_tracebacks(public_tmp):
    """prune run by nobody on nobody's dataset with a folder it may list but not search, and one it may not list."""
    needs_root_and("setpriv")
    root = make_root(public_tmp)
    touch(root, "old.wav", age_days=60)
    touch(root, "listable/x.wav", age_days=60)
    touch(root, "closed/y.wav", age_days=60)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(root)], check=True)
    (root / "listable").chmod(0o444)
    (root / "closed").chmod(0o311)
    result = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
                             "-m", "privspeech", "prune", str(root), "--older-than", "30d"],
                            capture_output=True, timeout=60, env=dict(os.environ, HOME="/nonexistent"))
    actions = cli_actions(result)
    assert result.returncode == ExitStatus.FAILED
    assert [(a["action"], a["kind"], a["path"]) for a in actions] == [
        ("error", "dir", "closed"), ("error", "dir", "listable"), ("deleted", "file", "old.wav")]
    assert "Permission denied" in actions[0]["detail"] and "Permission denied" in actions[1]["detail"]
    for folder in ("listable", "closed"):
        (root / folder).chmod(0o755)
    assert (root / "listable/x.wav").exists() and (root / "closed/y.wav").exists()
