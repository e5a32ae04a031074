"""What `prune` deletes and why: expiry by manifest, by age, holds, protect globs, dry runs, the audit log."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from privspeech.managed import mark
from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.manifest import Provenance, Record, dumps
from privspeech.retention import Policy, execute, make_plan, open_root, prune
from privspeech.timeutil import now, parse_duration

from conftest import VCTK

PAST = "2020-01-01T00:00:00Z"
FUTURE = "2099-01-01T00:00:00Z"
WAVS = sorted(VCTK.rglob("*.wav"))


def make_root(tmp_path: Path, name: str = "ds") -> Path:
    """A marked dataset folder."""
    root = tmp_path / name
    mark(root)
    return root


def put(root: Path, rel: str, source: Path | None = None, *, age_days: float | None = None) -> Path:
    """Copy a real corpus recording (or `source`) to ROOT/rel; optionally backdate its mtime."""
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source or WAVS[sum(map(ord, rel)) % len(WAVS)], dest)
    if age_days is not None:
        moment = time.time() - age_days * 86400
        os.utime(dest, (time.time(), moment))  # atime now, mtime old: only mtime may count
    return dest


def record(rel: str, expires_at: str | None, *, hold: bool = False, sidecars: list[str] | None = None,
           rid: str | None = None) -> Record:
    extra = {"sidecars": sidecars} if sidecars else {}
    return Record(audio_filepath=rel, id=rid or rel,
                  privspeech=Provenance(expires_at=expires_at, hold=hold, extra=extra))


def write_manifest(path: Path, records: list[Record]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(dumps(r) for r in records))
    return path


def run(root: Path, policy: Policy | None = None, **kwargs) -> tuple[list[dict], object]:
    actions: list[dict] = []
    summary = prune(root, policy or Policy(), emit=lambda line: actions.append(json.loads(line)), **kwargs)
    return actions, summary


def listing(root: Path) -> dict[str, bytes]:
    """Every file under ROOT outside .privspeech, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".privspeech" not in p.parts}


def test_expired_records_lose_every_file_and_their_manifest_line(tmp_path):
    root = make_root(tmp_path)
    for rel in ("spk1/a.wav", "spk1/a.txt", "spk1/b.wav", "spk2/c.wav"):
        put(root, rel)
    manifest = write_manifest(root / "manifest.jsonl", [
        record("spk1/a.wav", PAST, sidecars=["spk1/a.txt"]),
        record("spk1/b.wav", FUTURE),
        record("spk2/c.wav", None),
    ])
    manifest.chmod(0o640)
    before = manifest.read_text().splitlines(keepends=True)
    actions, summary = run(root)
    assert not (root / "spk1/a.wav").exists() and not (root / "spk1/a.txt").exists()
    assert (root / "spk1/b.wav").exists() and (root / "spk2/c.wav").exists()
    assert manifest.read_text() == "".join(before[1:])  # other lines byte for byte
    assert manifest.stat().st_mode & 0o777 == 0o640
    deleted = [(a["kind"], a["path"]) for a in actions if a["action"] == "deleted"]
    assert deleted == [("file", "spk1/a.txt"), ("file", "spk1/a.wav"), ("record", "manifest.jsonl")]
    for action in actions:
        assert action["reason"] == {"rule": "expired", "expires_at": PAST, "manifest": "manifest.jsonl", "line": 1,
                                    "id": "spk1/a.wav"}
    assert summary.status == ExitStatus.OK and summary.freed == sum(a.get("size", 0) for a in actions)
    assert run(root)[0] == []  # a second run has nothing to do


def test_expiry_is_judged_against_the_policy_time(tmp_path):
    root = make_root(tmp_path)
    put(root, "a.wav")
    write_manifest(root / "m.jsonl", [record("a.wav", "2030-06-01T00:00:00Z")])
    early = Policy(at=dt.datetime(2030, 5, 31, 23, 59, 59, tzinfo=dt.timezone.utc))
    assert run(root, early)[0] == [] and (root / "a.wav").exists()
    late = Policy(at=dt.datetime(2030, 6, 1, tzinfo=dt.timezone.utc))
    assert [a["action"] for a in run(root, late)[0]] == ["deleted", "deleted"]
    assert (root / "m.jsonl").read_text() == ""


def test_older_than_deletes_only_files_without_record_by_modification_time(tmp_path):
    root = make_root(tmp_path)
    put(root, "orphan/old.wav", age_days=40)
    put(root, "orphan/new.wav", age_days=1)
    recorded = put(root, "kept/recorded.wav", age_days=400)
    old_manifest = write_manifest(root / "kept/m.jsonl", [record("recorded.wav", None)])
    os.utime(old_manifest, (0, 0))
    touched = put(root, "orphan/read-long-ago.wav")  # old atime must not count
    os.utime(touched, (time.time() - 400 * 86400, time.time()))
    actions, _ = run(root, Policy(older_than=parse_duration("30d")))
    assert [(a["action"], a["path"], a["reason"]["rule"]) for a in actions] == [
        ("deleted", "orphan/old.wav", "older-than")]
    cutoff = dt.datetime.fromisoformat(actions[0]["reason"]["cutoff"].replace("Z", "+00:00"))
    assert abs((now() - cutoff) - dt.timedelta(days=30)) < dt.timedelta(seconds=5)
    assert recorded.exists() and old_manifest.exists() and touched.exists()


def test_holds_and_protect_globs_keep_records_whole(tmp_path):
    root = make_root(tmp_path)
    for rel in ("held.wav", "held.txt", "legal/case.wav", "legal/case.txt", "notes.wav", "notes.keep",
                "gone.wav"):
        put(root, rel)
    put(root, "legal/orphan.wav", age_days=90)
    put(root, "misc/orphan.keep", age_days=90)
    write_manifest(root / "m.jsonl", [
        record("held.wav", PAST, hold=True, sidecars=["held.txt"]),
        record("legal/case.wav", PAST, sidecars=["legal/case.txt"]),
        record("notes.wav", PAST, sidecars=["notes.keep"]),
        record("gone.wav", PAST),
    ])
    policy = Policy(protect=("legal/*", "*.keep"), older_than=parse_duration("30d"))
    actions, summary = run(root, policy)
    kept = {a["path"]: a["reason"] for a in actions if a["action"] == "kept"}
    assert kept["held.wav"]["rule"] == kept["held.txt"]["rule"] == "hold"
    assert kept["legal/case.wav"] == {"rule": "protect", "glob": "legal/*", "manifest": "m.jsonl", "line": 2,
                                      "id": "legal/case.wav"}
    assert kept["notes.wav"]["glob"] == "*.keep"  # the sidecar's protection keeps the audio too
    assert kept["legal/orphan.wav"]["glob"] == "legal/*" and kept["misc/orphan.keep"]["glob"] == "*.keep"
    assert sorted(listing(root)) == sorted(["held.wav", "held.txt", "legal/case.wav", "legal/case.txt",
                                            "notes.wav", "notes.keep", "legal/orphan.wav", "misc/orphan.keep",
                                            "m.jsonl"])
    assert len((root / "m.jsonl").read_text().splitlines()) == 3 and summary.status == ExitStatus.OK


def test_a_file_shared_with_a_live_record_stays(tmp_path):
    root = make_root(tmp_path)
    put(root, "common.wav")
    put(root, "own.txt")
    write_manifest(root / "old.jsonl", [record("common.wav", PAST, sidecars=["own.txt"])])
    write_manifest(root / "sub/new.jsonl", [record("../common.wav", FUTURE)])
    actions, _ = run(root)
    by_path = {a["path"]: a for a in actions if a["kind"] == "file"}
    assert by_path["common.wav"]["action"] == "kept"
    assert by_path["common.wav"]["reason"] == {"rule": "shared", "manifest": "sub/new.jsonl", "line": 1,
                                               "id": "../common.wav"}
    assert by_path["own.txt"]["action"] == "deleted"
    assert (root / "common.wav").exists() and (root / "old.jsonl").read_text() == ""


def test_dry_run_reports_exactly_the_actions_of_the_real_run(tmp_path):
    root = make_root(tmp_path)
    records = []
    for i in range(12):
        rel = f"spk{i % 3}/{i:02d}.wav"
        put(root, rel, age_days=i * 5)
        records.append(record(rel, PAST if i % 2 else FUTURE, hold=i == 5))
    for i in range(6):
        put(root, f"loose/{i}.wav", age_days=20 + i * 5)
    put(root, "loose/keep.wav", age_days=99)
    write_manifest(root / "m.jsonl", records)
    policy = Policy(older_than=parse_duration("30d"), protect=("*/keep.wav",), prune_empty_dirs=True)
    before = listing(root)
    planned, dry = run(root, policy, dry_run=True)
    assert listing(root) == before  # a dry run changes nothing
    done, real = run(root, policy)
    assert {a["action"] for a in planned} == {"would-delete", "kept"}
    assert [dict(a, action={"would-delete": "deleted"}.get(a["action"], a["action"])) for a in planned] == done
    assert dry.counts["would-delete", "file"] == real.counts["deleted", "file"] == 5 + 3
    assert {p for p in before if not (root / p).exists()} == {a["path"] for a in done
                                                              if a["action"] == "deleted" and a["kind"] == "file"}


def test_audit_log_appends_every_action_of_every_run(tmp_path):
    root = make_root(tmp_path)
    put(root, "a.wav")
    put(root, "b.wav")
    write_manifest(root / "m.jsonl", [record("a.wav", PAST), record("b.wav", PAST, hold=True)])
    dry_actions, _ = run(root, dry_run=True)
    log = root / ".privspeech" / "audit.jsonl"
    first = log.read_text()
    real_actions, _ = run(root)
    text = log.read_text()
    assert text.startswith(first) and log.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in text.splitlines()]
    runs = list(dict.fromkeys(line["run"] for line in lines))
    assert len(runs) == 2
    for run_id, emitted, dry in zip(runs, (dry_actions, real_actions), (True, False)):
        mine = [line for line in lines if line["run"] == run_id]
        assert mine[0]["event"] == "begin" and mine[0]["dry_run"] is dry
        assert mine[0]["root"] == str(root) and mine[0]["policy"]["protect"] == []
        assert mine[-1]["event"] == "end" and mine[-1]["status"] == 0
        body = [{k: v for k, v in line.items() if k not in ("run", "at")} for line in mine[1:-1]]
        assert [line for line in body if line.get("event") != "intent"] == emitted
        intents = [line for line in body if line.get("event") == "intent"]  # each before what it announces
        assert intents == ([] if dry else [{"event": "intent", "kind": "file", "path": "a.wav"},
                                           {"event": "intent", "kind": "manifest", "path": "m.jsonl", "drop": [1]}])
        if not dry:
            assert body.index(intents[0]) < body.index(emitted[0]) and emitted[0]["path"] == "a.wav"
        for line in mine:
            assert abs(dt.datetime.fromisoformat(line["at"].replace("Z", "+00:00")) - now()) < dt.timedelta(minutes=5)
    assert lines[-1]["counts"] == {"deleted file": 1, "deleted record": 1, "kept file": 1}


def test_custom_audit_log_path(tmp_path):
    root = make_root(tmp_path)
    put(root, "a.wav", age_days=10)
    log = tmp_path / "logs" / "prune.jsonl"
    log.parent.mkdir()
    run(root, Policy(older_than=parse_duration("1d")), audit_log=log)
    assert [(e.get("event"), e.get("action")) for e in map(json.loads, log.read_text().splitlines())] == [
        ("begin", None), ("intent", None), (None, "deleted"), ("end", None)]
    assert not (root / ".privspeech" / "audit.jsonl").exists()


def test_explicit_manifests_limit_expiry_but_every_manifest_shields_its_files(tmp_path):
    root = make_root(tmp_path)
    put(root, "a/x.wav", age_days=60)
    put(root, "b/y.wav", age_days=60)
    put(root, "b/z.wav", age_days=60)
    write_manifest(root / "a/m.jsonl", [record("x.wav", PAST)])
    write_manifest(root / "b/m.jsonl", [record("y.wav", PAST), record("z.wav", FUTURE)])
    actions, _ = run(root, Policy(manifests=(str(root / "a/m.jsonl"),), older_than=parse_duration("30d")))
    assert [(a["action"], a["path"]) for a in actions] == [("deleted", "a/x.wav"), ("deleted", "a/m.jsonl")]
    assert (root / "b/y.wav").exists() and (root / "b/z.wav").exists()


@pytest.mark.parametrize("given, status", [
    ("missing.jsonl", ExitStatus.NOINPUT),
    ("../elsewhere.jsonl", ExitStatus.USAGE),
    ("folder", ExitStatus.USAGE),
])
def test_bad_explicit_manifest(tmp_path, given, status):
    root = make_root(tmp_path)
    (root / "folder").mkdir()
    write_manifest(tmp_path / "elsewhere.jsonl", [])
    with pytest.raises(PrivspeechError) as info:
        prune(root, Policy(manifests=(str(root / given),)))
    assert info.value.status == status and given.split("/")[-1] in info.value.message


@pytest.mark.parametrize("content, line, message", [
    (b'{"audio_filepath": "a.wav"}\nnot json\n', 2, "not JSON (Expecting value)"),
    (b'{"audio_filepath": "a.wav", "privspeech": {"sidecars": "a.txt"}}\n', 1, "sidecars"),
    (b'{"audio_filepath": "a.wav", "privspeech": {"expires_at": "yesterday"}}\n', 1, "RFC 3339"),
    (b"\xff\xfe binary\n", 1, "not UTF-8"),
    (b"[" * 100_000 + b"\n", 1, "nested too deeply"),
])
def test_a_bad_manifest_line_is_an_error_of_its_own_and_the_rest_of_root_is_pruned(tmp_path, content, line,
                                                                                     message):
    """Behaviour changed (issue 21): one bad line no longer stops all retention of ROOT (it was exit 65)."""
    root = make_root(tmp_path)
    put(root, "a.wav")
    put(root, "old.wav", age_days=90)
    put(root, "sub/old.wav", age_days=90)
    write_manifest(root / "good.jsonl", [record("a.wav", PAST)])
    (root / "sub/bad.jsonl").write_bytes(content)
    actions, summary = run(root, Policy(older_than=parse_duration("30d")))
    (error,) = [a for a in actions if a["action"] == "error"]
    assert error["kind"] == "line" and error["path"] == "sub/bad.jsonl"
    assert error["reason"] == {"rule": "bad-line", "line": line} and message in error["detail"]
    assert [(a["action"], a["path"]) for a in actions if a["action"] != "error"] == [
        ("deleted", "a.wav"), ("deleted", "old.wav"), ("skipped", "sub/old.wav"), ("deleted", "good.jsonl")]
    held = actions[3]
    assert held["reason"] == {"rule": "unreadable-manifest", "manifest": "sub/bad.jsonl"}  # the bad line might name it
    assert summary.status == ExitStatus.FAILED and (root / "sub/bad.jsonl").read_bytes() == content
    last = json.loads((root / ".privspeech/audit.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "end" and last["status"] == 1


def test_good_lines_of_a_manifest_with_bad_lines_are_enforced_and_bad_lines_kept(tmp_path):
    root = make_root(tmp_path)
    put(root, "a.wav")
    put(root, "b.wav")
    manifest = root / "m.jsonl"
    lines = [dumps(record("a.wav", PAST)).encode(), b"{oops\n", dumps(record("b.wav", FUTURE)).encode(),
             b"\xff\n" * 30]
    manifest.write_bytes(b"".join(lines))
    actions, summary = run(root)
    errors = [a for a in actions if a["action"] == "error"]
    assert [a["reason"]["line"] for a in errors] == [2, *range(4, 13)] and "21 more bad lines" in errors[-1]["detail"]
    assert [(a["action"], a["path"]) for a in actions if a["action"] != "error"] == [
        ("deleted", "a.wav"), ("deleted", "m.jsonl")]
    assert manifest.read_bytes() == b"".join(lines[1:]) and summary.status == ExitStatus.FAILED


def test_a_record_whose_file_is_already_gone_leaves_its_manifest(tmp_path):
    root = make_root(tmp_path)
    put(root, "here.wav")
    write_manifest(root / "m.jsonl", [record("gone.wav", PAST, sidecars=["here.wav"])])
    actions, summary = run(root)
    assert [(a["action"], a["path"], a.get("detail")) for a in actions] == [
        ("skipped", "gone.wav", "already absent"), ("deleted", "here.wav", None), ("deleted", "m.jsonl", None)]
    assert summary.status == ExitStatus.OK and (root / "m.jsonl").read_text() == ""


def test_prune_empty_dirs_removes_only_folders_the_run_emptied(tmp_path):
    root = make_root(tmp_path)
    put(root, "a/b/c/x.wav", age_days=9)
    put(root, "a/y.wav", age_days=9)
    put(root, "d/keep.wav")
    put(root, "d/e/old.wav", age_days=9)
    (root / "empty-before").mkdir()
    actions, _ = run(root, Policy(older_than=parse_duration("1d"), prune_empty_dirs=True))
    assert [a["path"] for a in actions if a["kind"] == "dir"] == ["a/b/c", "a/b", "d/e", "a"]
    assert sorted(p.name for p in root.iterdir()) == [".privspeech", "d", "empty-before"]
    assert listing(root) == {"d/keep.wav": listing(root)["d/keep.wav"]}


def test_lines_appended_after_planning_are_kept_by_the_rewrite(tmp_path):
    """Behaviour changed (issue 21): an append no longer stops the rewrite (it was an error, exit 1)."""
    root = make_root(tmp_path)
    put(root, "a.wav")
    manifest = write_manifest(root / "m.jsonl", [record("a.wav", PAST), record("b.wav", FUTURE)])
    inode = manifest.stat().st_ino
    with open_root(root) as handle:
        plan = make_plan(handle, Policy())
        with manifest.open("a") as fh:  # another tool appends a record meanwhile
            fh.write(dumps(record("new.wav", FUTURE)))
        summary = execute(handle, plan)
    assert [a.action for a in plan.actions] == ["deleted", "deleted"] and summary.status == ExitStatus.OK
    assert [json.loads(t)["audio_filepath"] for t in manifest.read_text().splitlines()] == ["b.wav", "new.wav"]
    assert manifest.stat().st_ino == inode  # rewritten in place
    assert not [p for p in root.iterdir() if p.name.endswith((".privspeech-rewrite", ".privspeech-tmp"))]


def test_a_manifest_replaced_after_planning_is_read_again_not_overwritten(tmp_path):
    root = make_root(tmp_path)
    put(root, "a.wav")
    manifest = write_manifest(root / "m.jsonl", [record("a.wav", PAST)])
    with open_root(root) as handle:
        plan = make_plan(handle, Policy())
        # rewritten in place by another program: the text read when planning is no longer its start
        manifest.write_text(dumps(record("other.wav", FUTURE)) + dumps(record("a.wav", PAST)))
        summary = execute(handle, plan)
    (rec,) = [a for a in plan.actions if a.kind == "record"]
    assert rec.action == "skipped" and "changed since it was read" in rec.detail and summary.status == ExitStatus.OK
    assert any("a later run removes the pruned lines" in w for w in summary.warnings)
    assert len(manifest.read_text().splitlines()) == 2 and not (root / "a.wav").exists()
    assert [a["action"] for a in run(root)[0]] == ["skipped", "deleted"]  # the next run: already absent, line dropped
    assert json.loads(manifest.read_text())["audio_filepath"] == "other.wav"


def test_a_nested_datasets_state_folder_is_never_read_or_touched(tmp_path):
    root = make_root(tmp_path)
    inner = make_root(root, "inner")
    put(inner, "old.wav", age_days=90)
    run(inner, Policy(older_than=parse_duration("30d")))  # leaves an audit.jsonl (not a manifest) in inner
    for name in ("audit.jsonl", "prune.lock", "root.json"):
        os.utime(inner / ".privspeech" / name, (0, 0))
    actions, summary = run(root, Policy(older_than=parse_duration("30d"), prune_empty_dirs=True))
    assert actions == [] and summary.status == ExitStatus.OK
    assert sorted(p.name for p in (inner / ".privspeech").iterdir()) == ["audit.jsonl", "prune.lock", "root.json"]
