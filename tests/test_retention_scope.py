"""What `prune --older-than` may delete (audio and .age files; every kind with --any-file) and what `--protect`
keeps (gitignore patterns), on real files through the real CLI."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from privspeech.errors import ExitStatus

from conftest import records
from test_retention_rules import PAST, listing, make_root, put, record, write_manifest


def aged(root: Path, rel: str, data: bytes, *, days: float = 90) -> Path:
    """A file at ROOT/rel holding `data`, last modified `days` ago."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    moment = time.time() - days * 86400
    os.utime(path, (moment, moment))
    return path


def mixed_dataset(tmp_path: Path) -> Path:
    """Old recordings, an old ciphertext, old files of other kinds, a young note and an expired record whose
    sidecar is a text file."""
    root = make_root(tmp_path)
    put(root, "spk/a.wav", age_days=90)
    put(root, "spk/b.FLAC", age_days=90)
    aged(root, "vault/spk/a.wav.age", b"age-encryption.org/v1\n")
    aged(root, "README.txt", b"what this folder holds\n")
    aged(root, "spk/notes.json", b'{"speaker": "spk"}\n')
    aged(root, "fresh.txt", b"written yesterday\n", days=1)
    put(root, "rec.wav")
    aged(root, "rec.txt", b"transcript\n", days=1)
    write_manifest(root / "m.jsonl", [record("rec.wav", PAST, sidecars=["rec.txt"])])
    os.utime(root / "m.jsonl", (0, 0))
    return root


def outline(actions: list[dict]) -> list[tuple[str, str, str]]:
    """(action as a real run reports it, path, rule) of each action; the cutoff moves on between two runs."""
    return [(a["action"].replace("would-delete", "deleted"), a["path"], a["reason"]["rule"]) for a in actions]


def test_older_than_deletes_only_audio_and_age_files_and_reports_the_others_as_kept(tmp_path, cli):
    root = mixed_dataset(tmp_path)
    dry = cli(["prune", root, "-n", "--older-than", "30d"])
    assert dry.exit_code == 0, dry.stderr
    plan = records(dry.stdout)
    assert {(a["action"], a["path"], a["reason"]["rule"]) for a in plan if a["kind"] == "file"} == {
        ("would-delete", "spk/a.wav", "older-than"), ("would-delete", "spk/b.FLAC", "older-than"),
        ("would-delete", "vault/spk/a.wav.age", "older-than"),
        ("kept", "README.txt", "not-managed"), ("kept", "spk/notes.json", "not-managed"),
        ("would-delete", "rec.wav", "expired"), ("would-delete", "rec.txt", "expired")}  # expiry: every kind
    readme = next(a for a in plan if a["path"] == "README.txt")
    assert "--any-file" in readme["detail"] and readme["reason"]["mtime"].endswith("Z")
    assert "would delete 5 files, 1 record" in dry.stderr and "kept 2 files" in dry.stderr

    real = cli(["prune", root, "--older-than", "30d"])
    assert real.exit_code == 0, real.stderr
    assert outline(plan) == outline(records(real.stdout))
    assert sorted(listing(root)) == ["README.txt", "fresh.txt", "m.jsonl", "spk/notes.json"]
    audit = records((root / ".privspeech/audit.jsonl").read_text())
    assert any(e.get("path") == "README.txt" and e.get("action") == "kept" for e in audit)


def test_any_file_deletes_old_files_of_every_kind_but_never_manifests(tmp_path, cli):
    root = mixed_dataset(tmp_path)
    result = cli(["prune", root, "--older-than", "30d", "--any-file"])
    assert result.exit_code == 0, result.stderr
    assert not [a for a in records(result.stdout) if a["action"] == "kept"]
    assert sorted(listing(root)) == ["fresh.txt", "m.jsonl"]
    begin = records((root / ".privspeech/audit.jsonl").read_text())[0]
    assert begin["policy"]["any_file"] is True


def test_any_file_without_older_than_is_a_usage_error(tmp_path, cli):
    root = mixed_dataset(tmp_path)
    before = listing(root)
    result = cli(["prune", root, "--any-file"])
    assert result.exit_code == ExitStatus.USAGE and result.stdout == ""
    assert "--any-file applies only with --older-than" in result.stderr and "Traceback" not in result.stderr
    assert listing(root) == before


LEGAL = ("legal/a.wav", "legal/draft.wav", "legal/sub/b.wav", "cases/legal/c.wav", "other/d.wav")
PROTECT_CASES = [
    (["legal/*"], {"legal/a.wav", "legal/draft.wav"}),
    (["legal/**"], {"legal/a.wav", "legal/draft.wav", "legal/sub/b.wav", "legal/sub/rec.wav"}),
    (["legal/"], {"legal/a.wav", "legal/draft.wav", "legal/sub/b.wav", "legal/sub/rec.wav", "cases/legal/c.wav"}),
    (["/legal/"], {"legal/a.wav", "legal/draft.wav", "legal/sub/b.wav", "legal/sub/rec.wav"}),
    (["draft.wav", "c.wav"], {"legal/draft.wav", "cases/legal/c.wav"}),  # no slash: any depth
    (["legal/*", "!legal/draft.wav"], {"legal/a.wav"}),
    (["!legal/draft.wav", "legal/*"], {"legal/a.wav", "legal/draft.wav"}),  # the last match decides
    (["legal/**", "!legal/sub/*", "legal/sub/rec.wav"], {"legal/a.wav", "legal/draft.wav", "legal/sub/rec.wav"}),
]


@pytest.mark.parametrize("patterns, kept", PROTECT_CASES, ids=[" ".join(p) for p, _ in PROTECT_CASES])
def test_protect_takes_gitignore_patterns(tmp_path, cli, patterns, kept):
    root = make_root(tmp_path)
    for rel in LEGAL:
        put(root, rel, age_days=90)
    put(root, "legal/sub/rec.wav")
    write_manifest(root / "m.jsonl", [record("legal/sub/rec.wav", PAST)])
    result = cli(["prune", root, "--older-than", "30d", *[x for p in patterns for x in ("--protect", p)]])
    assert result.exit_code == 0, result.stderr
    files = [a for a in records(result.stdout) if a["kind"] == "file"]
    assert {a["path"] for a in files if a["action"] == "kept"} == kept
    assert all(a["reason"]["rule"] == "protect" and a["reason"]["glob"] in patterns
               for a in files if a["action"] == "kept")
    assert set(listing(root)) == kept | {"m.jsonl"}


@pytest.mark.parametrize("pattern, problem", [
    ("legal\\", "not a valid gitignore pattern"),
    ("!", "not a valid gitignore pattern"),
    ("", "a blank or comment line, it protects nothing"),
    ("#legal", "a blank or comment line, it protects nothing"),
])
def test_a_bad_protect_pattern_is_a_usage_error_and_deletes_nothing(tmp_path, cli, pattern, problem):
    root = mixed_dataset(tmp_path)
    before = listing(root)
    result = cli(["prune", root, "--older-than", "30d", "--protect", "legal/*", "--protect", pattern])
    assert result.exit_code == ExitStatus.USAGE and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"privspeech: error: protect pattern '{pattern}': {problem} (hint: ")
    assert listing(root) == before and not (root / ".privspeech/audit.jsonl").exists()
