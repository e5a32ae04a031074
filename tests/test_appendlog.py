"""The append-only JSONL rule (journal, DP ledger, audit log): fragments a crash leaves, modes, durability calls,
and the lock files' wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from privspeech.appendlog import TORN, AppendLog, read_lines
from privspeech.dp import ledger
from privspeech.errors import CannotWrite, DataError, TryAgain
from privspeech.lockfile import exclusive_lock


def entries(path) -> list[dict]:
    return [json.loads(line) for _, line in read_lines(path)]


def test_a_fragment_left_by_a_crash_is_passed_over_and_never_swallows_a_line(tmp_path):
    log = tmp_path / "log.jsonl"
    with AppendLog(log) as out:
        out.append_jsonl([{"a": 1}, '{"b": 2}'])
    with open(log, "ab") as fh:
        fh.write(b'{"c": 3, "d": "cut sh')  # a writer killed mid-line
    assert entries(log) == [{"a": 1}, {"b": 2}]
    with AppendLog(log) as out:
        out.append_jsonl([{"e": 5}], sync=True)
    assert log.read_bytes().endswith(b'"cut sh' + TORN + b'\n{"e": 5}\n')
    assert [n for n, _ in read_lines(log)] == [1, 2, 4] and entries(log) == [{"a": 1}, {"b": 2}, {"e": 5}]


def test_a_whole_object_only_lacking_its_newline_counts(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"a": 1}\n' + b'{"long": "' + b"x" * 200_000 + b'"}')
    assert len(entries(log)) == 2
    with AppendLog(log) as out:
        out.append_jsonl([{"b": 2}])
    assert [e.get("a", e.get("b")) for e in entries(log)] == [1, None, 2] and TORN not in log.read_bytes()


def test_any_text_goes_in_and_comes_back(tmp_path):
    name = os.fsdecode(b"caf\xc3\xa9-\xff.wav")  # a file name that is not UTF-8
    with AppendLog(tmp_path / "log.jsonl") as out:
        out.append_jsonl([{"dest": name}])
    assert (tmp_path / "log.jsonl").read_bytes().isascii() and entries(tmp_path / "log.jsonl") == [{"dest": name}]


def test_modes_symlinks_and_other_files(tmp_path):
    old = os.umask(0o022)
    try:
        AppendLog(tmp_path / "private.jsonl").close()
        AppendLog(tmp_path / "shared.jsonl", private=False).close()
    finally:
        os.umask(old)
    assert (tmp_path / "private.jsonl").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "shared.jsonl").stat().st_mode & 0o777 == 0o644
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "private.jsonl")
    os.mkfifo(tmp_path / "fifo")
    for name in ("link.jsonl", "fifo"):
        with pytest.raises(CannotWrite):
            AppendLog(tmp_path / name)


def test_the_ledger_passes_over_a_torn_last_line_but_not_a_bad_one(tmp_path):
    ledger.append(tmp_path, "stats", epsilon=0.5)
    with open(ledger.ledger_path(tmp_path), "ab") as fh:
        fh.write(b'{"op": "stats", "epsi')
    assert [e["epsilon"] for e in ledger.read(tmp_path)] == [0.5]
    ledger.append(tmp_path, "stats", epsilon=0.25)
    assert [e["epsilon"] for e in ledger.read(tmp_path)] == [0.5, 0.25]
    with open(ledger.ledger_path(tmp_path), "ab") as fh:
        fh.write(b"\xff\n")
    with pytest.raises(DataError, match=":4: bad ledger line: not UTF-8"):
        ledger.read(tmp_path)


HOLDER = """
import sys, time
from privspeech.lockfile import exclusive_lock
with exclusive_lock(sys.argv[1], hint="h"):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_a_lock_held_elsewhere_is_waited_for_then_named_with_its_holder(tmp_path):
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        started = time.monotonic()
        with pytest.raises(TryAgain) as err:
            with exclusive_lock(lock, wait=0.3, who="test run", hint="wait for it"):
                pass
        assert 0.3 <= time.monotonic() - started < 5
        assert err.value.message == f"{lock}: locked by another test run (pid {holder.pid})"
        assert err.value.hint == "wait for it"
    finally:
        holder.kill()
        holder.wait()
    with exclusive_lock(lock, hint="h"):
        assert lock.read_text() == f"{os.getpid()}\n" and lock.stat().st_mode & 0o777 == 0o600
