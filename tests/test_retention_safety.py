"""`prune` never leaves ROOT: refusals, symlinks, real swap races, hard links, escaping paths, permissions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.retention import Policy, execute, make_plan, open_root, prune
from privspeech.timeutil import parse_duration

from test_retention_rules import PAST, make_root, put, record, run, write_manifest

OLD = Policy(older_than=parse_duration("30d"))


def outside_tree(tmp_path: Path) -> dict[str, bytes]:
    """Old files outside ROOT that must survive everything."""
    put(tmp_path, "outside/victim.wav", age_days=400)
    put(tmp_path, "outside/spk/00.wav", age_days=400)
    return snapshot(tmp_path / "outside")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["/", "home", "unmarked", "marker-symlink", "file"])
def test_refuses_slash_home_unmarked_and_fake_markers(tmp_path, monkeypatch, target):
    if target == "/":
        root = Path("/")
    elif target == "home":
        root = make_root(tmp_path, "home")  # even marked, the home folder is refused
        monkeypatch.setenv("HOME", str(root))
    elif target == "unmarked":
        root = tmp_path / "plain"
        root.mkdir()
    elif target == "marker-symlink":
        real = make_root(tmp_path, "real")
        root = tmp_path / "fake"
        root.mkdir()
        (root / ".privspeech").symlink_to(real / ".privspeech")
    else:
        root = tmp_path / "file"
        root.write_text("x")
    put(root, "old.wav", age_days=99) if target != "/" and root.is_dir() else None
    with pytest.raises(PrivspeechError) as info:
        prune(root, OLD)
    assert info.value.status == ExitStatus.USAGE
    if target in ("unmarked", "marker-symlink"):
        assert "privspeech init" in info.value.hint
    if root.is_dir() and target != "/":
        assert (root / "old.wav").exists()


def test_missing_root_is_noinput(tmp_path):
    with pytest.raises(PrivspeechError) as info:
        prune(tmp_path / "nowhere", OLD)
    assert info.value.status == ExitStatus.NOINPUT


def test_symlinks_to_files_and_folders_outside_are_never_followed(tmp_path):
    before = outside_tree(tmp_path)
    root = make_root(tmp_path)
    put(root, "inside.wav", age_days=400)
    (root / "file-link.wav").symlink_to(tmp_path / "outside/victim.wav")
    (root / "dir-link").symlink_to(tmp_path / "outside")
    (root / "deep").mkdir()
    (root / "deep/up").symlink_to("../../outside", target_is_directory=True)
    for link in ("file-link.wav", "dir-link", "deep/up"):
        os.utime(root / link, (0, 0), follow_symlinks=False)
    write_manifest(root / "m.jsonl", [
        record("file-link.wav", PAST),
        record("dir-link/spk/00.wav", PAST),
        record("deep/up/victim.wav", PAST),
        record("deep/up/../inside.wav", PAST),
    ])
    actions, summary = run(root, Policy(older_than=parse_duration("30d"), prune_empty_dirs=True))
    assert snapshot(tmp_path / "outside") == before
    assert all(os.path.islink(root / link) for link in ("file-link.wav", "dir-link", "deep/up"))
    errors = {a["reason"]["line"]: a["detail"] for a in actions if a["action"] == "error"}
    assert "not a regular file (symlink)" in errors[1]
    assert "dir-link on the way is a symlink" in errors[2]
    assert "deep/up on the way is a symlink" in errors[3] and "deep/up on the way is a symlink" in errors[4]
    # line 4 names tmp_path/inside.wav physically, not ROOT/inside.wav: that one has no record and goes by age
    assert [(a["path"], a["reason"]["rule"]) for a in actions if a["action"] == "deleted"] == [
        ("inside.wav", "older-than")]
    assert summary.status == ExitStatus.FAILED
    assert len((root / "m.jsonl").read_text().splitlines()) == 4


def test_folder_swapped_for_a_symlink_between_planning_and_deleting(tmp_path):
    outside_tree(tmp_path)
    shutil.copytree(tmp_path / "outside/spk", tmp_path / "outside/spk-copy")
    before = snapshot(tmp_path / "outside")
    root = make_root(tmp_path)
    put(root, "spk/00.wav", age_days=400)
    put(root, "spk/01.wav", age_days=400)
    write_manifest(root / "m.jsonl", [record("spk/00.wav", PAST)])
    with open_root(root) as handle:
        plan = make_plan(handle, OLD)
        assert [a.path for a in plan.files if a.action == "would-delete"] == ["spk/00.wav", "spk/01.wav"]
        (root / "spk").rename(tmp_path / "moved")  # the attacker's swap, for real, on disk
        (root / "spk").symlink_to(tmp_path / "outside/spk-copy")
        summary = execute(handle, plan)
    assert snapshot(tmp_path / "outside") == before
    assert {a.path: a.action for a in plan.actions} == {"spk/00.wav": "error", "spk/01.wav": "error",
                                                        "m.jsonl": "error"}
    assert all("spk is no longer a folder" in a.detail for a in plan.files)
    assert sorted(os.listdir(tmp_path / "moved")) == ["00.wav", "01.wav"]
    assert len((root / "m.jsonl").read_text().splitlines()) == 1 and summary.status == ExitStatus.FAILED


@pytest.mark.parametrize("swap", ["folder", "file"])
def test_folder_or_file_replaced_by_another_between_planning_and_deleting(tmp_path, swap):
    root = make_root(tmp_path)
    put(root, "spk/00.wav", age_days=400)
    with open_root(root) as handle:
        plan = make_plan(handle, OLD)
        if swap == "folder":
            (root / "spk").rename(root / "spk-old")
        else:
            (root / "spk/00.wav").rename(root / "spk-00.wav")
        put(root, "spk/00.wav")  # a new, recent file under the same name
        execute(handle, plan)
    (action,) = plan.files
    assert action.action == "error" and "replaced since planning" in action.detail
    assert (root / "spk/00.wav").exists()


def test_hard_links_lose_only_the_name_inside_root(tmp_path):
    root = make_root(tmp_path)
    inside = put(root, "a.wav", age_days=400)
    (tmp_path / "outside").mkdir()
    os.link(inside, tmp_path / "outside/a-link.wav")
    os.link(inside, root / "b.wav")
    write_manifest(root / "m.jsonl", [record("b.wav", None)])  # b.wav has a record: not by age
    data = inside.read_bytes()
    actions, _ = run(root, OLD)
    (action,) = actions
    assert action["path"] == "a.wav" and action["action"] == "deleted" and action["links"] == 3
    assert "hard links" in action["detail"]
    assert (tmp_path / "outside/a-link.wav").read_bytes() == data == (root / "b.wav").read_bytes()


@pytest.mark.parametrize("path", [
    "../../outside/victim.wav",
    "../spk/../../outside/victim.wav",
    "{outside}/victim.wav",
    "{root}/../outside/victim.wav",
])
def test_manifest_paths_leaving_root_are_errors_and_touch_nothing(tmp_path, path):
    before = outside_tree(tmp_path)
    root = make_root(tmp_path)
    put(root, "spk/x.wav")
    text = path.format(outside=tmp_path / "outside", root=root)
    write_manifest(root / "spk/m.jsonl", [record(text, PAST, sidecars=["x.wav"])])
    actions, summary = run(root)
    (action,) = actions
    assert action["action"] == "error" and action["kind"] == "record" and "x.wav" not in action["detail"]
    assert "leaves ROOT" in action["detail"] or "outside ROOT" in action["detail"]
    assert snapshot(tmp_path / "outside") == before and (root / "spk/x.wav").exists()
    assert summary.status == ExitStatus.FAILED


def test_absolute_and_dotted_paths_inside_root_are_fine(tmp_path):
    root = make_root(tmp_path)
    put(root, "spk/x.wav")
    put(root, "spk/y.wav")
    write_manifest(root / "spk/m.jsonl", [record(str(root / "spk/x.wav"), PAST), record("./../spk/y.wav", PAST)])
    actions, _ = run(root)
    assert [a["path"] for a in actions if a["action"] == "deleted"] == ["spk/x.wav", "spk/y.wav", "spk/m.jsonl",
                                                                        "spk/m.jsonl"]


def test_a_read_only_file_is_deleted_an_undeletable_one_is_an_error(tmp_path):
    root = make_root(tmp_path)
    put(root, "ro.wav").chmod(0o444)
    stuck = put(root, "stuck/x.wav")
    write_manifest(root / "m.jsonl", [record("ro.wav", PAST), record("stuck/x.wav", PAST)])
    if os.geteuid() == 0:  # root ignores modes; the immutable attribute stops even root
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", stuck]).returncode:
            pytest.skip("needs chattr +i when running as root")
    else:
        (root / "stuck").chmod(0o555)
    try:
        actions, summary = run(root)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", stuck], check=True)
        (root / "stuck").chmod(0o755)
    states = {(a["kind"], a["path"], a["reason"]["line"]): a["action"] for a in actions}
    assert states == {("file", "ro.wav", 1): "deleted", ("file", "stuck/x.wav", 2): "error",
                      ("record", "m.jsonl", 1): "deleted", ("record", "m.jsonl", 2): "error"}
    assert stuck.exists() and summary.status == ExitStatus.FAILED
    assert json.loads((root / "m.jsonl").read_text())["audio_filepath"] == "stuck/x.wav"


def test_another_filesystem_inside_root_is_never_entered(tmp_path):
    """A tmpfs mounted inside ROOT (in a private mount namespace) keeps its old files."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -m (root in a mount namespace)")
    root = make_root(tmp_path)
    put(root, "old.wav", age_days=400)
    (root / "mnt").mkdir()
    write_manifest(root / "m.jsonl", [record("mnt/rec.wav", PAST)])
    script = (
        "import sys; from privspeech.retention import prune, Policy; from privspeech.timeutil import "
        "parse_duration as d; s = prune(sys.argv[1], Policy(older_than=d('30d'), prune_empty_dirs=True), "
        "emit=print); print(int(s.status))")
    shell = (f'mount -t tmpfs none "$1/mnt" && echo data > "$1/mnt/rec.wav" && echo data > "$1/mnt/old.wav" && '
             f'touch -d 2001-01-01 "$1/mnt/old.wav" "$1/mnt" && {sys.executable} -c "$2" "$1" && ls "$1/mnt"')
    done = subprocess.run(["unshare", "-m", "sh", "-c", shell, "sh", str(root), script], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *lines, status, ls1, ls2 = done.stdout.splitlines()
    actions = [json.loads(line) for line in lines]
    assert [(a["action"], a["path"]) for a in actions] == [("deleted", "old.wav"), ("error", "m.jsonl")]
    assert "mnt on the way is on another filesystem" in actions[1]["detail"]
    assert status == "1" and [ls1, ls2] == ["old.wav", "rec.wav"]


@pytest.mark.parametrize("path", [".privspeech/root.json", "sub/.privspeech/x", "m.jsonl", "sub/other.jsonl"])
def test_records_naming_state_folders_or_manifests_are_errors(tmp_path, path):
    root = make_root(tmp_path)
    make_root(root, "sub")
    (root / "sub/.privspeech/x").write_text("x")
    write_manifest(root / "sub/other.jsonl", [])
    put(root, "a.wav")
    write_manifest(root / "m.jsonl", [record("a.wav", PAST, sidecars=[path])])
    before = snapshot(root)
    actions, summary = run(root)
    (action,) = actions
    assert action["action"] == "error" and ("state folder" in action["detail"] or "is a manifest" in action["detail"])
    after = snapshot(root)
    assert {k: v for k, v in after.items() if not k.startswith(".privspeech/")} == \
        {k: v for k, v in before.items() if not k.startswith(".privspeech/")}
    assert after[".privspeech/root.json"] == before[".privspeech/root.json"] and summary.status == ExitStatus.FAILED
